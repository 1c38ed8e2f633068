"""The flat Lua wire codec of the core (``lua_encode_values``, ``lua_encode_map``,
``lua_decode_values``): its exact output and errors on both backends, and native ≡ pure
on arbitrary values and arbitrary (also malformed) flat sequences."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import pytest
from hbeam import _core
from hbeam.errors import InvalidMessage
from hbeam.lua import convert
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FMAP, MAP, FLIST, LIST, NIL, BYTES, FPAIRS = 1, 2, 3, 4, 5, 6, 7


class Frozen(Mapping[str, Any]):
    """A Mapping that is not a dict (as core Messages are not)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class Num(int):
    pass


class Text(str):
    pass


class Row(tuple):  # type: ignore[type-arg]
    pass


class Blob(bytes):
    pass


# ------------------------------------------------------------------------------ encoding


def test_flat_maps_and_lists(backend: ModuleType) -> None:
    assert backend.lua_encode_map({"a": "x", "n": 1}) == [None, 2 * 8 + FMAP, "a", "n", "x", 1]
    assert backend.lua_encode_values([[1, 2.5, True, b"r"], {}, None, "s"]) == [
        *(None, 4 * 8 + FLIST, 1, 2.5, True, b"r"),
        *(None, FMAP),
        *(None, NIL),
        "s",
    ]


def test_nested_maps_and_lists(backend: ModuleType) -> None:
    flat = backend.lua_encode_values(({"a": [1, {"b": None}], "c": "x"},))
    assert flat == [
        *(None, 2 * 8 + MAP, "a"),
        *(None, 2 * 8 + LIST, 1, None, 1 * 8 + MAP, "b", None, NIL),
        *("c", "x"),
    ]


def test_numbered_maps_become_lists_in_number_order(backend: ModuleType) -> None:
    assert backend.lua_encode_map({"2": "b", "1": "a", "3": "c"}) == [
        *(None, 3 * 8 + FLIST, "a", "b", "c")
    ]
    assert backend.lua_encode_map({"1": "a", "3": "c"}) == [
        *(None, 2 * 8 + FMAP, "1", "3", "a", "c")
    ]
    assert backend.lua_encode_map({"01": "a"})[1] == 8 + FMAP
    # keys that only become "1".."n" as text stay a map
    assert backend.lua_encode_map({1: "a"}) == [None, 8 + FMAP, "1", "a"]


def test_core_messages_and_other_mappings(backend: ModuleType) -> None:
    msg = backend.Message({"b": {"c": [1, 2.5, "x"]}, "a": b"raw"})
    flat = backend.lua_encode_map(msg)
    assert flat == [
        *(None, 2 * 8 + MAP, "a", b"raw", "b"),
        *(None, 8 + MAP, "c", None, 3 * 8 + FLIST, 1, 2.5, "x"),
    ]
    assert backend.lua_encode_map(Frozen({"k": "v"})) == [None, 8 + FMAP, "k", "v"]
    assert backend.lua_encode_values([Frozen({})]) == [None, FMAP]


def test_subclasses_and_buffers_become_plain_scalars(backend: ModuleType) -> None:
    flat = backend.lua_encode_values(
        [Num(7), Text("t"), bytearray(b"ba"), memoryview(b"mv"), Row((1, 2))]
    )
    assert flat == [7, "t", b"ba", b"mv", None, 2 * 8 + FLIST, 1, 2]
    assert [type(v) for v in flat[:4]] == [int, str, bytes, bytes]
    keys = backend.lua_encode_map({True: 1, Num(5): 2, Text("s"): 3, b"b": 4})
    assert keys == [None, 4 * 8 + FMAP, "true", "5", "s", "b", 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": {1, 2}}, "unsupported value type set at key 'a'"),
        ({"a": [1, object()]}, "unsupported value type object at key 'a/2'"),
        ({"a": {1.5: 1}}, "unsupported key type float at key 'a'"),
        ({b"\xff": 1}, "map key is not valid UTF-8 at key ''"),
        ({"1": "x", "2": {None: 1}}, "unsupported key type NoneType at key '2'"),
        (Blob(b"x"), "unsupported value type Blob at key ''"),
    ],
)
def test_unconvertible_values(backend: ModuleType, value: Any, message: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.lua_encode_values([value])
    assert str(info.value) == f"cannot pass value to Lua: {message}"


def test_deep_and_cyclic_values_are_refused(backend: ModuleType) -> None:
    deep: Any = "leaf"
    for _ in range(200):
        deep = {"k": deep}
    backend.lua_encode_values([deep])  # 200 levels of maps are fine
    with pytest.raises(InvalidMessage) as info:
        backend.lua_encode_values([[deep]])
    assert str(info.value) == (
        "cannot pass value to Lua: nesting deeper than 200 levels (or a cycle) "
        "at key '1/k/k/k/…/k/k/k'"
    )
    cyc: dict[str, Any] = {}
    cyc["self"] = cyc
    with pytest.raises(InvalidMessage, match="or a cycle"):
        backend.lua_encode_map(cyc)


# ------------------------------------------------------------------------------ decoding


def test_decodes_what_lua_sends(backend: ModuleType) -> None:
    flat = (
        True,  # a header the caller skips with start
        *(None, 2 * 8 + FPAIRS, "a", 1, "b", "x"),
        *(None, 2 * 8 + MAP, "m", None, 8 + FPAIRS, 1, "one", "l", None, 2 * 8 + LIST),
        *(2.5, None, 2 * 8 + FLIST, False, "s"),
        *(None, NIL, None, BYTES, "\xff\x00a"),
    )
    assert backend.lua_decode_values(flat, 1) == [
        {"a": 1, "b": "x"},
        {"m": {"1": "one"}, "l": [2.5, [False, "s"]]},
        None,
        b"\xff\x00a",
    ]
    assert backend.lua_decode_values(list(flat), 1) == backend.lua_decode_values(flat, 1)
    assert backend.lua_decode_values((None, 2 * 8 + FMAP, "k", "n", 1, 2)) == [{"k": 1, "n": 2}]


def test_lua_number_and_boolean_keys_become_text(backend: ModuleType) -> None:
    flat = (None, 6 * 8 + FPAIRS, 2, "i", -2, "n", 1.5, "f", 1e20, "e", True, "t", "s", "s")
    assert backend.lua_decode_values(flat) == [
        {"2": "i", "-2": "n", "1.5": "f", "1e+20": "e", "true": "t", "s": "s"}
    ]
    assert backend.lua_decode_values((None, 8 + FPAIRS, 0.1, 1)) == [{"0.1": 1}]


@pytest.mark.parametrize(
    ("flat", "start", "message"),
    [
        ((None, 0), 0, "unknown kind 0 at position 0"),
        ((1, None, 8), 0, "unknown kind 0 at position 1"),
        ((None, -7), 0, "bad table code -7 at position 1"),
        ((None, "x"), 0, "bad table code 'x' at position 1"),
        ((None, True), 0, "bad table code True at position 1"),
        ((None, 2.0), 0, "bad table code 2.0 at position 1"),
        ((None,), 0, "the sequence ends inside the value at position 0"),
        (
            (1, None, 2 * 8 + FPAIRS, "a", 1, "b"),
            0,
            "the sequence ends inside the value at position 1",
        ),
        ((None, 3 * 8 + FLIST, 1, 2), 0, "the sequence ends inside the value at position 0"),
        ((None, 2**70 + FLIST, 1), 0, "the sequence ends inside the value at position 0"),
        ((None, 2 * 8 + LIST, 1), 0, "the sequence ends inside the value at position 0"),
        ((None, 8 + MAP, "k"), 0, "the sequence ends inside the value at position 0"),
        ((None, 8 + FMAP, "k"), 0, "the sequence ends inside the value at position 0"),
        ((None, BYTES, "\u0100"), 0, "BYTES needs a string of code points below 256 at position 2"),
        ((None, BYTES, 5), 0, "BYTES needs a string of code points below 256 at position 2"),
        ((None, 8 + FPAIRS, [], 1), 0, "unhashable map key in the value at position 0"),
        ((None, 8 + MAP, {}, 1), 0, "unhashable map key in the value at position 0"),
        ((), -1, "negative start -1"),
        (("x",), -(2**80), f"negative start {-(2**80)}"),
    ],
)
def test_malformed_sequences(
    backend: ModuleType, flat: tuple[Any, ...], start: int, message: str
) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.lua_decode_values(flat, start)
    assert str(info.value) == f"malformed value from Lua: {message}"


def test_a_start_past_the_end_decodes_nothing(backend: ModuleType) -> None:
    assert backend.lua_decode_values(("x", "y"), 2) == []
    assert backend.lua_decode_values(("x", "y"), 2**80) == []


def test_unsupported_lua_keys(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.lua_decode_values((None, 8 + FPAIRS, None, 1))
    assert str(info.value) == "cannot convert the Lua result: unsupported map key None"


def test_deep_sequences_are_refused(backend: ModuleType) -> None:
    def nested(levels: int) -> list[Any]:
        return [*((None, 8 + LIST) * levels), None, FLIST]

    assert backend.lua_decode_values(nested(200)) != []
    with pytest.raises(InvalidMessage) as info:
        backend.lua_decode_values(nested(201))
    assert str(info.value) == (
        "malformed value from Lua: nesting deeper than 200 levels at position 400"
    )
    with pytest.raises(InvalidMessage):
        backend.lua_decode_values((None, 8 + MAP, "k") * 100_000)


def test_convert_delegates_to_the_active_backend(backend: ModuleType) -> None:
    assert _core.impl is backend
    value = {"a": [1, {"b": "c"}]}
    assert convert.encode_map(value) == backend.lua_encode_map(value)
    assert convert.encode_values([value]) == backend.lua_encode_values([value])
    assert convert.decode_values(convert.encode_values([value])) == [value]


# ------------------------------------------------------------------------------ parity
# The active backend against the reference (pure): on the native run this is the parity
# check. The backend fixture only switches modules, so sharing it across inputs is safe.
_FIXTURE_OK = [HealthCheck.function_scoped_fixture]

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.binary(max_size=4)
)
_keys = (
    st.text(max_size=3)
    | st.sampled_from(["1", "2", "3", 1.5, b"\xff", b"k", frozenset(), Num(3), Text("t")])
    | st.integers(-3, 3)
    | st.booleans()
)
_odd = st.sampled_from(
    [b"\xff", bytearray(b"b"), memoryview(b"m"), frozenset(), Num(3), Text("t"), Blob(b"x")]
)
_values = st.recursive(
    _scalars | _odd,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_keys, inner, max_size=4)
        | st.dictionaries(st.sampled_from(["1", "2", "3"]), inner, max_size=3)
        | st.dictionaries(st.text(max_size=2), inner, max_size=3).map(Frozen)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with equal types throughout (1, 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return _same(list(a), list(b)) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except InvalidMessage as exc:
        return type(exc).__name__, str(exc)


def _assert_parity(left: tuple[str, Any], right: tuple[str, Any]) -> None:
    assert left[0] == right[0], (left, right)
    if left[0] == "ok":
        assert _same(left[1], right[1]), (left, right)
    else:
        assert left[1] == right[1]


@settings(suppress_health_check=_FIXTURE_OK)
@given(st.lists(_values, max_size=3))
def test_encode_parity_and_round_trip(backend: ModuleType, values: list[Any]) -> None:
    pure, native = _core.load("pure"), backend
    enc = _outcome(pure.lua_encode_values, values)
    _assert_parity(enc, _outcome(native.lua_encode_values, values))
    for value in values:
        if isinstance(value, Mapping):
            _assert_parity(
                _outcome(pure.lua_encode_map, value), _outcome(native.lua_encode_map, value)
            )
    if enc[0] == "ok":
        back = _outcome(pure.lua_decode_values, enc[1])
        assert back[0] == "ok"
        _assert_parity(back, _outcome(native.lua_decode_values, enc[1]))
        assert len(back[1]) == len(values)


_items = (
    st.none()
    | st.integers(0, 70)
    | st.integers(-9, 2**64 + 9)
    | st.booleans()
    | st.floats(allow_nan=False, width=32)
    | st.text(max_size=3)
    | st.sampled_from(["\xff\x80", "\u0100", b"b", (), [], 2**70 + 7])
)


@settings(suppress_health_check=_FIXTURE_OK)
@given(
    st.lists(
        st.one_of(_items, st.tuples(st.none(), st.integers(0, 60)).map(list)), max_size=40
    ).map(lambda parts: [x for p in parts for x in (p if isinstance(p, list) else [p])]),
    st.integers(0, 3),
)
def test_decode_parity_on_arbitrary_sequences(
    backend: ModuleType, flat: list[Any], start: int
) -> None:
    pure, native = _core.load("pure"), backend
    expected = _outcome(pure.lua_decode_values, flat, start)
    _assert_parity(expected, _outcome(native.lua_decode_values, flat, start))
    _assert_parity(expected, _outcome(native.lua_decode_values, tuple(flat), start))


# ------------------------------------------------------------------------- payload bound


def test_payload_bound_counts_exact_strings_and_bytes(backend: ModuleType) -> None:
    flat = [None, 2 * 8 + FMAP, "ab", "é€😀", b"xyz", 7, 2.5, True, None]
    # 2 + 3 code points + 3 bytes, 4 bytes each at most
    assert backend.lua_payload_bound(flat) == 4 * 8
    assert backend.lua_payload_bound(tuple(flat)) == 4 * 8
    assert backend.lua_payload_bound(iter(flat)) == 4 * 8
    assert backend.lua_payload_bound([]) == 0
    assert backend.lua_payload_bound(()) == 0
    # subclasses, buffers and containers count nothing (only what goes onto the wire as is)
    odd = [Text("long text"), Blob(b"blob"), bytearray(b"ba"), memoryview(b"m"), ["s"], {"k": "v"}]
    assert backend.lua_payload_bound(odd) == 0
    assert backend.lua_payload_bound(["\ud800", ""]) == 4


def test_payload_bound_iteration_errors_propagate(backend: ModuleType) -> None:
    def broken() -> Iterator[Any]:
        yield "ab"
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        backend.lua_payload_bound(broken())
    with pytest.raises(TypeError):
        backend.lua_payload_bound(5)


@settings(suppress_health_check=_FIXTURE_OK)
@given(st.lists(_items | _odd, max_size=40))
def test_payload_bound_parity(backend: ModuleType, flat: list[Any]) -> None:
    expected = 4 * sum(len(x) for x in flat if type(x) in (str, bytes))
    assert backend.lua_payload_bound(flat) == expected
    assert backend.lua_payload_bound(tuple(flat)) == expected
