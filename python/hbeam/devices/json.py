"""``json@1.0`` — a message as JSON and back, via orjson.

* ``serialize`` / ``format``: ``{"content-type": "application/json", "body": <JSON>}`` of
  the base: numbers stay numbers, lists arrays, nested messages objects; private
  (``priv*``) keys are left out at every level and so is the base's top-level ``device``
  key (HyperBEAM's output carries ``"device": "json@1.0"`` because it casts first).
  ``bytes`` values become their UTF-8 text when they are valid UTF-8, else standard
  padded base64 text.  ``format`` is hbeam's (seed 000 uses ``format~json@1.0``;
  HyperBEAM has no such key).
* ``deserialize``: the JSON text at the request's ``target`` key of the base (default
  ``body``) parsed into a message (or a list / literal for non-object JSON).
"""

from __future__ import annotations

import base64
import json as _stdjson
from collections.abc import Mapping
from typing import Any

import orjson

from hbeam import _core
from hbeam._sentinels import NOT_FOUND
from hbeam.errors import InvalidMessage

__all__ = ["deserialize", "dumps", "format", "serialize"]

CONTENT_TYPE = "application/json"


def _bytes_text(value: bytes | bytearray | memoryview) -> str:
    raw = bytes(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")


def _default(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        is_private = _core.impl.is_private
        return {str(k): v for k, v in obj.items() if not is_private(str(k))}
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _bytes_text(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def _plain(value: Any, depth: int = 0) -> Any:
    """Plain JSON-able data (the slow path, for integers beyond 64 bits)."""
    if depth > 256:
        raise InvalidMessage("message nested too deeply to encode as JSON")
    if isinstance(value, Mapping):
        return {k: _plain(v, depth + 1) for k, v in _default(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes_text(value)
    return value


def dumps(msg: Any, *, drop_device: bool = True) -> str:
    """The JSON text of ``msg`` as :func:`serialize` writes it.

    Raises:
        InvalidMessage: a value has no JSON form.
    """
    top: Any = msg
    if isinstance(msg, Mapping):
        is_private = _core.impl.is_private
        top = {
            str(k): v
            for k, v in msg.items()
            if not is_private(str(k)) and not (drop_device and k == "device")
        }
    try:
        return orjson.dumps(top, default=_default).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError) as exc:
        try:
            return _stdjson.dumps(_plain(top), ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc2:
            raise InvalidMessage(f"message cannot be encoded as JSON: {exc2}") from exc


def serialize(base: Any) -> Any:
    """``{"content-type": "application/json", "body": <the base as JSON>}``."""
    return _core.impl.Message({"content-type": CONTENT_TYPE, "body": dumps(base)})


def format(base: Any) -> Any:
    """Same as :func:`serialize` (what ``format~json@1.0`` in seed 000 asks for)."""
    return serialize(base)


def deserialize(base: Any, req: Mapping[str, Any]) -> Any:
    """The message encoded as JSON at the base's ``target`` key (default ``body``).

    Raises:
        InvalidMessage: the text is not valid JSON.
    """
    key = req.get("target", "body")
    text = base.get(key, NOT_FOUND) if isinstance(key, str) else NOT_FOUND
    if text is NOT_FOUND:
        return NOT_FOUND
    if not isinstance(text, (str, bytes, bytearray, memoryview)):
        raise InvalidMessage(
            f"json@1.0 deserialize: {key!r} holds a {type(text).__name__}, not JSON text"
        )
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage(f"json@1.0 deserialize: {key!r} is not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        return _core.impl.Message(data)
    return data
