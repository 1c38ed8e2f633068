"""Parity: hypothesis drives ``hbeam._pure`` and ``hbeam._native`` with the same inputs.

Every result must be identical (compared through :func:`canon`, which keeps types, key
order and float bits), or both must raise the same exception class with the same text.
Garbage inputs are part of the strategies: the native module must only ever raise
``hbeam.AOError`` (or ``TypeError``/``ValueError`` where the contract says so).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from functools import partial
from types import ModuleType
from typing import Any

from hbeam._sentinels import NOT_FOUND, UNDEFINED, UNSET
from hbeam.errors import AOError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SENTINELS = (NOT_FOUND, UNSET, UNDEFINED)


def canon(value: Any) -> Any:
    """A comparable, type-exact picture of a result from either backend."""
    if isinstance(value, Mapping):
        return ("M", type(value).__name__ == "Message", [(k, canon(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("L", [canon(v) for v in value])
    if isinstance(value, tuple):
        return ("T", [canon(v) for v in value])
    if isinstance(value, float):
        return ("f", struct.pack(">d", value) if not math.isnan(value) else "nan")
    if any(value is s for s in SENTINELS):
        return ("S", repr(value))
    return (type(value).__name__, value)


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", canon(call()))
    except AOError as exc:
        return ("raise", type(exc).__name__, str(exc))
    except (TypeError, ValueError) as exc:  # allowed, but the class must still agree
        return ("raise", type(exc).__name__)


# ------------------------------------------------------------------ strategies

key_text = st.text(alphabet="abcAB/_-.pPrRiIvV0é😀", min_size=1, max_size=6)
odd_keys = st.sampled_from(["", "/", "priv", "Private", "PRIV/x", "a//b", "..", "ab", "AB"])
key_any = st.one_of(
    key_text,
    odd_keys,
    st.integers(-5, 100),
    st.booleans(),
    key_text.map(str.encode),
    st.lists(st.one_of(key_text, st.integers(0, 9)), max_size=3),
)
garbage = st.one_of(
    st.floats(allow_nan=False),
    st.none(),
    st.just(object()),
    st.sets(st.integers(), max_size=2),
    st.just(b"\xff\xfe"),
    st.just("x\ud800"),
    st.sampled_from(SENTINELS),
    st.complex_numbers(max_magnitude=2),
)
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
)
value = st.recursive(
    leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(key_text, kids, max_size=4),
    ),
    max_leaves=16,
)
messages = st.dictionaries(key_text, value, max_size=8)
path = st.one_of(
    st.lists(
        st.sampled_from(["a", "b", "A", "B", "ab", "Ab", "1", "2", "..", "priv", ""]), max_size=4
    ).map("/".join),
    st.lists(st.one_of(key_text, st.integers(0, 3)), max_size=3),
    st.integers(-2, 4),
    key_text,
)
update_value = st.one_of(value, st.sampled_from([UNSET, UNDEFINED]))
updates = st.dictionaries(
    st.one_of(key_text, path.filter(lambda p: isinstance(p, str) and p != "")),
    st.recursive(
        update_value,
        lambda kids: st.dictionaries(key_text, kids, max_size=3),
        max_leaves=8,
    ),
    max_size=5,
)
operation = st.one_of(
    st.tuples(st.just("set"), path, update_value),
    st.tuples(st.just("merge"), updates),
    st.tuples(st.just("remove"), st.one_of(key_any, st.lists(key_any, max_size=3))),
    st.tuples(st.just("get_path"), path),
    st.tuples(st.just("getitem"), key_any),
    st.tuples(st.just("contains"), key_any),
    st.tuples(st.just("eq"), messages),
    st.tuples(st.just("hashpath"), st.one_of(path.filter(lambda p: isinstance(p, str)), messages)),
    st.tuples(st.just("set"), path, garbage),
    st.tuples(st.just("merge"), st.dictionaries(key_text, garbage, max_size=2)),
)


def snapshot(backend: ModuleType, m: Any) -> Any:
    return (
        canon(m),
        repr(m),
        backend.id(m),
        backend.encode(m),
        m.public_keys(),
        canon(m.to_dict()),
        backend.hashpath(m),
        len(m),
    )


def query(backend: ModuleType, m: Any, kind: str, arg: Any) -> Any:
    if kind == "get_path":
        return m.get_path(arg)
    if kind == "getitem":
        return m[arg]
    if kind == "contains":
        return arg in m
    if kind == "eq":
        return (m == arg, m == backend.Message(arg))
    return backend.hashpath(m, arg)


def run_ops(backend: ModuleType, initial: dict[Any, Any], ops: list[Any]) -> list[Any]:
    record: list[Any] = []
    try:
        m = backend.Message(initial)
    except AOError as exc:
        return [("raise", type(exc).__name__, str(exc))]
    record.append(snapshot(backend, m))
    for op in ops:
        kind = op[0]
        if kind in ("set", "merge", "remove"):
            try:
                if kind == "set":
                    m = m.set(op[1], op[2])
                elif kind == "merge":
                    m = m.merge(op[1])
                else:
                    m = m.remove(op[1])
            except AOError as exc:
                record.append(("raise", kind, type(exc).__name__, str(exc)))
                continue
            record.append(snapshot(backend, m))
        else:
            record.append(outcome(partial(query, backend, m, kind, op[1])))
    return record


# ------------------------------------------------------------------ properties

# both_backends only hands out the two (stateless) modules, so sharing it across
# generated inputs is exactly what we want
_FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(suppress_health_check=_FIXTURE_OK)
@given(initial=messages, ops=st.lists(operation, max_size=8))
def test_operation_sequences(
    both_backends: tuple[ModuleType, ModuleType], initial: dict[str, Any], ops: list[Any]
) -> None:
    pure, native = both_backends
    assert run_ops(pure, initial, ops) == run_ops(native, initial, ops)


@settings(suppress_health_check=_FIXTURE_OK)
@given(key=st.one_of(key_any, garbage, st.lists(st.one_of(key_any, garbage), max_size=3)))
def test_normalize_key(both_backends: tuple[ModuleType, ModuleType], key: Any) -> None:
    pure, native = both_backends
    assert outcome(lambda: pure.normalize_key(key)) == outcome(lambda: native.normalize_key(key))
    if isinstance(key, str):
        assert outcome(lambda: pure.is_private(key)) == outcome(lambda: native.is_private(key))


@settings(suppress_health_check=_FIXTURE_OK)
@given(value=st.one_of(value, messages, garbage, st.lists(value, max_size=3)))
def test_normalize_keys_encode_id(both_backends: tuple[ModuleType, ModuleType], value: Any) -> None:
    pure, native = both_backends
    for name in ("normalize_keys", "encode", "id"):
        p = outcome(lambda: getattr(pure, name)(value))  # noqa: B023
        n = outcome(lambda: getattr(native, name)(value))  # noqa: B023
        assert p == n, name
    data = outcome(lambda: pure.encode(value))
    if data[0] == "ok":
        raw = pure.encode(value)
        assert canon(pure.decode(raw)) == canon(native.decode(raw))


@settings(suppress_health_check=_FIXTURE_OK)
@given(p=st.one_of(path, garbage, st.lists(st.one_of(path, garbage), max_size=3)))
def test_parts_to_str(both_backends: tuple[ModuleType, ModuleType], p: Any) -> None:
    pure, native = both_backends
    assert outcome(lambda: pure.parts(p)) == outcome(lambda: native.parts(p))
    assert outcome(lambda: pure.to_str(p)) == outcome(lambda: native.to_str(p))


@settings(suppress_health_check=_FIXTURE_OK)
@given(data=st.one_of(st.binary(max_size=40), value.map(lambda v: b"")))
def test_decode_garbage(both_backends: tuple[ModuleType, ModuleType], data: bytes) -> None:
    pure, native = both_backends
    assert outcome(lambda: pure.decode(data)) == outcome(lambda: native.decode(data))


@settings(suppress_health_check=_FIXTURE_OK)
@given(value=st.one_of(value, messages), cut=st.integers(0, 200), flip=st.integers(0, 255))
def test_decode_damaged_encodings(
    both_backends: tuple[ModuleType, ModuleType], value: Any, cut: int, flip: int
) -> None:
    pure, native = both_backends
    data = pure.encode(value)
    if not data:
        return
    cut %= len(data)
    damaged = [data[:cut], data[:cut] + bytes([flip]) + data[cut + 1 :], data + bytes([flip])]
    for blob in damaged:
        assert outcome(lambda: pure.decode(blob)) == outcome(lambda: native.decode(blob))  # noqa: B023


@settings(suppress_health_check=_FIXTURE_OK)
@given(
    base=st.one_of(messages, st.text(max_size=50), garbage),
    req=st.one_of(messages, path, garbage),
)
def test_hashpath(both_backends: tuple[ModuleType, ModuleType], base: Any, req: Any) -> None:
    pure, native = both_backends
    assert outcome(lambda: pure.hashpath(base)) == outcome(lambda: native.hashpath(base))
    assert outcome(lambda: pure.hashpath(base, req)) == outcome(lambda: native.hashpath(base, req))


def test_exports_agree(both_backends: tuple[ModuleType, ModuleType]) -> None:
    pure, native = both_backends
    for name in pure.__all__:
        assert hasattr(native, name), name
    for name in ("MAX_DEPTH", "MAX_KEY_BYTES", "MAX_SEGMENT_BYTES"):
        assert getattr(pure, name) == getattr(native, name)
