"""Message (contract "Values", "Message"; core.md §1, §6.4, §6.5, §17)."""

from __future__ import annotations

import copy
import functools
import math
import pickle
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pytest
from hbeam import NOT_FOUND, UNDEFINED, UNSET
from hbeam.errors import InvalidMessage, InvalidPath, NotFound

# ------------------------------------------------------------------ construction


def test_construction_forms(backend: ModuleType) -> None:
    M = backend.Message
    assert len(M()) == 0
    assert M() == {}
    assert M({"a": 1}) == {"a": 1}
    assert M([("a", 1), ("b", 2)]) == {"a": 1, "b": 2}
    assert M((("a", 1),), b=2) == {"a": 1, "b": 2}
    assert M(a=1, b="x") == {"a": 1, "b": "x"}
    assert M({"a": 1}, a=2) == {"a": 2}  # kw after the mapping, as dict()
    assert M(OrderedDict(b=1, a=2)) == {"a": 2, "b": 1}
    assert M(M(a=1)) == {"a": 1}
    assert M(iter([("k", "v")])) == {"k": "v"}
    assert isinstance(M(), Mapping)


def test_keys_are_normalised(backend: ModuleType) -> None:
    M = backend.Message
    m = M({1: "a", b"b": "c", ("x", 2): "p"}, **{"true": "t"})
    assert M({True: "t"}) == {"true": "t"}
    assert m["1"] == "a"
    assert m[1] == "a"
    assert m["b"] == "c"
    assert m[b"b"] == "c"
    assert m["true"] == "t"
    assert m["x/2"] == "p"
    assert m[["x", 2]] == "p"
    assert sorted(m) == ["1", "b", "true", "x/2"]
    # a key holding "/" is one key when building, not a path
    assert M({"a/b": 1})["a/b"] == 1
    assert "a" not in M({"a/b": 1})


def test_key_collisions_later_wins(backend: ModuleType) -> None:
    M = backend.Message
    assert M({1: "int", "1": "str"}) == {"1": "str"}
    assert M({"1": "str", 1: "int"}) == {"1": "int"}
    assert M([("a", 1), (b"a", 2)]) == {"a": 2}
    assert M({"a": 1}, **{"a": 3}) == {"a": 3}
    # case is kept: these are two keys
    assert len(M({"A": 1, "a": 2})) == 2


def test_nested_conversion(backend: ModuleType) -> None:
    M = backend.Message
    m = M({"a": {"b": {1: "x"}}, "l": [1, {"c": (2, 3)}, []]})
    assert isinstance(m["a"], M)
    assert isinstance(m["a"]["b"], M)
    assert m["a"]["b"]["1"] == "x"
    lst = m["l"]
    assert type(lst) is list
    assert isinstance(lst[1], M)
    assert type(lst[1]["c"]) is list
    assert lst[1]["c"] == [2, 3]
    assert lst[2] == []
    assert m.to_dict() == {"a": {"b": {"1": "x"}}, "l": [1, {"c": [2, 3]}, []]}


def test_leaf_types_kept(backend: ModuleType) -> None:
    M = backend.Message
    big = 10**100
    m = M(s="x", b=b"\x00\xff", i=-5, big=big, f=1.5, t=True, n=None, e="")
    assert type(m["s"]) is str and m["s"] == "x"
    assert type(m["b"]) is bytes and m["b"] == b"\x00\xff"
    assert type(m["i"]) is int and m["i"] == -5
    assert m["big"] == big
    assert type(m["f"]) is float
    assert m["t"] is True
    assert m["n"] is None
    assert m["e"] == ""


def test_bytes_like_stored_as_bytes(backend: ModuleType) -> None:
    M = backend.Message
    m = M(a=bytearray(b"ab"), b=memoryview(b"cd"))
    assert type(m["a"]) is bytes and m["a"] == b"ab"
    assert type(m["b"]) is bytes and m["b"] == b"cd"


def test_subclasses_stored_as_base_types(backend: ModuleType) -> None:
    class S(str):
        pass

    class I(int):  # noqa: E742
        pass

    class F(float):
        pass

    class B(bytes):
        pass

    m = backend.Message(s=S("x"), i=I(3), f=F(2.5), b=B(b"z"))
    assert type(m["s"]) is str
    assert type(m["i"]) is int
    assert type(m["f"]) is float
    assert type(m["b"]) is bytes


def test_lists_are_frozen_and_fresh(backend: ModuleType) -> None:
    M = backend.Message
    source: list[Any] = [1, [2, 3]]
    m = M(l=source)
    source.append(4)
    source[1].append(5)
    assert m["l"] == [1, [2, 3]]
    first = m["l"]
    first.append("x")
    first[1].append("y")
    assert m["l"] == [1, [2, 3]]
    assert m["l"] is not m["l"]
    assert next(iter(m.values())) == [1, [2, 3]]
    assert dict(m.items())["l"] == [1, [2, 3]]
    assert m.get("l") == [1, [2, 3]]
    assert m.get_path("l") == [1, [2, 3]]


def test_input_dicts_are_copied(backend: ModuleType) -> None:
    source: dict[str, Any] = {"a": {"b": 1}}
    m = backend.Message(source)
    source["a"]["b"] = 2
    source["c"] = 3
    assert m == {"a": {"b": 1}}


# --------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": {1, 2}}, "unsupported value type set at key 'a'"),
        ({"a": {"b": object()}}, "unsupported value type object at key 'a/b'"),
        ({"a": [1, {"c": frozenset()}]}, "unsupported value type frozenset at key 'a/2/c'"),
        ({"a": UNSET}, "unsupported value type Sentinel at key 'a'"),
        ({"a": NOT_FOUND}, "unsupported value type Sentinel at key 'a'"),
        ({"a": 1j}, "unsupported value type complex at key 'a'"),
        ({"a": "x\ud800"}, "value is not valid UTF-8 at key 'a'"),
        ({1.5: "x"}, "unsupported key type float: 1.5"),
        ({None: "x"}, "unsupported key type NoneType: None"),
        ({"a": {2.5: 1}}, "unsupported key type float: 2.5 at key 'a'"),
        ({b"\xff": 1}, "key is not valid UTF-8: b'\\xff'"),
        ({"a": {b"\xfe": 1}}, "key is not valid UTF-8: b'\\xfe' at key 'a'"),
        ({"": 1}, "empty key"),
        ({"a": {"": 1}}, "empty key at key 'a'"),
        ({b"": 1}, "empty key"),
        ({"k" * 65537: 1}, "key is 65537 bytes (limit 65536)"),
    ],
)
def test_bad_input(backend: ModuleType, value: dict[Any, Any], message: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.Message(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (5, "cannot build a Message from int: 5"),
        (1.5, "cannot build a Message from float: 1.5"),
        (["ab"], "element 1 of the Message argument is not a (key, value) pair"),
        ([("a", 1), ("b",)], "element 2 of the Message argument is not a (key, value) pair"),
        ([("a", 1, 2)], "element 1 of the Message argument is not a (key, value) pair"),
        ("ab", "element 1 of the Message argument is not a (key, value) pair"),
    ],
)
def test_bad_constructor_argument(backend: ModuleType, arg: object, message: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.Message(arg)
    assert str(info.value) == message


def test_self_referencing_dict(backend: ModuleType) -> None:
    d: dict[str, Any] = {}
    d["a"] = d
    with pytest.raises(InvalidMessage) as info:
        backend.Message(d)
    assert str(info.value) == "nesting deeper than 200 levels at key 'a/a/a/a/a/a/a/a/…'"
    lst: list[Any] = []
    lst.append(lst)
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels at key 'x/1/1/"):
        backend.Message(x=lst)
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels"):
        backend.Message().set("a", d)
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels"):
        backend.Message().merge(d)


def test_100k_nesting(backend: ModuleType) -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = {"k": deep}
    with pytest.raises(InvalidMessage) as info:
        backend.Message(deep)
    assert str(info.value) == "nesting deeper than 200 levels at key 'k/k/k/k/k/k/k/k/…'"
    deep_list: Any = 1
    for _ in range(100_000):
        deep_list = [deep_list]
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels at key 'a/1/1"):
        backend.Message(a=deep_list)
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels"):
        backend.encode(deep_list)
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels"):
        backend.id(deep)


def _nested(levels: int) -> Any:
    """A dict whose nesting is exactly ``levels`` (1 = a flat dict)."""
    value: Any = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def test_depth_limit_is_exact(backend: ModuleType) -> None:
    M = backend.Message
    assert backend.MAX_DEPTH == 200
    ok = M(_nested(200))
    assert ok.get_path(["k"] * 199 + ["leaf"]) == 1
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels at key '"):
        M(_nested(201))
    # lists count as levels too: 199 maps + a list
    inner: Any = [1]
    for _ in range(199):
        inner = {"k": inner}
    M(inner)
    with pytest.raises(InvalidMessage):
        M({"k": inner})


def test_depth_limit_across_existing_messages(backend: ModuleType) -> None:
    M = backend.Message
    m = M()
    for _ in range(198):
        m = M(a=m)  # an existing Message is nested as is: 199 levels
    assert M(x=1, y=m).get_path(["y"] + ["a"] * 198) == {}
    with pytest.raises(InvalidMessage) as info:
        M(a=M(a=m))
    assert str(info.value) == "nesting deeper than 200 levels at key 'a'"
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels at key 'z/a'$"):
        M().set("z/a", m)
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels"):
        M().merge({"z": {"a": m}})
    # replacing the deep value frees the depth again
    shallow = M(a=m).set("a", 1)
    assert M(x=M(y=shallow)) == {"x": {"y": {"a": 1}}}


def test_deep_values_use_bounded_stack(backend: ModuleType) -> None:
    """Every operation on a 200-level value fits in ~one Python frame per level."""
    M = backend.Message
    deep = _nested(200)
    m = M(deep)
    data = backend.encode(m)
    frame: Any = sys._getframe()
    depth = 0
    while frame is not None:
        depth += 1
        frame = frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 260)
    try:
        results = [
            M(deep) == m,
            m == deep,
            backend.decode(data) == m,
            m.merge(deep) == m,
            len(repr(m)) > 0,
            m.to_dict() == deep,
            backend.id(deep) == backend.id(m),
            M().set(["k"] * 199 + ["leaf"], 1) == m,
        ]
    finally:
        sys.setrecursionlimit(old)
    assert all(results)


def test_set_path_too_deep(backend: ModuleType) -> None:
    M = backend.Message
    M().set(["k"] * 200, 1)
    with pytest.raises(InvalidMessage) as info:
        M().set(["k"] * 201, 1)
    assert str(info.value) == "nesting deeper than 200 levels at key 'k/k/k/k/k/k/k/k/…'"
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels"):
        M().set(["k"] * 200, {"x": 1})
    with pytest.raises(InvalidMessage, match=r"^nesting deeper than 200 levels"):
        M().merge({"/".join(["k"] * 201): 1})
    M().merge({"/".join(["k"] * 200): 1})


def test_bad_keys_on_lookup(backend: ModuleType) -> None:
    m = backend.Message(a=1)
    with pytest.raises(InvalidMessage, match=r"^unsupported key type float: 1.5$"):
        m[1.5]
    with pytest.raises(InvalidMessage):
        1.5 in m  # noqa: B015
    with pytest.raises(InvalidMessage):
        m.get(None)


# ------------------------------------------------------------------ Mapping API


def test_getitem_exact(backend: ModuleType) -> None:
    m = backend.Message({"a": 1, "Key": 2})
    assert m["a"] == 1
    with pytest.raises(NotFound) as info:
        m["A"]
    assert str(info.value) == "key 'A' not found"
    with pytest.raises(KeyError):
        m["key"]
    with pytest.raises(NotFound, match=r"^key '' not found$"):
        m[""]
    with pytest.raises(NotFound, match=r"^key 'xxxxxxxxxx[x]*\.\.\.' not found$"):
        m["x" * 500]


def test_mapping_methods(backend: ModuleType) -> None:
    m = backend.Message({"b": 2, "a": 1, "priv": {"x": 1}})
    assert len(m) == 3  # private keys count
    assert list(m) == ["a", "b", "priv"]
    assert list(m.keys()) == ["a", "b", "priv"]
    assert list(m.values())[:2] == [1, 2]
    assert list(m.items())[:2] == [("a", 1), ("b", 2)]
    assert ("a", 1) in m.items()
    assert ("a", 2) not in m.items()
    assert "a" in m.keys()
    assert "a" in m and "z" not in m
    assert 1 in backend.Message({1: "x"})
    assert m.get("a") == 1
    assert m.get("z") is None
    assert m.get("z", 5) == 5
    assert dict(m)["b"] == 2


def test_sorted_iteration_is_utf8_order(backend: ModuleType) -> None:
    keys = ["b", "a", "B", "10", "9", "é", "z", "😀", "\uffff", "a/b", "a-b", " "]
    m = backend.Message({k: 1 for k in keys})
    expected = sorted(keys, key=lambda k: k.encode())
    assert list(m) == expected
    assert list(m) == sorted(keys)


def test_immutability(backend: ModuleType) -> None:
    m = backend.Message(a=1)
    with pytest.raises((TypeError, AttributeError)):
        m["a"] = 2
    with pytest.raises((TypeError, AttributeError)):
        del m["a"]
    with pytest.raises(AttributeError):
        m.x = 1
    assert m == {"a": 1}


# ------------------------------------------------------------------ equality


def test_typed_equality(backend: ModuleType) -> None:
    M = backend.Message
    assert M(a=1) == {"a": 1}
    assert M(a=1) != {"a": True}
    assert M(a=True) != {"a": 1}
    assert M(a=1) != {"a": 1.0}
    assert M(a=1.0) != {"a": 1}
    assert M(a=0) != {"a": False}
    assert M(a="a") != {"a": b"a"}
    assert M(a=b"a") != {"a": "a"}
    assert M(a=b"a") == {"a": bytearray(b"a")}
    assert M(a=None) != {"a": 0}
    assert M(a=None) == {"a": None}
    assert M(a=[1, 2]) == {"a": [1, 2]}
    assert M(a=[1, 2]) == {"a": (1, 2)}
    assert M(a=[1, 2]) != {"a": [1, 2, 3]}
    assert M(a=[1, 2]) != {"a": [1, True]}
    assert M(a=[1]) != {"a": {"1": 1}}
    assert M(a={"b": 1}) == {"a": {"b": 1}}
    assert M(a={"b": 1}) == {"a": M(b=1)}
    assert M(a={"b": 1}) != {"a": {"b": 2}}
    assert M(a={"b": 1}) != {"a": "x"}
    assert M(a=1.5) == {"a": 1.5}
    assert M(a=0.0) == {"a": -0.0}
    assert M(a=math.nan) != M(a=math.nan)
    assert M(a=1, b=2) != {"a": 1}
    assert M(a=1) != {"a": 1, "b": 2}
    assert M({1: "x"}) == {1: "x"}
    assert M({"1": "x"}) == {1: "x"}
    assert M(a=1) != {1.5: 1}  # an unnormalisable key is simply not equal


def test_equality_ignores_private_keys_at_every_level(backend: ModuleType) -> None:
    M = backend.Message
    m = M({"a": 1, "priv": {"hashpath": "x"}, "n": {"b": 2, "private": 3}})
    assert m == {"a": 1, "n": {"b": 2}}
    assert m == M(a=1, n={"b": 2, "Priv_x": 9})
    assert m == {"a": 1, "n": {"b": 2}, "PRIV": 5}
    assert M(l=[{"a": 1, "priv": 2}]) == {"l": [{"a": 1}]}
    assert hash(m) == hash(M(a=1, n={"b": 2}))


def test_equality_with_non_mappings(backend: ModuleType) -> None:
    m = backend.Message(a=1)
    assert m.__eq__(5) is NotImplemented
    assert m.__eq__([("a", 1)]) is NotImplemented
    assert m != 5
    assert m != "a"
    assert m != [("a", 1)]
    assert m is not None


def test_equality_with_other_backend_messages(backend: ModuleType) -> None:
    from hbeam import _core

    pure = _core.load("pure")
    m = backend.Message(a={"b": [1, "x"]}, c=b"y")
    assert m == pure.Message(a={"b": [1, "x"]}, c=b"y")
    assert pure.Message(a={"b": [1, "x"]}, c=b"y") == m


def test_equality_against_cyclic_dict_terminates(backend: ModuleType) -> None:
    d: dict[str, Any] = {}
    d["a"] = d
    m = backend.Message(a={"a": {"a": 1}})
    assert m != d


def test_hash(backend: ModuleType) -> None:
    M = backend.Message
    assert hash(M(a=1)) == hash(M(a=1))
    assert hash(M(a=1)) == hash(backend.id(M(a=1)))
    assert {M(a=1): "v"}[M(a=1)] == "v"
    assert len({M(a=1), M(a=1), M(a=2)}) == 2
    # commitments do not take part in the ID, but do in ==; equal still hashes equal
    assert hash(M(a=1, commitments={"x": 1})) == hash(M(a=1))


# ------------------------------------------------------------ repr, pickle, dicts


def test_repr(backend: ModuleType) -> None:
    M = backend.Message
    assert repr(M()) == "Message({})"
    assert repr(M({"b": {"c": [1, "x"]}, "a": 1})) == "Message({'a': 1, 'b': {'c': [1, 'x']}})"
    assert (
        repr(M(s="q'uote", b=b"\x00", f=1.5, n=None, t=True, e=[]))
        == """Message({'b': b'\\x00', 'e': [], 'f': 1.5, 'n': None, 's': "q'uote", 't': True})"""
    )
    assert repr(M(l=[{"x": [[]]}])) == "Message({'l': [{'x': [[]]}]})"
    assert repr(M(big=10**5000)) == "Message({'big': 1" + "0" * 5000 + "})"


def test_repr_cuts_after_100_keys(backend: ModuleType) -> None:
    M = backend.Message
    hundred = M({f"k{i:03d}": i for i in range(100)})
    assert repr(hundred).endswith("'k099': 99})")
    assert "..." not in repr(hundred)
    many = M({f"k{i:03d}": i for i in range(150)})
    text = repr(many)
    assert text.endswith("'k099': 99, ...})")
    assert "'k100'" not in text
    # only the top level is cut
    nested = repr(M(a={f"k{i:03d}": i for i in range(150)}))
    assert "'k149': 149}})" in nested


def test_pickle_and_copy(backend: ModuleType) -> None:
    M = backend.Message
    m = M({"a": {"b": [1, b"x", None]}, "priv": {"k": 1.5}, "t": True})
    assert m.__reduce__() == (M, (m.to_dict(),))
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(m, protocol=proto))
        assert type(back) is M
        assert back == m
        assert back.to_dict() == m.to_dict()  # private keys survive
    assert copy.copy(m) == m
    assert copy.deepcopy(m).to_dict() == m.to_dict()


def test_to_dict(backend: ModuleType) -> None:
    M = backend.Message
    m = M({"b": {"y": 1, "x": [M(c=1), [2]]}, "a": b"z", "priv": {"p": 1}})
    d = m.to_dict()
    assert d == {"a": b"z", "b": {"x": [{"c": 1}, [2]], "y": 1}, "priv": {"p": 1}}
    assert type(d) is dict
    assert type(d["b"]) is dict
    assert type(d["b"]["x"][0]) is dict
    assert list(d) == ["a", "b", "priv"]
    assert list(d["b"]) == ["x", "y"]
    d["b"]["y"] = 5
    assert m["b"]["y"] == 1


def test_public_keys(backend: ModuleType) -> None:
    M = backend.Message
    m = M({"x": 1, "priv": {"y": 2}, "private": 3, "priv_foo": 4, "Privacy": 5, "a": 6})
    assert m.public_keys() == ["a", "x"]
    assert M().public_keys() == []


# ------------------------------------------------------------------ get_path


def test_get_path(backend: ModuleType) -> None:
    M = backend.Message
    m = M({"key1": "value1", "key2": {"key3": "v3"}, "items": ["x", "y", "z"]})
    assert m.get_path("key1") == "value1"
    assert m.get_path("key2/key3") == "v3"
    assert m.get_path(["key2", "key3"]) == "v3"
    assert m.get_path("/key2//key3/") == "v3"
    assert m.get_path("items/2") == "y"  # lists are 1-based
    assert m.get_path(["items", 3]) == "z"
    assert m.get_path("items/0") is NOT_FOUND
    assert m.get_path("items/4") is NOT_FOUND
    assert m.get_path("items/02") is NOT_FOUND
    assert m.get_path("items/+1") is NOT_FOUND
    assert m.get_path("items/1" + "0" * 30) is NOT_FOUND
    assert m.get_path("missing") is NOT_FOUND
    assert m.get_path("missing", "dflt") == "dflt"
    assert m.get_path("key1/more") is NOT_FOUND  # a literal in the middle
    assert m.get_path("items/1/x") is NOT_FOUND
    assert m.get_path([]) is m
    assert m.get_path("/") is m
    assert m.get_path("") is m


def test_get_path_case_folding(backend: ModuleType) -> None:
    M = backend.Message
    m = M({"Content-Type": "a", "nested": {"Inner": 1}, "X": 1, "x": 2})
    assert m.get_path("content-type") == "a"
    assert m.get_path("CONTENT-TYPE") == "a"
    assert m.get_path("NESTED/inner") == 1
    assert m.get_path("X") == 1  # exact first
    assert m.get_path("x") == 2
    # several folded matches: the first in sorted order ("AB" < "Ab" < "aB" < "ab")
    n = M({"aB": 3, "Ab": 2, "ab": 4})
    assert n.get_path("AB") == 2
    assert n.get_path("ab") == 4
    assert M({"aB": 3, "ab": 4}).get_path("AB") == 3
    # folding is ASCII only
    assert M({"é": 1}).get_path("É") is NOT_FOUND
    assert M({"straße": 1}).get_path("STRASSE") is NOT_FOUND
    assert M({"k": 1}).get_path("\u212a") is NOT_FOUND  # Kelvin sign
    assert M({"a1-b": 1}).get_path("A1-B") == 1
    assert M({"a": 1}).get_path("a1") is NOT_FOUND


def test_get_path_case_folding_skips_neighbours(backend: ModuleType) -> None:
    M = backend.Message
    keys = ["aa", "aB", "aC", "Ab", "a", "abc", "ab0", "aAb", "B", "[", "_", "a_"]
    m = M({k: k for k in keys})
    for probe, expected in [("AB", "Ab"), ("ABC", "abc"), ("A_", "a_"), ("b", "B"), ("AAB", "aAb")]:
        assert m.get_path(probe) == expected
    assert m.get_path("ABD") is NOT_FOUND
    assert m.get_path("AD") is NOT_FOUND


def test_get_path_private_keys_are_reachable(backend: ModuleType) -> None:
    m = backend.Message({"priv": {"hashpath": "H"}, "a": 1})
    assert m.get_path("priv/hashpath") == "H"
    assert m.get_path("PRIV/HashPath") == "H"


def test_get_path_bad_path(backend: ModuleType) -> None:
    m = backend.Message(a=1)
    with pytest.raises(InvalidPath, match=r"^unsupported path type float: 1.5$"):
        m.get_path(1.5)
    assert m.get_path(["..", "a"]) is NOT_FOUND
    assert backend.Message({"..": {"a": 1}}).get_path("../a") == 1


# ------------------------------------------------------------------ set (§6.4)


def test_set_hyperbeam_examples(backend: ModuleType) -> None:
    M = backend.Message
    assert M(a={"b": "RESULT"}).set("a/b", "RESULT2") == {"a": {"b": "RESULT2"}}
    assert M(a={"b": "RESULT"}).set(["a", "b"], "RESULT2") == {"a": {"b": "RESULT2"}}
    m = M(a={"b": {"c": "1"}}).set("d/e", "3").set("d/f", "4")
    assert m == {"a": {"b": {"c": "1"}}, "d": {"e": "3", "f": "4"}}
    assert M(a={"x": 1}).set("a", "flat") == {"a": "flat"}
    assert M(a=1).set("path", "x") == {"a": 1, "path": "x"}
    # the last key is replaced, not merged
    assert M(a={"x": 1}).set("a", {"y": 2}) == {"a": {"y": 2}}


def test_set_creates_and_replaces_levels(backend: ModuleType) -> None:
    M = backend.Message
    assert M().set("a/b/c", 1) == {"a": {"b": {"c": 1}}}
    assert M(a="literal").set("a/b", 1) == {"a": {"b": 1}}
    assert M(a=["x", "y"]).set("a/3", "z") == {"a": {"1": "x", "2": "y", "3": "z"}}
    assert M(a=["x", "y"]).set("a/1", "X") == {"a": {"1": "X", "2": "y"}}
    assert M(a={"B": 1}).set("a/b", 2) == {"a": {"B": 1, "b": 2}}  # exact match when setting
    assert M(A={"x": 1}).set("a/y", 2) == {"A": {"x": 1}, "a": {"y": 2}}
    assert M().set(5, "five") == {"5": "five"}
    assert M().set(["..", "."], 1) == {"..": {".": 1}}


def test_set_sentinels(backend: ModuleType) -> None:
    M = backend.Message
    m = M(deep={"k2": 1, "k3": 2}, top=1)
    assert m.set("deep/k3", UNSET) == {"deep": {"k2": 1}, "top": 1}
    assert m.set("deep/k2", UNSET).set("deep/k3", UNSET) == {"deep": {}, "top": 1}
    assert m.set("deep", UNSET) == {"top": 1}
    assert m.set("missing", UNSET) == m
    assert m.set("missing/deeper", UNSET) == m
    assert m.set("top/x", UNSET) == m
    assert m.set("top", UNDEFINED) is m
    assert m.set("new/x", UNDEFINED) is m
    assert M(a=["x", "y"]).set("a/2", UNSET) == {"a": {"1": "x"}}
    assert M(a=["x", "y"]).set("a/3", UNSET) == {"a": ["x", "y"]}


def test_set_errors(backend: ModuleType) -> None:
    m = backend.Message(a=1)
    for empty in ("", "/", "//", [], [[], "/"]):
        with pytest.raises(InvalidPath) as info:
            m.set(empty, 1)
        assert str(info.value) == "empty path"
    with pytest.raises(InvalidPath, match=r"^unsupported path type float: 1.5$"):
        m.set(1.5, 1)
    with pytest.raises(InvalidMessage, match=r"^unsupported value type object at key 'b/c'$"):
        m.set("b/c", object())
    with pytest.raises(InvalidMessage, match=r"^unsupported value type set at key 'b/x/1'$"):
        m.set("b", {"x": [{1}]})
    with pytest.raises(InvalidPath, match=r"^segment 2 is 10485760 bytes \(limit 65536\)$"):
        m.set("a/" + "x" * 10_485_760, 1)
    assert m == {"a": 1}


def test_set_leaves_original_unchanged(backend: ModuleType) -> None:
    M = backend.Message
    m = M(a={"b": 1}, c=[1])
    m.set("a/b", 2)
    m.set("a/z", 2)
    m.set("c/1", 5)
    m.merge({"a": {"b": 3}})
    m.remove("a/b")
    assert m == {"a": {"b": 1}, "c": [1]}


# ------------------------------------------------------------------ merge (§6.4)


def test_merge_hyperbeam_examples(backend: ModuleType) -> None:
    M = backend.Message
    m = M(key1="value1", key2="value2")
    assert m.merge({"key1": "new_value1"}) == {"key1": "new_value1", "key2": "value2"}
    base = M(a={"b": {"c": "1"}}, d={"e": "3", "f": "4"})
    assert base.merge({"z/a": "0", "z/b": "1", "z/y/x": "2"}) == {
        "a": {"b": {"c": "1"}},
        "d": {"e": "3", "f": "4"},
        "z": {"a": "0", "b": "1", "y": {"x": "2"}},
    }
    assert M(a={"x": 1}).merge({"a": {"y": 2}}) == {"a": {"x": 1, "y": 2}}
    assert M(a="x").merge({"a": {"y": 2}}) == {"a": {"y": 2}}
    assert M(**{"test-key": "Value1"}).merge({"test-key": UNDEFINED}) == {"test-key": "Value1"}
    assert M(a=1).merge({}) == {"a": 1}


def test_merge_deep_unset(backend: ModuleType) -> None:
    M = backend.Message
    m = M({"deep": {"test-key2": 1, "test-key3": 2, "keep": 3}, "top": 1})
    assert m.merge({"deep/test-key2": UNSET}) == {
        "deep": {"test-key3": 2, "keep": 3},
        "top": 1,
    }
    assert m.merge({"deep": {"test-key2": UNSET, "test-key3": UNSET, "keep": UNSET}}) == {
        "deep": {},
        "top": 1,
    }
    assert m.merge({"deep": UNSET}) == {"top": 1}
    assert m.merge({"missing": UNSET}) == m
    assert m.merge({"missing/x": UNSET}) == m
    assert m.merge({"top/x": UNSET}) == m
    assert m.merge({"deep/missing": UNSET}) == m


def test_merge_rules(backend: ModuleType) -> None:
    M = backend.Message
    m = M(a={"x": 1, "n": {"p": 1}}, s="str")
    # nested merge is key by key, and follows the same rules
    assert m.merge({"a": {"n": {"q": 2}, "x": UNSET}}) == {"a": {"n": {"p": 1, "q": 2}}, "s": "str"}
    assert m.merge({"a": {"n/q": 2}}) == {"a": {"x": 1, "n": {"p": 1, "q": 2}}, "s": "str"}
    # a map over a non-map: merged into an empty message, so sentinels inside vanish
    assert m.merge({"s": {"k": UNSET, "j": UNDEFINED, "l": 1}}) == {
        "a": {"x": 1, "n": {"p": 1}},
        "s": {"l": 1},
    }
    assert m.merge({"new": {"k": UNSET}}) == {**m.to_dict(), "new": {}}
    # a map replaced by a literal
    assert m.merge({"a": 5}) == {"a": 5, "s": "str"}
    # a list replaces (lists are not merged)
    assert M(a=[1, 2]).merge({"a": [3]}) == {"a": [3]}
    # a map over a list: the list is not a message, so it is replaced
    assert M(a=[1, 2]).merge({"a": {"k": 1}}) == {"a": {"k": 1}}
    # a path through a list numbers it
    assert M(a=[1, 2]).merge({"a/3": 3}) == {"a": {"1": 1, "2": 2, "3": 3}}
    # path keys through literals replace them
    assert M(a=1).merge({"a/b": 2}) == {"a": {"b": 2}}
    # keys are normalised; empty path segments dropped
    assert M().merge({1: "x", ("p", "q"): 2, "/r//s/": 3}) == {
        "1": "x",
        "p": {"q": 2},
        "r": {"s": 3},
    }
    # a Message is a Mapping like any other
    assert M(a={"x": 1}).merge(M(a={"y": 2})) == {"a": {"x": 1, "y": 2}}


def test_merge_applies_in_iteration_order(backend: ModuleType) -> None:
    M = backend.Message
    assert M().merge({"a/b": 1, "a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}
    assert M().merge({"a": {"c": 2}, "a/b": 1}) == {"a": {"b": 1, "c": 2}}
    assert M().merge({"a/b": 1, "a": 5}) == {"a": 5}
    assert M().merge({"a": 5, "a/b": 1}) == {"a": {"b": 1}}
    assert M().merge({"a": 1, "a/b": UNSET}) == {"a": 1}
    assert M().merge(OrderedDict([("x", {"y": 1}), ("x/y", UNSET)])) == {"x": {}}


def test_merge_with_a_message_reads_its_keys_as_paths(backend: ModuleType) -> None:
    M = backend.Message
    base = M(a={"x": 1}, keep=[1, 2], n={"deep": {"p": 1}})
    # a Message stores "/" keys as they are; merging it reads them as paths, like a dict's
    upd = M({"a/y": 2, "keep": [3, {"k": "v"}], "n": {"deep": {"q": 2}, "d/e": 3}, "z/w": {"v": 1}})
    merged = base.merge(upd)
    assert merged == {
        "a": {"x": 1, "y": 2},
        "keep": [3, {"k": "v"}],
        "n": {"deep": {"p": 1, "q": 2}, "d": {"e": 3}},
        "z": {"w": {"v": 1}},
    }
    assert merged == base.merge(upd.to_dict())
    assert M().merge(upd) == M().merge(upd.to_dict())
    assert base.merge(base) == base
    # the depth limit counts the path levels
    deep: Any = "leaf"
    for _ in range(199):
        deep = {"k": deep}
    with pytest.raises(InvalidMessage) as info:
        M().merge(M({"a/b": deep}))
    assert str(info.value) == "nesting deeper than 200 levels at key 'a/b/k/k/k/k/k/k/…'"


@pytest.mark.parametrize(
    ("update", "where"),
    [
        (lambda m: m.merge({"x": "a\ud800"}), "x"),
        (lambda m: m.merge({"x": {"y": "a\ud800"}}), "x/y"),
        (lambda m: m.merge({"x/y": "a\ud800"}), "x/y"),
        (lambda m: m.set("x", "a\ud800"), "x"),
        (lambda m: m.set("x/y", "a\ud800"), "x/y"),
    ],
)
def test_bad_leaf_in_an_update_names_its_key(backend: ModuleType, update: Any, where: str) -> None:
    m = backend.Message(a=1, x={"y": 1})
    with pytest.raises(InvalidMessage) as info:
        update(m)
    assert str(info.value) == f"value is not valid UTF-8 at key '{where}'"
    assert m == {"a": 1, "x": {"y": 1}}


def test_merge_errors(backend: ModuleType) -> None:
    m = backend.Message(a=1)
    with pytest.raises(InvalidMessage) as info:
        m.merge([("a", 1)])
    assert str(info.value) == "merge expects a Mapping, got list"
    with pytest.raises(InvalidMessage, match=r"^merge expects a Mapping, got NoneType$"):
        m.merge(None)
    with pytest.raises(InvalidPath, match=r"^empty path$"):
        m.merge({"/": {"b": 1}})
    with pytest.raises(InvalidMessage, match=r"^empty key$"):
        m.merge({"": 1})
    with pytest.raises(InvalidMessage, match=r"^unsupported key type float: 1.5$"):
        m.merge({1.5: 1})
    with pytest.raises(InvalidMessage, match=r"^unsupported key type float: 1.5 at key 'x'$"):
        m.merge({"x": {1.5: 1}})
    with pytest.raises(InvalidMessage, match=r"^unsupported value type object at key 'x/y'$"):
        m.merge({"x/y": object()})
    with pytest.raises(InvalidMessage, match=r"^unsupported value type object at key 'a/b'$"):
        backend.Message(a={}).merge({"a": {"b": object()}})
    assert m == {"a": 1}


# ------------------------------------------------------------------ remove (§6.5)


def test_remove(backend: ModuleType) -> None:
    M = backend.Message
    assert M(key1="V1", key2="V2").remove("key1") == {"key2": "V2"}
    assert M(key1="V1", key2="V2").remove(["key1", "key2"]) == {}
    assert M(key1="V1", key2="V2").remove(("key1", "key9")) == {"key2": "V2"}
    assert M(a={"b": 1, "c": 2}).remove("a/b") == {"a": {"c": 2}}
    assert M(a={"b": 1}).remove("a/b") == {"a": {}}
    assert M(a={"b": 1}).remove([["a", "b"]]) == {"a": {}}
    assert M(a=1).remove("missing") == {"a": 1}
    assert M(a=1).remove("a/b") == {"a": 1}
    assert M(a=1).remove("A") == {"a": 1}  # exact, no case folding
    assert M({1: "x", "y": 2}).remove(1) == {"y": 2}
    assert M(a=1).remove([]) == {"a": 1}
    assert M(a=1).remove("/") == {"a": 1}
    assert M(a=["x", "y"]).remove("a/1") == {"a": {"2": "y"}}
    with pytest.raises(InvalidMessage, match=r"^unsupported key type float: 1.5$"):
        M(a=1).remove(1.5)


# ------------------------------------------------------------------ scale


@functools.cache
def _million() -> dict[str, int]:
    """One 1,000,000-key dict shared by both backends' runs (building it is slow)."""
    return {f"k{i:07d}": i for i in range(1_000_000)}


def test_million_keys(backend: ModuleType) -> None:
    M = backend.Message
    source = _million()
    big = M(source)
    assert len(big) == 1_000_000
    updated = big.set("k0000500", "new")
    assert updated["k0000500"] == "new"
    assert big["k0000500"] == 500  # the original is unchanged
    assert len(updated) == 1_000_000
    added = updated.set("zzz", 1)
    assert len(added) == 1_000_001 and "zzz" not in updated
    removed = big.remove(["k0000001", "k0999999"])
    assert len(removed) == 999_998 and big["k0000001"] == 1
    merged = big.merge({f"k{i:07d}": -i for i in range(0, 1_000_000, 100_000)})
    assert merged["k0100000"] == -100_000 and big["k0100000"] == 100_000
    assert big.get_path("K0999998") == 999_998  # case-folded lookup stays cheap
    assert big.get_path("K9") is NOT_FOUND
    if backend.build_profile == "pure":
        # structure is shared: all but one path of nodes is the same objects
        from hbeam._pure.pmap import _leaves

        old_leaves = {id(leaf) for leaf in _leaves(big._map._root)}
        new_leaves = [leaf for leaf in _leaves(updated._map._root) if id(leaf) not in old_leaves]
        assert len(new_leaves) == 1


def test_threads_share_messages(backend: ModuleType) -> None:
    M = backend.Message
    base = M({f"k{i}": i for i in range(2000)})
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            m = base
            for i in range(300):
                m = m.set(f"t{t}/{i}", i).merge({f"k{i}": t})
            assert len(m["t" + str(t)]) == 300
            assert m["k5"] == t
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert base["k5"] == 5 and len(base) == 2000


# ------------------------------------------------- conversion order, lookups, views


def test_dict_conversion_mixes_plain_and_other_entries(backend: ModuleType) -> None:
    # plain str keys and leaves first, then a nested value, a non-str key and a key
    # that collides once normalised (the later entry wins)
    m = backend.Message({"z": 1, "1": "s", "a": {"y": [1, {"q": b"r"}]}, 2: "two", 1: "i"})
    assert m.to_dict() == {"1": "i", "2": "two", "a": {"y": [1, {"q": b"r"}]}, "z": 1}
    assert list(m) == ["1", "2", "a", "z"]
    big = {f"k{i:03}": i for i in range(50)} | {"n": {"m": 1}, "é": "x"}
    assert backend.Message(big).to_dict() == dict(sorted(big.items()))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": {"b": object()}, "": 1}, "unsupported value type object at key 'a/b'"),
        ({"": 1, "a": {"b": object()}}, "empty key"),
        (
            {"x": 1, "a": {"b": 1, 1.5: 2}, "c": {2.5: 1}},
            "unsupported key type float: 1.5 at key 'a'",
        ),
        ({"x": 1, "y": "\ud800", "a": {"b": object()}}, "value is not valid UTF-8 at key 'y'"),
        ({"x": 1, "\ud800": 1}, "key is not valid UTF-8: '\\ud800'"),
    ],
)
def test_first_bad_entry_is_reported(
    backend: ModuleType, value: dict[Any, Any], message: str
) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.Message(value)
    assert str(info.value) == message


def test_lookup_of_a_too_long_key_is_refused(backend: ModuleType) -> None:
    m = backend.Message(a=1)
    key = "k" * 65537
    for lookup in (lambda: m.get(key), lambda: key in m, lambda: m[key]):
        with pytest.raises(InvalidMessage, match=r"^key is 65537 bytes \(limit 65536\)$"):
            lookup()
    assert m.get("é") is None and "é" not in backend.Message({"e": 1})
    assert backend.Message({"é": 1})["é"] == 1


def test_get_path_case_folding_in_big_messages(backend: ModuleType) -> None:
    # more keys than one leaf holds: the folded lookup searches instead of scanning
    keys = [a + b + c for a in "aAbB_" for b in "xXyY-" for c in ("", "1", "z", "Z")]
    m = backend.Message({k: k for k in keys})
    assert len(m) > 64
    probes = ["AX", "ax1", "AXZ", "b-", "B-Z", "_x", "_X1", "ay", "AYz", "a", "AB", "x", "bY1Z"]
    for probe in probes:
        folded = [k for k in sorted(keys, key=lambda k: k.encode()) if k.lower() == probe.lower()]
        exact = probe if probe in keys else None
        expected = exact or (folded[0] if folded else NOT_FOUND)
        assert m.get_path(probe) == expected, probe


def test_views_are_abc_views(backend: ModuleType) -> None:
    from collections.abc import ItemsView, KeysView, ValuesView

    m = backend.Message({"b": [1, 2], "a": "x"})
    items, values = m.items(), m.values()
    assert isinstance(items, ItemsView) and isinstance(values, ValuesView)
    assert isinstance(m.keys(), KeysView)
    assert type(items).__name__ == "_Items" and type(values).__name__ == "_Values"
    assert repr(items) == f"_Items({m!r})" and repr(values) == f"_Values({m!r})"
    assert list(items) == [("a", "x"), ("b", [1, 2])] and len(items) == 2
    assert list(values) == ["x", [1, 2]] and len(values) == 2
    assert "x" in values and ("a", "x") in items and ("a", "y") not in items
    assert items & {("a", "x"), ("c", 3)} == {("a", "x")}
    assert backend.Message(a=1).items() == {("a", 1)}
