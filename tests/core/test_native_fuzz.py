"""Fuzz: random garbage into every native function and method.

Whatever comes in (odd types, nested junk, huge or unpaired-surrogate strings, invalid
bytes, cycles, sentinels, the other backend's messages), only ``hbeam.AOError`` or
``TypeError`` may come out (``ValueError`` too for ``ResultCache(capacity)``, as the
contract says) — never a ``PanicException`` (a Rust panic), ``SystemError``,
``RecursionError`` or a crash.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

import pytest
from hbeam import _core
from hbeam._sentinels import NOT_FOUND, UNDEFINED, UNSET
from hbeam.errors import AOError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# under `make test` (HBEAM_REQUIRE_NATIVE=1) a missing native core fails instead
pytestmark = pytest.mark.skipif(
    not _core.available("native") and os.environ.get("HBEAM_REQUIRE_NATIVE") != "1",
    reason="native core not built",
)

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ALLOWED: tuple[type[BaseException], ...] = (AOError, TypeError)


def native() -> ModuleType:
    return _core.load("native")


def pure() -> ModuleType:
    return _core.load("pure")


def survive(call: Callable[[], Any], allowed: tuple[type[BaseException], ...] = ALLOWED) -> Any:
    """Run ``call``; any exception other than ``allowed`` fails the test."""
    try:
        return call()
    except allowed:
        return None
    except BaseException as exc:
        pytest.fail(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc!r}")


def _cyclic_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    return d


def _cyclic_list() -> list[Any]:
    lst: list[Any] = [1]
    lst.append(lst)
    return lst


def _deep(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _Str(str):
    pass


class _Int(int):
    pass


def _odd_values() -> list[Any]:
    return [
        None,
        object(),
        _BadRepr(),
        {1, 2},
        frozenset(),
        1j,
        math.nan,
        math.inf,
        -0.0,
        10**400,
        -(10**5000),
        True,
        UNSET,
        UNDEFINED,
        NOT_FOUND,
        "\ud800",
        "a\udfff/b",
        b"\xff\xfe",
        bytearray(b"\x80"),
        memoryview(b"abc"),
        memoryview(b"abcdef")[::2],
        "x" * 70_000,
        "é" * 40_000,
        "/" * 5000,
        "(" * 300,
        "a" * 600 + "/b",
        _Str("a/b"),
        _Int(7),
        range(3),
        type,
        len,
        Exception("x"),
    ]


# values are built at draw time: hypothesis shows its strategies' elements with repr()
ODD = st.integers(0, len(_odd_values()) - 1).map(lambda i: _odd_values()[i])

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(alphabet='/~&=?()+ ,"\\%aZ09.-_', max_size=30),
    st.binary(max_size=40),
    ODD,
)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(
        st.text(max_size=8), st.integers(), st.binary(max_size=8), ODD.filter(_hashable)
    )
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    )


GARBAGE = st.one_of(
    st.recursive(LEAVES, _containers, max_leaves=20),
    st.builds(_cyclic_dict),
    st.builds(_cyclic_list),
    st.integers(150, 400).map(_deep),
    st.builds(lambda: _deep(20_000)),
)


def _messages(data: Any) -> list[Any]:
    """A few messages to call methods on: fixed ones, and one built from ``data``."""
    n = native()
    out = [n.Message(), n.Message({"a": {"b": [1, {"c": "x"}]}, "priv": {"hashpath": "z/y"}})]
    built = survive(lambda: n.Message(data) if isinstance(data, dict) else n.Message(a=data))
    if built is not None:
        out.append(built)
    return out


# ----------------------------------------------------------- module functions


@FUZZ
@given(GARBAGE)
def test_module_functions_one_argument(x: Any) -> None:
    n = native()
    for fn in (
        n.normalize_key,
        n.normalize_keys,
        n.is_private,
        n.parts,
        n.to_str,
        n.encode,
        n.decode,
        n.id,
        n.hashpath,
        n.parse_request,
        n.wasm_translate_legacy_eh,
        n.Message,
    ):
        survive(partial(fn, x))
    survive(lambda: n.Message(a=x))
    survive(lambda: n.ResultCache(x), (*ALLOWED, ValueError))


@FUZZ
@given(GARBAGE, GARBAGE)
def test_module_functions_two_arguments(x: Any, y: Any) -> None:
    n = native()
    survive(lambda: n.hashpath(x, y))
    survive(lambda: n.parse_request(x, y))
    survive(lambda: n.Message(x, y=y))
    survive(lambda: n.Message([(x, y)]))


@FUZZ
@given(st.binary(max_size=200))
def test_decode_random_bytes(data: bytes) -> None:
    n = native()
    survive(lambda: n.decode(data))
    survive(lambda: n.decode(bytearray(data)))


@FUZZ
@given(GARBAGE, st.integers(0, 10_000), st.binary(min_size=1, max_size=4))
def test_decode_damaged_encodings(x: Any, at: int, patch: bytes) -> None:
    n = native()
    encoded = survive(lambda: n.encode(x))
    if not encoded:
        return
    i = at % len(encoded)
    survive(lambda: n.decode(encoded[:i] + patch + encoded[i + len(patch) :]))
    survive(lambda: n.decode(encoded[:i]))
    survive(lambda: n.decode(encoded + patch))


# ------------------------------------------------------------------- Message


@FUZZ
@given(GARBAGE, GARBAGE)
def test_message_methods(x: Any, y: Any) -> None:
    n = native()
    for m in _messages(x):
        _exercise(m, x, y, n)


def _exercise(m: Any, x: Any, y: Any, n: Any) -> None:
    """Every Message method and core function with garbage ``x``/``y`` on ``m``."""
    survive(lambda: m[x])
    survive(lambda: m.get(x))
    survive(lambda: m.get(x, y))
    survive(lambda: x in m)
    survive(lambda: m.get_path(x))
    survive(lambda: m.get_path(x, y))
    survive(lambda: m.set(x, y))
    survive(lambda: m.set("a/b", x))
    survive(lambda: m.merge(x))
    survive(lambda: m.merge({"a": x, "n/e/w": y}))
    survive(lambda: m.remove(x))
    survive(lambda: m == x)
    survive(lambda: m != x)
    survive(lambda: hash(m))
    survive(lambda: repr(m))
    survive(lambda: m.to_dict())
    survive(lambda: m.public_keys())
    survive(lambda: (list(m), list(m.keys()), list(m.values()), list(m.items())))
    survive(lambda: pickle.loads(pickle.dumps(m)) == m)
    survive(lambda: n.id(m))
    survive(lambda: n.encode(m))
    survive(lambda: n.hashpath(m, x))
    survive(lambda: m == pure().Message(m.to_dict()))


@FUZZ
@given(GARBAGE, GARBAGE)
def test_message_built_from_garbage_round_trips(x: Any, y: Any) -> None:
    n = native()
    m = survive(lambda: n.Message({"x": x, "y": y}))
    if m is None:
        return
    # compared through the canonical encoding: NaN != NaN, but it encodes one way
    encoded = n.encode(m)
    assert n.encode(n.decode(encoded)) == encoded
    assert n.encode(n.Message(m.to_dict())) == encoded
    assert n.encode(pickle.loads(pickle.dumps(m))) == encoded
    assert n.id(pure().Message(m.to_dict())) == n.id(m)


# --------------------------------------------------------------- ResultCache


@FUZZ
@given(GARBAGE, GARBAGE)
def test_result_cache(x: Any, y: Any) -> None:
    n = native()
    cache = n.ResultCache(2)
    survive(lambda: cache.put(x, y))
    survive(lambda: cache.get(x))
    survive(lambda: cache.get(x, y))
    survive(lambda: x in cache)
    survive(lambda: (len(cache), cache.hits, cache.misses, cache.capacity, repr(cache)))
    survive(cache.clear)
