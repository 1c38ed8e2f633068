"""The HTTP node on a real uvicorn server: process routes, codecs, signed scheduling, meta."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hbeam import device
from hbeam.client import Client
from hbeam.commitment import commit
from hbeam.httpsig import sign_request
from hbeam.node import Node
from hbeam.node.app import create_app
from hbeam.node.server import BackgroundServer
from hbeam.wallet import Wallet


class Ledger:
    """A token-like execution device: ``cache/balances``, Transfer from the sender."""

    def init(self, base: Any, req: Any, opts: Any) -> Any:
        initial = base.get("initial") or {}
        return base.set("cache", {"balances": dict(initial)})

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        body = req["body"]
        if body.get("Action") != "Transfer":
            return base.set("last", str(body.get("Action")))
        sender = body.get("from", "anonymous")
        balances = dict(base["cache"]["balances"])
        quantity = int(body["Quantity"])
        if balances.get(sender, 0) < quantity:
            return base.set("last", "Insufficient Balance!")
        balances[sender] = balances.get(sender, 0) - quantity
        recipient = body["Recipient"]
        balances[recipient] = balances.get(recipient, 0) + quantity
        return base.merge({"cache": {"balances": balances}, "last": "Transfer"})


device.register("test-http-ledger@1.0", Ledger())

ALICE_START = 1000


@pytest.fixture(scope="module")
def alice() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture(scope="module")
def mallory() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture
def node(backend: ModuleType, tmp_path: Path) -> Iterator[Node]:
    with Node(f"lmdb:{tmp_path / 'node'}", wallet=None) as n:
        yield n


@pytest.fixture
def server(node: Node) -> Iterator[BackgroundServer]:
    with BackgroundServer(node) as srv:
        yield srv


def _ledger(alice: Wallet) -> dict[str, Any]:
    return {"execution-device": "test-http-ledger@1.0", "initial": {alice.address: ALICE_START}}


def test_signed_process_flow_over_http(
    server: BackgroundServer, alice: Wallet, mallory: Wallet
) -> None:
    """Spawn, transfer, read balances in every codec, slot, compute&slot, schedule list."""
    bob = "B" * 43
    with Client(server.url, wallet=alice) as client:
        pid = client.spawn(_ledger(alice))
        assert len(pid) == 43
        assert client.now(pid, "owner") == alice.address  # the signer owns the process
        first = client.schedule(
            pid, {"Action": "Transfer", "Recipient": bob, "Quantity": "10", "from": mallory.address}
        )
        assert first["slot"] == 1 and first["process"] == pid
        assert first["body"]["from"] == alice.address  # the forged from is ignored
        client.schedule(pid, {"Action": "Transfer", "Recipient": bob, "Quantity": "5"})

        balances = client.now(pid, "cache/balances")
        assert balances == {alice.address: ALICE_START - 15, bob: 15}
        assert client.compute(pid, 1, "cache/balances")[bob] == 10
        assert client.slot(pid) == 2
        assert client.get(f"/{pid}~process@1.0/now/cache/balances/{bob}") == 15

    base = f"{server.url}/{pid}~process@1.0"
    with httpx.Client() as http:
        # JSON: numbers stay numbers
        for url in (
            f"{base}/now/cache/balances/format~json@1.0",
            f"{base}/now/cache/balances/serialize~json@1.0",
        ):
            r = http.get(url)
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            assert r.json() == {alice.address: ALICE_START - 15, bob: 15}
        r = http.get(f"{base}/now/cache/balances", headers={"accept": "application/json"})
        assert r.json()[bob] == 15
        # default codec: a literal is the body, its type in ao-types
        r = http.get(f"{base}/now/cache/balances/{bob}")
        assert r.text == "15" and r.headers["ao-types"] == 'body="integer"'
        # simple values of a map become headers
        r = http.get(f"{base}/slot")
        assert r.headers["current"] == "2" and 'current="integer"' in r.headers["ao-types"]
        assert r.json() == {"process": pid, "current": 2}
        # the schedule, read back
        listing = http.get(f"{base}/schedule", headers={"accept": "application/json"}).json()
        assert listing["current"] == 2 and sorted(listing["assignments"]) == ["0", "1", "2"]
        assert listing["assignments"]["2"]["body"]["Quantity"] == "5"
        # HTML for browsers, with the balances in a table
        r = http.get(f"{base}/now/cache/balances", headers={"accept": "text/html,*/*;q=0.8"})
        assert r.headers["content-type"].startswith("text/html")
        assert f'<a href="/{bob}" class="id">{bob}</a>' in r.text and ">15<" in r.text
        r = http.get(f"{base}/now/cache/balances/format~hyperbuddy@1.0")
        assert r.headers["content-type"].startswith("text/html") and "<table" in r.text


def test_unsigned_scheduling_is_refused_and_replays_get_the_first_slot(
    server: BackgroundServer, alice: Wallet
) -> None:
    with Client(server.url, wallet=alice) as signed, Client(server.url) as anonymous:
        pid = signed.spawn(_ledger(alice))
        with pytest.raises(Exception) as refused:
            anonymous.schedule(pid, {"Action": "Transfer", "Recipient": "x" * 43, "Quantity": "1"})
        assert type(refused.value).__name__ == "Unauthorized"
        assert refused.value.status == 401  # type: ignore[attr-defined]
        with pytest.raises(Exception) as refused_spawn:
            anonymous.spawn(_ledger(alice))
        assert refused_spawn.value.status == 401  # type: ignore[attr-defined]

    url = f"{server.url}/{pid}~process@1.0/schedule"
    with httpx.Client() as http:
        # a signed message (commitments in the body): replayed → the same assignment
        body = json.dumps(commit({"Action": "Ping", "n": 1}, alice).to_dict()).encode()
        first = http.post(url, content=body, headers={"content-type": "application/json"}).json()
        again = http.post(url, content=body, headers={"content-type": "application/json"}).json()
        assert first["slot"] == again["slot"] == 1
        assert first["body"]["from"] == alice.address

        # a signed request with a plain message: the same, keyed by the request signature
        plain = json.dumps({"Action": "Pong", "from": "someone-else"}).encode()
        headers = sign_request("POST", url, {"content-type": "application/json"}, plain, alice)
        one = http.post(url, content=plain, headers=headers)
        two = http.post(url, content=plain, headers=headers)
        assert one.status_code == two.status_code == 200
        assert one.json()["slot"] == two.json()["slot"] == 2
        assert one.json()["body"]["from"] == alice.address

        # tampering: a changed body, or a header swapped after signing → 400 naming it
        bad = http.post(url, content=plain.replace(b"Pong", b"Pang"), headers=headers)
        assert bad.status_code == 400
        assert (
            bad.json()["error"] == "InvalidSignature" and "content-digest" in bad.json()["message"]
        )
        swapped = dict(headers, **{"content-type": "text/plain"})
        bad = http.post(url, content=plain, headers=swapped)
        assert bad.status_code == 400 and "does not verify" in bad.json()["message"]
        # a message whose commitment does not verify
        forged = commit({"Action": "Ping", "n": 2}, alice).to_dict()
        forged["n"] = 3
        bad = http.post(
            url, content=json.dumps(forged), headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400 and bad.json()["error"] == "InvalidSignature"
        assert http.get(f"{server.url}/{pid}~process@1.0/slot/current").text == "2"


def test_rsa_wallet_signs_and_push_returns_results(node: Node) -> None:
    rsa = Wallet.generate("rsa")
    with BackgroundServer(node) as srv, Client(srv.url, wallet=rsa) as client:
        pid = client.spawn(_ledger(rsa))
        out = client.push(pid, {"Action": "Transfer", "Recipient": "c" * 43, "Quantity": "7"})
        assert out["process"] == pid and out["slot"] == 1
        assert client.now(pid, "cache/balances")["c" * 43] == 7
        assert client.now(pid, "last") == "Transfer"


def test_unsigned_node_and_publish(node: Node, alice: Wallet) -> None:
    app = create_app(node, require_signed=False)
    with BackgroundServer(node, app=app) as srv, httpx.Client(base_url=srv.url) as http:
        r = http.post("/spawn", json=_ledger(alice) | {"owner": "typed-owner"})
        assert r.status_code == 200
        pid = r.json()["process"]
        # an unsigned spawn has no owner, whatever it typed
        assert http.get(f"/{pid}~process@1.0/now/owner").status_code == 404
        r = http.post(
            f"/{pid}~process@1.0/schedule",
            json={"Action": "Transfer", "Recipient": "d" * 43, "Quantity": "1"},
        )
        assert r.status_code == 200 and "from" not in r.json()["body"]
        # HyperBEAM's POST /schedule with type Process spawns
        r = http.post("/schedule", json={"type": "Process", **_ledger(alice), "name": "second"})
        assert r.status_code == 200 and r.json()["process"] != pid
        r = http.post("/schedule", json={"Action": "x"})
        assert r.status_code == 400
        # publish: raw bytes, content-addressed, content type kept
        code = b"function sum(base) return {} end"
        r = http.post("/publish", content=code, headers={"content-type": "application/lua"})
        ident = r.json()["id"]
        assert len(ident) == 43 and node.content_type(ident) == "application/lua"
        assert http.get(f"/{ident}").text == code.decode()
        assert http.post("/publish", content=b"").status_code == 400


def test_meta_health_redirect_and_cors(server: BackgroundServer, node: Node) -> None:
    with httpx.Client(base_url=server.url) as http:
        info = http.get("/~meta@1.0/info", headers={"accept": "application/json"}).json()
        assert info["node"] == "hbeam" and info["backend"] in ("pure", "native")
        assert "process@1.0" in info["devices"] and "lua@5.3a" in info["devices"]
        assert info["require-signed"] is True and info["max-body-bytes"] == 10 * 1024 * 1024
        assert "address" not in info  # this node has no wallet
        assert http.get("/~meta@1.0/build").json()["node"] == "hbeam"
        r = http.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = http.get("/")
        assert r.status_code == 302 and r.headers["location"] == "/~hyperbuddy@1.0/dashboard"
        dash = http.get("/", follow_redirects=True)
        assert dash.status_code == 200 and "hbeam node" in dash.text
        assert r.headers["access-control-allow-origin"] == "*"
        pre = http.options("/anything", headers={"access-control-request-headers": "x-a, x-b"})
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-headers"] == "x-a, x-b"
        assert "PATCH" in pre.headers["access-control-allow-methods"]
        assert http.head("/healthz").status_code == 200


def test_meta_info_shows_the_node_wallet(
    backend: ModuleType, tmp_path: Path, alice: Wallet
) -> None:
    with Node(f"lmdb:{tmp_path / 'n'}", wallet=alice) as node, BackgroundServer(node) as srv:
        info = httpx.get(f"{srv.url}/~meta@1.0/info", headers={"accept": "application/json"})
        assert info.json()["address"] == alice.address


def test_repeated_reads_are_cached_until_the_next_slot(
    node: Node, server: BackgroundServer, alice: Wallet
) -> None:
    cache = server.app.state.http.responses
    pid = node.spawn(_ledger(alice))
    url = f"{server.url}/{pid}~process@1.0/now/cache/balances/format~json@1.0"
    with httpx.Client() as http:
        assert http.get(url).json() == {alice.address: ALICE_START}
        hits = cache.hits
        assert http.get(url).json() == {alice.address: ALICE_START}
        assert cache.hits == hits + 1  # answered from the response cache
        node.schedule(
            pid,
            {"Action": "Transfer", "from": alice.address, "Recipient": "e" * 43, "Quantity": "1"},
        )
        assert http.get(url).json()[alice.address] == ALICE_START - 1  # never stale
        assert http.get(url, headers={"x-other": "1"}).status_code == 200
        assert cache.hits == hits + 1  # other headers, other entry
        old = f"{server.url}/{pid}~process@1.0/compute&slot=0/cache/balances"
        assert http.get(old).json() == http.get(old).json() == {alice.address: ALICE_START}
        assert cache.hits == hits + 2
