"""The scheduler: durable, gapless, unique slots under concurrency; failures consume nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam import NOT_FOUND, StoreError
from hbeam.node.scheduler import Scheduler
from hbeam.store import LMDBStore, MemoryStore, Store

PID = "P" * 43


@pytest.fixture(params=["lmdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = LMDBStore(tmp_path / "db") if request.param == "lmdb" else MemoryStore()
    yield s
    s.close()


def test_slots_start_at_zero_and_are_consecutive(backend: ModuleType, store: Store) -> None:
    sched = Scheduler(store)
    try:
        assert sched.current(PID) == -1
        a0 = sched.schedule(PID, {"action": "one"})
        a1, a2 = sched.schedule_many(PID, [{"action": "two"}, {"action": "three"}])
        assert [a["slot"] for a in (a0, a1, a2)] == [0, 1, 2]
        assert a1["body"] == {"action": "two"}
        assert a1["process"] == PID and a1["path"] == "compute"
        assert len({a0["hash-chain"], a1["hash-chain"], a2["hash-chain"]}) == 3
        assert sched.current(PID) == 2
        assert sched.assignment(PID, 1) == a1
        assert sched.assignment(PID, 3) is NOT_FOUND
    finally:
        sched.close()


def test_transport_keys_are_not_scheduled(backend: ModuleType, store: Store) -> None:
    sched = Scheduler(store)
    try:
        a = sched.schedule(PID, {"path": "/x/schedule", "method": "POST", "action": "go"})
        assert a["body"] == {"action": "go"}
    finally:
        sched.close()


def test_many_threads_get_gapless_unique_slots_that_survive_reopen(
    backend: ModuleType, tmp_path: Path
) -> None:
    threads, per_thread = 64, 50
    store = LMDBStore(tmp_path / "db")
    sched = Scheduler(store)
    got: list[tuple[int, str]] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(per_thread):
            a = sched.schedule(PID, {"sender": str(t), "n": i})
            with lock:
                got.append((a["slot"], f"{t}:{i}"))

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    sched.close()
    store.close()

    slots = sorted(s for s, _ in got)
    assert slots == list(range(threads * per_thread))

    reopened = LMDBStore(tmp_path / "db")
    again = Scheduler(reopened)
    try:
        assert again.current(PID) == threads * per_thread - 1
        seen = set()
        for slot, who in got:
            body = again.assignment(PID, slot)["body"]
            assert f"{body['sender']}:{body['n']}" == who
            seen.add(who)
        assert len(seen) == threads * per_thread
        # per sender, messages keep their order
        last: dict[str, int] = {}
        for slot in range(threads * per_thread):
            body = again.assignment(PID, slot)["body"]
            assert body["n"] > last.get(body["sender"], -1)
            last[body["sender"]] = body["n"]
        assert again.schedule(PID, {"after": "reopen"})["slot"] == threads * per_thread
    finally:
        again.close()
        reopened.close()


class _FailingStore:
    """Delegates to a store but fails the next ``fail`` commits."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.fail = 0

    def read(self, path: str) -> bytes | None:
        return self.inner.read(path)

    def write_many(self, items: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreError("simulated full disk")
        self.inner.write_many(items)


def test_a_failed_commit_consumes_no_slot(backend: ModuleType, store: Store) -> None:
    failing = _FailingStore(store)
    sched = Scheduler(failing)
    try:
        assert sched.schedule(PID, {"n": 0})["slot"] == 0
        failing.fail = 1
        with pytest.raises(StoreError, match="simulated full disk"):
            sched.schedule(PID, {"n": 1})
        assert sched.current(PID) == 0
        assert sched.schedule(PID, {"n": 2})["slot"] == 1
        assert sched.assignment(PID, 1)["body"] == {"n": 2}
    finally:
        sched.close()


def test_processes_have_independent_slots(backend: ModuleType, store: Store) -> None:
    sched = Scheduler(store)
    try:
        other = "Q" * 43
        assert sched.schedule(PID, {"a": 1})["slot"] == 0
        assert sched.schedule(other, {"a": 1})["slot"] == 0
        assert sched.schedule(PID, {"a": 2})["slot"] == 1
    finally:
        sched.close()


def test_scheduling_a_non_message_is_a_clear_error(backend: ModuleType, store: Store) -> None:
    sched = Scheduler(store)
    try:
        with pytest.raises(Exception, match="can only schedule a message"):
            sched.schedule(PID, "nope")  # type: ignore[arg-type]
    finally:
        sched.close()


def test_assignments_read_a_range_in_order_within_a_byte_budget(
    backend: ModuleType, store: Store
) -> None:
    sched = Scheduler(store)
    try:
        stored = sched.schedule_many(PID, [{"n": i, "data": "x" * 1000} for i in range(150)])
        got = sched.assignments(PID, 3, 200)  # more than one read group, past the end
        assert got == stored[3:]
        assert sched.assignments(PID, 150, 160) == []
        small = sched.assignments(PID, 0, 149, max_bytes=5000)
        assert small == stored[: len(small)] and 1 < len(small) < 10
        assert sched.assignments(PID, 7, 149, max_bytes=1) == [stored[7]]  # at least one
    finally:
        sched.close()
