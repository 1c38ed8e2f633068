"""The HTTP node under load (loopback only, bounded runs).

Groups:
* ``http GET /now/cache/balances, N clients`` (N = 1, 16, 64): a seed-000 token process's
  cached balances (``Accept: application/json``) per core backend (``native``, ``pure``),
  next to ``hello``: the node's trivial ``/healthz`` endpoint in the same app and server
  (native), the ceiling of the HTTP stack itself.  The note gives balances/hello.
* ``http schedule Transfer, 16 clients``: durable scheduling of token transfers over
  HTTP — ``signed`` (an RSA-4096 committed message in an RFC 9421-signed request, the
  ``hbeam.Client`` path: the node verifies both signatures) vs ``unsigned`` (a plain JSON
  message, on a node that allows it).  Requests are signed before the timed run.

The node runs in this process (uvicorn in a thread, as ``hbeam serve`` runs it); the load
comes from a separate process (this file run as a script) over keep-alive HTTP/1.1
connections on 127.0.0.1, a fixed number of requests per round.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # the load generator (script mode) needs none of this
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

CONCURRENCY = (1, 16, 64)
GET_REQUESTS = {1: 1500, 16: 5000, 64: 5000}
SCHEDULE_REQUESTS = 300
ROUNDS = 3


# --- the load generator (a separate process) --------------------------------------------


async def _worker(host: str, port: int, queue: list[bytes], stats: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while queue:
            writer.write(queue.pop())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            stats[str(status)] = stats.get(str(status), 0) + 1
    finally:
        writer.close()


async def _load(host: str, port: int, requests: list[bytes], concurrency: int) -> dict[str, Any]:
    queue = list(reversed(requests))
    stats: dict[str, int] = {}
    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(_worker(host, port, queue, stats) for _ in range(concurrency))),
        timeout=120,
    )
    return {"seconds": time.perf_counter() - started, "statuses": stats}


def _serve_commands() -> None:
    """Script mode: one JSON command per stdin line → one JSON result per stdout line."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    for line in sys.stdin:
        command = json.loads(line)
        raw = Path(command["file"]).read_text().split()
        requests = [base64.b64decode(r) for r in raw]
        requests = (requests * (command["count"] // len(requests) + 1))[: command["count"]]
        result = asyncio.run(_load(command["host"], command["port"], requests, command["c"]))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _serve_commands()
    raise SystemExit(0)


# --- the benchmarks ---------------------------------------------------------------------

from hbeam import _core  # noqa: E402
from hbeam.commitment import commit  # noqa: E402
from hbeam.httpsig import sign_request  # noqa: E402
from hbeam.lua.aos import TOKEN_SOURCE  # noqa: E402
from hbeam.node import Node  # noqa: E402
from hbeam.node.app import create_app  # noqa: E402
from hbeam.node.server import BackgroundServer  # noqa: E402
from hbeam.wallet import Wallet  # noqa: E402


class LoadGenerator:
    """The load process: ``run(requests, concurrency, count)`` → (seconds, statuses)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.dir = tempfile.TemporaryDirectory(prefix="hbeam-bench-")

    def prepare(self, name: str, requests: list[bytes]) -> str:
        file = Path(self.dir.name) / f"{name}.txt"
        file.write_text("\n".join(base64.b64encode(r).decode() for r in requests))
        return str(file)

    def run(self, file: str, port: int, concurrency: int, count: int) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        command = {
            "file": file,
            "host": "127.0.0.1",
            "port": port,
            "c": concurrency,
            "count": count,
        }
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return result

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.dir.cleanup()


def _get(path: str, port: int) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\naccept: application/json\r\n\r\n"
    ).encode()


def _post(path: str, port: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{port}", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Setup:
    def __init__(self, impl: str) -> None:
        self.impl = impl
        self._use = _core.use(impl)
        self._use.__enter__()
        self.tmp = tempfile.TemporaryDirectory(prefix="hbeam-bench-node-")
        self.wallet = Wallet.generate("rsa")
        self.node = Node(f"lmdb:{self.tmp.name}")
        self.pid = self.node.spawn_lua(TOKEN_SOURCE, owner=self.wallet.address)
        self.node.schedule(
            self.pid, commit({"Action": "Mint", "Quantity": "1" + "0" * 20}, self.wallet)
        )
        self.node.now(self.pid)
        self.server = BackgroundServer(
            self.node, app=create_app(self.node, require_signed=False)
        ).start()
        self.load = LoadGenerator()
        port = self.server.port
        self.balances = self.load.prepare(
            "balances", [_get(f"/{self.pid}~process@1.0/now/cache/balances", port)]
        )
        self.hello = self.load.prepare("hello", [_get("/healthz", port)])
        self._transfers: dict[str, str] = {}

    def transfers(self, kind: str) -> str:
        """Pre-built schedule requests (each distinct: a replay would not be scheduled)."""
        if kind not in self._transfers:
            port = self.server.port
            path = f"/{self.pid}~process@1.0/schedule"
            url = f"http://127.0.0.1:{port}{path}"
            requests = []
            for n in range(SCHEDULE_REQUESTS * (ROUNDS + 1)):
                msg = {
                    "Action": "Transfer",
                    "Recipient": "r" * 43,
                    "Quantity": "1",
                    "Nonce": str(n),
                }
                headers = {"content-type": "application/json"}
                if kind == "signed":
                    body = json.dumps(commit(msg, self.wallet).to_dict()).encode()
                    headers = sign_request("POST", url, headers, body, self.wallet)
                else:
                    body = json.dumps(msg).encode()
                requests.append(_post(path, port, headers, body))
            self._transfers[kind] = self.load.prepare(f"transfers-{kind}", requests)
        return self._transfers[kind]

    def close(self) -> None:
        self.load.close()
        self.server.stop()
        self.node.close()
        self.tmp.cleanup()
        self._use.__exit__(None, None, None)


_SETUPS: dict[str, Setup] = {}


@pytest.fixture(scope="module")
def setups() -> Iterator[dict[str, Setup]]:
    yield _SETUPS
    for setup in _SETUPS.values():
        setup.close()
    _SETUPS.clear()


def _setup(setups: dict[str, Setup], impl: str) -> Setup:
    if impl not in setups:
        for other in list(setups):  # one node at a time: they would share the 2 cores
            setups.pop(other).close()
        if impl == "native" and not _core.available("native"):
            pytest.skip("native core not built")
        setups[impl] = Setup(impl)
    return setups[impl]


def _measure(
    benchmark: Any, setup: Setup, file: str, concurrency: int, count: int, paired: str | None = None
) -> tuple[float, float | None]:
    """Timed rounds of ``count`` requests; with ``paired``, each round is preceded by the
    same load on that file (untimed), so the two see the same machine (req/s, paired req/s)."""
    results: list[dict[str, Any]] = []
    pairs: list[float] = []

    def before() -> tuple[tuple[()], dict[str, Any]]:
        if paired is not None:
            seconds = setup.load.run(paired, setup.server.port, concurrency, count)["seconds"]
            pairs.append(count / seconds)
        return (), {}

    def once() -> None:
        results.append(setup.load.run(file, setup.server.port, concurrency, count))

    setup.load.run(file, setup.server.port, concurrency, min(count, 500))  # warm-up
    benchmark.pedantic(once, setup=before, rounds=ROUNDS, iterations=1)
    statuses = {k: v for r in results for k, v in r["statuses"].items()}
    assert set(statuses) == {"200"}, statuses
    best = float(sorted(r["seconds"] for r in results)[len(results) // 2])
    benchmark.extra_info["ops"] = count
    pair = sorted(pairs)[len(pairs) // 2] if pairs else None
    return count / best, pair


_GET_CASES = [(impl, c) for impl in ("hello", "native") for c in CONCURRENCY]
_GET_CASES = sorted(_GET_CASES, key=lambda case: (case[1], case[0] != "hello"))
_GET_CASES += [("pure", c) for c in CONCURRENCY]


@pytest.mark.parametrize(("impl", "concurrency"), _GET_CASES)
def test_get_balances(
    benchmark: Any, setups: dict[str, Setup], impl: str, concurrency: int
) -> None:
    setup = _setup(setups, "native" if impl == "hello" else impl)
    benchmark.group = f"http GET /now/cache/balances, {concurrency} clients"
    benchmark.extra_info["impl"] = impl
    count = GET_REQUESTS[concurrency]
    if impl == "hello":
        rate, _ = _measure(benchmark, setup, setup.hello, concurrency, count)
        benchmark.extra_info["note"] = f"/healthz: {rate:,.0f} req/s"
        return
    rate, hello = _measure(benchmark, setup, setup.balances, concurrency, count, setup.hello)
    assert hello is not None
    benchmark.extra_info["note"] = (
        f"{rate:,.0f} req/s = {100 * rate / hello:.0f}% of /healthz measured alternately "
        f"in the same run ({hello:,.0f} req/s)"
    )


@pytest.mark.parametrize("kind", ["unsigned", "signed"])
def test_schedule_transfers(benchmark: Any, setups: dict[str, Setup], kind: str) -> None:
    setup = _setup(setups, "native")
    benchmark.group = "http schedule Transfer, 16 clients"
    benchmark.extra_info["impl"] = kind
    file = setup.transfers(kind)
    results: list[dict[str, Any]] = []
    offset = [0]

    def once() -> None:
        results.append(setup.load.run(file, setup.server.port, 16, SCHEDULE_REQUESTS))

    # every request is distinct; the generator walks the list from the start each run, so
    # rotate the file between rounds to keep replays (answered without a new slot) out
    requests = Path(file).read_text().split()

    def rotate() -> tuple[tuple[()], dict[str, Any]]:
        start = offset[0]
        offset[0] += SCHEDULE_REQUESTS
        Path(file).write_text("\n".join(requests[start : start + SCHEDULE_REQUESTS]))
        return (), {}

    benchmark.pedantic(once, setup=rotate, rounds=ROUNDS, iterations=1)
    statuses = {k: v for r in results for k, v in r["statuses"].items()}
    assert set(statuses) == {"200"}, statuses
    best = sorted(r["seconds"] for r in results)[len(results) // 2]
    benchmark.extra_info["ops"] = SCHEDULE_REQUESTS
    benchmark.extra_info["note"] = f"{SCHEDULE_REQUESTS / best:,.0f} scheduled transfers/s"
