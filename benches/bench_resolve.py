"""The resolver's hot paths: native vs pure core, and a plain-Python baseline.

* a direct key (``resolve(msg, "k5")`` on a 10-key message),
* a 5-segment path (``resolve(msg, "a/b/c/d/e")``: four map results get hash paths),
* a computed key served from the result cache vs computed (cache off) — the device sums
  and sorts 2,000 numbers.
Targets (issue 4): native ≥ 3x pure uncached; cache hits ≥ 5x faster than computing.
The baseline is a plain function doing the same dict lookups / the same computation.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from typing import Any

import hbeam
import pytest
from hbeam import _core, device

IMPLS = ["native", "pure", "baseline"]
FLAT = {f"k{i}": f"value-{i}" for i in range(10)}
DEEP: dict[str, Any] = {"e": "bottom", "pad": 1}
for _name in ("d", "c", "b", "a"):
    DEEP = {_name: DEEP, "pad": 1}
NUMBERS = list(range(2000, 0, -1))
NO_CACHE = {"cache_control": ["no-cache", "no-store"]}


def _work(values: list[int]) -> dict[str, Any]:
    ordered = sorted(values)
    return {"sum": sum(ordered), "median": ordered[len(ordered) // 2], "count": len(ordered)}


def _bench_device_work(base: Any) -> dict[str, Any]:
    return _work(base["values"])


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """``native`` / ``pure`` (that core made active) or ``baseline`` (plain Python)."""
    name = request.param
    if name == "baseline":
        yield name
        return
    if not _core.available(name):
        pytest.skip(f"{name} core not built")
    with _core.use(name):
        yield name


@pytest.fixture(scope="module", autouse=True)
def bench_device() -> Iterator[None]:
    device.register("bench@1.0", types.SimpleNamespace(work=_bench_device_work))
    yield
    device.unregister("bench@1.0")


def _walk(msg: dict[str, Any], path: str) -> Any:
    for part in path.split("/"):
        msg = msg[part]
    return msg


def _setup(benchmark: Any, group: str, impl: str) -> None:
    benchmark.group = group
    benchmark.extra_info["impl"] = impl


def _run(benchmark: Any, fn: Callable[[], Any], expected: Any) -> None:
    result = benchmark(fn)
    benchmark.extra_info["correct"] = result == expected


def test_resolve_direct_key(benchmark: Any, impl: str) -> None:
    _setup(benchmark, "resolve: direct key (10-key message)", impl)
    if impl == "baseline":
        _run(benchmark, lambda: _walk(FLAT, "k5"), "value-5")
        return
    msg = _core.impl.Message(FLAT)
    _run(benchmark, lambda: hbeam.resolve(msg, "k5"), "value-5")


def test_resolve_five_segment_path(benchmark: Any, impl: str) -> None:
    _setup(benchmark, "resolve: 5-segment path", impl)
    if impl == "baseline":
        _run(benchmark, lambda: _walk(DEEP, "a/b/c/d/e"), "bottom")
        return
    msg = _core.impl.Message(DEEP)
    _run(benchmark, lambda: hbeam.resolve(msg, "a/b/c/d/e"), "bottom")


def test_get_five_segment_path(benchmark: Any, impl: str) -> None:
    _setup(benchmark, "get: 5-segment path (no hash paths)", impl)
    if impl == "baseline":
        _run(benchmark, lambda: _walk(DEEP, "a/b/c/d/e"), "bottom")
        return
    msg = _core.impl.Message(DEEP)
    _run(benchmark, lambda: hbeam.get("a/b/c/d/e", msg), "bottom")


def test_resolve_computed_key_uncached(benchmark: Any, impl: str) -> None:
    _setup(benchmark, "resolve: computed key, computing (cache off)", impl)
    expected = _work(NUMBERS)
    if impl == "baseline":
        data = {"values": NUMBERS}
        _run(benchmark, lambda: _work(data["values"]), expected)
        return
    msg = _core.impl.Message({"device": "bench@1.0", "values": NUMBERS})
    _run(benchmark, lambda: hbeam.resolve(msg, "work", opts=NO_CACHE), expected)


def test_resolve_computed_key_cache_hit(benchmark: Any, impl: str) -> None:
    _setup(benchmark, "resolve: computed key, cache hit", impl)
    expected = _work(NUMBERS)
    if impl == "baseline":
        memo: dict[str, Any] = {}
        data = {"values": NUMBERS}

        def cached() -> Any:
            hit = memo.get("work")
            if hit is None:
                hit = memo["work"] = _work(data["values"])
            return hit

        _run(benchmark, cached, expected)
        return
    msg = _core.impl.Message({"device": "bench@1.0", "values": NUMBERS})
    opts = {"cache": _core.impl.ResultCache()}
    hbeam.resolve(msg, "work", opts=opts)
    _run(benchmark, lambda: hbeam.resolve(msg, "work", opts=opts), expected)
    benchmark.extra_info["hits"] = opts["cache"].hits
