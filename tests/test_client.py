"""``hbeam.Client`` and ``hbeam.AsyncClient`` against a real node."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import hbeam
import httpx
import pytest
from hbeam import AOError, InvalidPath, NotFound, Unauthorized, device
from hbeam.client import AsyncClient, Client, Update
from hbeam.node import Node
from hbeam.node.server import BackgroundServer
from hbeam.wallet import Wallet


class Tally:
    def init(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("cache", {"senders": {}})

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        sender = req["body"].get("from", "anonymous")
        senders = dict(base["cache"]["senders"])
        senders[sender] = senders.get(sender, 0) + int(req["body"].get("n", 1))
        return base.merge({"cache": {"senders": senders}, "last": req["body"].get("Action")})


device.register("test-client-tally@1.0", Tally())
TALLY = {"execution-device": "test-client-tally@1.0"}


@pytest.fixture(scope="module")
def wallet() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture
def server(backend: ModuleType, tmp_path: Path) -> Iterator[BackgroundServer]:
    with Node(f"lmdb:{tmp_path / 'node'}") as node, BackgroundServer(node) as srv:
        yield srv


def test_client_calls(server: BackgroundServer, wallet: Wallet) -> None:
    with Client(server.url, wallet=wallet) as client:
        pid = client.spawn(TALLY)
        assignment = client.schedule(pid, {"Action": "Add", "n": 2})
        assert assignment["slot"] == 1 and assignment["body"]["from"] == wallet.address
        pushed = client.push(pid, {"Action": "Add", "n": 3})
        assert pushed["slot"] == 2
        assert client.now(pid, "cache/senders") == {wallet.address: 5}
        assert client.now(pid)["last"] == "Add"
        assert client.compute(pid, 1, "/cache/senders/")[wallet.address] == 2
        assert client.slot(pid) == 2
        assert client.get(f"/{pid}~process@1.0/now/cache/senders/{wallet.address}") == 5
        assert client.resolve(f"/{pid}~process@1.0/slot/current") == 2
        # resolve(msg): the message's other keys travel as the request's keys
        echoed = client.resolve({"path": "/~message@1.0/hello", "hello": "world"})
        assert echoed == "world"
        ident = client.publish(b"\x00\x01binary", "application/octet-stream")
        assert client.get(f"/{ident}", accept=None) == b"\x00\x01binary"
        assert client.info()["node"] == "hbeam"


def test_client_errors(server: BackgroundServer, wallet: Wallet) -> None:
    with Client(server.url) as anonymous:
        with pytest.raises(NotFound) as missing:
            anonymous.get("/" + "z" * 43)
        assert missing.value.status == 404  # type: ignore[attr-defined]
        with pytest.raises(InvalidPath):
            anonymous.get("/a/(b")
        with Client(server.url, wallet=wallet) as signed:
            pid = signed.spawn(TALLY)
        with pytest.raises(Unauthorized):
            anonymous.schedule(pid, {"Action": "Add"})
        with pytest.raises(hbeam.InvalidMessage):
            anonymous.spawn()
    with Client("127.0.0.1:9", timeout=2) as nowhere, pytest.raises(AOError, match="cannot reach"):
        nowhere.get("/healthz")


def test_watch_yields_updates(server: BackgroundServer, wallet: Wallet) -> None:
    with Client(server.url, wallet=wallet) as client:
        pid = client.spawn(TALLY)
        updates: list[Update] = []
        ready = threading.Event()

        def watch() -> None:
            for update in client.watch(f"/{pid}~process@1.0/now/cache/senders"):
                updates.append(update)
                ready.set()
                if len(updates) == 3:
                    return

        thread = threading.Thread(target=watch)
        thread.start()
        assert ready.wait(10)
        client.schedule(pid, {"Action": "Add", "n": 1})
        client.schedule(pid, {"Action": "Add", "n": 2})
        thread.join(10)
        assert [u.slot for u in updates] == [0, 1, 2]
        assert updates[0].data == {} and updates[2].data == {wallet.address: 3}
        failing = client.watch(f"/{pid}~process@1.0/events/cache/nope")
        first = next(failing)
        assert isinstance(first.error, NotFound) and first.data is None
        failing.close()


def test_async_client(server: BackgroundServer, wallet: Wallet) -> None:
    async def run() -> None:
        async with AsyncClient(server.url, wallet=wallet) as client:
            pid = await client.spawn(TALLY)
            await client.schedule(pid, {"Action": "Add", "n": 4})
            assert (await client.push(pid, {"Action": "Add"}))["slot"] == 2
            assert await client.now(pid, "cache/senders") == {wallet.address: 5}
            assert (await client.compute(pid, 1, "cache/senders"))[wallet.address] == 4
            assert await client.slot(pid) == 2
            assert await client.resolve(f"/{pid}~process@1.0/slot/current") == 2
            assert len(await client.publish("text")) == 43
            assert (await client.info())["node"] == "hbeam"
            with pytest.raises(NotFound):
                await client.get("/" + "q" * 43)
            seen = []
            async for update in client.watch(pid):
                seen.append(update.slot)
                if len(seen) == 1:
                    await client.schedule(pid, {"Action": "Add", "n": 6})
                if len(seen) == 2:
                    break
            assert seen == [2, 3]

    asyncio.run(run())


def test_async_client_over_asgi_transport(backend: ModuleType, tmp_path: Path) -> None:
    async def run(node: Node) -> None:
        transport = httpx.ASGITransport(app=node.app)
        async with AsyncClient("http://node", transport=transport) as client:
            assert (await client.get("/healthz")) == {"status": "ok"}
            assert (await client.info())["processes"] == 0

    with Node(f"lmdb:{tmp_path / 'node'}") as node:
        asyncio.run(run(node))
