"""Processes on a node: spawn, schedule, compute/now, restart, concurrency, crashes, errors."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import hbeam
import pytest
from hbeam import DeviceError, NotFound, device
from hbeam.node import Node


class Counter:
    """A trivial execution device: ``count`` += the message's ``add`` (default 1)."""

    def init(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("count", 0)

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        body = req["body"]
        if body.get("fail") == "yes":
            raise RuntimeError("asked to fail")
        return base.merge({"count": base.get("count", 0) + int(body.get("add", 1))})


class Doubler:
    """A second stack member: records twice the count under ``double``."""

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("double", base.get("count", 0) * 2)


class Sender:
    """Sends one outbox message, ``add=1``, to the message's ``to``."""

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        outbox = {"1": {"target": req["body"]["to"], "add": 1}}
        return base.set("results", {"outbox": outbox})


device.register("test-counter@1.0", Counter())
device.register("test-doubler@1.0", Doubler())
device.register("test-sender@1.0", Sender())

COUNTER = {"execution-device": "test-counter@1.0", "name": "counter"}
STACKED = {
    "execution-device": "stack@1.0",
    "device-stack": ["test-counter@1.0", "test-doubler@1.0"],
    "name": "stacked",
}


@pytest.fixture(params=["lmdb", "fs", "memory"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory:" if request.param == "memory" else f"{request.param}:{tmp_path / 'node'}"


@pytest.fixture
def lmdb_node(backend: ModuleType, tmp_path: Path) -> Iterator[Node]:
    with Node(f"lmdb:{tmp_path / 'node'}") as node:
        yield node


def test_spawn_schedule_now_and_compute(backend: ModuleType, store_spec: str) -> None:
    with Node(store_spec) as node:
        pid = node.spawn(STACKED)
        assert len(pid) == 43
        slots = [node.schedule(pid, {"add": n})["slot"] for n in (1, 2, 3)]
        assert slots == [1, 2, 3]  # slot 0 is the definition itself
        state = node.now(pid)
        assert state["count"] == 6 and state["double"] == 12 and state["at-slot"] == 3
        assert state["device"] == "process@1.0"
        assert node.compute(pid, 1)["count"] == 1
        assert node.resolve(f"/{pid}~process@1.0/compute&slot+integer=2/count") == 3
        assert node.resolve(f"/{pid}~process@1.0/now/double") == 12
        assert node.resolve(f"/{pid}~process@1.0/slot/current") == 3
        assert node.spawn(STACKED) == pid  # idempotent


@pytest.mark.parametrize("kind", ["lmdb", "fs"])
def test_state_survives_closing_and_reopening(
    backend: ModuleType, tmp_path: Path, kind: str
) -> None:
    spec = f"{kind}:{tmp_path / 'node'}"
    with Node(spec) as node:
        pid = node.spawn(COUNTER)
        node.schedule_many(pid, [{"add": 5}, {"add": 7}])
        assert node.now(pid)["count"] == 12
    with Node(spec) as node:
        assert node.now(pid)["count"] == 12
        node.schedule(pid, {"add": 1})
        assert node.now(pid)["count"] == 13


def test_outbox_reaches_local_processes_spawned_before_after_and_across_restarts(
    backend: ModuleType, tmp_path: Path
) -> None:
    spec = f"lmdb:{tmp_path / 'node'}"
    wallet = "w" * 43
    with Node(spec) as node:
        sender = node.spawn({"execution-device": "test-sender@1.0", "name": "sender"})
        early = node.spawn(COUNTER)
        node.schedule_many(sender, [{"to": wallet}, {"to": early}])
        node.now(sender)
        late = node.spawn({**COUNTER, "name": "late"})  # after the first delivery
        node.schedule(sender, {"to": late})
        node.now(sender)
        assert node.now(early)["count"] == 1
        assert node.now(late)["count"] == 1
        with pytest.raises(NotFound):
            node.now(wallet)  # a wallet is no process: nothing was scheduled on it
    with Node(spec) as node:
        node.schedule_many(sender, [{"to": early}, {"to": late}, {"to": wallet}])
        node.now(sender)
        assert node.now(early)["count"] == 2
        assert node.now(late)["count"] == 2


def test_now_is_never_stale(lmdb_node: Node) -> None:
    pid = lmdb_node.spawn(COUNTER)
    lmdb_node.schedule(pid, {"add": 1})
    assert lmdb_node.resolve(f"/{pid}~process@1.0/now/count") == 1
    lmdb_node.schedule(pid, {"add": 1})
    assert lmdb_node.resolve(f"/{pid}~process@1.0/now/count") == 2


def test_64_threads_scheduling_on_one_process(lmdb_node: Node) -> None:
    pid = lmdb_node.spawn(COUNTER)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(50):
                lmdb_node.schedule(pid, {"add": 1})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert lmdb_node.slot(pid) == 3200
    state = lmdb_node.now(pid)
    assert state["count"] == 3200 and state["at-slot"] == 3200
    bodies = {lmdb_node.scheduler.assignment(pid, s)["slot"] for s in range(1, 3201)}
    assert bodies == set(range(1, 3201))


def test_unknown_process_is_not_found(lmdb_node: Node) -> None:
    with pytest.raises(NotFound):
        lmdb_node.schedule("x" * 43, {"add": 1})
    with pytest.raises(NotFound):
        lmdb_node.now("nope")


def test_unknown_execution_device_fails_at_spawn(lmdb_node: Node) -> None:
    with pytest.raises(DeviceError, match=r"no-such-device@9.9"):
        lmdb_node.spawn({"execution-device": "no-such-device@9.9"})
    with pytest.raises(DeviceError, match=r"missing@1.0"):
        lmdb_node.spawn({"execution-device": "stack@1.0", "device-stack": ["missing@1.0"]})
    with pytest.raises(DeviceError, match="execution-device"):
        lmdb_node.spawn({"name": "no device"})


def test_a_failing_slot_is_an_error_result_and_the_process_goes_on(lmdb_node: Node) -> None:
    pid = lmdb_node.spawn(COUNTER)
    lmdb_node.schedule(pid, {"add": 2})
    lmdb_node.schedule(pid, {"fail": "yes"})
    lmdb_node.schedule(pid, {"add": 3})
    assert lmdb_node.now(pid)["count"] == 5
    with pytest.raises(DeviceError, match=r"slot 2 .* failed: .*asked to fail"):
        lmdb_node.compute(pid, 2)
    with pytest.raises(hbeam.AOError, match="slot 2"):
        lmdb_node.resolve(f"/{pid}~process@1.0/compute&slot+integer=2")
    assert lmdb_node.compute(pid, 1)["count"] == 2
    assert lmdb_node.compute(pid, 3)["count"] == 5


def test_subscribers_hear_every_computed_slot(lmdb_node: Node) -> None:
    pid = lmdb_node.spawn(COUNTER)
    lmdb_node.now(pid)
    with lmdb_node.subscribe(pid) as sub:
        for _ in range(3):
            lmdb_node.schedule(pid, {"add": 1})
        slots = [sub.get(timeout=10)["slot"] for _ in range(3)]  # type: ignore[index]
    assert slots == [1, 2, 3]


def test_snapshot_then_restart_replays_only_the_tail(backend: ModuleType, tmp_path: Path) -> None:
    spec = f"lmdb:{tmp_path / 'node'}"
    total = 10_000
    with Node(spec, snapshot_every=1000, eager=False) as node:
        pid = node.spawn(COUNTER)
        for _ in range(0, total, 2500):
            node.schedule_many(pid, [{"add": 1}] * 2500)
        assert node.now(pid)["count"] == total
    with Node(spec, snapshot_every=1000, eager=False) as node:
        node.schedule_many(pid, [{"add": 1}] * 5)
        state = node.now(pid)
        assert state["count"] == total + 5
        assert node.runtime(pid).replayed == 5  # from the snapshot at slot 10,000


def test_stack_fold_passes_and_multipass(backend: ModuleType) -> None:
    from hbeam import ao

    class Tally:
        def compute(self, base: Any, req: Any, opts: Any) -> Any:
            return base.set("seen", [*base.get("seen", []), base.get("pass")])

    device.register("test-tally@1.0", Tally())
    msg = {
        "device": "stack@1.0",
        "device-stack": ["test-tally@1.0", "multipass@1.0"],
        "passes": 3,
    }
    result = ao.resolve(msg, "compute")
    assert result["seen"] == [1, 2, 3]
    assert "pass" not in result and result["device"] == "stack@1.0"
    # Map mode: each device on the original message (no pass counter), results by index
    mapped = ao.resolve(msg, {"path": "compute", "mode": "Map"})
    assert mapped["1"]["seen"] == [None]
    assert "2" not in mapped  # multipass answers `pass`, not ok: left out


def test_a_device_without_the_key_is_skipped_in_a_fold(backend: ModuleType) -> None:
    from hbeam import ao

    msg = {"device": "stack@1.0", "device-stack": ["test-doubler@1.0"], "count": 4}
    assert ao.resolve(msg, "compute")["double"] == 8
    # test-doubler has no `init`: skipped, the message comes back unchanged
    assert ao.resolve(msg, "init")["count"] == 4


_CHILD = textwrap.dedent(
    """
    import os, sys
    os.environ["HBEAM_BACKEND"] = sys.argv[2]
    from hbeam import device
    from hbeam.node import Node
    sys.path.insert(0, sys.argv[3])
    from test_process import Counter, COUNTER
    device.register("test-counter@1.0", Counter())
    node = Node("lmdb:" + sys.argv[1], eager=False)
    pid = node.spawn(COUNTER)
    print("pid", pid, flush=True)
    if sys.argv[4] == "thread":
        n = 0
        while True:
            n += 1
            a = node.schedule(pid, {"add": n})
            print("ack", a["slot"], n, flush=True)
    import asyncio, itertools
    numbers = itertools.count(1)

    async def sender():
        while True:
            n = next(numbers)
            a = await node.schedule_async(pid, {"add": n})
            print("ack", a["slot"], n, flush=True)

    async def senders():
        await asyncio.gather(*(sender() for _ in range(8)))

    asyncio.run(senders())
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("senders", "runs"), [("thread", 20), ("async", 8)])
def test_sigkill_never_loses_an_acknowledged_message(
    backend: ModuleType, tmp_path: Path, senders: str, runs: int
) -> None:
    """``schedule`` from a thread, or ``schedule_async`` from 8 coroutines at once: every
    slot acknowledged before a SIGKILL is in the store after it."""
    rng = random.Random(1234)
    here = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for run in range(runs):
        db = tmp_path / f"node{run % 4}"  # later runs reopen stores that were killed before
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(db),
                backend.__name__.rsplit("_", 1)[-1],
                here,
                senders,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        pid = proc.stdout.readline().split()[1]
        first = proc.stdout.readline()
        assert first.startswith("ack")
        time.sleep(rng.uniform(0.01, 0.15))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.stdout.close()
        proc.wait()
        # the kill can cut the last line mid-write: only newline-terminated lines count
        complete = rest if rest.endswith("\n") else rest[: rest.rfind("\n") + 1]
        acked = [first, *complete.splitlines()]
        acks = [(int(a.split()[1]), int(a.split()[2])) for a in acked if a.startswith("ack")]
        with Node(f"lmdb:{db}", eager=False) as node:
            last = node.slot(pid)
            for slot, n in acks:
                assert slot <= last
                assert node.scheduler.assignment(pid, slot)["body"]["add"] == n
            # every stored slot is a gapless prefix, and the state replays from scratch
            expected = sum(
                node.scheduler.assignment(pid, s)["body"]["add"] for s in range(1, last + 1)
            )
            assert node.now(pid)["count"] == expected
