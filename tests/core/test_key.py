"""Key normalisation (core.md §2, contract "Keys"): normalize_key, normalize_keys, is_private."""

from __future__ import annotations

from collections import OrderedDict
from types import ModuleType

import pytest
from hbeam.errors import InvalidMessage

HB_ID = "zHViBlawFhuCQA31rTR4Gvo8O7gT-Ey48hFL-8VizrA"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a", "a"),
        ("Test-Header", "Test-Header"),  # newer HyperBEAM keeps case
        (HB_ID, HB_ID),
        ("a/b", "a/b"),  # no splitting
        ("", ""),
        (b"a", "a"),
        ("é😀".encode(), "é😀"),
        (True, "true"),
        (False, "false"),
        (1337, "1337"),
        (0, "0"),
        (-1, "-1"),
        (10**30, "1" + "0" * 30),
        (["x", 1, "y"], "x/1/y"),  # hb_ao normalize_key test
        (["a", b"b", 1], "a/b/1"),
        (("a", True), "a/true"),
        (["a", ["b", "c"]], "a/b/c"),
        (["", "a", ""], "/a/"),  # no dropping
        ([], ""),
    ],
)
def test_normalize_key(backend: ModuleType, key: object, expected: str) -> None:
    assert backend.normalize_key(key) == expected
    assert type(backend.normalize_key(key)) is str


def test_normalize_key_huge_int(backend: ModuleType) -> None:
    # past Python's int->str digit limit (4300 digits)
    assert backend.normalize_key(10**5000) == "1" + "0" * 5000
    assert backend.normalize_key(-(10**5000) - 7) == "-1" + "0" * 4999 + "7"


def test_normalize_key_subclasses(backend: ModuleType) -> None:
    class S(str):
        pass

    class I(int):  # noqa: E742
        pass

    assert type(backend.normalize_key(S("x"))) is str
    assert backend.normalize_key(S("x")) == "x"
    assert backend.normalize_key(I(7)) == "7"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (1.5, "unsupported key type float: 1.5"),
        (None, "unsupported key type NoneType: None"),
        ({1}, "unsupported key type set: {1}"),
        (frozenset(), "unsupported key type frozenset: frozenset()"),
        ({"a": 1}, "unsupported key type dict: {'a': 1}"),
        (bytearray(b"a"), "unsupported key type bytearray: bytearray(b'a')"),
        (["a", 2.5], "unsupported key type float: 2.5"),
        (b"\xff", "key is not valid UTF-8: b'\\xff'"),
        (b"ok\xc3", "key is not valid UTF-8: b'ok\\xc3'"),
        ("a\ud800", "key is not valid UTF-8: 'a\\ud800'"),
        ("x" * 65537, "key is 65537 bytes (limit 65536)"),
        ("é" * 40000, "key is 80000 bytes (limit 65536)"),
        (["x" * 40000, "y" * 40000], "key is 80001 bytes (limit 65536)"),
    ],
)
def test_normalize_key_rejects(backend: ModuleType, key: object, message: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.normalize_key(key)
    assert str(info.value) == message


def test_normalize_key_limits(backend: ModuleType) -> None:
    assert backend.MAX_KEY_BYTES == 65536
    assert backend.normalize_key("x" * 65536) == "x" * 65536
    assert backend.normalize_key(b"x" * 65536) == "x" * 65536


def test_normalize_key_object_repr_is_cut(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.normalize_key(set(range(1000)))
    text = str(info.value)
    assert text.startswith("unsupported key type set: {0, 1, 2")
    assert text.endswith("...")
    assert len(text) == len("unsupported key type set: ") + 103


def test_normalize_key_object(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage, match=r"^unsupported key type object: <object object at"):
        backend.normalize_key(object())

    class BadRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    with pytest.raises(InvalidMessage) as info:
        backend.normalize_key(BadRepr())
    assert str(info.value) == "unsupported key type BadRepr: <BadRepr object>"


def test_normalize_key_message_is_not_a_key(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage, match=r"^unsupported key type Message: "):
        backend.normalize_key(backend.Message(a=1))


def test_normalize_key_deep_and_cyclic_lists(backend: ModuleType) -> None:
    deep: list[object] = ["x"]
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidMessage) as info:
        backend.normalize_key(deep)
    assert str(info.value) == "key nesting deeper than 200 levels"
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(InvalidMessage, match=r"^key nesting deeper than 200 levels$"):
        backend.normalize_key(cyclic)
    ok: list[object] = ["x"]
    for _ in range(199):
        ok = [ok]
    assert backend.normalize_key(ok) == "x"


@pytest.mark.parametrize(
    ("key", "private"),
    [
        ("priv", True),
        ("private", True),
        ("priv_a", True),
        ("privacy", True),
        ("priv.foo", True),
        ("private_key", True),
        ("Priv", True),
        ("PRIVATE", True),
        ("pRiV/x", True),
        ("pri", False),
        ("", False),
        ("a", False),
        ("apriv", False),
        ("prv", False),
        ("prİv", False),  # not an ASCII case variant
        ("pr\u0131v", False),  # dotless i
    ],
)
def test_is_private(backend: ModuleType, key: str, private: bool) -> None:
    assert backend.is_private(key) is private


def test_normalize_keys_lists(backend: ModuleType) -> None:
    m = backend.normalize_keys(["A", "B", "C"])
    assert isinstance(m, backend.Message)
    assert m == {"1": "A", "2": "B", "3": "C"}
    assert backend.normalize_keys([]) == {}
    assert isinstance(backend.normalize_keys([]), backend.Message)
    assert backend.normalize_keys(("x", "y")) == {"1": "x", "2": "y"}
    eleven = backend.normalize_keys(list(range(11)))
    assert list(eleven) == ["1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert eleven["11"] == 10


def test_normalize_keys_maps(backend: ModuleType) -> None:
    m = backend.normalize_keys({"atom_key": 1, 123: 2})
    assert isinstance(m, backend.Message)
    assert m == {"atom_key": 1, "123": 2}
    assert backend.normalize_keys(OrderedDict(b=1, a=2)) == {"a": 2, "b": 1}
    original = backend.Message(a={"K": 1})
    assert backend.normalize_keys(original) == original
    # shallow: nested keys are normalised by the Message, but not case-changed
    assert backend.normalize_keys({"K": {"Inner": 1}})["K"] == {"Inner": 1}


@pytest.mark.parametrize("value", ["x", b"x", 5, 1.5, None, True])
def test_normalize_keys_leaves_unchanged(backend: ModuleType, value: object) -> None:
    assert backend.normalize_keys(value) is value


def test_normalize_keys_rejects_bad_content(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage, match=r"^unsupported value type object at key '2'$"):
        backend.normalize_keys([1, object()])
