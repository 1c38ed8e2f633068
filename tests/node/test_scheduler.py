"""The scheduler: durable, gapless, unique slots under concurrency; failures consume nothing."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from blake3 import blake3
from hbeam import NOT_FOUND, AOError, StoreError
from hbeam.errors import InvalidMessage
from hbeam.node.scheduler import Scheduler, chain_step
from hbeam.store import FSStore, LMDBStore, MemoryStore, Store

PID = "P" * 43


@pytest.fixture(params=["lmdb", "memory", "fs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "lmdb":
        s: Store = LMDBStore(tmp_path / "db")
    elif request.param == "fs":
        s = FSStore(tmp_path / "fs", durable=False)  # the same rules; fsyncs only cost time
    else:
        s = MemoryStore()
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

    def read_many(self, paths: Any) -> list[bytes | None]:
        return self.inner.read_many(paths)

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


def test_assignments_kept_in_memory_are_what_the_store_holds(
    backend: ModuleType, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hbeam import _core
    from hbeam.node import scheduler as scheduler_module

    monkeypatch.setattr(scheduler_module, "_RECENT", 6)  # most slots then come from the store
    shapes: list[dict[str, Any]] = [
        {"n": 1, "f": 0.5, "big": 2**70, "neg": -3, "yes": True, "nil": None},
        {"data": b"\x00\xffbytes", "text": "ünïcode ✓", "empty": ""},
        {"nested": {"a": {"b": [1, "two", {"three": 3}]}}, "list": [1.5, b"x", []]},
        {"Tag-Case": "kept", "action": "Transfer", "quantity": "10"},
    ]
    sched = Scheduler(store)
    try:
        made = sched.schedule_many(PID, shapes) + [sched.schedule(PID, m) for m in shapes]
        decode = _core.impl.decode
        stored = [decode(store.read(f"assignments/{PID}/{slot}")) for slot in range(8)]
        assert made == stored
        assert sched.assignments(PID, 0, 7) == stored  # the oldest two from the store
        assert [sched.assignment(PID, slot) for slot in range(8)] == stored
    finally:
        sched.close()
    fresh = Scheduler(store)  # nothing in memory: everything read back
    try:
        assert fresh.assignments(PID, 0, 7) == stored
    finally:
        fresh.close()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_assignments_and_the_hash_chain_are_exactly_as_specified(
    backend: ModuleType, store: Store
) -> None:
    """Every field, the stored bytes, and chain = blake3(previous chain ‖ raw message ID),
    computed here from first principles — across calls and a new scheduler on the store."""
    bodies: list[dict[str, Any]] = [{"n": i, "data": "x" * i} for i in range(5)]
    sched = Scheduler(store, clock=lambda: 1_700_000_000.123)
    try:
        got = [*sched.schedule_many(PID, bodies[:2]), sched.schedule(PID, bodies[2])]
    finally:
        sched.close()
    sched = Scheduler(store, clock=lambda: 1_700_000_000.123)
    try:
        got += sched.schedule_many(PID, bodies[3:])
    finally:
        sched.close()
    chain = b""
    for slot, (body, assignment) in enumerate(zip(bodies, got, strict=True)):
        raw_id = blake3(backend.encode(backend.Message(body))).digest()
        chain = blake3(chain + raw_id).digest()
        assert assignment == {
            "path": "compute",
            "data-protocol": "ao",
            "variant": "ao.N.1",
            "type": "Assignment",
            "process": PID,
            "epoch": "0",
            "slot": slot,
            "timestamp": 1_700_000_000_123,
            "block-height": 0,
            "block-timestamp": 1_700_000_000,
            "hash-chain": _b64(chain),
            "message": _b64(raw_id),
            "body": body,
        }
        assert store.read(f"assignments/{PID}/{slot}") == backend.encode(assignment)
        assert chain_step(chain, _b64(raw_id)) == (
            blake3(chain + raw_id).digest(),
            _b64(blake3(chain + raw_id).digest()),
        )
    assert store.read(f"scheduler/{PID}/chain") == chain
    assert store.read(f"scheduler/{PID}/current") == b"4"


def test_a_request_that_fails_part_way_leaves_nothing_behind(
    backend: ModuleType, store: Store
) -> None:
    def dedup_key(message: Mapping[str, Any]) -> str | None:
        if "bad" in message:
            raise ValueError("no key for this one")
        key = message.get("key")
        return key if isinstance(key, str) else None

    sched = Scheduler(store, dedup_key=dedup_key)
    try:
        with pytest.raises(InvalidMessage, match=r"cannot schedule on P+: no key for this one"):
            sched.schedule_many(PID, [{"key": "one"}, {"n": 1}, {"bad": True}])
        assert sched.current(PID) == -1
        assert store.read(f"assignments/{PID}/0") is None
        assert store.read(f"dedup/{PID}/one") is None
        other = sched.schedule(PID, {"n": "other"})
        assert other["slot"] == 0
        first = sched.schedule(PID, {"key": "one"})  # not mistaken for a repeat
        assert first["slot"] == 1 and first["body"] == {"key": "one"}
        assert sched.schedule(PID, {"key": "one"}) == first  # now it is one
        assert sched.current(PID) == 1
    finally:
        sched.close()


def test_transport_keys_go_however_the_message_is_given(backend: ModuleType, store: Store) -> None:
    sched = Scheduler(store)
    try:
        cases: list[tuple[Any, dict[str, Any]]] = [
            ({"action": "go", 1: "one"}, {"action": "go", "1": "one"}),
            ({b"path": "/x", b"action": "go"}, {"action": "go"}),  # keys normalised first
            ({"Path": "/x", "action": "go"}, {"Path": "/x", "action": "go"}),  # exact keys only
            (OrderedDict(method="POST", action="go"), {"action": "go"}),
            (backend.Message({"signature": "s", "action": "go"}), {"action": "go"}),
            (backend.Message({"action": "go"}), {"action": "go"}),
        ]
        for given, scheduled in cases:
            assert sched.schedule(PID, given)["body"] == scheduled
    finally:
        sched.close()


def _keyed(message: Mapping[str, Any]) -> str | None:
    key = message.get("key")
    if "bad" in message:
        raise ValueError("no key for this one")
    return key if isinstance(key, str) else None


def test_repeats_get_the_first_assignment_within_a_request_a_batch_and_later(
    backend: ModuleType, store: Store
) -> None:
    sched = Scheduler(store, dedup_key=_keyed)
    try:
        got = sched.schedule_many(
            PID, [{"key": "a"}, {"n": 1}, {"key": "a"}, {"key": "b"}, {"n": 1}, {"key": "b"}]
        )
        assert [a["slot"] for a in got] == [0, 1, 0, 2, 3, 2]
        assert got[2] is got[0] and got[5] is got[3]
        assert sched.current(PID) == 3
        assert store.read(f"dedup/{PID}/a") == b"0" and store.read(f"dedup/{PID}/b") == b"2"
        # repeats in a later call (its own commit) are recognised from the store
        again = sched.schedule_many(PID, [{"n": 2}, {"key": "b"}, {"key": "c"}, {"key": "a"}])
        assert [a["slot"] for a in again] == [4, 2, 5, 0]
        assert again[1] == got[3] and again[3] == got[0]
        assert sched.current(PID) == 5
        # the chain runs over the assigned slots only, in slot order
        chain = b""
        for slot in range(6):
            assignment = sched.assignment(PID, slot)
            raw_id = base64.urlsafe_b64decode(assignment["message"] + "=")
            chain = blake3(chain + raw_id).digest()
            assert assignment["hash-chain"] == _b64(chain)
        assert store.read(f"scheduler/{PID}/chain") == chain
    finally:
        sched.close()


def test_concurrent_requests_in_one_commit_share_repeats(backend: ModuleType, store: Store) -> None:
    sched = Scheduler(store, dedup_key=_keyed)
    try:
        results: list[list[Any]] = []
        lock = threading.Lock()

        def worker(i: int) -> None:
            got = sched.schedule_many(PID, [{"key": "same"}, {"n": i}])
            with lock:
                results.append(got)

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        firsts = {r[0]["slot"] for r in results}
        assert len(firsts) == 1  # one slot for the keyed message, whichever request won
        slots = sorted({r[1]["slot"] for r in results} | firsts)
        assert slots == list(range(17))
        assert sched.current(PID) == 16
    finally:
        sched.close()


def test_the_first_bad_message_decides_the_error(backend: ModuleType, store: Store) -> None:
    """A message that cannot be assigned fails the request before a later message whose
    dedup key fails, and the request leaves nothing behind either way."""
    deep: Any = {"leaf": 1}
    for _ in range(backend.MAX_DEPTH - 1):
        deep = {"a": deep}
    sched = Scheduler(store, dedup_key=_keyed)
    try:
        with pytest.raises(InvalidMessage, match=r"nesting deeper than \d+ levels at key 'body'"):
            sched.schedule_many(PID, [{"key": "k"}, deep, {"bad": True}])
        with pytest.raises(InvalidMessage, match=r"cannot schedule on P+: no key for this one"):
            sched.schedule_many(PID, [{"key": "k"}, {"n": 1}, {"bad": True}, deep])
        assert sched.current(PID) == -1
        assert store.read(f"dedup/{PID}/k") is None
        assert store.read(f"scheduler/{PID}/chain") is None
        first = sched.schedule_many(PID, [{"n": 0}, {"key": "k"}])
        assert [a["slot"] for a in first] == [0, 1]
        assert first[0]["hash-chain"] == _b64(
            blake3(base64.urlsafe_b64decode(first[0]["message"] + "=")).digest()
        )
    finally:
        sched.close()


# -- coroutine callers ------------------------------------------------------------------------


def test_coroutines_and_threads_share_commits_and_get_gapless_unique_slots(
    backend: ModuleType, tmp_path: Path
) -> None:
    """64 coroutines on one loop and 8 threads schedule at once: every caller gets its own
    durable slot, in its own order, and the store holds exactly what each was told."""
    coroutines, threads, each = 64, 8, 20
    store = LMDBStore(tmp_path / "db")
    sched = Scheduler(store)
    got: list[tuple[int, str]] = []
    lock = threading.Lock()

    async def sender(c: int) -> None:
        for i in range(each):
            a = await sched.schedule_async(PID, {"sender": f"c{c}", "n": i})
            got.append((a["slot"], f"c{c}:{i}"))

    async def senders() -> None:
        await asyncio.gather(*(sender(c) for c in range(coroutines)))

    def worker(t: int) -> None:
        for i in range(each):
            a = sched.schedule(PID, {"sender": f"t{t}", "n": i})
            with lock:
                got.append((a["slot"], f"t{t}:{i}"))

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    asyncio.run(senders())
    for th in pool:
        th.join()
    sched.close()
    store.close()

    total = (coroutines + threads) * each
    assert sorted(s for s, _ in got) == list(range(total))
    reopened = LMDBStore(tmp_path / "db")
    again = Scheduler(reopened)
    try:
        last: dict[str, int] = {}
        for slot, who in sorted(got):
            body = again.assignment(PID, slot, from_store=True)["body"]
            assert f"{body['sender']}:{body['n']}" == who
            assert body["n"] == last.get(body["sender"], -1) + 1
            last[body["sender"]] = body["n"]
    finally:
        again.close()
        reopened.close()


def test_a_coroutine_gets_the_same_assignment_and_errors_as_a_thread(
    backend: ModuleType, store: Store
) -> None:
    failing = _FailingStore(store)
    sched = Scheduler(failing)

    async def run() -> None:
        many = await sched.schedule_many_async(PID, [{"n": 0}, {"n": 1}])
        assert [a["slot"] for a in many] == [0, 1]
        assert many[1] == sched.assignment(PID, 1, from_store=True)
        assert await sched.schedule_many_async(PID, []) == []
        with pytest.raises(InvalidMessage, match="can only schedule a message"):
            await sched.schedule_async(PID, "nope")  # type: ignore[arg-type]
        failing.fail = 1
        with pytest.raises(StoreError, match="simulated full disk"):
            await sched.schedule_async(PID, {"n": 2})
        assert (await sched.schedule_async(PID, {"n": 3}))["slot"] == 2

    try:
        asyncio.run(run())
        assert sched.current(PID) == 2
        with pytest.raises(AOError, match="needs a running event loop"):
            sched.submit(PID, [{"n": 4}])
        assert sched.current(PID) == 2
    finally:
        sched.close()


def test_a_cancelled_coroutine_still_gets_its_slot_and_the_loop_carries_on(
    backend: ModuleType, store: Store
) -> None:
    """Cancelling an awaiting task cannot unschedule a queued message: the slot is assigned
    (no gap), the loop is not disturbed, and later callers follow it."""
    sched = Scheduler(store)

    async def run() -> None:
        task = asyncio.ensure_future(sched.schedule_async(PID, {"n": 0}))
        await asyncio.sleep(0)  # queued, not yet answered
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await sched.schedule_async(PID, {"n": 1}))["slot"] == 1

    try:
        asyncio.run(run())
        assert sched.assignment(PID, 0)["body"] == {"n": 0}
    finally:
        sched.close()


def test_a_closed_scheduler_refuses_every_caller_and_leaves_none_waiting(
    backend: ModuleType, store: Store
) -> None:
    """Closing while 16 threads schedule: each call either returns its durable assignment
    or raises AOError; none blocks for ever (a request queued after the sequencer stopped
    would)."""
    sched = Scheduler(store)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(10_000):
            try:
                sched.schedule(PID, {"t": t, "n": i})
            except AOError:
                with lock:
                    outcomes.append("closed")
                return
        with lock:
            outcomes.append("finished")

    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(16)]
    for th in pool:
        th.start()
    while sched.current(PID) < 100:
        time.sleep(0.001)
    sched.close()
    for th in pool:
        th.join(timeout=30)
    assert not any(th.is_alive() for th in pool)
    assert outcomes.count("closed") + outcomes.count("finished") == 16
    with pytest.raises(AOError, match="closed"):
        sched.schedule(PID, {"late": True})
    with pytest.raises(AOError, match="closed"):
        sched.schedule_many(PID, [])
    with pytest.raises(AOError, match="closed"):
        asyncio.run(sched.schedule_async(PID, {"late": True}))
    slots = sched.current(PID)
    for slot in range(slots + 1):
        assert sched.assignment(PID, slot, from_store=True) is not NOT_FOUND


def _until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


class _GatedStore(_FailingStore):
    """Delegates to a store; the first commit waits until ``gate`` is set, so requests
    queued meanwhile all land in the second commit."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.gate = threading.Event()
        self.commits = 0

    def write_many(self, items: Any) -> None:
        self.commits += 1
        if self.commits == 1:
            assert self.gate.wait(30)
        self.inner.write_many(items)


def test_requests_of_one_commit_are_assigned_as_one_run_and_fail_alone(
    backend: ModuleType, store: Store
) -> None:
    """Eight requests for three processes queued into one commit — one refused, one keyed
    — get what eight separate commits would give: consecutive slots per process in queue
    order, one hash chain through them, the refused request failing alone."""
    deep: Any = {"leaf": 1}
    for _ in range(backend.MAX_DEPTH - 1):  # too deep only once it is an assignment's body
        deep = {"a": deep}
    other, third = "Q" * 43, "R" * 43
    gated = _GatedStore(store)
    sched = Scheduler(gated, dedup_key=_keyed, clock=lambda: 1_700_000_000.0)
    outcomes: dict[str, Any] = {}
    requests: list[tuple[str, str, list[dict[str, Any]]]] = [
        ("a", PID, [{"n": 1}, {"n": 2}]),
        ("e", third, [{"n": 0}, {"n": 1}]),
        ("b", other, [{"n": 1}]),
        ("bad", PID, [{"n": 3}, deep]),
        ("c", PID, [{"n": 4}]),
        ("keyed", other, [{"key": "k"}]),
        ("d", other, [{"n": 2}]),
        ("f", third, [{"n": 2}]),
    ]
    try:
        first = threading.Thread(target=sched.schedule, args=(PID, {"n": 0}))
        first.start()
        _until(lambda: gated.commits == 1)
        for name, pid, messages in requests:  # queued in this order, behind the gate

            def call(name: str = name, pid: str = pid, messages: Any = messages) -> None:
                try:
                    outcomes[name] = sched.schedule_many(pid, messages)
                except InvalidMessage as exc:
                    outcomes[name] = exc

            queued = sched._queue.qsize() + 1
            threading.Thread(target=call).start()
            _until(lambda queued=queued: sched._queue.qsize() == queued)
        gated.gate.set()
        first.join(30)
        _until(lambda: len(outcomes) == len(requests))
        assert gated.commits == 2
        assert isinstance(outcomes["bad"], InvalidMessage)
        slots = {k: [a["slot"] for a in v] for k, v in outcomes.items() if k != "bad"}
        assert slots == {
            **{"a": [1, 2], "c": [3]},
            **{"b": [0], "keyed": [1], "d": [2]},
            **{"e": [0, 1], "f": [2]},
        }
        for name, got in outcomes.items():  # what each caller was told is what is stored
            if name != "bad":
                for a in got:
                    assert a == sched.assignment(a["process"], a["slot"], from_store=True)
        for pid, bodies in (
            (PID, [{"n": i} for i in (0, 1, 2, 4)]),
            (other, [{"n": 1}, {"key": "k"}, {"n": 2}]),
            (third, [{"n": i} for i in range(3)]),
        ):
            chain = b""
            for slot in range(sched.current(pid) + 1):
                stored = sched.assignment(pid, slot, from_store=True)
                assert stored["body"] == bodies[slot]
                raw_id = blake3(backend.encode(backend.Message(stored["body"]))).digest()
                chain = blake3(chain + raw_id).digest()
                assert stored["hash-chain"] == _b64(chain)
    finally:
        gated.gate.set()
        sched.close()
