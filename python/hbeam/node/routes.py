"""The node's own routes for data and processes: publish, spawn, schedule, push.

Who sent a message is decided from signatures only, in one of two ways:

* **a signed message** — the body is a message carrying ``commitments``
  (:func:`hbeam.commit`; what :class:`hbeam.Client` sends): it is reduced to its committed
  keys (HyperBEAM drops a signed message's unsigned keys) and the node checks its
  commitments when it schedules it (a bad one → 400); its ``from`` (a spawn's ``owner``)
  is its verified committer, and the scheduler recognises a replay by its signed ID;
* **a signed request** — an RFC 9421 signature on the request whose body is a plain
  message: the request's verified signer becomes the message's ``from`` and ``owner``
  (a spawned process's ``owner``), and the message carries ``push-ref:
  httpsig:<commitment ID>`` so the scheduler answers a replay of the same signed request
  with the first assignment.

Either way, whatever ``from``/``owner``/``from-process``/``push-ref`` the client typed in
an uncommitted message is dropped.  Unsigned schedule and spawn requests are refused with
401 while ``require_signed`` is on (the default).
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response

from hbeam.errors import InvalidMessage, NotFound, Unauthorized
from hbeam.node import codec

if TYPE_CHECKING:
    from hbeam.node.app import HttpNode, Signed

__all__ = ["publish", "push", "schedule", "schedule_listing", "schedule_root", "spawn"]

IDENTITY_KEYS: Final = frozenset({"from", "owner", "from-process", "push-ref"})
"""Keys only the node sets on what it schedules: they come from verified signatures."""
COMMITMENTS: Final = "commitments"
_MAX_LISTED: Final = 100


def _require(http: HttpNode, signed: Signed | None, keys: Mapping[str, Any], what: str) -> None:
    if signed is None and COMMITMENTS not in keys and http.require_signed:
        raise Unauthorized(
            f"{what} over HTTP needs a signed request (RFC 9421 signature and "
            "signature-input headers): send it with hbeam.Client(url, wallet=...) or the "
            "hbeam CLI, or start the node with require_signed=False"
        )


def _query_keys(request: Request) -> dict[str, Any]:
    query = request.scope.get("query_string", b"").decode("latin-1")
    if not query:
        return {}
    return dict(urllib.parse.parse_qsl(query, keep_blank_values=True))


def _message_keys(body: bytes, request: Request, *, data_key: str) -> dict[str, Any]:
    """The message a request carries: query keys, then the body's (a non-object body
    becomes ``data_key``), without transport and identity keys."""
    from hbeam.node.scheduler import TRANSPORT_KEYS

    keys = _query_keys(request)
    decoded = codec.decode_body(body, request.headers.get("content-type"))
    if set(decoded) == {"body"} and not (body.lstrip()[:1] == b"{"):
        keys[data_key] = decoded["body"]
    else:
        keys.update(decoded)
    return {k: v for k, v in keys.items() if k.lower() not in TRANSPORT_KEYS}


def identify(keys: dict[str, Any], signed: Signed | None, *, spawn: bool = False) -> Any:
    """The message to schedule (or spawn) for a request's keys and verified signature.

    A message with ``commitments`` keeps only its committed keys (the node checks the
    commitments when it schedules it); otherwise typed identity keys are dropped and a
    verified request signer becomes ``from``/``owner`` (``owner`` only, for a spawn).

    Raises:
        InvalidSignature: a commitment does not verify.
        InvalidMessage: ``commitments`` is malformed.
    """
    from hbeam import _core
    from hbeam.commitment import with_only_committed

    if COMMITMENTS in keys:
        return with_only_committed(_core.impl.Message(keys))
    message = {k: v for k, v in keys.items() if k.lower() not in IDENTITY_KEYS}
    if signed is not None:
        message["owner"] = signed.signer
        if not spawn:
            message["from"] = signed.signer
            message["push-ref"] = "httpsig:" + signed.commitment_id
    return message


async def _read(http: HttpNode, request: Request) -> tuple[bytes, Signed | None]:
    body = await http.body(request)
    return body, await http.signature(request, body)


# --- publish ----------------------------------------------------------------------------


async def publish(http: HttpNode, request: Request) -> Response:
    """``POST /publish``: store the raw body content-addressed → ``{"id": ID}``.

    The content type is kept (``<ID>/meta``).  Signatures are checked when present but
    not required: published data is only addressed by its hash.
    """
    body, _signed = await _read(http, request)
    if not body:
        raise InvalidMessage("nothing to publish: the request body is empty")
    ctype = request.headers.get("content-type")
    if ctype and ctype.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        ctype = None  # what curl -d claims by default; the bytes are taken as they are
    ident = await http.run(http.node.publish, body, ctype)
    return http.json({"id": ident})


# --- spawn ------------------------------------------------------------------------------


def _spawn(http: HttpNode, keys: dict[str, Any], signed: Signed | None) -> str:
    node = http.node
    definition = identify(keys, signed, spawn=True)
    if "execution-device" not in definition and "module" in definition:
        if COMMITMENTS in definition:
            raise InvalidMessage(
                "a signed definition must be complete: give its execution-device "
                "(the 'module' shortcut builds a new, unsigned definition)"
            )
        tags = dict(definition)
        module = tags.pop("module")
        if not isinstance(module, str):
            raise InvalidMessage("'module' must be an ID or Lua source text")
        owner = tags.pop("owner", None)
        return str(node.spawn_lua(module, tags=tags, owner=owner))
    return str(node.spawn(definition))


async def spawn(http: HttpNode, request: Request) -> Response:
    """``POST /spawn``: a JSON process definition → ``{"process": pid}``.

    A definition with a ``module`` and no ``execution-device`` is an aos Lua process
    (``node.spawn_lua``).  The signer becomes the process's ``owner``.
    """
    body, signed = await _read(http, request)
    definition = await http.run(_definition, body, request)
    _require(http, signed, definition, "spawning a process")
    pid = await http.run(_spawn, http, definition, signed)
    return http.json({"process": pid})


def _definition(body: bytes, request: Request) -> dict[str, Any]:
    decoded = codec.decode_body(body, request.headers.get("content-type") or "application/json")
    if set(decoded) == {"body"} or not decoded:
        raise InvalidMessage("a process definition is a JSON object of keys")
    return decoded


async def schedule_root(http: HttpNode, request: Request) -> Response:
    """``POST /schedule``: HyperBEAM's way to spawn (a body with ``type: Process``)."""
    body, signed = await _read(http, request)
    definition = await http.run(_definition, body, request)
    kind = next((v for k, v in definition.items() if k.lower() == "type"), None)
    if not (isinstance(kind, str) and kind.lower() == "process"):
        raise InvalidMessage(
            "POST /schedule takes a process definition (type: Process); schedule a message "
            "on a process with POST /<pid>~process@1.0/schedule"
        )
    _require(http, signed, definition, "spawning a process")
    pid = await http.run(_spawn, http, definition, signed)
    return http.json({"process": pid})


# --- schedule ---------------------------------------------------------------------------


def _admitted(
    http: HttpNode, pid: str, body: bytes, request: Request, signed: Signed | None
) -> Any:
    """The message a schedule request carries, checked and verified (``Node.admit``)."""
    if not http.is_process(pid):
        raise NotFound(f"no process {pid} on this node", key=pid)
    keys = _message_keys(body, request, data_key="data")
    _require(http, signed, keys, "scheduling a message")
    if not keys:
        raise InvalidMessage("nothing to schedule: the request carries no message keys")
    return http.node.admit(pid, identify(keys, signed))


async def schedule(http: HttpNode, request: Request, pid: str) -> Response:
    """``POST /<pid>~process@1.0/schedule``: the body's keys are the message (tags as keys,
    a non-JSON body is its ``data``) → the assignment (replays → the first one).

    Decoding and signature checks run in a worker thread; the durable commit is awaited
    on the loop, so waiting requests hold no thread and share commits."""
    body, signed = await _read(http, request)
    message = await http.run(_admitted, http, pid, body, request, signed)
    assignment = await http.node.scheduler.schedule_async(pid, message)
    return http.json(assignment)


def _push(http: HttpNode, pid: str, body: bytes, request: Request, signed: Signed | None) -> Any:
    from hbeam import _core

    assignment = http.node.scheduler.schedule(pid, _admitted(http, pid, body, request, signed))
    slot = int(assignment["slot"])
    state = http.node.compute(pid, slot)
    results = state.get("results") if isinstance(state, Mapping) else None
    return _core.impl.Message(
        {
            "process": pid,
            "slot": slot,
            "results": results if isinstance(results, Mapping) else {},
        }
    )


async def push(http: HttpNode, request: Request, pid: str) -> Response:
    """``POST /<pid>~process@1.0/push``: schedule, compute that slot, → its ``results``."""
    body, signed = await _read(http, request)
    result = await http.run(_push, http, pid, body, request, signed)
    return http.json(result)


def _listing(http: HttpNode, pid: str, query: Mapping[str, str]) -> Any:
    from hbeam import _core
    from hbeam._sentinels import NOT_FOUND

    if not http.is_process(pid):
        raise NotFound(f"no process {pid} on this node", key=pid)
    current = http.node.scheduler.current(pid)
    try:
        start = int(query.get("from", 0))
        end = int(query.get("to", min(current, start + _MAX_LISTED - 1)))
    except ValueError as exc:
        raise InvalidMessage("'from' and 'to' must be slot numbers") from exc
    start = max(start, 0)
    end = min(end, current, start + _MAX_LISTED - 1)
    assignments: dict[str, Any] = {}
    for slot in range(start, end + 1):
        found = http.node.scheduler.assignment(pid, slot)
        if found is not NOT_FOUND:
            assignments[str(slot)] = found
    return _core.impl.Message({"process": pid, "current": current, "assignments": assignments})


async def schedule_listing(http: HttpNode, request: Request, pid: str) -> Response:
    """``GET /<pid>~process@1.0/schedule?from=&to=``: up to 100 assignments."""
    from hbeam.node.app import raw_target

    listing = await http.run(_listing, http, pid, _query_keys(request))
    target = raw_target(request)
    encoded = await http.run(
        functools.partial(codec.encode_result, path=target), listing, http.fmt(request)
    )
    return http.respond(encoded, head=request.method == "HEAD")
