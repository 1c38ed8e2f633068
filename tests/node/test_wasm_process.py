"""A wasm (json-iface) counter process on a node: in-process, over HTTP, restarts, failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hbeam import ao
from hbeam.devices.wasm import LiveWasm
from hbeam.errors import DeviceError, InvalidMessage
from hbeam.node import Node, wasm_definition
from hbeam.node.server import BackgroundServer

MODULES = Path(__file__).parent.parent / "wasm" / "modules"
ALICE = "alice-" + "a" * 37

# The counter of tests/wasm/modules, plus: a message whose tags hold the value "Trap"
# traps, "Spin" loops forever, "Grow" grows memory until refused (then traps).
_NEEDLES = """
  (data (i64.const 1792) "\\"Trap\\"")
  (data (i64.const 1800) "\\"Spin\\"")
  (data (i64.const 1808) "\\"Grow\\"")
"""
_PRELUDE = """
    (local.set $mlen (call $strlen (local.get $msg)))
    (if (i64.ne (call $find (local.get $msg) (local.get $mlen) (i64.const 1792) (i64.const 6))
                (i64.const -1))
      (then (unreachable)))
    (if (i64.ne (call $find (local.get $msg) (local.get $mlen) (i64.const 1800) (i64.const 6))
                (i64.const -1))
      (then (loop $spin (br $spin))))
    (if (i64.ne (call $find (local.get $msg) (local.get $mlen) (i64.const 1808) (i64.const 6))
                (i64.const -1))
      (then
        (loop $grow (br_if $grow (i64.ne (memory.grow (i64.const 1)) (i64.const -1))))
        (unreachable)))
"""


def faulty_counter() -> bytes:
    src = (MODULES / "counter.wat").read_text()
    locals_line = "(local $out i64) (local $w i64)"
    assert src.count(locals_line) == 1 and src.count("(data (i64.const 1664)") == 1
    src = src.replace(locals_line, locals_line + _PRELUDE)
    src = src.replace("(data (i64.const 1664)", _NEEDLES + "  (data (i64.const 1664)")
    return src.encode()


def definition(image: str, **extra: Any) -> dict[str, Any]:
    """An aos-style wasm process, with the patch settings a Lua process uses."""
    return wasm_definition(image, tags=extra)


def count(node: Node, pid: str, action: str = "Count") -> int:
    slot: int = node.schedule(pid, {"from": ALICE, "action": action})["slot"]
    return slot


def memory(node: Node, pid: str) -> bytes:
    """The process's linear memory (a restarted process restores it on ``normalize``)."""
    rt = node.runtime(pid)
    if "wasm" not in rt.live:
        state = node.now(pid)
        ao.resolve(state.set("device", "stack@1.0"), {"path": "normalize"}, opts=rt.exec_opts)
    live = rt.live["wasm"]
    assert isinstance(live, LiveWasm)
    inst = live.instance
    return inst.read(0, inst.memory_size())


@pytest.fixture
def node(backend: ModuleType, tmp_path: Path) -> Iterator[Node]:
    with Node(f"lmdb:{tmp_path / 'node'}", eager=False) as n:
        yield n


def test_counter_process_in_process(node: Node) -> None:
    pid = node.spawn(definition(node.publish(faulty_counter())))
    slots = [count(node, pid) for _ in range(3)]
    assert slots == [1, 2, 3]
    state = node.now(pid)
    assert state["at-slot"] == 3
    assert state["count"] == "3"  # the module's patch, moved into the state by patch@1.0
    results = state["results"]
    assert results["data"] == "count=3"
    assert results["output"] == {"data": "count=3"}
    assert results["patches"] == {"1": {"count": "3"}}
    assert results["wasm"]["type"] == "ok"
    (reply,) = results["outbox"].values()  # the patch left the outbox
    assert reply["action"] == "Counted"
    assert reply["data"] == "3"
    assert reply["from-process"] == pid
    assert reply["from-image"] == state["image"]
    assert "parameters" not in state
    # each slot's own results stay reachable
    assert node.compute(pid, 1)["results"]["data"] == "count=1"
    assert node.compute(pid, 2)["count"] == "2"


def test_spawn_wasm_publishes_the_module_and_spawns_the_aos_stack(node: Node) -> None:
    pid = node.spawn_wasm(faulty_counter(), tags={"name": "counter"})
    image = node.definition(pid)["image"]
    assert node.content_type(image) == "application/wasm"
    assert node.spawn_wasm(image, tags={"name": "counter"}) == pid  # same definition
    assert count(node, pid) == 1
    assert node.now(pid)["name"] == "counter"


@pytest.mark.parametrize("image", ["not-an-id", 42, None])
def test_spawn_wasm_refuses_what_is_not_a_module(node: Node, image: Any) -> None:
    with pytest.raises(InvalidMessage, match="spawn_wasm takes a wasm module"):
        node.spawn_wasm(image)


def test_message_json_carries_the_sender_and_id(node: Node) -> None:
    pid = node.spawn(definition(node.publish(faulty_counter())))
    assignment = node.schedule(pid, {"from": ALICE, "action": "Count"})
    # the counter replies to the message's Id: the ID the scheduler assigned
    assert node.now(pid)["results"]["outbox"]["1"]["target"] == assignment["message"]


def test_counter_process_over_http(backend: ModuleType, tmp_path: Path) -> None:
    with (
        Node(f"lmdb:{tmp_path / 'node'}", require_signed=False) as node,
        BackgroundServer(node) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        r = http.post("/publish", content=faulty_counter())
        assert r.status_code == 200, r.text
        image = r.json()["id"]
        r = http.post("/spawn", json=definition(image))
        assert r.status_code == 200, r.text
        pid = r.json()["process"]
        for n in (1, 2):
            r = http.post(f"/{pid}~process@1.0/schedule", json={"action": "Count"})
            assert r.status_code == 200, r.text
            assert int(r.json()["slot"]) == n
        accept = {"accept": "application/json"}
        r = http.get(f"/{pid}~process@1.0/now/results/data", headers=accept)
        assert r.status_code == 200, r.text
        assert "count=2" in r.text
        r = http.get(f"/{pid}~process@1.0/now/count", headers=accept)
        assert "2" in r.text
        r = http.get(f"/{pid}~process@1.0/compute&slot=1/results/data", headers=accept)
        assert "count=1" in r.text
        r = http.post(f"/{pid}~process@1.0/schedule", json={"action": "Trap"})
        assert r.status_code == 200
        r = http.get(f"/{pid}~process@1.0/now", headers=accept)
        assert r.status_code >= 400
        assert "trapped" in r.text
        http.post(f"/{pid}~process@1.0/schedule", json={"action": "Count"})
        r = http.get(f"/{pid}~process@1.0/now/results/data", headers=accept)
        assert "count=3" in r.text


def test_restart_restores_memory_without_replay(backend: ModuleType, tmp_path: Path) -> None:
    store = f"lmdb:{tmp_path / 'node'}"
    with Node(store, snapshot_every=2, eager=False) as node:
        image = node.publish(faulty_counter())
        pid = node.spawn(definition(image))
        for _ in range(4):
            count(node, pid)
        node.now(pid)
        before = memory(node, pid)
    with Node(store, snapshot_every=2, eager=False) as node:
        rt = node.runtime(pid)
        state = node.now(pid)
        assert rt.replayed == 0  # resumed from the slot-4 snapshot
        assert state["count"] == "4"
        assert memory(node, pid) == before  # byte-identical
        count(node, pid)
        assert node.now(pid)["results"]["data"] == "count=5"
        assert rt.replayed == 1
        after = memory(node, pid)
    # an uninterrupted run reaches the same memory
    with Node(f"lmdb:{tmp_path / 'other'}", eager=False) as other:
        other.publish(faulty_counter())
        pid2 = other.spawn(definition(image))
        for _ in range(5):
            count(other, pid2)
        other.now(pid2)
        assert memory(other, pid2) == after


def test_restart_between_snapshots_replays_only_the_tail(
    backend: ModuleType, tmp_path: Path
) -> None:
    store = f"lmdb:{tmp_path / 'node'}"
    with Node(store, snapshot_every=3, eager=False) as node:
        pid = node.spawn(definition(node.publish(faulty_counter())))
        for _ in range(5):
            count(node, pid)
        node.now(pid)
        before = memory(node, pid)
    with Node(store, snapshot_every=3, eager=False) as node:
        rt = node.runtime(pid)
        assert node.now(pid)["results"]["data"] == "count=5"
        assert rt.replayed == 2  # slots 4 and 5, after the slot-3 snapshot
        assert memory(node, pid) == before


def test_a_trapping_message_fails_its_slot_only(node: Node) -> None:
    pid = node.spawn(definition(node.publish(faulty_counter())))
    count(node, pid)
    bad = count(node, pid, "Trap")
    good = count(node, pid)
    with pytest.raises(DeviceError, match="trapped"):
        node.compute(pid, bad)
    state = node.compute(pid, good)
    assert state["results"]["data"] == "count=2"  # the trapped message did not count
    assert state["at-slot"] == good


def test_fuel_exhaustion_is_an_error_result(backend: ModuleType, tmp_path: Path) -> None:
    with Node(f"lmdb:{tmp_path / 'n'}", eager=False, wasm_fuel=2_000_000) as node:
        pid = node.spawn(definition(node.publish(faulty_counter())))
        spin = count(node, pid, "Spin")
        after = count(node, pid)
        with pytest.raises(DeviceError, match="ran out of fuel"):
            node.compute(pid, spin)
        assert node.compute(pid, after)["results"]["data"] == "count=1"


def test_memory_growth_hits_the_limit(backend: ModuleType, tmp_path: Path) -> None:
    limit = 1 << 20
    with Node(f"lmdb:{tmp_path / 'n'}", eager=False, wasm_memory_limit=limit) as node:
        pid = node.spawn(definition(node.publish(faulty_counter())))
        grow = count(node, pid, "Grow")
        after = count(node, pid)
        with pytest.raises(DeviceError, match="memory limit"):
            node.compute(pid, grow)
        assert node.compute(pid, after)["results"]["data"] == "count=1"
        assert len(memory(node, pid)) <= limit


@pytest.mark.parametrize(
    ("module", "problem"),
    [
        (b"\0asm\x01\0\0\0junk", "invalid"),
        ((MODULES / "wasm32.wat").read_bytes(), "32-bit"),
        ((MODULES / "adder.wat").read_bytes(), "does not export malloc, handle"),
        ((MODULES / "imports.wat").read_bytes(), "env.mystery, which is not provided"),
    ],
)
def test_bad_images_fail_every_slot_naming_the_image(
    node: Node, module: bytes, problem: str
) -> None:
    image = node.publish(module)
    pid = node.spawn(definition(image))
    slot = count(node, pid)
    for s in (0, slot):
        with pytest.raises(DeviceError) as info:
            node.compute(pid, s)
        assert image in str(info.value)
        assert problem in str(info.value)
