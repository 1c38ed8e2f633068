"""Seed 000's JavaScript client, as the seed shows it, run with ``node`` against the server."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam.client import Client
from hbeam.lua.aos import TOKEN_SOURCE
from hbeam.node import Node
from hbeam.node.server import BackgroundServer
from hbeam.wallet import Wallet

JS = Path(__file__).parent / "js"
ROOT = Path(__file__).parents[2]
SEED = ROOT / "tests/lua/seed000"  # seed 000's Lua snippets, byte for byte
SUM_SOURCE = (ROOT / "python/hbeam/examples/sum_kv.lua").read_text()
SYNC_SOURCE = (SEED / "sync_caches.lua").read_text() + "\n" + (JS / "sync_wiring.lua").read_text()
CHAIN_SOURCE = (SEED / "chains.lua").read_text()
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="`node` (Node.js) is not installed")


@pytest.fixture(scope="module")
def alice() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture
def server(backend: ModuleType, tmp_path: Path) -> Iterator[BackgroundServer]:
    with Node(f"lmdb:{tmp_path / 'node'}") as node, BackgroundServer(node) as srv:
        yield srv


def test_seed_javascript_client(server: BackgroundServer, alice: Wallet) -> None:
    bob = "b" * 43
    with Client(server.url, wallet=alice) as client:
        pid = client.spawn(module=TOKEN_SOURCE)
        client.push(pid, {"Action": "Mint", "Quantity": "50000"})
        client.push(pid, {"Action": "Transfer", "Recipient": bob, "Quantity": "100"})
        client.push(pid, {"Action": "Eval", "Data": SYNC_SOURCE})
        client.push(pid, {"Action": "Sync-Caches", "Recipient": bob})
        sum_id = client.publish(SUM_SOURCE, "application/lua")
        chain_id = client.publish(SUM_SOURCE + "\n" + CHAIN_SOURCE)

        endpoint = server.url.removeprefix("http://")
        steps: dict[str, Any] = {}
        updates: list[Any] = []
        with subprocess.Popen(
            [str(NODE), str(JS / "seed_client.mjs"), endpoint, pid, sum_id, chain_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            try:
                assert proc.stdout is not None and proc.stderr is not None
                for line in proc.stdout:
                    record = json.loads(line)
                    steps[record["step"]] = record["value"]
                    if record["step"] == "update":
                        updates.append(record["value"])
                    if record["step"] == "watching":
                        transfer = {"Action": "Transfer", "Recipient": bob, "Quantity": "1"}
                        client.schedule(pid, transfer)
                errors = proc.stderr.read()
                proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
        assert proc.returncode == 0, (steps, errors)

    expected = {pid: "10000000000000000", alice.address: "49900", bob: "100"}
    assert steps["balances"] == expected
    assert steps["robust-balances"] == expected
    # the seed's metrics URL applies sum to the balances map itself: a well-formed answer
    assert set(steps["metrics"]) == {
        "CirculatingSupply", "BalanceCount", "MaxBalance", "MinBalance", "AverageBalance",
    }  # fmt: skip
    assert steps["chain"]["BalanceCount"] == "2" and steps["chain"]["MinBalance"] == "49900"
    assert steps["sync"]["totalTransfers"] == 1
    assert updates[0] == expected
    assert updates[1] == {**expected, alice.address: "49899", bob: "101"}
    assert steps["done"] == 2
