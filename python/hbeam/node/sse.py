"""Live updates: ``GET /<pid>~process@1.0/events[/rest]`` as Server-Sent Events.

[SEED≠HB] HyperBEAM has no such route; seed 000's ``watchBalanceChanges`` needs it.  A
stream sends, as ``data:`` lines of one event each:

* on connect, the JSON of ``/<pid>~process@1.0/compute&slot=<current>/<rest>`` (so a client
  starts from the present state) — or, when the client reconnects with ``Last-Event-ID:
  N``, the events for every slot after N it missed (at most :data:`MAX_BACKLOG`);
* after each newly computed slot N, the JSON of ``…/compute&slot=N/<rest>``: the state of
  ``/now/<rest>`` as it was right after that slot, so every update is seen, in order,
  even when slots are computed faster than the client reads;
* every ``keepalive`` seconds without news, a ``: keep-alive`` comment.

Each event has ``id: <slot>``.  A slot whose computation (or ``rest``) fails sends
``event: ao-error`` with the JSON error instead (``onmessage`` does not see it).

Subscribers cost no thread: the process runtime's :class:`~hbeam.node.process.Subscription`
wakes the event loop through ``call_soon_threadsafe``, and only the per-event resolution
runs in a worker thread.  A disconnect (noticed at once: the response listens for it),
the node closing or the server shutting down ends the stream and closes the subscription.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from hbeam.errors import NotFound
from hbeam.node import codec

if TYPE_CHECKING:
    from hbeam.node.app import HttpNode

__all__ = ["MAX_BACKLOG", "EventStream", "events"]

MAX_BACKLOG: Final = 256
"""Slots a slow or reconnecting client is sent one by one; past that, only the latest."""

_HEADERS: Final = {
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


class EventStream(StreamingResponse):
    """A streaming response that stops as soon as the client disconnects.

    (Starlette notices a disconnect only at the next write for ASGI ≥ 2.4 servers; an idle
    event stream may not write for a long time, so this one always listens.)
    """

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], None],
        headers: dict[str, str],
    ):
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    try:
                        await self.stream_response(send)
                    except OSError:
                        pass  # the client went away mid-write
                    group.cancel_scope.cancel()

                async def listen() -> None:
                    await self.listen_for_disconnect(receive)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                group.start_soon(listen)
        finally:
            self._on_close()


def _event(slot: int, data: bytes, kind: str | None = None) -> bytes:
    lines = [f"id: {slot}".encode()]
    if kind:
        lines.append(f"event: {kind}".encode())
    for line in data.splitlines() or [b""]:
        lines.append(b"data: " + line)
    return b"\n".join(lines) + b"\n\n"


def _payload(
    http: HttpNode, pid: str, slot: int, rest: str, query: str, globals_: dict[str, Any]
) -> tuple[bytes, str | None]:
    """``(data, event kind)`` for one slot (worker thread)."""
    target = f"/{pid}~process@1.0/compute&slot={slot}{rest}"
    if query:
        target += "?" + query
    encoded = http.resolve_encode(target, dict(globals_), "json")
    if encoded.status >= 400:
        return encoded.body, "ao-error"
    return encoded.body, None


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


async def events(http: HttpNode, request: Request, pid: str, rest: str) -> Response:
    """The SSE response for ``/<pid>~process@1.0/events<rest>``."""
    node = http.node
    if rest.rstrip("/") == "":
        rest = ""
    query = request.scope.get("query_string", b"").decode("latin-1")
    if not await http.run(http.is_process, pid):
        raise NotFound(f"no process {pid} on this node", key=pid)
    globals_ = codec.request_globals(request.method, http.headers_of(request), {})
    subscription = await http.run(node.subscribe, pid)
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    closing = http.closing_event()

    def nudge() -> None:
        wake.set()

    original_put = subscription.put

    def put(event: Any) -> None:
        # called from the compute thread for every computed slot
        original_put(event)
        try:
            loop.call_soon_threadsafe(nudge)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    subscription.put = put
    http.streams += 1
    closed = False

    def close() -> None:
        nonlocal closed
        if not closed:
            closed = True
            http.streams -= 1
            subscription.close()

    last_seen = _last_event_id(request)

    async def generate() -> AsyncIterator[bytes]:
        sent = -1 if last_seen is None else last_seen
        yield b"retry: 2000\n\n"
        current = node.scheduler.current(pid)
        if last_seen is None:
            start = current
        else:
            start = max(last_seen + 1, current - MAX_BACKLOG + 1)
        for slot in range(max(start, 0), current + 1):
            data, kind = await http.run(_payload, http, pid, slot, rest, query, globals_)
            yield _event(slot, data, kind)
            sent = slot
        while not closing.is_set():
            wake.clear()
            pending: list[int] = []
            ended = False
            while True:
                try:
                    event = subscription.get(timeout=0)
                except queue.Empty:
                    break
                if event is None:
                    ended = True
                    break
                pending.append(int(event["slot"]))
            fresh = sorted(s for s in set(pending) if s > sent)
            if len(fresh) > MAX_BACKLOG:
                yield f": skipped {len(fresh) - 1} slots (client too slow)\n\n".encode()
                fresh = fresh[-1:]
            for slot in fresh:
                data, kind = await http.run(_payload, http, pid, slot, rest, query, globals_)
                yield _event(slot, data, kind)
                sent = slot
            if ended:
                return
            if fresh:
                continue
            waiter = asyncio.ensure_future(wake.wait())
            stopper = asyncio.ensure_future(closing.wait())
            try:
                done, _ = await asyncio.wait(
                    {waiter, stopper},
                    timeout=http.keepalive,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                waiter.cancel()
                stopper.cancel()
            if not done:
                yield b": keep-alive\n\n"

    headers = {**_headers(), **_HEADERS}
    return EventStream(generate(), on_close=close, headers=headers)


def _headers() -> dict[str, str]:
    from hbeam.node.app import CORS_HEADERS

    return dict(CORS_HEADERS)
