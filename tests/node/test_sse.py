"""Server-Sent Events: ``GET /<pid>~process@1.0/events[/rest]`` on a real server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hbeam import device
from hbeam.node import Node
from hbeam.node.app import create_app
from hbeam.node.server import BackgroundServer


class Counter:
    """``cache/balances/total`` += the message's ``add``; ``add: boom`` fails the slot."""

    def init(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("cache", {"balances": {"total": 0}})

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        add = req["body"].get("add")
        if add == "boom":
            raise RuntimeError("boom")
        total = base["cache"]["balances"]["total"] + int(add)
        return base.set("cache/balances/total", total)


device.register("test-sse-counter@1.0", Counter())


@pytest.fixture
def served(backend: ModuleType, tmp_path: Path) -> Iterator[tuple[Node, BackgroundServer, str]]:
    with Node(f"lmdb:{tmp_path / 'node'}") as node:
        pid = node.spawn({"execution-device": "test-sse-counter@1.0"})
        app = create_app(node, keepalive=0.3)
        with BackgroundServer(node, app=app) as srv:
            yield node, srv, pid


class Stream:
    """Reads one SSE response in a thread; events land in ``self.events``."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self.ready = threading.Event()
        self._stop = False
        self._client = httpx.Client(timeout=httpx.Timeout(10.0))
        self._thread = threading.Thread(target=self._run, args=(url, headers or {}), daemon=True)
        self._thread.start()
        assert self.ready.wait(10)

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self.status = response.status_code
                self.content_type = response.headers.get("content-type", "")
                self.ready.set()
                event: dict[str, Any] = {}
                for line in response.iter_lines():
                    if self._stop:
                        return
                    if line.startswith(":"):
                        self.comments.append(line)
                    elif line == "":
                        if "data" in event:
                            self.events.append(event)
                        event = {}
                    else:
                        field, _, value = line.partition(": ")
                        event[field] = value
        except httpx.HTTPError:
            pass
        finally:
            self.ready.set()

    def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.events) >= count, self.events
        return self.events

    def close(self, wait: bool = True) -> None:
        self._stop = True
        self._client.close()
        if wait:
            self._thread.join(5)


def _until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_three_scheduled_slots_arrive_in_order(served: tuple[Node, BackgroundServer, str]) -> None:
    node, srv, pid = served
    stream = Stream(f"{srv.url}/{pid}~process@1.0/events/cache/balances")
    try:
        assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
        first = stream.wait(1)[0]  # the state when we connected
        assert first["id"] == "0" and json.loads(first["data"]) == {"total": 0}
        for add in (1, 2, 3):
            node.schedule(pid, {"add": add})
        events = stream.wait(4)[1:4]
        assert [e["id"] for e in events] == ["1", "2", "3"]
        assert [json.loads(e["data"]) for e in events] == [{"total": 1}, {"total": 3}, {"total": 6}]
    finally:
        stream.close()


def test_many_subscribers_and_disconnect_cleanup(
    served: tuple[Node, BackgroundServer, str],
) -> None:
    node, srv, pid = served
    http = srv.app.state.http
    runtime = node.runtime(pid)
    threads_before = threading.active_count()
    streams = [
        Stream(f"{srv.url}/{pid}~process@1.0/events/cache/balances/total") for _ in range(12)
    ]
    try:
        assert _until(lambda: http.streams == 12 and len(runtime._subscribers) == 12)
        node.schedule(pid, {"add": 5})
        for stream in streams:
            assert [e["data"] for e in stream.wait(2)] == ["0", "5"]
        # the streams cost no server threads (the 12 client threads are ours)
        assert threading.active_count() - threads_before <= 12 + 20
    finally:
        for stream in streams:
            stream.close(wait=False)
        for stream in streams:
            stream.close()
    assert _until(lambda: http.streams == 0 and not runtime._subscribers)


def test_reconnect_resumes_after_last_event_id_and_keepalives(
    served: tuple[Node, BackgroundServer, str],
) -> None:
    node, srv, pid = served
    for add in (1, 1, 1):
        node.schedule(pid, {"add": add})
    node.now(pid)
    stream = Stream(
        f"{srv.url}/{pid}~process@1.0/events/cache/balances", headers={"last-event-id": "1"}
    )
    try:
        assert [e["id"] for e in stream.wait(2)] == ["2", "3"]
        assert _until(lambda: any("keep-alive" in c for c in stream.comments))
    finally:
        stream.close()


def test_failures_are_ao_error_events_and_shutdown_ends_streams(
    backend: ModuleType, tmp_path: Path
) -> None:
    with Node(f"lmdb:{tmp_path / 'node'}") as node:
        pid = node.spawn({"execution-device": "test-sse-counter@1.0"})
        srv = BackgroundServer(node, app=create_app(node, keepalive=30)).start()
        missing = Stream(f"{srv.url}/{pid}~process@1.0/events/cache/nope")
        stream = Stream(f"{srv.url}/{pid}~process@1.0/events/cache/balances/total")
        try:
            assert missing.wait(1)[0]["event"] == "ao-error"
            assert json.loads(missing.events[0]["data"])["error"] == "NotFound"
            node.schedule(pid, {"add": "boom"})
            failed = stream.wait(2)[1]
            assert failed["id"] == "1" and failed["event"] == "ao-error"
            assert json.loads(failed["data"])["error"] == "DeviceError"
            started = time.monotonic()
            srv.stop()  # open streams must not hold the shutdown for the keep-alive
            assert time.monotonic() - started < 5
        finally:
            missing.close()
            stream.close()
            srv.stop()
