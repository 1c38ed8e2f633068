"""Batched message handling gives exactly what one message at a time gives.

``AosProcess.handle_many`` crosses into Lua once per batch; the process runtime uses it
(through ``lua@5.3a``'s ``prefetch`` hint) while catching up on many scheduled slots. These
tests run the same messages both ways — including messages that exceed the instruction
budget or the memory cap, results that cannot be converted, handler errors and non-UTF-8
output — and compare every result, then the ledger a node computes both ways.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hbeam.errors import AOError
from hbeam.lua import TOKEN_SOURCE, AosProcess
from hbeam.lua import aos as aos_module
from hbeam.node import Node

OWNER = "owner-" + "o" * 37
ADDRESSES = [f"holder-{i:02d}-" + "h" * 34 for i in range(6)]
SEED = "\n".join(f'Balances["{a}"] = "1000"' for a in ADDRESSES)


def _transfer(rng: random.Random) -> dict[str, Any]:
    return {
        "from": rng.choice(ADDRESSES),
        "action": "Transfer",
        "recipient": rng.choice(ADDRESSES),
        "quantity": str(rng.randint(1, 400)),
    }


def _eval(code: str) -> dict[str, Any]:
    return {"from": OWNER, "action": "Eval", "data": code}


TROUBLE = [
    _eval("while true do end"),  # instruction budget
    _eval("local t = {} while true do t[#t + 1] = string.rep('x', 4096) .. #t end"),  # memory
    _eval("Send({ Target = 'x', Fn = function() end })"),  # a result that cannot cross
    _eval("error('handler failed')"),  # a handler error (a result, not a failure)
    _eval("print('\\xff\\xfe not UTF-8'); Send({ Target = 'x', Data = '\\xc3' })"),
    _eval("Counter = (Counter or 0) + 1; print(Counter)"),
]


def _messages(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        msg = _transfer(rng) if rng.random() < 0.8 else dict(rng.choice(TROUBLE))
        msg["owner"] = msg["from"]
        msg["id"] = f"m{seed}-{i}"
        msg["timestamp"] = 1_700_000_000_000 + i
        out.append(msg)
    return out


def _process(history: list[dict[str, Any]]) -> AosProcess:
    proc = AosProcess(
        max_instructions=2_000_000,
        max_memory=48 * 1024 * 1024,
        history=lambda: ((m, None) for m in history),
    )
    proc.boot({"id": "p" * 43, "owner": OWNER}, [("token.lua", TOKEN_SOURCE)])
    proc.handle({"id": "seed", "from": OWNER, "owner": OWNER, "action": "Eval", "data": SEED})
    return proc


def _one_at_a_time(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    proc = _process(kept)
    results = []
    for msg in msgs:
        result = proc.handle(msg)
        results.append(result)
        if not proc.broken:
            kept.append(msg)
    proc.close()
    return results


def _batched(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    proc = _process(kept)
    results: list[dict[str, Any]] = []
    while len(results) < len(msgs):
        done = proc.handle_many(msgs[len(results) :])
        assert done, "handle_many made no progress"
        kept.extend(msgs[len(results) : len(results) + len(done)])
        if proc.broken:
            kept.pop()  # the message that broke the VM is not part of its history
        results.extend(done)
    proc.close()
    return results


def _scheduled(seed: int, n: int) -> list[dict[str, Any]]:
    """:func:`_messages` as a scheduler takes them (it assigns ids and timestamps)."""
    return [
        {k: v for k, v in m.items() if k not in ("id", "owner", "timestamp")}
        for m in _messages(seed, n)
    ]


def _node(path: Any) -> Node:
    """A node whose Lua limits the troublesome messages reach quickly."""
    return Node(
        f"lmdb:{path}",
        eager=False,
        lua_instruction_limit=2_000_000,
        lua_memory_limit=48 * 1024 * 1024,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_match_one_message_at_a_time(seed: int) -> None:
    msgs = _messages(seed, 60)
    expected = _one_at_a_time(msgs)
    got = _batched(msgs)
    assert got == expected
    errors = [r["error"] for r in expected if r["error"]]
    assert errors, "the mix must include failures"


def test_batches_split_at_the_wire_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aos_module, "BATCH_VALUES", 40)  # a few messages per crossing
    msgs = _messages(7, 30)
    assert _batched(msgs) == _one_at_a_time(msgs)


def test_a_limit_ends_the_batch_and_marks_the_vm_broken() -> None:
    proc = _process([])
    msgs = _messages(9, 3)
    msgs[1] = {**msgs[1], **_eval("while true do end"), "owner": OWNER}
    results = proc.handle_many(msgs)
    assert len(results) == 2
    assert "instruction limit" in results[1]["error"]
    assert proc.broken
    proc.close()


def test_a_node_computes_the_same_ledger_batched_and_slot_by_slot(tmp_path: Any) -> None:
    msgs = _scheduled(11, 80)
    msgs.append(_eval("Last = true"))  # ends on a slot that succeeds
    ledgers = []
    for name, batch in (("one", False), ("many", True)):
        node = _node(tmp_path / name)
        pid = node.spawn_lua(TOKEN_SOURCE, owner=OWNER)
        node.schedule(pid, _eval(SEED))
        node.now(pid)
        if batch:
            node.schedule_many(pid, msgs)
            node.now(pid)
        else:
            for msg in msgs:
                node.schedule(pid, msg)
                try:
                    node.now(pid)  # one slot per compute: no prefetch
                except AOError:
                    pass  # that slot's error is recorded
        state = node.now(pid)
        errors = [
            slot
            for slot in range(1, node.slot(pid) + 1)
            if node.store.read(f"computed/{pid}/{slot}/error") is not None
        ]
        ledgers.append((dict(state["cache"]["balances"]), errors))
        node.close()
    assert ledgers[0] == ledgers[1]
    assert ledgers[0][1], "some slots must have failed"


def _seeded(path: Any) -> tuple[Node, str]:
    """A fresh node at ``path`` with a token process whose seed is computed."""
    node = _node(path)
    pid = node.spawn_lua(TOKEN_SOURCE, owner=OWNER)
    node.schedule(pid, _eval(SEED))
    node.now(pid)
    return node, pid


def _every_slot(path: Any, msgs: list[dict[str, Any]]) -> list[Any]:
    """A token process on a fresh node at ``path``, seeded, then ``msgs`` scheduled at
    once and computed: the state after every slot (or its error's text)."""
    node = _node(path)
    pid = node.spawn_lua(TOKEN_SOURCE, owner=OWNER)
    node.schedule_many(pid, [_eval(SEED), *msgs])
    try:
        node.now(pid)
    except AOError:
        pass
    per_slot: list[Any] = []
    for slot in range(node.slot(pid) + 1):
        try:
            per_slot.append(node.compute(pid, slot))
        except AOError as exc:
            per_slot.append(str(exc))
    node.close()
    return per_slot


@pytest.mark.parametrize("ahead_batch", [3, 64])
def test_every_state_is_the_same_with_and_without_the_fast_paths(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, ahead_batch: int
) -> None:
    """Prefetch (its worker applying ``ahead_batch`` slots at a time while the process
    computes) and compiled steps change how slots are computed, never what they are."""
    from hbeam import ao
    from hbeam.devices import lua as lua_device
    from hbeam.node.process import ProcessRuntime

    monkeypatch.setattr(lua_device, "AHEAD_BATCH", ahead_batch)
    real_lane = lua_device.lane
    taken: list[int] = []

    def counted_lane(base: Any, key: str, opts: Any = None) -> Any:
        ready = real_lane(base, key, opts)
        if ready is None:
            return None

        def count(msg: Any, req: Any) -> Any:
            value = ready(msg, req)
            if value is not None:
                taken.append(req["slot"])
            return value

        return count

    monkeypatch.setattr(lua_device, "lane", counted_lane)

    msgs = _scheduled(21, 40)
    states = []
    for name in ("fast", "plain"):
        if name == "plain":
            monkeypatch.setattr(ao, "key_step", lambda *a, **k: None)
            monkeypatch.setattr(ProcessRuntime, "_prefetch", lambda self, state, assignments: None)
        states.append(_every_slot(tmp_path / name, msgs))
        if name == "fast":
            assert taken, "the compiled Fold ran lua@5.3a's lane"
    assert states[0] == states[1]


def test_closing_a_node_while_slots_are_applied_ahead(tmp_path: Any) -> None:
    """The prefetch worker never keeps a node from closing, nor a caller waiting."""
    import threading
    import time

    node = Node(f"lmdb:{tmp_path / 'node'}", eager=False)
    pid = node.spawn_lua(TOKEN_SOURCE, owner=OWNER)
    rng = random.Random(5)
    node.schedule_many(pid, [_eval(SEED)] + [_transfer(rng) for _ in range(3000)])
    outcome: list[Any] = []

    def compute() -> None:
        try:
            outcome.append(node.now(pid))
        except AOError as exc:  # the node closed under it: an error, not a hang
            outcome.append(exc)

    worker = threading.Thread(target=compute)
    worker.start()
    time.sleep(0.2)
    node.close()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert len(outcome) == 1


def test_a_message_the_worker_cannot_convert_fails_only_its_slot(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prefetch worker makes the aos messages itself, a batch at a time; it stops
    before one it cannot make, and that slot fails as it does computed on its own."""
    from hbeam.devices import lua as lua_device
    from hbeam.node.process import ProcessRuntime

    real = lua_device._aos_message

    def picky(assignment: Any) -> Any:
        body = assignment.get("body")
        if body is not None and body.get("quantity") == "777":
            raise ValueError("cannot make an aos message of 777")
        return real(assignment)

    monkeypatch.setattr(lua_device, "_aos_message", picky)
    rng = random.Random(31)
    msgs = [_transfer(rng) for _ in range(30)]
    msgs[12]["quantity"] = "777"
    outcomes = []
    for name in ("ahead", "one by one"):
        if name == "one by one":
            monkeypatch.setattr(ProcessRuntime, "_prefetch", lambda self, state, assignments: None)
        outcomes.append(_every_slot(tmp_path / name.replace(" ", "-"), msgs))
    assert outcomes[0] == outcomes[1]
    # slot 14 (the 14th message after the seed) is the first that fails, on its message
    assert all(not isinstance(o, str) for o in outcomes[0][:14])
    assert "cannot make an aos message of 777" in outcomes[0][14]


def test_runs_of_slots_share_one_worker_thread(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker thread applies run after run of slots ahead; idle, it ends, and the
    next run starts another."""
    import threading
    import time

    from hbeam.devices import lua as lua_device

    monkeypatch.setattr(lua_device, "WORKER_IDLE", 0.2)
    real = lua_device.LiveLua._run_ahead
    threads: list[threading.Thread] = []

    def recorded(self: Any, *args: Any) -> None:
        threads.append(threading.current_thread())
        real(self, *args)

    def working_while_applying(self: Any, *args: Any) -> None:
        assert self.working, "a run in progress is working"
        recorded(self, *args)

    monkeypatch.setattr(lua_device.LiveLua, "_run_ahead", working_while_applying)
    rng = random.Random(41)
    node, pid = _seeded(tmp_path / "node")
    for _ in range(2):
        node.schedule_many(pid, [_transfer(rng) for _ in range(20)])
        supply = sum(int(v) for v in node.now(pid)["cache"]["balances"].values())
    assert len(threads) == 2 and threads[0] is threads[1]
    rt = node.runtime(pid)
    live = rt.live[lua_device.LIVE_KEY]
    assert not live.working and not rt._working()  # nothing on its way: no GIL hand-over
    deadline = time.monotonic() + 5
    while live._thread is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live._thread is None, "an idle worker thread ends"
    node.schedule_many(pid, [_transfer(rng) for _ in range(20)])
    balances = dict(node.now(pid)["cache"]["balances"])
    assert len(threads) == 3 and threads[2] is not threads[0]
    assert sum(int(v) for v in balances.values()) == supply  # transfers conserve it
    worker = live._thread
    node.close()
    if worker is not None:
        worker.join(timeout=5)
        assert not worker.is_alive(), "closing ends the worker thread"


def test_the_compiled_step_is_kept_from_run_to_run(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process compiles its compute step once, and again after a device registration
    (a kept step would then take the full resolver on every slot)."""
    from hbeam import ao, device

    real = ao.key_step
    compiled: list[str] = []

    def counted(base: Any, key: str, **kwargs: Any) -> Any:
        if base.get("device") == "stack@1.0":
            compiled.append(key)
        return real(base, key, **kwargs)

    monkeypatch.setattr(ao, "key_step", counted)
    rng = random.Random(43)
    node, pid = _seeded(tmp_path / "node")
    for _ in range(3):
        node.schedule_many(pid, [_transfer(rng) for _ in range(10)])
        node.now(pid)
    assert compiled == ["compute"]
    device.register("test-batch-noop@1.0", object())
    try:
        node.schedule_many(pid, [_transfer(rng) for _ in range(10)])
        state = node.now(pid)
    finally:
        device.unregister("test-batch-noop@1.0")
    assert compiled == ["compute", "compute"]
    assert state["at-slot"] == node.slot(pid)
    node.close()


def test_no_worker_thread_to_be_had_computes_slot_by_slot(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When no thread can be started the slots are applied one by one: nothing waits
    for a worker that never ran."""
    import threading

    from hbeam.devices import lua as lua_device

    node, pid = _seeded(tmp_path / "node")
    real_start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        if self.name.startswith("hbeam-lua-"):
            raise RuntimeError("can't start new thread")
        real_start(self)

    rng = random.Random(47)
    node.schedule_many(pid, [_transfer(rng) for _ in range(20)])
    states: list[Any] = []
    computing = threading.Thread(target=lambda: states.append(node.now(pid)), daemon=True)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    computing.start()
    computing.join(timeout=60)
    assert states, "computing the slots must not wait for a worker that never started"
    assert states[0]["at-slot"] == node.slot(pid)
    live = node.runtime(pid).live[lua_device.LIVE_KEY]
    assert not live.busy and live._thread is None
    node.close()
