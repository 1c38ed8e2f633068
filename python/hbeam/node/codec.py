"""HTTP ⇄ messages: the request's singleton message, and the response codecs.

Request side (execution-http.md §6.2): every header becomes a lower-case key, the method
is ``method``, and the body becomes keys (a JSON object, or a form) or ``body`` (anything
else: JSON that is not an object, text, bytes).  These are the *global* keys
:func:`hbeam.path.parse_request` spreads over the path's segments.

Response side (§6.3-6.4), chosen by :func:`choose_format`:

``json``  (``Accept: application/json`` or ``accept-codec: json@1.0``) — the JSON of the
          result: numbers stay numbers, lists arrays, maps objects (``json@1.0``'s rules).
``html``  (``Accept: text/html`` first, i.e. a browser, or ``accept-codec:
          hyperbuddy@1.0``) — the hyperbuddy page of the result.
``default`` (anything else: curl's ``*/*``, ``fetch``) — HyperBEAM's style: simple
          top-level values become headers (types other than text listed in ``ao-types``),
          ``body`` is the HTTP body; a map without a text ``body`` is sent as JSON
          [hbeam: HyperBEAM sends its HTML viewer there, which a script cannot read].

A result that is already rendered — a map with a text ``body`` and a ``content-type``,
as ``serialize~json@1.0``, ``format~json@1.0`` and ``format~hyperbuddy@1.0`` return — is
sent as that body with that content type whatever was asked for.  Status: an integer
``status`` (100-599) on a map result wins (HyperBEAM's rule), else 200; errors carry their
class's ``http_status`` and the body ``{"error", "message", "path", "detail"}``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from hbeam.errors import AOError, InvalidMessage

__all__ = [
    "Encoded",
    "Format",
    "choose_format",
    "decode_body",
    "encode_error",
    "encode_result",
    "error_body",
    "json_bytes",
    "request_globals",
]

Format = Literal["json", "html", "default"]

JSON_TYPE: Final = "application/json"
HTML_TYPE: Final = "text/html; charset=utf-8"
TEXT_TYPE: Final = "text/plain; charset=utf-8"
BINARY_TYPE: Final = "application/octet-stream"

_TOKEN = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+\Z")
_ID = re.compile(r"[A-Za-z0-9_-]{43}\Z")
_MAX_HEADER_VALUE: Final = 4096
_MAX_HEADERS: Final = 64
# never taken from a message: framing and hop-by-hop fields belong to the server
_RESERVED_HEADERS: Final = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "status",
        "body",
        "device",
        "content-type",
        "set-cookie",
        "date",
        "server",
    }
)
# request headers that never become message keys
_DROPPED_REQUEST_HEADERS: Final = frozenset({"path", "content-length", "connection"})


@dataclass
class Encoded:
    """An encoded response: status, headers (lower-case names) and body bytes."""

    status: int
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)
    response: Any = field(default=None, compare=False, repr=False)
    """The framework response built from this, when it is served again (cache hits)."""


# --- requests ---------------------------------------------------------------------------


def decode_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The keys a request body contributes to the singleton message.

    JSON (``application/json`` or ``+json``, or a body that starts with ``{`` when no
    content type is given): an object gives its keys, any other JSON value ``body``.  A
    form gives its fields.  Anything else is ``body``: text when it is UTF-8, else bytes.

    Raises:
        InvalidMessage: the body claims to be JSON but is not, or a key is empty.
    """
    if not body:
        return {}
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    is_json = ctype == JSON_TYPE or ctype.endswith("+json")
    if not ctype and body.lstrip()[:1] in (b"{", b"["):
        is_json = True
    if is_json:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidMessage(f"the request body is not valid JSON: {exc}") from exc
        if isinstance(data, dict):
            if any(not isinstance(k, str) or not k for k in data):
                raise InvalidMessage("the request body's JSON object has an empty key")
            return data
        return {"body": data}
    if ctype == "application/x-www-form-urlencoded":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessage("the form body is not UTF-8") from exc
        fields = urllib.parse.parse_qsl(text, keep_blank_values=True)
        if any(not k for k, _ in fields):
            raise InvalidMessage("the form body has an empty field name")
        return dict(fields)
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body": body}


def request_globals(
    method: str,
    headers: Iterable[tuple[str, str]],
    body_keys: Mapping[str, Any],
    *,
    covered: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The global keys of a request: lower-case headers, ``method``, then the body's keys.

    ``covered``: for a verified signed request, the header names its signature covers;
    other headers are dropped, as HyperBEAM drops the unsigned keys of a signed message.
    """
    out: dict[str, Any] = {}
    for name, value in headers:
        key = name.lower()
        if key in _DROPPED_REQUEST_HEADERS or (covered is not None and key not in covered):
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    out["method"] = method.upper()
    for key, value in body_keys.items():
        if key != "path":
            out[key] = value
    return out


# --- choosing a codec -------------------------------------------------------------------


def choose_format(accept: str | None, accept_codec: str | None = None) -> Format:
    """The response codec for a request's ``accept-codec`` and ``accept`` headers."""
    if accept_codec:
        codec = accept_codec.strip().lower()
        if codec.startswith("json@"):
            return "json"
        if codec.startswith("hyperbuddy@"):
            return "html"
        return "default"
    if not accept:
        return "default"
    best: Format = "default"
    best_q = -1.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media == JSON_TYPE or media.endswith("+json") or media == "json@1.0":
            kind: Format = "json"
        elif media in ("text/html", "application/xhtml+xml"):
            kind = "html"
        else:
            kind = "default"
        if q > best_q:
            best, best_q = kind, q
    return best


# --- responses --------------------------------------------------------------------------


def json_bytes(value: Any) -> bytes:
    """The JSON of ``value`` as ``serialize~json@1.0`` writes it (private keys and the
    top-level ``device`` left out; numbers stay numbers).

    Raises:
        InvalidMessage: a value has no JSON form.
    """
    from hbeam.devices.json import dumps

    return dumps(value).encode("utf-8")


def _status_of(result: Any) -> int:
    if isinstance(result, Mapping):
        status = result.get("status")
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
            return status
    return 200


def _header_value(value: Any) -> tuple[str, str | None] | None:
    """``(text, ao-type or None)`` for a value that can ride in a header, else None."""
    if isinstance(value, bool):
        return ("?1" if value else "?0"), "atom"
    if isinstance(value, int):
        return str(value), "integer"
    if isinstance(value, float):
        return repr(value), "float"
    if isinstance(value, str):
        if len(value) > _MAX_HEADER_VALUE or not value.isascii() or not value.isprintable():
            return None
        if value != value.strip():
            return None
        return value, None
    return None


def _simple_headers(result: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    types: list[str] = []
    for key, value in result.items():
        if len(headers) >= _MAX_HEADERS:
            break
        name = str(key).lower()
        if name in _RESERVED_HEADERS or name.startswith("priv") or _ID.match(str(key)):
            continue
        if not _TOKEN.match(name) or name in headers:
            continue
        encoded = _header_value(value)
        if encoded is None:
            continue
        headers[name] = encoded[0]
        if encoded[1] is not None:
            types.append(f'{name}="{encoded[1]}"')
    if types:
        headers["ao-types"] = ", ".join(types)
    return headers


def _is_rendered(result: Any) -> bool:
    return (
        isinstance(result, Mapping)
        and isinstance(result.get("content-type"), str)
        and isinstance(result.get("body"), (str, bytes, bytearray, memoryview))
    )


def _raw_body(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def encode_result(result: Any, fmt: Format, *, path: str = "/") -> Encoded:
    """The HTTP response for a resolved ``result`` in codec ``fmt`` (see the module docs).

    Raises:
        InvalidMessage: the result has no JSON form (only for JSON output).
    """
    status = _status_of(result)
    if _is_rendered(result):
        headers = _simple_headers(result) if fmt == "default" else {}
        return Encoded(status, _raw_body(result["body"]), str(result["content-type"]), headers)
    if fmt == "json":
        return Encoded(status, json_bytes(result), JSON_TYPE)
    if fmt == "html":
        from hbeam.node import html

        return Encoded(status, html.message_page(result, path=path).encode("utf-8"), HTML_TYPE)
    # default codec: HyperBEAM-style headers for simple values
    if isinstance(result, Mapping):
        headers = _simple_headers(result)
        body = result.get("body")
        if isinstance(body, str):
            return Encoded(status, body.encode("utf-8"), TEXT_TYPE, headers)
        if isinstance(body, (bytes, bytearray, memoryview)):
            return Encoded(status, bytes(body), BINARY_TYPE, headers)
        return Encoded(status, json_bytes(result), JSON_TYPE, headers)
    if isinstance(result, (list, tuple)):
        return Encoded(status, json_bytes(result), JSON_TYPE)
    headers = {"ao-result": "body"}
    if isinstance(result, str):
        return Encoded(status, result.encode("utf-8"), TEXT_TYPE, headers)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return Encoded(status, bytes(result), BINARY_TYPE, headers)
    encoded = _header_value(result)
    if encoded is not None and encoded[1] is not None:
        headers["ao-types"] = f'body="{encoded[1]}"'
    return Encoded(status, json_bytes(result), TEXT_TYPE, headers)


def error_body(exc: BaseException, path: str) -> tuple[int, dict[str, Any]]:
    """``(status, {"error", "message", "path", "detail"})`` for an exception.

    An :class:`~hbeam.errors.AOError` gives its class name, message and details; anything
    else is an internal error whose text is not shown (it may hold internals).
    """
    if isinstance(exc, AOError):
        detail = {k: v for k, v in exc.to_json().items() if k not in ("error", "message")}
        return exc.http_status, {
            "error": type(exc).__name__,
            "message": exc.message or type(exc).__name__,
            "path": path,
            "detail": detail,
        }
    return 500, {
        "error": "InternalError",
        "message": f"the node failed while answering {path} (the node's log has the details)",
        "path": path,
        "detail": {},
    }


def encode_error(exc: BaseException, fmt: Format, *, path: str = "/") -> Encoded:
    """The HTTP response for an exception: JSON, or a readable page for browsers."""
    status, body = error_body(exc, path)
    if fmt == "html":
        from hbeam.node import html

        page = html.error_page(status, body, path=path).encode("utf-8")
        return Encoded(status, page, HTML_TYPE)
    return Encoded(status, orjson.dumps(body, default=str), JSON_TYPE)
