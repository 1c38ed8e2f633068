"""The aos JSON ABI (json-iface@1.0): messages in, results out, as JSON through linear memory.

Pass 1 of the aos stack builds two JSON documents — the message (from the assignment's
body) and the environment ``{"Process": …}`` — writes them into the module's memory with
its ``malloc`` and calls ``handle(msgPtr, envPtr)``; pass 2 reads the NUL-terminated JSON
the call returned and turns it into results: a numbered ``outbox`` whose messages have
lower-cased keys with their ``Tags`` merged in and ``from-process``/``from-image``
stamped, the output ``data``, ``patches`` as plain maps, and ``spawns``.  This module
holds both halves; the device layer decides when each runs.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from hbeam.errors import WasmError
from hbeam.wasm.engine import WasmInstance

__all__ = [
    "EXEC_ERROR",
    "JSON_ERROR",
    "JsonIfaceResult",
    "call_handle",
    "env_json",
    "header_case",
    "message_json",
    "message_struct",
    "parse_result",
]

#: ``results.body`` when the wasm call itself failed (HyperBEAM's text).
EXEC_ERROR = "WASM execution error."
#: ``results.body`` when the returned string is not the expected JSON.
JSON_ERROR = "JSON error parsing result output."

# Keys that become top-level JSON fields rather than tags.
_NOT_TAGS = frozenset({"id", "anchor", "owner", "data", "target", "signature", "commitments"})
# Keys dropped from an outbox message before its tags are merged in.
_OUTBOX_DROP = frozenset({"from-process", "from-image", "anchor", "tags"})


def header_case(key: str) -> str:
    """``from-process`` → ``From-Process`` (each dash-separated word capitalised).

    >>> header_case("content-type")
    'Content-Type'
    """
    return "-".join(w[:1].upper() + w[1:] for w in key.split("-"))


def _text(value: Any) -> str:
    """A tag value as text: strings as is, bytes as UTF-8, numbers and the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    try:
        return orjson.dumps(value, default=_json_default).decode()
    except TypeError:
        return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text(value)
    raise TypeError(type(value).__name__)


_PRINTABLE_CONTROLS = frozenset("\t\n\r\x0b\x0c\x08\x1b\x07")


def _printable(value: Any) -> str | None:
    """``Data`` is sent only when it is printable text (else JSON null), as HyperBEAM does."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bytes, bytearray, memoryview)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        return _text(value)
    if all(ch.isprintable() or ch in _PRINTABLE_CONTROLS for ch in text):
        return text
    return None


def message_struct(
    msg: Mapping[str, Any],
    *,
    id: str = "",
    owner: str = "",
    signature: str = "",
    public_key: str = "",
    tags: list[tuple[str, Any]] | None = None,
) -> dict[str, Any]:
    """The aos JSON structure of one message.

    ``id``/``owner``/``signature`` come from the caller (the signer's address and
    commitment); ``tags`` are the original ANS-104 tags when known, else every key but
    id/anchor/owner/data/target/signature/commitments, Header-Cased.
    """
    if tags is None:
        tags = [
            (header_case(k), v)
            for k, v in msg.items()
            if k.lower() not in _NOT_TAGS and not k.lower().startswith("priv")
        ]
    data = msg.get("data", msg.get("body", ""))
    from_process = msg.get("from-process")
    return {
        "Id": id or _text(msg.get("id", "")),
        "Anchor": _text(msg.get("anchor", "")),
        "Owner": owner,
        "From": _text(from_process) if from_process is not None else owner,
        "Tags": [{"name": str(n), "value": _text(v)} for n, v in tags],
        "Target": _text(msg.get("target", "")),
        "Data": _printable(data),
        "Signature": signature,
        "PublicKey": public_key,
    }


def message_json(
    msg: Mapping[str, Any],
    *,
    image: str,
    block_height: int | str = 0,
    **identity: Any,
) -> bytes:
    """The message document ``handle`` receives first: the struct, ``Module``, ``Block-Height``."""
    struct = message_struct(msg, **identity)
    struct["Module"] = _text(image)
    struct["Block-Height"] = block_height if isinstance(block_height, int) else _text(block_height)
    return orjson.dumps(struct)


def env_json(process: Mapping[str, Any], **identity: Any) -> bytes:
    """The environment document ``handle`` receives second: ``{"Process": struct}``."""
    return orjson.dumps({"Process": message_struct(process, **identity)})


@dataclass
class JsonIfaceResult:
    """What one ``handle`` call produced (``ok`` False: ``error`` says why)."""

    ok: bool
    data: Any = ""
    outbox: dict[str, dict[str, Any]] = field(default_factory=dict)
    patches: list[dict[str, Any]] = field(default_factory=list)
    spawns: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: Any = None
    raw: Any = None


def _tags_to_map(msg: Mapping[str, Any]) -> dict[str, Any]:
    tags = None
    for k, v in msg.items():
        if isinstance(k, str) and k.lower() == "tags":
            tags = v
    out: dict[str, Any] = {}
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, Mapping):
                lowered = {str(k).lower(): v for k, v in tag.items()}
                if "name" in lowered:
                    out[str(lowered["name"])] = lowered.get("value")
    return out


def _outbox_message(msg: Any, process_id: str, image: str) -> dict[str, Any]:
    if not isinstance(msg, Mapping):
        return {"data": msg, "from-process": process_id, "from-image": image}
    tags = {k.lower(): v for k, v in _tags_to_map(msg).items()}
    out = {str(k).lower(): v for k, v in msg.items() if str(k).lower() not in _OUTBOX_DROP}
    out.update(tags)
    out["from-process"] = process_id
    out["from-image"] = image
    return out


def parse_result(text: bytes | str, *, process_id: str = "", image: str = "") -> JsonIfaceResult:
    """Decode ``handle``'s JSON into results; malformed JSON gives ``ok=False``.

    The document must be ``{"ok": true, "response": R}``.  ``R = {"Error": e}`` gives
    ``data = e`` and no messages; ``{"ok": false, "error": e}`` is an error result.
    """
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return JsonIfaceResult(ok=False, error=JSON_ERROR, raw=text)
    if not isinstance(doc, dict):
        return JsonIfaceResult(ok=False, error=JSON_ERROR, raw=doc)
    if doc.get("ok") is False and "error" in doc:
        return JsonIfaceResult(ok=False, error=doc["error"], raw=doc)
    if doc.get("ok") is not True or "response" not in doc:
        return JsonIfaceResult(ok=False, error=JSON_ERROR, raw=doc)
    resp = doc["response"]
    if not isinstance(resp, dict):
        return JsonIfaceResult(ok=False, error=JSON_ERROR, raw=doc)
    if "Error" in resp:
        return JsonIfaceResult(ok=True, data=resp["Error"], raw=doc)
    output = resp.get("Output", {})
    if isinstance(output, dict):
        data = output.get("data", resp.get("Data", ""))
    else:
        data = output
    messages = resp.get("Messages", [])
    spawns = resp.get("Spawns", [])
    patches = resp.get("patches", [])
    return JsonIfaceResult(
        ok=True,
        data=data,
        outbox={
            str(i): _outbox_message(m, process_id, image)
            for i, m in enumerate(messages if isinstance(messages, list) else [], 1)
        },
        spawns={
            str(i): _outbox_message(m, process_id, image)
            for i, m in enumerate(spawns if isinstance(spawns, list) else [], 1)
        },
        patches=[
            _tags_to_map(p) if isinstance(p, Mapping) and _has_tags(p) else dict(p)
            for p in (patches if isinstance(patches, list) else [])
            if isinstance(p, Mapping)
        ],
        raw=doc,
    )


def _has_tags(msg: Mapping[str, Any]) -> bool:
    return any(isinstance(k, str) and k.lower() == "tags" for k in msg)


def call_handle(
    instance: WasmInstance,
    msg_json: bytes | str,
    env_json: bytes | str,
    *,
    process_id: str = "",
    image: str = "",
) -> JsonIfaceResult:
    """Write both documents with the module's ``malloc``, call ``handle``, parse the answer.

    Raises:
        WasmError: the module has no ``malloc``/``handle``, trapped, or returned a
            pointer outside memory.
        LimitExceeded: the call ran out of fuel or memory.
    """
    msg_ptr = instance.write_cstring(msg_json)
    env_ptr = instance.write_cstring(env_json)
    result = instance.call("handle", msg_ptr, env_ptr)
    if len(result) != 1 or not isinstance(result[0], int):
        raise WasmError(
            f"module {instance.module_id}: handle must return one integer pointer, got {result!r}"
        )
    result_ptr = result[0]
    if not result_ptr:
        raise WasmError(f"module {instance.module_id}: handle returned a null pointer")
    text = instance.read_cstring(int(result_ptr))
    return parse_result(text, process_id=process_id, image=image)
