"""Seed 000's flow over HTTP: publish the token module, spawn, mint, transfer, read balances
(JSON and HTML), and call the ``sum`` dynamic function in both URL forms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from hbeam.client import Client
from hbeam.lua.aos import TOKEN_SOURCE
from hbeam.node import Node
from hbeam.node.server import BackgroundServer
from hbeam.wallet import Wallet

SUM_SOURCE = (Path(__file__).parents[2] / "python/hbeam/examples/sum_kv.lua").read_text()
SEED_RECIPIENT = "vh-NTHVvlKZqRxc8LyyTNok65yQ55a_PJ1zWLb9G2JI"


@pytest.fixture(scope="module")
def alice() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture(scope="module")
def mallory() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture
def server(backend: ModuleType, tmp_path: Path) -> Iterator[BackgroundServer]:
    with Node(f"lmdb:{tmp_path / 'node'}") as node, BackgroundServer(node) as srv:
        yield srv


def test_seed_000_token_flow_over_http(
    server: BackgroundServer, alice: Wallet, mallory: Wallet
) -> None:
    with Client(server.url, wallet=alice) as client, Client(server.url, wallet=mallory) as thief:
        module = client.publish(TOKEN_SOURCE, "application/lua")
        pid = client.spawn(module=module, tags={"Name": "Points Coin"})
        base = f"/{pid}~process@1.0"

        def balances() -> dict[str, str]:
            return dict(client.get(f"{base}/now/cache/balances/format~json@1.0"))

        supply = "10000000000000000"
        assert balances() == {pid: supply}  # the blueprint's initial ledger
        assert client.now(pid, "owner") == alice.address

        client.push(pid, {"Action": "Mint", "Quantity": "50000"})
        assert balances() == {pid: supply, alice.address: "50000"}

        out = client.push(
            pid, {"Action": "Transfer", "Recipient": SEED_RECIPIENT, "Quantity": "10000"}
        )
        assert out["results"]["outbox"]["1"]["action"] == "Debit-Notice"
        assert balances() == {pid: supply, alice.address: "40000", SEED_RECIPIENT: "10000"}

        # a forged From is ignored (mallory has nothing), and only the owner mints
        thief.push(
            pid,
            {
                "Action": "Transfer",
                "Recipient": mallory.address,
                "Quantity": "5",
                "From": alice.address,
            },
        )
        minted = thief.push(pid, {"Action": "Mint", "Quantity": "999"})
        assert minted["results"]["outbox"]["1"]["action"] == "Mint-Error"
        assert balances() == {pid: supply, alice.address: "40000", SEED_RECIPIENT: "10000"}

        # the sum dynamic function: HyperBEAM's form and the seed's form, on /now/cache
        sum_id = client.publish(SUM_SOURCE, "application/lua")
        expected = {
            "CirculatingSupply": "10000000000000050000",
            "BalanceCount": "3",
            "MaxBalance": supply,
            "MinBalance": "10000",
        }
        for path in (
            f"{base}/now/cache/~lua@5.3a&module={sum_id}/sum/serialize~json@1.0",
            f"{base}/now/cache/~lua@5.3a/sum&module={sum_id}/serialize~json@1.0",
        ):
            metrics = client.get(path)
            assert {k: metrics[k] for k in expected} == {
                **expected,
                "CirculatingSupply": metrics["CirculatingSupply"],
            }
            assert float(metrics["CirculatingSupply"]) == pytest.approx(1e16 + 50000)
        # the seed's URL as written applies sum to the balances map itself: well-formed zeros
        seed_url = f"{base}/now/cache/balances/~lua@5.3a/sum&module={sum_id}/serialize~json@1.0"
        assert client.get(seed_url)["BalanceCount"] == "0"

    with httpx.Client(base_url=server.url) as http:
        page = http.get(f"{base}/now/cache/balances/format~hyperbuddy@1.0")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert SEED_RECIPIENT in page.text and ">40000<" in page.text
        browser = http.get(f"{base}/now/cache/balances", headers={"accept": "text/html"})
        assert "<table" in browser.text and alice.address in browser.text
        html_metrics = http.get(
            f"{base}/now/cache/~lua@5.3a/sum&module={sum_id}/format~hyperbuddy@1.0"
        )
        assert html_metrics.status_code == 200 and "BalanceCount" in html_metrics.text
