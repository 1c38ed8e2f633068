"""Parity: resolve / get / set / remove give the same results on both core backends."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import hbeam
from hbeam import UNSET, _core
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = st.sampled_from(["a", "b", "c", "A", "B", "k1", "id", "keys", "priv", "private", "1", "2"])
LEAVES = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(alphabet="abcXYZ01 /é", max_size=6),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
MESSAGES = st.dictionaries(KEYS, VALUES, max_size=5)
PATHS = st.lists(KEYS, min_size=1, max_size=3).map("/".join)
# both_backends only hands out the two (stateless) modules: safe to share across examples
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        return ("ok", hbeam.to_dict(fn()))
    except hbeam.AOError as exc:
        return ("raised", type(exc).__name__, str(exc))


def _both(both: tuple[ModuleType, ModuleType], fn: Callable[[ModuleType], Any]) -> None:
    results = []
    for name in ("pure", "native"):
        with _core.use(name) as impl:
            results.append(_outcome(lambda: fn(impl)))
    assert results[0] == results[1]


@FIXTURE_OK
@given(msg=MESSAGES, path=PATHS)
def test_resolve_parity(both_backends: tuple[ModuleType, ModuleType], msg: Any, path: str) -> None:
    _both(both_backends, lambda impl: hbeam.resolve(msg, path, opts={"cache": impl.ResultCache()}))


@FIXTURE_OK
@given(msg=MESSAGES, path=PATHS)
def test_get_parity(both_backends: tuple[ModuleType, ModuleType], msg: Any, path: str) -> None:
    _both(both_backends, lambda impl: hbeam.get(path, msg, "default"))


@FIXTURE_OK
@given(msg=MESSAGES, path=PATHS, value=VALUES)
def test_set_parity(
    both_backends: tuple[ModuleType, ModuleType], msg: Any, path: str, value: Any
) -> None:
    _both(both_backends, lambda impl: hbeam.set(msg, path, value))
    _both(both_backends, lambda impl: hbeam.set(msg, {path: value, "z": UNSET}))


@FIXTURE_OK
@given(msg=MESSAGES, path=PATHS)
def test_remove_parity(both_backends: tuple[ModuleType, ModuleType], msg: Any, path: str) -> None:
    _both(both_backends, lambda impl: hbeam.remove(msg, path))
    _both(both_backends, lambda impl: hbeam.remove(msg, [path, "a"]))
