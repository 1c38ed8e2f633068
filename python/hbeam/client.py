"""``hbeam.Client`` / ``hbeam.AsyncClient``: talk to an hbeam (or HyperBEAM-style) node over HTTP.

>>> with Client("http://127.0.0.1:8734", wallet=Wallet.default()) as node:  # doctest: +SKIP
...     pid = node.spawn(module=node.publish(open("token.lua").read(), "application/lua"))
...     node.schedule(pid, {"Action": "Transfer", "Recipient": bob, "Quantity": "10"})
...     node.get(f"/{pid}~process@1.0/now/cache/balances")
...     for update in node.watch(f"/{pid}~process@1.0/events/cache/balances"):
...         print(update.slot, update.data)

With a ``wallet`` every request is signed (RFC 9421, :func:`hbeam.httpsig.sign_request`),
and every message it schedules or spawns is also committed (:func:`hbeam.commit`), so the
message itself carries its signer: the node makes that its ``from`` (a process's
``owner``), and a replayed message gets its first assignment back.  (An Ed25519 signature
is deterministic, so with such a wallet two identical messages *are* the same message:
add a distinguishing key, e.g. a nonce, to send one twice.  RSA-PSS signatures are
salted.)  Without a wallet, requests go unsigned (a node with ``require_signed`` refuses
to schedule them).

Answers are plain Python data (the JSON the node sends: dicts, lists, numbers, text).
Errors the node reports become the matching :mod:`hbeam.errors` class (``NotFound``,
``InvalidPath``, ``Unauthorized`` …, with ``.status`` = the HTTP status and
``.details``); a node that cannot be reached raises :class:`~hbeam.errors.AOError`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from hbeam import errors as _errors
from hbeam.errors import AOError, InvalidMessage

__all__ = ["DEFAULT_URL", "AsyncClient", "Client", "Update", "aos_definition"]

DEFAULT_URL: Final = "http://127.0.0.1:8734"
_ID = re.compile(r"[A-Za-z0-9_-]{43}\Z")
_JSON = "application/json"


@dataclass(frozen=True)
class Update:
    """One Server-Sent Event from a node's ``/events`` stream."""

    slot: int | None
    """The slot the update is for (the event's ``id``)."""
    data: Any
    """The JSON of ``/<pid>~process@1.0/now/<rest>`` right after that slot."""
    error: AOError | None = None
    """Set instead of ``data`` when that slot (or ``rest``) failed."""


def _error_from(status: int, payload: Any, url: str) -> AOError:
    """The hbeam exception for an error answer from the node."""
    name = payload.get("error") if isinstance(payload, Mapping) else None
    message = payload.get("message") if isinstance(payload, Mapping) else None
    detail = payload.get("detail") if isinstance(payload, Mapping) else None
    cls = getattr(_errors, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, AOError)):
        cls = AOError
    text = message if isinstance(message, str) else f"HTTP {status} from {url}"
    details = dict(detail) if isinstance(detail, Mapping) else {}
    try:
        exc = cls(text, **details)
    except TypeError:
        exc = cls(text)
    exc.status = status  # type: ignore[attr-defined]
    return exc


def _decode(response: httpx.Response) -> Any:
    """The answer's data (JSON decoded, else text, else bytes); raises for errors."""
    ctype = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    content = response.content
    if response.status_code >= 400:
        try:
            payload = orjson.loads(content) if content else {}
        except orjson.JSONDecodeError:
            payload = {"message": f"HTTP {response.status_code}: {content[:200]!r}"}
        raise _error_from(response.status_code, payload, str(response.url))
    if ctype == _JSON or ctype.endswith("+json"):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise InvalidMessage(f"the node sent invalid JSON from {response.url}") from exc
    if ctype.startswith("text/") or not ctype:
        return response.text
    return content


def _events_path(path: str) -> str:
    """``/<pid>~process@1.0/events/…`` for a pid, a ``/now/…`` path or an events path."""
    if _ID.match(path):
        return f"/{path}~process@1.0/events"
    path = path if path.startswith("/") else "/" + path
    match = re.match(r"/([A-Za-z0-9_-]{43})~process@1\.0/now(/.*)?\Z", path)
    if match:
        return f"/{match.group(1)}~process@1.0/events{match.group(2) or ''}"
    return path


class _SSEParser:
    """Incremental Server-Sent Events parsing (the WHATWG rules hbeam's node needs)."""

    def __init__(self) -> None:
        self.data: list[str] = []
        self.kind = "message"
        self.last_id: str | None = None

    def feed(self, line: str) -> Update | None:
        if line == "":
            if not self.data:
                self.kind = "message"
                return None
            text = "\n".join(self.data)
            kind = self.kind
            self.data, self.kind = [], "message"
            slot = int(self.last_id) if self.last_id and self.last_id.isdigit() else None
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                value = text
            if kind == "ao-error":
                return Update(slot, None, _error_from(500, value, "event stream"))
            if kind != "message":
                return None
            return Update(slot, value)
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            self.data.append(value)
        elif field == "event":
            self.kind = value or "message"
        elif field == "id":
            self.last_id = value
        return None


class _Base:
    def __init__(self, url: str, wallet: Any, headers: Mapping[str, str] | None) -> None:
        if not url.startswith(("http://", "https://")):
            url = "http://" + url
        self.url = url.rstrip("/")
        self.wallet = wallet
        self.headers = dict(headers or {})

    def _target(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.url + (path if path.startswith("/") else "/" + path)

    def _prepare(
        self,
        method: str,
        path: str,
        body: bytes | None,
        content_type: str | None,
        accept: str | None,
    ) -> tuple[str, dict[str, str]]:
        url = self._target(path)
        headers = dict(self.headers)
        if accept:
            headers["accept"] = accept
        if content_type and body is not None:
            headers["content-type"] = content_type
        if self.wallet is not None:
            from hbeam.httpsig import sign_request

            headers = sign_request(method, url, headers, body, self.wallet)
        return url, headers

    @staticmethod
    def _json(data: Any) -> bytes:
        from hbeam.devices.json import dumps

        return dumps(data, drop_device=False).encode("utf-8")

    def _message(self, msg: Mapping[str, Any]) -> bytes:
        """The JSON body for a message to schedule or spawn: committed with the wallet."""
        if not isinstance(msg, Mapping):
            raise InvalidMessage(f"a message is a mapping, not {type(msg).__name__}")
        if self.wallet is not None and "commitments" not in msg:
            from hbeam.commitment import commit

            msg = commit(msg, self.wallet)
        return self._json(msg)

    def _unreachable(self, exc: Exception) -> AOError:
        return AOError(f"cannot reach the node at {self.url}: {exc}")


class Client(_Base):
    """A synchronous client for one node.

    Args:
        url: the node (``http://127.0.0.1:8734`` by default).
        wallet: an :class:`hbeam.Wallet` to sign every request with (None: unsigned).
        timeout: seconds per request (``watch`` waits for events without a limit).
        headers: extra headers sent (and signed) with every request.
        transport: an httpx transport (e.g. ``httpx.ASGITransport(app)`` in tests).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        wallet: Any = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, wallet, headers)
        self._http = httpx.Client(timeout=timeout, transport=transport)

    # -- plumbing ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = _JSON,
    ) -> Any:
        """Send one (signed, with a wallet) request; the decoded answer."""
        url, headers = self._prepare(method, path, body, content_type, accept)
        try:
            response = self._http.request(method, url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return _decode(response)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ----------------------------------------------------------------------------

    def get(self, path: str, *, accept: str | None = _JSON) -> Any:
        """``GET path`` (the path language): JSON answers decoded, others as text/bytes."""
        return self.request("GET", path, accept=accept)

    def resolve(self, msg: Mapping[str, Any] | str) -> Any:
        """Resolve a message carrying its own ``path`` (its other keys are sent as the
        request's keys), or a path string."""
        if isinstance(msg, str):
            return self.get(msg)
        path = msg.get("path")
        if not isinstance(path, str):
            raise InvalidMessage("resolve needs a message with a 'path' (or a path string)")
        rest = {k: v for k, v in msg.items() if k != "path"}
        if not rest:
            return self.get(path)
        return self.request("POST", path, body=self._json(rest), content_type=_JSON)

    def publish(self, data: bytes | str, content_type: str | None = None) -> str:
        """Store ``data`` on the node; its ID."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        answer = self.request(
            "POST", "/publish", body=raw, content_type=content_type or "application/octet-stream"
        )
        return str(answer["id"])

    def spawn(
        self,
        definition: Mapping[str, Any] | None = None,
        *,
        module: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Spawn a process; its ID.  Either a full ``definition``, or an aos Lua process
        running ``module`` (an ID, or Lua source published first) with ``tags``."""
        if module is not None and not _ID.match(module):
            module = self.publish(module, "application/lua")
        body = _spawn_body(definition, module, tags)
        answer = self.request("POST", "/spawn", body=self._message(body), content_type=_JSON)
        return str(answer["process"])

    def schedule(self, pid: str, msg: Mapping[str, Any]) -> dict[str, Any]:
        """Schedule ``msg`` (tags as keys) on process ``pid``; the assignment."""
        return dict(
            self.request(
                "POST", f"/{pid}~process@1.0/schedule", body=self._message(msg), content_type=_JSON
            )
        )

    def push(self, pid: str, msg: Mapping[str, Any]) -> dict[str, Any]:
        """Schedule ``msg`` and wait for its slot to be computed: ``{process, slot, results}``."""
        return dict(
            self.request(
                "POST", f"/{pid}~process@1.0/push", body=self._message(msg), content_type=_JSON
            )
        )

    def now(self, pid: str, path: str = "") -> Any:
        """``/<pid>~process@1.0/now/<path>``: the latest state (or a part of it)."""
        return self.get(f"/{pid}~process@1.0/now" + _sub(path))

    def compute(self, pid: str, slot: int, path: str = "") -> Any:
        """The state after ``slot`` (or a part of it)."""
        return self.get(f"/{pid}~process@1.0/compute&slot={int(slot)}" + _sub(path))

    def slot(self, pid: str) -> int:
        """The latest assigned slot of ``pid``."""
        return int(self.get(f"/{pid}~process@1.0/slot")["current"])

    def info(self) -> dict[str, Any]:
        """``/~meta@1.0/info``."""
        return dict(self.get("/~meta@1.0/info"))

    def watch(self, path: str) -> Generator[Update, None, None]:
        """Live updates (SSE) of ``/<pid>~process@1.0/events/<rest>`` (a pid or a
        ``/now/…`` path is turned into that); iterate, ``break`` to stop."""
        url, headers = self._prepare("GET", _events_path(path), None, None, "text/event-stream")
        parser = _SSEParser()
        try:
            with self._http.stream(
                "GET", url, headers=headers, timeout=httpx.Timeout(None, connect=10.0)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _decode(response)
                for line in response.iter_lines():
                    update = parser.feed(line)
                    if update is not None:
                        yield update
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client` (same calls, awaited; ``watch`` is ``async for``)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        wallet: Any = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, wallet, headers)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def _signed(
        self,
        method: str,
        path: str,
        body: bytes | None,
        content_type: str | None,
        accept: str | None,
    ) -> tuple[str, dict[str, str]]:
        if self.wallet is None:
            return self._prepare(method, path, body, content_type, accept)
        # RSA signing takes milliseconds: keep it off the event loop
        return await asyncio.to_thread(self._prepare, method, path, body, content_type, accept)

    async def _amessage(self, msg: Mapping[str, Any]) -> bytes:
        if self.wallet is None:
            return self._message(msg)
        return await asyncio.to_thread(self._message, msg)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = _JSON,
    ) -> Any:
        """Send one (signed, with a wallet) request; the decoded answer."""
        url, headers = await self._signed(method, path, body, content_type, accept)
        try:
            response = await self._http.request(method, url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return _decode(response)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def get(self, path: str, *, accept: str | None = _JSON) -> Any:
        """See :meth:`Client.get`."""
        return await self.request("GET", path, accept=accept)

    async def resolve(self, msg: Mapping[str, Any] | str) -> Any:
        """See :meth:`Client.resolve`."""
        if isinstance(msg, str):
            return await self.get(msg)
        path = msg.get("path")
        if not isinstance(path, str):
            raise InvalidMessage("resolve needs a message with a 'path' (or a path string)")
        rest = {k: v for k, v in msg.items() if k != "path"}
        if not rest:
            return await self.get(path)
        return await self.request("POST", path, body=self._json(rest), content_type=_JSON)

    async def publish(self, data: bytes | str, content_type: str | None = None) -> str:
        """See :meth:`Client.publish`."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        answer = await self.request(
            "POST", "/publish", body=raw, content_type=content_type or "application/octet-stream"
        )
        return str(answer["id"])

    async def spawn(
        self,
        definition: Mapping[str, Any] | None = None,
        *,
        module: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """See :meth:`Client.spawn`."""
        if module is not None and not _ID.match(module):
            module = await self.publish(module, "application/lua")
        body = _spawn_body(definition, module, tags)
        answer = await self.request(
            "POST", "/spawn", body=await self._amessage(body), content_type=_JSON
        )
        return str(answer["process"])

    async def schedule(self, pid: str, msg: Mapping[str, Any]) -> dict[str, Any]:
        """See :meth:`Client.schedule`."""
        return dict(
            await self.request(
                "POST",
                f"/{pid}~process@1.0/schedule",
                body=await self._amessage(msg),
                content_type=_JSON,
            )
        )

    async def push(self, pid: str, msg: Mapping[str, Any]) -> dict[str, Any]:
        """See :meth:`Client.push`."""
        return dict(
            await self.request(
                "POST",
                f"/{pid}~process@1.0/push",
                body=await self._amessage(msg),
                content_type=_JSON,
            )
        )

    async def now(self, pid: str, path: str = "") -> Any:
        """See :meth:`Client.now`."""
        return await self.get(f"/{pid}~process@1.0/now" + _sub(path))

    async def compute(self, pid: str, slot: int, path: str = "") -> Any:
        """See :meth:`Client.compute`."""
        return await self.get(f"/{pid}~process@1.0/compute&slot={int(slot)}" + _sub(path))

    async def slot(self, pid: str) -> int:
        """See :meth:`Client.slot`."""
        return int((await self.get(f"/{pid}~process@1.0/slot"))["current"])

    async def info(self) -> dict[str, Any]:
        """See :meth:`Client.info`."""
        return dict(await self.get("/~meta@1.0/info"))

    async def watch(self, path: str) -> AsyncIterator[Update]:
        """See :meth:`Client.watch` (``async for update in client.watch(...)``)."""
        url, headers = await self._signed(
            "GET", _events_path(path), None, None, "text/event-stream"
        )
        parser = _SSEParser()
        try:
            async with self._http.stream(
                "GET", url, headers=headers, timeout=httpx.Timeout(None, connect=10.0)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _decode(response)
                async for line in response.aiter_lines():
                    update = parser.feed(line)
                    if update is not None:
                        yield update
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc


def _sub(path: str) -> str:
    path = path.strip("/")
    return "/" + path if path else ""


def _spawn_body(
    definition: Mapping[str, Any] | None, module: str | None, tags: Mapping[str, Any] | None
) -> dict[str, Any]:
    if definition is not None and module is not None:
        raise InvalidMessage("spawn takes a definition or a module, not both")
    if definition is not None:
        body = dict(definition)
    elif module is not None:
        body = aos_definition(module)
    else:
        raise InvalidMessage("spawn needs a definition or a module")
    if tags:
        body.update(tags)
    return body


def aos_definition(module: str) -> dict[str, Any]:
    """The definition of an aos Lua process running ``module`` (an ID): the same one
    ``Node.spawn_lua`` builds, so a signed spawn can commit the whole of it."""
    return {
        "device": "process@1.0",
        "type": "Process",
        "execution-device": "stack@1.0",
        "device-stack": ["lua@5.3a", "patch@1.0"],
        "module": module,
        "patch-from": "/results/outbox",
        "patch-to": "/",
        "scheduler": "local",
    }
