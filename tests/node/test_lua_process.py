"""Lua token processes on a node: the ledger rules, restarts (close/reopen, SIGKILL), sandbox."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam.errors import DeviceError
from hbeam.lua import TOKEN_SOURCE
from hbeam.node import Node

ALICE = "alice-" + "a" * 37
BOB = "bob---" + "b" * 37
HOLDERS = [f"holder{i:02d}-" + "h" * 34 for i in range(10)]
SUPPLY = 10_000_000_000_000_000  # the blueprint's initial supply, held by the process


def settle(node: Node, *pids: str) -> None:
    """Compute every process until no push adds new slots (self-sends, notices)."""
    while True:
        before = [node.slot(p) for p in pids]
        for p in pids:
            node.now(p)
        if [node.slot(p) for p in pids] == before:
            return


def send(node: Node, pid: str, sender: str, **tags: Any) -> int:
    slot: int = node.schedule(pid, {"from": sender, **tags})["slot"]
    return slot


def outbox(node: Node, pid: str, slot: int) -> list[Any]:
    box = node.compute(pid, slot)["results"]["outbox"]
    return [box[k] for k in sorted(box, key=int)]


def balances(node: Node, pid: str) -> dict[str, int]:
    cached = node.resolve(f"/{pid}~process@1.0/now/cache/balances")
    return {k: int(v) for k, v in cached.items() if not k.startswith("priv")}


def vm_balances(node: Node, pid: str) -> dict[str, int]:
    """The balances the Lua VM holds, asked through the process (Action = Balances)."""
    slot = send(node, pid, ALICE, action="Balances")
    (reply,) = outbox(node, pid, slot)
    return {k: int(v) for k, v in json.loads(reply["data"]).items()}


@pytest.fixture
def node(backend: ModuleType, tmp_path: Path) -> Iterator[Node]:
    with Node(
        f"lmdb:{tmp_path / 'node'}",
        eager=False,
        lua_instruction_limit=2_000_000,
        lua_memory_limit=32 * 1024 * 1024,
    ) as n:
        yield n


@pytest.fixture
def token(node: Node) -> str:
    pid = node.spawn_lua(TOKEN_SOURCE, owner=ALICE)
    send(node, pid, ALICE, action="Mint", quantity="1000000")
    return pid


def test_spawn_patches_the_initial_ledger_into_the_cache(node: Node) -> None:
    pid = node.spawn_lua(TOKEN_SOURCE, owner=ALICE)
    assert balances(node, pid) == {pid: SUPPLY}
    assert node.resolve(f"/{pid}~process@1.0/now/cache/totalsupply") == str(SUPPLY)


def test_transfers_conserve_supply(node: Node, token: str) -> None:
    rng = random.Random(7)
    model = {ALICE: 1_000_000}
    messages = []
    for i in range(150):
        sender = ALICE if i < 20 else rng.choice(HOLDERS)
        recipient = rng.choice(HOLDERS)
        qty = rng.randint(1, 60_000)
        messages.append(
            {"from": sender, "action": "Transfer", "recipient": recipient, "quantity": str(qty)}
        )
        if model.get(sender, 0) >= qty:
            model[sender] -= qty
            model[recipient] = model.get(recipient, 0) + qty
    node.schedule_many(token, messages)
    cached = balances(node, token)
    assert cached.pop(token) == SUPPLY
    assert {k: v for k, v in cached.items() if v} == {k: v for k, v in model.items() if v}
    assert sum(cached.values()) == 1_000_000
    assert node.resolve(f"/{token}~process@1.0/now/cache/totalsupply") == str(SUPPLY + 1_000_000)
    vm = vm_balances(node, token)
    assert {k: v for k, v in vm.items() if v} == {
        k: v for k, v in {**cached, token: SUPPLY}.items() if v
    }


def test_an_overdraft_is_refused_and_changes_nothing(node: Node, token: str) -> None:
    before = balances(node, token)
    slot = send(node, token, BOB, action="Transfer", recipient=ALICE, quantity="1")
    (reply,) = outbox(node, token, slot)
    assert reply["action"] == "Transfer-Error" and reply["error"] == "Insufficient Balance!"
    assert reply["target"] == BOB
    slot = send(node, token, ALICE, action="Transfer", recipient=BOB, quantity="1000001")
    (reply,) = outbox(node, token, slot)
    assert reply["error"] == "Insufficient Balance!"
    assert balances(node, token) == before


def test_mint_is_for_the_owner_only(node: Node, token: str) -> None:
    slot = send(node, token, BOB, action="Mint", quantity="5")
    (reply,) = outbox(node, token, slot)
    assert reply["action"] == "Mint-Error" and BOB not in balances(node, token)
    send(node, token, ALICE, action="Mint", quantity="5")
    assert balances(node, token)[ALICE] == 1_000_005
    assert node.resolve(f"/{token}~process@1.0/now/cache/totalsupply") == str(SUPPLY + 1_000_005)


def test_balance_of_an_unknown_address_is_zero(node: Node, token: str) -> None:
    slot = send(node, token, BOB, action="Balance", recipient="nobody-" + "n" * 36)
    (reply,) = outbox(node, token, slot)
    assert reply["balance"] == "0" and reply["data"] == "0"
    slot = send(node, token, BOB, action="Balance")
    (reply,) = outbox(node, token, slot)
    assert reply["balance"] == "0" and reply["account"] == BOB


def test_big_numbers_stay_exact_strings(node: Node, token: str) -> None:
    big = 10**30
    send(node, token, ALICE, action="Mint", quantity=str(big))
    part = 123456789012345678901234567890
    send(node, token, ALICE, action="Transfer", recipient=BOB, quantity=str(part))
    cached = node.resolve(f"/{token}~process@1.0/now/cache/balances")
    assert cached[BOB] == str(part)
    assert cached[ALICE] == str(big + 1_000_000 - part)
    assert node.resolve(f"/{token}~process@1.0/now/cache/totalsupply") == str(
        SUPPLY + big + 1_000_000
    )


def test_a_handler_error_is_the_slot_result(node: Node, token: str) -> None:
    slot = send(node, token, ALICE, action="Transfer", recipient=BOB, quantity="-3")
    results = node.compute(token, slot)["results"]
    assert "whole number" in results["error"]
    assert results["outbox"] == {}
    untrusted = node.schedule(token, {"action": "Balance"})["slot"]  # no sender at all
    assert "not trusted" in node.compute(token, untrusted)["results"]["output"]["data"]


def test_close_and_reopen_rebuilds_the_same_ledger_by_replay(
    backend: ModuleType, tmp_path: Path
) -> None:
    spec = f"lmdb:{tmp_path / 'node'}"
    limits: dict[str, Any] = {"lua_instruction_limit": 2_000_000}
    with Node(spec, eager=False, **limits) as node:
        pid = node.spawn_lua(TOKEN_SOURCE, owner=ALICE)
        send(node, pid, ALICE, action="Mint", quantity="1000")
        loop = _eval(node, pid, "Balances[Owner] = '1' while true do end")  # dropped, replayed
        node.schedule_many(
            pid,
            [
                {"from": ALICE, "action": "Transfer", "recipient": h, "quantity": str(10 + i)}
                for i, h in enumerate(HOLDERS)
            ],
        )
        before = balances(node, pid)
        before_vm = vm_balances(node, pid)
        slots = node.slot(pid)
    with Node(spec, eager=False, **limits) as node:
        assert balances(node, pid) == before
        with pytest.raises(DeviceError, match="instruction limit"):
            node.compute(pid, loop)
        assert node.runtime(pid).replayed == slots + 1  # every slot, from the definition on
        assert vm_balances(node, pid) == before_vm
        send(node, pid, HOLDERS[0], action="Transfer", recipient=BOB, quantity="10")
        assert balances(node, pid)[BOB] == 10


_CHILD = textwrap.dedent(
    """
    import os, sys
    os.environ["HBEAM_BACKEND"] = sys.argv[2]
    from hbeam.lua import TOKEN_SOURCE
    from hbeam.node import Node
    alice, holders = sys.argv[3], sys.argv[4].split(",")
    node = Node("lmdb:" + sys.argv[1], eager=True)
    pid = node.spawn_lua(TOKEN_SOURCE, owner=alice)
    node.schedule(pid, {"from": alice, "action": "Mint", "quantity": "1000000"})
    print("pid", pid, flush=True)
    n = 0
    while True:
        n += 1
        sender = alice if n % 3 else holders[n % len(holders)]
        a = node.schedule(pid, {"from": sender, "action": "Transfer",
                                "recipient": holders[(n * 7) % len(holders)],
                                "quantity": str(n % 997 + 1)})
        print("ack", a["slot"], flush=True)
        if n % 10 == 0:
            node.now(pid)
    """
)


def _model(node: Node, pid: str) -> dict[str, int]:
    """The ledger replayed from the stored schedule in plain Python."""
    model: dict[str, int] = {}
    for slot in range(1, node.slot(pid) + 1):
        body = node.scheduler.assignment(pid, slot)["body"]
        if body["action"] not in ("Mint", "Transfer"):
            continue
        qty = int(body["quantity"])
        if body["action"] == "Mint":
            model[body["from"]] = model.get(body["from"], 0) + qty
        elif model.get(body["from"], 0) >= qty:
            model[body["from"]] -= qty
            model[body["recipient"]] = model.get(body["recipient"], 0) + qty
    return {k: v for k, v in model.items() if v}


@pytest.mark.timeout(120)
def test_sigkill_mid_ledger_then_reopen_equals_a_replay(
    backend: ModuleType, tmp_path: Path
) -> None:
    rng = random.Random(99)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    db = tmp_path / "node"
    for _ in range(2):  # the second run reopens a store that was killed before
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(db),
                backend.__name__.rsplit("_", 1)[-1],
                ALICE,
                ",".join(HOLDERS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        pid = proc.stdout.readline().split()[1]
        assert proc.stdout.readline().startswith("ack")
        time.sleep(rng.uniform(0.2, 0.5))
        proc.send_signal(signal.SIGKILL)
        lines = proc.stdout.read().split("\n")[:-1]  # the last one may be cut by the kill
        acked = [int(a.split()[1]) for a in lines if a.startswith("ack")]
        proc.stdout.close()
        proc.wait()
        with Node(f"lmdb:{db}", eager=False) as node:
            assert node.slot(pid) >= max(acked, default=0)
            model = _model(node, pid)
            cached = balances(node, pid)
            assert cached.pop(pid) == SUPPLY
            assert {k: v for k, v in cached.items() if v} == model
            vm = vm_balances(node, pid)
            vm.pop(pid)
            assert {k: v for k, v in vm.items() if v} == model


def _eval(node: Node, pid: str, code: str) -> int:
    return send(node, pid, ALICE, action="Eval", data=code)


def test_an_endless_loop_is_an_error_result_and_the_next_message_works(
    node: Node, token: str
) -> None:
    loop = _eval(node, token, "Leftover = 1\nwhile true do end")
    after = _eval(node, token, "tostring(Leftover)")
    with pytest.raises(DeviceError, match=f"slot {loop} .*instruction limit"):
        node.compute(token, loop)
    # the VM was rebuilt from the messages before the loop: its partial effects are gone
    assert node.compute(token, after)["results"]["output"]["data"] == "nil"
    send(node, token, ALICE, action="Transfer", recipient=BOB, quantity="7")
    assert balances(node, token)[BOB] == 7


@pytest.mark.parametrize(
    "bomb",
    [
        'string.rep("x", 1e15)',
        "local t, i = {}, 0 while true do i = i + 1 t[i] = string.rep('y', 4096) .. i end",
    ],
)
def test_memory_bombs_are_errors_and_the_node_stays_alive(
    node: Node, token: str, bomb: str
) -> None:
    slot = _eval(node, token, bomb)
    with pytest.raises(DeviceError, match="memory limit"):
        node.compute(token, slot)
    send(node, token, ALICE, action="Transfer", recipient=BOB, quantity="3")
    assert balances(node, token)[BOB] == 3


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ('os.execute("touch /tmp/hbeam-lua-escaped")', "os.execute is not available"),
        ('io.open("/tmp/hbeam-lua-escaped", "w")', "io.open is not available"),
        ('require("os")', "not available"),
        ("load(string.dump(print))", "dump"),
        ('assert(load("\\27LuaS", "x", "b"))', "binary chunks are not allowed"),
        ("debug.getinfo(1)", "debug"),
    ],
)
def test_the_sandbox_refuses_escapes(node: Node, token: str, code: str, why: str) -> None:
    slot = _eval(node, token, code)
    assert why in node.compute(token, slot)["results"]["error"]
    assert not Path("/tmp/hbeam-lua-escaped").exists()
    send(node, token, ALICE, action="Transfer", recipient=BOB, quantity="1")
    assert balances(node, token)[BOB] == 1


def test_recomputing_an_old_slot_leaves_the_live_vm_alone(node: Node, token: str) -> None:
    send(node, token, ALICE, action="Transfer", recipient=BOB, quantity="5")
    node.schedule_many(token, [{"from": BOB, "action": "Balance"}] * 300)
    node.now(token)
    live = node.runtime(token).live["lua"]
    at = live.at
    old = node.compute(token, 2)  # no longer in memory: replayed in a scratch runtime
    assert old["cache"]["balances"][BOB] == "5" and old["at-slot"] == 2
    assert node.runtime(token).live["lua"] is live and live.at == at
    send(node, token, ALICE, action="Transfer", recipient=BOB, quantity="6")
    assert balances(node, token)[BOB] == 11
