"""Processes: durable scheduling throughput, compute throughput, big-state patches, restart.

Each benchmark sets ``extra_info["ops"]`` (operations per round) so the report shows
throughput; groups compare implementations measured in the same run.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import lmdb
import pytest
from hbeam import _core, device
from hbeam.node import Node


class _Counter:
    def init(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("count", 0)

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("count", base.get("count", 0) + 1)


class _Ledger:
    """Moves one unit between two of many holders: a 2-key patch per slot."""

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        body = req["body"]
        a, b = body["a"], body["b"]
        balances = base["balances"]
        return base.merge({"balances": {a: balances.get(a, 0) - 1, b: balances.get(b, 0) + 1}})


device.register("bench-counter@1.0", _Counter())
device.register("bench-ledger@1.0", _Ledger())
COUNTER = {"execution-device": "bench-counter@1.0"}


def _run_threads(n: int, fn: Any) -> None:
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# -- durable scheduling -------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 64])
def test_acknowledged_schedules_per_second(benchmark: Any, concurrency: int) -> None:
    """Durable (fsync'd) schedule calls; group commit lets 64 callers share commits."""
    per_thread = 400 // concurrency if concurrency > 1 else 100
    ops = per_thread * concurrency
    with tempfile.TemporaryDirectory() as tmp, _core.use("native"):
        node = Node(f"lmdb:{tmp}", eager=False)
        pid = node.spawn(COUNTER)

        def one() -> None:
            for _ in range(per_thread):
                node.schedule(pid, {"add": 1})

        benchmark.group = f"schedule durable, {concurrency} concurrent"
        benchmark.extra_info.update(impl="native", ops=ops)
        benchmark.pedantic(lambda: _run_threads(concurrency, one), rounds=3, iterations=1)
        node.close()


@pytest.mark.parametrize("concurrency", [1, 64])
def test_lmdb_synced_commit_rate(benchmark: Any, concurrency: int) -> None:
    """LMDB's own synced commits (one transaction per write): the rate to beat."""
    per_thread = 400 // concurrency if concurrency > 1 else 100
    ops = per_thread * concurrency
    with tempfile.TemporaryDirectory() as tmp:
        env = lmdb.open(tmp, map_size=1 << 28, sync=True, metasync=True)
        counter = iter(range(10**9))
        lock = threading.Lock()

        def one() -> None:
            for _ in range(per_thread):
                with lock:
                    n = next(counter)
                with env.begin(write=True) as txn:
                    txn.put(f"k{n}".encode(), b"x" * 200)

        benchmark.group = f"schedule durable, {concurrency} concurrent"
        benchmark.extra_info.update(impl="lmdb-synced-commit", ops=ops)
        benchmark.pedantic(lambda: _run_threads(concurrency, one), rounds=3, iterations=1)
        env.close()


# -- compute throughput ---------------------------------------------------------------------


@pytest.mark.parametrize("store", ["lmdb", "memory"])
def test_scheduled_and_computed_slots_per_second(benchmark: Any, core: Any, store: str) -> None:
    slots = 500
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"lmdb:{tmp}" if store == "lmdb" else "memory:"
        node = Node(spec, eager=False)
        pid = node.spawn(COUNTER)
        node.now(pid)

        def run() -> None:
            node.schedule_many(pid, [{"add": 1}] * slots)
            node.now(pid)

        benchmark.group = f"schedule_many + compute, {store}"
        benchmark.extra_info.update(impl=core.__name__.rsplit("_", 1)[-1], ops=slots)
        benchmark.pedantic(run, rounds=3, iterations=1)
        node.close()


@pytest.mark.parametrize("store", ["lmdb", "memory"])
def test_plain_python_state_loop(benchmark: Any, store: str) -> None:
    """Baseline: a dict state updated in a loop, no scheduling, no durability."""
    slots = 500

    def run() -> None:
        state = {"count": 0}
        for _ in range(slots):
            state = {**state, "count": state["count"] + 1}

    benchmark.group = f"schedule_many + compute, {store}"
    benchmark.extra_info.update(impl="baseline", ops=slots)
    benchmark(run)


# -- a 2-key patch into a 1,000,000-key state --------------------------------------------------

_N = 1_000_000


@pytest.fixture(scope="module")
def big_balances() -> dict[str, int]:
    return {f"holder-{i:07d}": 1000 for i in range(_N)}


@pytest.mark.parametrize("impl", ["native", "pure"])
def test_two_key_patch_into_million_key_state(
    benchmark: Any, big_balances: dict[str, int], impl: str
) -> None:
    with _core.use(impl) as core:
        state = core.Message({"balances": big_balances})
        i = iter(range(10**9))

        def patch() -> Any:
            n = next(i) % (_N - 1)
            a, b = f"holder-{n:07d}", f"holder-{n + 1:07d}"
            bal = state["balances"]
            return state.merge({"balances": {a: bal[a] - 1, b: bal[b] + 1}})

        benchmark.group = "2-key patch into a 1e6-key state"
        benchmark.extra_info.update(impl=impl)
        benchmark(patch)


def test_two_key_patch_dict_copy_baseline(benchmark: Any, big_balances: dict[str, int]) -> None:
    state = {"balances": big_balances}

    def patch() -> Any:
        bal = dict(state["balances"])
        bal["holder-0000001"] -= 1
        bal["holder-0000002"] += 1
        return {**state, "balances": bal}

    benchmark.group = "2-key patch into a 1e6-key state"
    benchmark.extra_info.update(impl="baseline")
    benchmark.pedantic(patch, rounds=5, iterations=1)


# -- restart ----------------------------------------------------------------------------------


def test_restart_of_a_100k_slot_process(benchmark: Any) -> None:
    """Reopen a node and bring a 100,000-slot process (snapshots every 1,000) to now."""
    with tempfile.TemporaryDirectory() as tmp, _core.use("native"):
        spec = f"lmdb:{Path(tmp) / 'n'}"
        with Node(spec, eager=False, snapshot_every=1000) as node:
            pid = node.spawn(COUNTER)
            for _ in range(20):
                node.schedule_many(pid, [{"add": 1}] * 5000)
            node.now(pid)
            node.schedule_many(pid, [{"add": 1}] * 500)  # a tail after the last snapshot

        def restart() -> None:
            with Node(spec, eager=False, snapshot_every=1000) as again:
                assert again.now(pid)["count"] == 100_500

        benchmark.group = "restart 100k-slot process"
        benchmark.extra_info.update(impl="native", ops=1)
        benchmark.pedantic(restart, rounds=3, iterations=1)
