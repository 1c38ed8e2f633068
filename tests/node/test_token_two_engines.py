"""One token, two engines: the bundled token blueprint on ``lua@5.3a`` and on a real Lua 5.3
interpreter built as a wasm64 json-iface module (``tests/wasm/lua53``), in one node.

Both processes get the same messages; after every slot their cached balances
(``/PID~process@1.0/compute&slot+integer=N/cache/balances``) must agree — with each
process's own ID (it holds the initial supply) read as the same holder.

The wasm module embeds hbeam's ``json.lua`` and ``aos.lua`` plus ``aos_host.lua`` (the
module's host shim); the token itself is the process's ``Data``, loaded on the first
message because the process says ``On-Boot: Data`` (aos's convention).  So slot 0 differs
by design: ``lua@5.3a`` loads its module at spawn, the wasm module on its first message
(whose outbox then carries the load-time patch first); from slot 1 on they agree.

The module is built with ``zig cc`` (PyPI ``ziglang``; skipped without it) and cached
(``$HBEAM_LUA53_CACHE``, default ``~/.cache/hbeam/lua53``).  The native core runs the
build with legacy exception handling (through hbeam's load-time exnref translation); the
pure core cannot translate, so it runs the same sources built with the standard exnref
instructions.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam import _core
from hbeam.lua import TOKEN_SOURCE
from hbeam.node import Node

BUILD = Path(__file__).parent.parent / "wasm" / "lua53" / "build.py"
ALICE = "alice-" + "a" * 37
BOB = "bob-" + "b" * 39
CAROL = "carol-" + "c" * 37
SELF = "<self>"
BIG = "123456789012345678901234567890"  # beyond Lua integers: the blueprint's limb arithmetic

# (sender, tags) in schedule order; every one goes to both processes
SCRIPT: list[tuple[str, dict[str, Any]]] = [
    (ALICE, {"action": "Mint", "quantity": "1000"}),
    (ALICE, {"action": "Transfer", "recipient": BOB, "quantity": "300"}),
    (BOB, {"action": "Transfer", "recipient": CAROL, "quantity": "50", "x-memo": "rent"}),
    (BOB, {"action": "Transfer", "recipient": CAROL, "quantity": "10000"}),  # overdraft
    (BOB, {"action": "Mint", "quantity": "5"}),  # not the owner
    (CAROL, {"action": "Balance"}),
    (ALICE, {"action": "Transfer", "recipient": BOB, "quantity": "-5"}),  # handler error
    (ALICE, {"action": "Mint", "quantity": BIG}),
    (ALICE, {"action": "Transfer", "recipient": CAROL, "quantity": "100000000000000000000"}),
    (CAROL, {"action": "Burn", "quantity": "20"}),
    (CAROL, {"action": "Transfer", "recipient": BOB, "quantity": "30", "cast": "true"}),
    (ALICE, {"action": "Total-Supply"}),
]


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hbeam_lua53_build", BUILD)
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


@pytest.fixture(scope="module")
def lua53_module() -> Callable[[bool], bytes]:
    """The aos wasm module's bytes, built on demand: legacy EH (True) or exnref (False)."""
    build = _build_module()

    @functools.cache
    def module(legacy: bool) -> bytes:
        try:
            path = build.build(build.default_cache(), build.aos_runtime(), legacy_eh=legacy)
        except build.BuildUnavailable as exc:
            pytest.skip(f"Lua 5.3 wasm64 build unavailable: {exc}")
        return Path(path).read_bytes()

    return module


@pytest.fixture
def node(backend: ModuleType, tmp_path: Path) -> Iterator[Node]:
    with Node(f"lmdb:{tmp_path / 'node'}", eager=False) as n:
        yield n


def spawn_both(node: Node, module: Callable[[bool], bytes]) -> tuple[str, str]:
    lua = node.spawn_lua(node.publish(TOKEN_SOURCE, "application/lua"), owner=ALICE)
    wasm = node.spawn_wasm(
        module(_core.name != "pure"), owner=ALICE, tags={"on-boot": "Data", "data": TOKEN_SOURCE}
    )
    return lua, wasm


def balances(node: Node, pid: str, slot: int) -> dict[str, int]:
    """The cached balances after ``slot``, numerically, the process's own ID as SELF."""
    raw = node.resolve(f"/{pid}~process@1.0/compute&slot+integer={slot}/cache/balances")
    assert isinstance(raw, Mapping), raw
    return {(SELF if k == pid else k): int(v) for k, v in raw.items() if not k.startswith("priv")}


def replies(node: Node, pid: str, slot: int) -> list[dict[str, Any]]:
    """What the slot sent (patches already moved out), comparable across engines."""
    state = node.compute(pid, slot)
    box = state["results"]["outbox"]
    keep = ("target", "action", "error", "quantity", "recipient", "sender", "x-memo", "data")
    out = []
    for key in sorted(box, key=int):
        msg = box[key]
        out.append({k: (SELF if msg[k] == pid else msg[k]) for k in keep if k in msg})
    return out


def test_the_token_agrees_slot_by_slot_on_both_engines(
    node: Node, lua53_module: Callable[[bool], bytes]
) -> None:
    lua, wasm = spawn_both(node, lua53_module)
    assert balances(node, lua, 0) == {SELF: 10**16}
    for n, (sender, tags) in enumerate(SCRIPT, 1):
        assert node.schedule(lua, {"from": sender, **tags})["slot"] == n
        assert node.schedule(wasm, {"from": sender, **tags})["slot"] == n
        assert balances(node, wasm, n) == balances(node, lua, n), (n, tags)
        assert replies(node, wasm, n) == replies(node, lua, n), (n, tags)
    supply = 10**16 + 1000 + int(BIG) - 20
    final = balances(node, wasm, len(SCRIPT))
    assert final == {
        SELF: 10**16,
        ALICE: 1000 - 300 + int(BIG) - 10**20,
        BOB: 300 - 50 + 30,
        CAROL: 50 + 10**20 - 20 - 30,
    }
    assert sum(final.values()) == supply
    for pid in (lua, wasm):
        now = node.resolve(f"/{pid}~process@1.0/now/cache")
        assert int(now["totalsupply"]) == supply
        assert {(SELF if k == pid else k): int(v) for k, v in now["balances"].items()} == final


def test_the_wasm_token_reports_handler_errors_and_overdrafts_like_lua(
    node: Node, lua53_module: Callable[[bool], bytes]
) -> None:
    lua, wasm = spawn_both(node, lua53_module)
    for pid in (lua, wasm):
        node.schedule(pid, {"from": ALICE, "action": "Transfer", "recipient": BOB, "quantity": "x"})
        node.schedule(pid, {"from": BOB, "action": "Transfer", "recipient": ALICE, "quantity": "1"})
    # slot 1: a handler error is an answer, not a failed slot; nothing is sent
    for pid in (lua, wasm):
        assert replies(node, pid, 1) == []
    assert "whole number" in str(node.compute(lua, 1)["results"]["error"])
    assert "whole number" in str(node.compute(wasm, 1)["results"]["data"])
    # slot 2: the overdraft answers Transfer-Error and changes nothing
    expected = [{"target": BOB, "action": "Transfer-Error", "error": "Insufficient Balance!"}]
    assert replies(node, lua, 2) == replies(node, wasm, 2) == expected
    assert balances(node, wasm, 2) == balances(node, lua, 2) == {SELF: 10**16}
