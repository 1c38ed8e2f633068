"""The node's ASGI application: HyperBEAM's path language over HTTP (``create_app``).

A request becomes one *singleton* message (lower-case headers, ``method``, the body's
keys: :mod:`hbeam.node.codec`), its path is parsed by :func:`hbeam.path.parse_request`
with those keys as globals, resolved with the node's options in a worker thread (the
event loop never runs device code, store I/O or signature checks), and the result is
encoded by the codec the request asks for.

Routes the node answers itself, before the path language (``docs/process-design.md``):

=========================================  ==============================================
``GET /``                                  302 to ``/~hyperbuddy@1.0/dashboard``
``GET /healthz``                           ``{"status": "ok"}``
``POST /publish``                          raw body → ``{"id": ID}`` (:mod:`.routes`)
``POST /spawn``                            JSON definition → ``{"process": pid}``
``POST /schedule``                         a ``type: Process`` body spawns (HyperBEAM)
``POST /<pid>[~process@1.0]/schedule``     JSON message → its assignment
``GET  /<pid>[~process@1.0]/schedule``     the assignments (``?from=&to=``)
``POST /<pid>[~process@1.0]/push``         schedule, compute, → the slot's ``results``
``GET  /<pid>~process@1.0/events[/rest]``  Server-Sent Events (:mod:`.sse`)
``OPTIONS *``                              204 CORS preflight
=========================================  ==============================================

Scheduling and spawning happen only on those routes: a path-language request that would
run ``schedule``/``push``, or that applies ``process@1.0``/``scheduler@1.0`` to anything
but a stored process (``/<pid>~process@1.0/…``), is refused with 400, so nothing reaches
a process's schedule without the signature checks below.

Signed requests (RFC 9421, :mod:`hbeam.httpsig`): any request with a ``signature-input``
header is verified (a bad one → 400 naming the problem) and its uncovered headers are
dropped from the singleton, as HyperBEAM drops a signed message's unsigned keys.  With
``require_signed`` (the default) unsigned schedule/spawn requests get 401.

Errors are JSON ``{"error", "message", "path", "detail"}`` with the error class's
``http_status`` (a readable page for browsers); an unexpected exception is logged with its
traceback on the node and answered with a 500 that does not show it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from hbeam.errors import AOError, InvalidMessage, InvalidPath, NotFound, RecursionLimit
from hbeam.node import codec

__all__ = ["DEFAULT_MAX_BODY_BYTES", "HttpNode", "Signed", "create_app"]

log = logging.getLogger("hbeam.node")

DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
DEFAULT_WORKERS: Final = 16
DEFAULT_KEEPALIVE: Final = 15.0
# bodies this much over the limit are still read (and dropped) so the client sees the 413
# instead of a reset connection; anything larger is cut off
_DRAIN_FACTOR: Final = 4

_ID: Final = r"[A-Za-z0-9_-]{43}"
_PROCESS_ROUTE = re.compile(rf"/({_ID})(?:~process@1\.0)?/(schedule|push)/?\Z", re.IGNORECASE)
_EVENTS_ROUTE = re.compile(rf"/({_ID})~process@1\.0/events(/.*)?\Z", re.IGNORECASE)
_SCHEDULING_KEYS: Final = frozenset({"schedule", "push"})
_PROCESS_DEVICES: Final = frozenset({"process@1.0", "scheduler@1.0"})

CORS_HEADERS: Final = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
    "access-control-expose-headers": "*",
}
_PREFLIGHT_HEADERS: Final = {
    "access-control-allow-origin": "*",
    "access-control-allow-headers": "*",
    "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS, PATCH",
    "access-control-max-age": "86400",
}
_MAX_DEFINITIONS: Final = 4096
_PATH_METHODS: Final = ("GET", "HEAD", "POST")
_ALL_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

T = TypeVar("T")


@dataclass(frozen=True)
class Signed:
    """What a verified RFC 9421 request signature tells the node."""

    signer: str
    """The signer's address (becomes ``from``/``owner`` of what it schedules/spawns)."""
    covered: frozenset[str]
    """Header names the signature covers (the others are dropped)."""
    commitment_id: str
    """The signature's commitment ID: a replayed request has the same one."""


class HttpError(Exception):
    """An answer other than 200 decided by the HTTP layer itself (413, 405, 401 …)."""

    def __init__(self, status: int, error: AOError, headers: Mapping[str, str] | None = None):
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.headers = dict(headers or {})


class HttpNode:
    """The state behind one ASGI app: the node, its HTTP options, its worker limiter."""

    def __init__(
        self,
        node: Any,
        *,
        require_signed: bool | None = None,
        max_body_bytes: int | None = None,
        workers: int | None = None,
        keepalive: float | None = None,
    ) -> None:
        opts = node.opts
        self.node = node
        self.require_signed = bool(
            opts.get("require_signed", True) if require_signed is None else require_signed
        )
        self.max_body_bytes = int(
            opts.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
            if max_body_bytes is None
            else max_body_bytes
        )
        self.workers = int(
            opts.get("http_workers", DEFAULT_WORKERS) if workers is None else workers
        )
        self.keepalive = float(
            opts.get("sse_keepalive", DEFAULT_KEEPALIVE) if keepalive is None else keepalive
        )
        self._limiter: anyio.CapacityLimiter | None = None
        self.closing: asyncio.Event | None = None
        self.streams = 0  # open SSE streams (for tests and /~meta@1.0/info)
        self._definitions: dict[str, Any] = {}
        self.responses = ResponseCache()

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.workers)
        return self._limiter

    def closing_event(self) -> asyncio.Event:
        if self.closing is None:
            self.closing = asyncio.Event()
        return self.closing

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread (device code, store I/O, crypto)."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def close(self) -> None:
        """Tell open SSE streams to finish (the server calls this when it shuts down)."""
        if self.closing is not None:
            self.closing.set()

    # -- requests ---------------------------------------------------------------------------

    async def body(self, request: Request) -> bytes:
        """The request body, refused with 413 past ``max_body_bytes``."""
        limit = self.max_body_bytes
        declared = request.headers.get("content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > limit
        if too_large and int(declared or 0) > limit * _DRAIN_FACTOR:
            raise self._too_large(int(declared or 0))
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    too_large = True
                    if size > limit * _DRAIN_FACTOR:
                        break
                    continue
                chunks.append(chunk)
        except ClientDisconnect as exc:
            raise HttpError(400, InvalidMessage("the client went away mid-request")) from exc
        if too_large:
            raise self._too_large(size)
        return b"".join(chunks)

    def _too_large(self, size: int) -> HttpError:
        return HttpError(
            413,
            InvalidMessage(
                f"the request body ({size:,} bytes) is over this node's limit of "
                f"{self.max_body_bytes:,} bytes (max_body_bytes)",
                limit=self.max_body_bytes,
            ),
        )

    async def signature(self, request: Request, body: bytes) -> Signed | None:
        """The verified signature of a signed request; None if it is unsigned.

        Raises:
            InvalidSignature: the request claims a signature that does not verify (400).
        """
        from hbeam import httpsig

        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
        if not httpsig.is_signed(pairs):
            return None
        target = raw_target(request)
        details = await self.run(
            httpsig.verify_request_details, request.method, target, pairs, body
        )
        return Signed(details.signer, details.covered, details.commitment_id)

    def headers_of(self, request: Request) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]

    def fmt(self, request: Request, globals_: Mapping[str, Any] | None = None) -> codec.Format:
        codec_name = request.headers.get("accept-codec")
        if codec_name is None and globals_ is not None:
            value = globals_.get("accept-codec")
            codec_name = value if isinstance(value, str) else None
        return codec.choose_format(request.headers.get("accept"), codec_name)

    # -- responses --------------------------------------------------------------------------

    def respond(self, encoded: codec.Encoded, *, head: bool = False) -> Response:
        headers = {**CORS_HEADERS, **encoded.headers}
        return Response(
            b"" if head else encoded.body,
            status_code=encoded.status,
            headers=headers,
            media_type=encoded.media_type,
        )

    def fail(
        self,
        exc: BaseException,
        fmt: codec.Format,
        path: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        if not isinstance(exc, AOError):
            log.error("internal error answering %s", path, exc_info=exc)
        encoded = codec.encode_error(exc, fmt, path=path)
        if status is not None:
            encoded.status = status
        if headers:
            encoded.headers.update(headers)
        return self.respond(encoded)

    def json(self, data: Any, status: int = 200) -> Response:
        return self.respond(codec.Encoded(status, codec.json_bytes(data), codec.JSON_TYPE))

    # -- the path language ------------------------------------------------------------------

    def definition(self, pid: str) -> Any:
        """The stored definition of process ``pid``, or None (remembered: it never changes)."""
        found = self._definitions.get(pid)
        if found is None and len(pid) == 43:
            raw = self.node.store.read(f"processes/{pid}")
            if raw is not None:
                from hbeam import _core

                found = _core.impl.decode(raw)
                if len(self._definitions) < _MAX_DEFINITIONS:
                    self._definitions[pid] = found
        return found

    def is_process(self, pid: str) -> bool:
        return self.definition(pid) is not None

    def load_process_base(self, items: list[Any]) -> list[Any]:
        """Replace a leading process ID by its stored definition.

        A signed process's ID is its signed ID, under which the message cache has no
        entry (it keeps messages under their unsigned ID); the node's process table has it.
        """
        if not items:
            return items
        first = items[0]
        pid = None
        if isinstance(first, str):
            pid = first
        elif isinstance(first, tuple) and len(first) == 3 and first[0] == "as":
            pid = first[2] if isinstance(first[2], str) else None
        if pid is None:
            return items
        definition = self.definition(pid)
        if definition is None:
            return items
        base = definition if isinstance(first, str) else ("as", first[1], definition)
        return [base, *items[1:]]

    def resolve_encode(
        self, target: str, globals_: dict[str, Any], fmt: codec.Format
    ) -> codec.Encoded:
        """Parse, check, resolve and encode one path-language request (worker thread)."""
        from hbeam import ao
        from hbeam.path import parse_request

        try:
            items = parse_request(target, globals_)
            guard(items, self.is_process)
            items = self.load_process_base(items)
            result = ao.resolve_many(items, opts=self.node.opts)
            return codec.encode_result(result, fmt, path=target)
        except RecursionError:
            return codec.encode_error(
                RecursionLimit(f"resolving {target} nested too deeply"), fmt, path=target
            )
        except AOError as exc:
            return codec.encode_error(exc, fmt, path=target)
        except Exception as exc:  # a device bug: logged here, never shown to the client
            log.error("internal error answering %s", target, exc_info=exc)
            return codec.encode_error(exc, fmt, path=target)

    async def path_language(self, request: Request, target: str) -> Response:
        if request.method not in _PATH_METHODS:
            fmt = self.fmt(request)
            return self.fail(
                InvalidMessage(
                    f"{request.method} is not accepted here: use GET (or POST with a body "
                    "of keys) for the path language",
                    method=request.method,
                ),
                fmt,
                target,
                status=405,
                headers={"allow": ", ".join(_PATH_METHODS)},
            )
        cacheable = self.cacheable(request, target)
        if cacheable is not None:
            key = (target, tuple(request.scope["headers"]))
            slot = self.node.scheduler.current(cacheable) if cacheable else None
        body = await self.body(request)
        signed = await self.signature(request, body)
        body_keys = await self.run(codec.decode_body, body, request.headers.get("content-type"))
        globals_ = codec.request_globals(
            request.method,
            self.headers_of(request),
            body_keys,
            covered=signed.covered if signed is not None else None,
        )
        fmt = self.fmt(request, globals_)
        encoded = await self.run(self.resolve_encode, target, globals_, fmt)
        if cacheable is not None and encoded.status == 200 and not body:
            after = self.node.scheduler.current(cacheable) if cacheable else None
            if after == slot:
                self.responses.put(key, slot, encoded)
        return self.respond(encoded, head=request.method == "HEAD")

    def cacheable(self, request: Request, target: str) -> str | None:
        """:meth:`ResponseCache.cacheable` for a GET/HEAD without a signature, else None."""
        scope = request.scope
        if scope["method"] not in ("GET", "HEAD"):
            return None
        verdict = self.responses.cacheable(target)
        if verdict is None:
            return None
        for name, _ in scope["headers"]:
            if name == b"signature-input":
                return None
        return verdict

    def cached(self, request: Request, target: str) -> Response | None:
        """The answer to a repeated GET of a process's state, from the response cache."""
        pid = self.cacheable(request, target)
        if pid is None:
            return None
        slot = self.node.scheduler.current(pid) if pid else None
        hit = self.responses.get((target, tuple(request.scope["headers"])), slot)
        if hit is None:
            return None
        if request.scope["method"] == "HEAD":
            return self.respond(hit, head=True)
        if hit.response is None:  # a Response holds no per-request state: reuse it
            hit.response = self.respond(hit)
        return hit.response  # type: ignore[no-any-return]

    # -- dispatch ---------------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Response:
        """Answer one request (every route goes through here)."""
        from hbeam.node import routes, sse

        target = raw_target(request)
        path = target.split("?", 1)[0]
        method = request.method
        try:
            hit = self.cached(request, target)
            if hit is not None:
                return hit
            if method == "OPTIONS":
                headers = dict(_PREFLIGHT_HEADERS)
                asked = request.headers.get("access-control-request-headers")
                if asked:
                    headers["access-control-allow-headers"] = asked
                return Response(status_code=204, headers=headers)
            if path == "/healthz":
                self.only(method, ("GET", "HEAD"), path)
                return self.respond(
                    codec.Encoded(200, b'{"status":"ok"}', codec.JSON_TYPE),
                    head=method == "HEAD",
                )
            if path == "/" and target == "/" and method in ("GET", "HEAD"):
                return Response(
                    status_code=302,
                    headers={**CORS_HEADERS, "location": "/~hyperbuddy@1.0/dashboard"},
                )
            if path in ("/publish", "/publish/"):
                self.only(method, ("POST",), path)
                return await routes.publish(self, request)
            if path in ("/spawn", "/spawn/"):
                self.only(method, ("POST",), path)
                return await routes.spawn(self, request)
            if path in ("/schedule", "/schedule/"):
                self.only(method, ("POST",), path)
                return await routes.schedule_root(self, request)
            match = _PROCESS_ROUTE.match(path)
            if match is not None:
                pid, key = match.group(1), match.group(2).lower()
                if key == "push":
                    self.only(method, ("POST",), path)
                    return await routes.push(self, request, pid)
                self.only(method, ("GET", "HEAD", "POST"), path)
                if method == "POST":
                    return await routes.schedule(self, request, pid)
                return await routes.schedule_listing(self, request, pid)
            match = _EVENTS_ROUTE.match(path)
            if match is not None:
                self.only(method, ("GET",), path)
                return await sse.events(self, request, match.group(1), match.group(2) or "")
            return await self.path_language(request, target)
        except HttpError as exc:
            return self.fail(
                exc.error, self.fmt(request), target, status=exc.status, headers=exc.headers
            )
        except AOError as exc:
            return self.fail(exc, self.fmt(request), target)
        except Exception as exc:  # never a traceback to the client
            return self.fail(exc, self.fmt(request), target)

    @staticmethod
    def only(method: str, allowed: tuple[str, ...], path: str) -> None:
        if method not in allowed:
            raise HttpError(
                405,
                InvalidMessage(
                    f"{method} {path} is not supported (use {' or '.join(allowed)})",
                    method=method,
                ),
                {"allow": ", ".join(allowed)},
            )


_CACHEABLE = re.compile(
    rf"/({_ID})~process@1\.0/(now|compute&slot=\d+)((?:/[^/?()]*)*)\Z", re.IGNORECASE
)
_CACHEABLE_DEVICES: Final = frozenset({"json@1.0", "message@1.0", "lua@5.3a"})
_MAX_RESPONSES: Final = 1024


class ResponseCache:
    """Encoded answers to repeated GETs of a process's state, valid while its slot stands.

    Only ``/<pid>~process@1.0/now/…`` and ``…/compute&slot=N/…`` paths whose later segments
    are plain keys or casts to devices that compute from their input alone (``json@1.0``,
    ``message@1.0``, ``lua@5.3a`` dynamic functions, hyperbuddy's ``format``) qualify:
    their answer is a function of the process state at one slot and of the request, and
    the key is the whole request (target and every header).  A ``now`` answer is served
    while the process's latest slot is the one it was computed at; a ``compute&slot=N``
    answer never changes.  Hits are answered on the event loop, with no thread hop.
    """

    def __init__(self, capacity: int = _MAX_RESPONSES) -> None:
        self.capacity = capacity
        self._entries: collections.OrderedDict[Any, tuple[int | None, codec.Encoded]] = (
            collections.OrderedDict()
        )
        self._targets: dict[str, str | None] = {}
        self.hits = 0

    def cacheable(self, target: str) -> str | None:
        """``pid`` for a ``now`` path, ``""`` for an immutable ``compute&slot=N`` path,
        None when the answer may not be cached."""
        if target in self._targets:
            return self._targets[target]
        verdict: str | None = None
        match = _CACHEABLE.match(target)
        if match is not None and "+resolve" not in target and " resolve" not in target:
            verdict = match.group(1) if match.group(2).lower() == "now" else ""
            for segment in match.group(3).split("/"):
                if "~" not in segment:
                    continue
                key, _, dev = segment.partition("~")
                dev = dev.split("&", 1)[0].lower()
                if dev == "hyperbuddy@1.0" and key.lower() == "format":
                    continue
                if dev not in _CACHEABLE_DEVICES:
                    verdict = None
                    break
        if len(self._targets) < 4 * self.capacity:
            self._targets[target] = verdict
        return verdict

    def get(self, key: Any, slot: int | None) -> codec.Encoded | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != slot:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: Any, slot: int | None, encoded: codec.Encoded) -> None:
        self._entries[key] = (slot, encoded)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


def raw_target(request: Request) -> str:
    """The request target as received: raw (percent-encoded) path plus ``?query``."""
    scope = request.scope
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope.get("path", "/")
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def guard(items: list[Any], is_process: Callable[[str], bool]) -> None:
    """Refuse a parsed request that would schedule or spawn outside the process routes.

    Raises:
        InvalidPath: a ``schedule``/``push`` key, or ``process@1.0``/``scheduler@1.0``
            applied to something other than a stored process.
        NotFound: ``/<ID>~process@1.0/…`` names no process of this node.
    """
    for index, item in enumerate(items):
        _guard_item(item, index == 0, is_process)


def _guard_item(item: Any, is_base: bool, is_process: Callable[[str], bool]) -> None:
    if isinstance(item, tuple) and item:
        if item[0] == "as" and len(item) == 3:
            dev = str(item[1]).lower()
            inner = item[2]
            if dev in _PROCESS_DEVICES:
                if not (is_base and isinstance(inner, str)):
                    raise InvalidPath(
                        f"{item[1]} applies only to a stored process, as the first segment "
                        "(/<pid>~process@1.0/…); spawn with POST /spawn and schedule with "
                        "POST /<pid>~process@1.0/schedule"
                    )
                if not is_process(inner):
                    raise NotFound(f"no process {inner} on this node", key=inner)
            _guard_item(inner, False, is_process)
            return
        if item[0] == "resolve" and len(item) == 2:
            for index, sub in enumerate(item[1]):
                _guard_item(sub, index == 0, is_process)
            return
        for sub in item:
            _guard_item(sub, False, is_process)
        return
    if isinstance(item, Mapping):
        named = item.get("device")
        if isinstance(named, str) and named.lower() in _PROCESS_DEVICES:
            raise InvalidPath(
                f"a message with device {named} cannot be made from a request: spawn processes "
                "with POST /spawn"
            )
        key = item.get("path")
        if isinstance(key, str) and key.strip("/").split("/", 1)[0].lower() in _SCHEDULING_KEYS:
            raise InvalidPath(
                f"{key!r} is not available in the path language: schedule with "
                "POST /<pid>~process@1.0/schedule (or /push)"
            )
        for value in item.values():
            if isinstance(value, (tuple, list)):
                _guard_item(value, False, is_process)
    elif isinstance(item, list):
        for sub in item:
            _guard_item(sub, False, is_process)


def create_app(
    node: Any,
    *,
    require_signed: bool | None = None,
    max_body_bytes: int | None = None,
    workers: int | None = None,
    keepalive: float | None = None,
) -> Starlette:
    """The ASGI application serving ``node`` (a :class:`hbeam.Node`).

    Options default to the node's (``node.opts``): ``require_signed`` (True: unsigned
    schedule/spawn requests get 401), ``max_body_bytes`` (10 MiB), ``http_workers``
    (threads resolving requests at once, 16), ``sse_keepalive`` (seconds between SSE
    keep-alive comments, 15).  ``app.state.http`` is the :class:`HttpNode`.
    """
    http = HttpNode(
        node,
        require_signed=require_signed,
        max_body_bytes=max_body_bytes,
        workers=workers,
        keepalive=keepalive,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        http.closing_event()
        try:
            yield
        finally:
            http.close()

    app = Starlette(
        routes=[Route("/{path:path}", http.dispatch, methods=list(_ALL_METHODS))],
        lifespan=lifespan,
    )
    app.state.http = http
    return app
