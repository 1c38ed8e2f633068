"""The persistent resolver: in-flight de-duplication, re-entry and depth limits."""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable
from types import ModuleType
from typing import Any

import hbeam
import pytest
from hbeam import ao
from hbeam.errors import AOError, DeviceError, RecursionLimit

Register = Callable[[str, Any], Any]
THREADS = 50


def _run_threads(fn: Callable[[], Any], n: int = THREADS) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            value = fn()
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(value)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def test_fifty_threads_run_a_slow_key_once(backend: ModuleType, register: Register) -> None:
    count = {"n": 0}
    lock = threading.Lock()

    def slow(base: Any) -> Any:
        with lock:
            count["n"] += 1
        time.sleep(0.2)
        return {"computed": True}

    register("slow@1.0", types.SimpleNamespace(slow=slow))
    cache = backend.ResultCache()
    results, errors = _run_threads(
        lambda: hbeam.resolve({"device": "slow@1.0"}, "slow", opts={"cache": cache})
    )
    assert errors == []
    assert count["n"] == 1
    assert len(results) == THREADS and all(r == {"computed": True} for r in results)


def _flight_waiters() -> int:
    with ao._flights_lock:
        return sum(f.waiters for f in ao._flights.values())


def test_waiters_share_one_computation_without_caching(
    backend: ModuleType, register: Register
) -> None:
    count = {"n": 0}
    release = threading.Event()

    def gated(base: Any) -> Any:
        count["n"] += 1
        release.wait(30)
        return {"value": count["n"]}

    register("gated@1.0", types.SimpleNamespace(gated=gated))
    opts = {"cache": backend.ResultCache(), "cache_control": "no-store"}
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["r"] = _run_threads(
            lambda: hbeam.resolve({"device": "gated@1.0"}, "gated", opts=opts)
        )

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 30
    while _flight_waiters() < THREADS - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _flight_waiters() == THREADS - 1
    release.set()
    runner.join(60)
    results, errors = outcome["r"]
    assert errors == [] and count["n"] == 1
    assert all(r is results[0] for r in results)  # the very same result object
    assert len(opts["cache"]) == 0


def test_waiters_get_the_leaders_error(backend: ModuleType, register: Register) -> None:
    release = threading.Event()

    def failing(base: Any) -> Any:
        release.wait(30)
        raise ValueError("leader failed")

    register("failing@1.0", types.SimpleNamespace(failing=failing))
    opts = {"cache": backend.ResultCache()}
    outcome: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: outcome.update(
            r=_run_threads(
                lambda: hbeam.resolve({"device": "failing@1.0"}, "failing", opts=opts), 5
            )
        )
    )
    runner.start()
    deadline = time.monotonic() + 30
    while _flight_waiters() < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    runner.join(60)
    results, errors = outcome["r"]
    assert results == [] and len(errors) == 5
    assert all(isinstance(e, DeviceError) for e in errors)
    assert not ao._flights  # nothing left in flight


def test_resolve_forever_is_refused(backend: ModuleType, register: Register) -> None:
    register(
        "forever@1.0",
        types.SimpleNamespace(loop=lambda base, req, opts: hbeam.resolve(base, "loop", opts=opts)),
    )
    with pytest.raises(RecursionLimit) as info:
        hbeam.resolve({"device": "forever@1.0"}, "loop", opts={"cache": backend.ResultCache()})
    assert "re-enters itself" in str(info.value)
    assert info.value.http_status == 508
    with pytest.raises(RecursionLimit):
        hbeam.get("loop", {"device": "forever@1.0"})
    # without cache lookups there is no hash path to compare: the depth limit stops it
    with pytest.raises(RecursionLimit, match="deeper than 100"):
        hbeam.resolve({"device": "forever@1.0"}, "loop", opts={"cache_control": "no-cache"})
    assert not ao._flights


def test_mutual_recursion_is_refused(backend: ModuleType, register: Register) -> None:
    register(
        "pingpong@1.0",
        types.SimpleNamespace(
            ping=lambda base, req, opts: hbeam.resolve(base, "pong", opts=opts),
            pong=lambda base, req, opts: hbeam.resolve(base, "ping", opts=opts),
        ),
    )
    with pytest.raises(RecursionLimit):
        hbeam.resolve({"device": "pingpong@1.0"}, "ping", opts={"cache": backend.ResultCache()})


def test_depth_limit(backend: ModuleType, register: Register) -> None:
    def deeper(base: Any, req: Any, opts: Any) -> Any:
        n = base.get("n", 0)
        if n >= 20:
            return n
        return hbeam.resolve({"device": "deeper@1.0", "n": n + 1}, "deeper", opts=opts)

    register("deeper@1.0", types.SimpleNamespace(deeper=deeper))
    assert hbeam.resolve({"device": "deeper@1.0"}, "deeper") == 20
    with pytest.raises(RecursionLimit, match="deeper than 10"):
        hbeam.resolve(
            {"device": "deeper@1.0"},
            "deeper",
            opts={"max_resolve_depth": 10, "cache": backend.ResultCache()},
        )
    # a limit beyond Python's own stack still ends in RecursionLimit, not RecursionError

    def endless(base: Any, req: Any, opts: Any) -> Any:
        return hbeam.resolve({"device": "endless@1.0", "n": base.get("n", 0) + 1}, "e", opts=opts)

    register("endless@1.0", types.SimpleNamespace(e=endless))
    with pytest.raises(RecursionLimit):
        hbeam.resolve({"device": "endless@1.0"}, "e", opts={"max_resolve_depth": 100000})


def test_cross_thread_cycle_is_refused(backend: ModuleType, register: Register) -> None:
    barrier = threading.Barrier(2)

    def k1(base: Any, req: Any, opts: Any) -> Any:
        barrier.wait(10)
        return hbeam.resolve(base, "k2", opts=opts)

    def k2(base: Any, req: Any, opts: Any) -> Any:
        barrier.wait(10)
        return hbeam.resolve(base, "k1", opts=opts)

    register("cycle@1.0", types.SimpleNamespace(k1=k1, k2=k2))
    opts = {"cache": backend.ResultCache()}
    errors: list[BaseException] = []

    def run(key: str) -> None:
        try:
            hbeam.resolve({"device": "cycle@1.0"}, key, opts=opts)
        except AOError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in ("k1", "k2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert len(errors) == 2 and all(isinstance(e, RecursionLimit) for e in errors)
    assert not ao._flights
