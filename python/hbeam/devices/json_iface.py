"""``json-iface@1.0`` — the aos JSON interface of wasm processes (execution-http.md §2, §5).

In the aos stack ``[wasi@1.0, json-iface@1.0, wasm-64@1.0, patch@1.0, multipass@1.0]``
with ``passes: 2``:

* ``init`` sets ``function: handle``.  On a later pass (when ``wasm-64@1.0`` has made
  the instance) it checks the module exports ``memory``, ``malloc`` and ``handle``, so a
  module that cannot be a json-iface process fails at spawn time (slot 0), naming it.
* ``compute``, pass 1: builds the message JSON (from the assignment's ``body``: ``Id`` =
  the assignment's ``message`` or the body's ID, ``Owner``/``From`` = the sender the node
  verified, ``Tags``, ``Data``… plus ``Module`` = the image and ``Block-Height``) and the
  environment JSON (``{"Process": …}`` from the process definition), writes both into
  the instance's memory with its ``malloc`` and sets ``function: handle`` and
  ``parameters: [msgPtr, envPtr]`` for ``wasm-64@1.0``.
* ``compute``, pass 2: if the call failed, raises its error (``WasmError`` for a trap,
  ``LimitExceeded`` for fuel or memory) — the node records that slot as failed and goes
  on.  Otherwise reads the returned JSON and sets ``results``: ``outbox`` (a numbered map
  ``"1".."n"``, keys lower-cased, tags merged in, ``from-process``/``from-image``
  stamped), ``data``, ``output`` (the response's ``Output``), ``patches`` and ``spawns``
  (numbered maps), and drops ``parameters`` from the state.  Unparseable output →
  ``WasmError`` ("JSON error parsing result output.").

hbeam addition: each of the response's ``patches`` is also appended to the outbox as a
``method: PATCH`` message (after the real messages), so ``patch@1.0`` with the usual
``patch-from: /results/outbox`` moves them into the state — a wasm process is defined
exactly like a Lua one.  ``patch@1.0`` removes them from the outbox, so what is left for
delivery is what the module sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from hbeam import _core
from hbeam._sentinels import NOT_FOUND, UNSET
from hbeam.devices.wasm import LiveWasm, live_instance, output_prefix
from hbeam.errors import AOError, DeviceError, LimitExceeded, WasmError

__all__ = ["compute", "info", "init", "normalize", "snapshot"]

DEVICE: Final = "json-iface@1.0"
FUNCTION: Final = "handle"
REQUIRED_EXPORTS: Final = ("malloc", FUNCTION)


def _pass(base: Any) -> int:
    try:
        return int(base.get("pass", 1))
    except (TypeError, ValueError):
        return 1


def _runtime(opts: Any) -> Any:
    return (opts or {}).get("runtime")


def _check_exports(live: LiveWasm) -> None:
    inst = live.instance
    missing = [name for name in REQUIRED_EXPORTS if not inst.has_export(name)]
    try:
        inst.memory  # noqa: B018 - raises WasmError when the module exports no memory
    except WasmError:
        missing.insert(0, "memory")
    if missing:
        raise WasmError(
            f"{DEVICE}: image {live.image} is not a json-iface module: it does not export "
            f"{', '.join(missing)} (needs memory, malloc(i64) -> i64, handle(i64, i64) -> i64)",
            device=DEVICE,
            key="init",
            image=live.image,
        )


def init(base: Any, req: Any = None, opts: Any = None) -> Any:
    """``function: handle``; on later passes, check the instance is a json-iface module."""
    if _pass(base) > 1:
        rt = _runtime(opts)
        live = rt.live.get("wasm") if rt is not None else None
        if isinstance(live, LiveWasm):
            _check_exports(live)
    if base.get("function") == FUNCTION:
        return base
    return base.set("function", FUNCTION)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def _identity(process: Mapping[str, Any]) -> str:
    owner = process.get("owner", process.get("from"))
    return _text(owner)


def _message_doc(req: Mapping[str, Any], image: str) -> bytes:
    from hbeam.wasm import message_json

    body = req.get("body")
    msg: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    sender = msg.get("from")
    if sender is None:
        sender = msg.get("owner", msg.get("from-process"))
    # the verified sender is the owner as aos sees it; it is not also a tag
    fields = {
        k: v
        for k, v in msg.items()
        if k.lower() not in ("from", "owner") and not _core.impl.is_private(k)
    }
    ident = req.get("message")
    if not isinstance(ident, str):
        ident = str(_core.impl.id(msg)) if msg else ""
    height = req.get("block-height", 0)
    return message_json(
        fields,
        image=image,
        block_height=height if isinstance(height, int) else _text(height),
        id=ident,
        owner=_text(sender),
    )


def _env_doc(live: LiveWasm, base: Mapping[str, Any], opts: Any) -> bytes:
    from hbeam.wasm import env_json

    if live.env_json is None:
        rt = _runtime(opts)
        process = base.get("process")
        if not isinstance(process, Mapping) and rt is not None:
            process = rt.definition
        if not isinstance(process, Mapping):
            process = {}
        pid = rt.pid if rt is not None else str(_core.impl.id(process))
        fields = {k: v for k, v in process.items() if k.lower() not in ("owner", "from")}
        live.env_json = env_json(fields, id=pid, owner=_identity(process))
    return live.env_json


def _process_id(base: Mapping[str, Any], opts: Any) -> str:
    rt = _runtime(opts)
    if rt is not None:
        return str(rt.pid)
    from hbeam.devices.process import pid_of

    return pid_of(base)


def _first_pass(base: Any, req: Any, opts: Any) -> Any:
    live = live_instance(base, opts)
    _check_exports(live)
    msg_doc = _message_doc(req if isinstance(req, Mapping) else {}, live.image)
    env_doc = _env_doc(live, base, opts)
    inst = live.instance
    try:
        msg_ptr = inst.write_cstring(msg_doc)
        env_ptr = inst.write_cstring(env_doc)
    except (LimitExceeded, WasmError) as exc:
        raise type(exc)(
            f"{DEVICE}: image {live.image}: cannot write the message into memory: {exc}",
            device=DEVICE,
            key="compute",
        ) from exc
    return base.merge({"function": FUNCTION, "parameters": [msg_ptr, env_ptr]})


def _numbered(items: Any) -> dict[str, Any]:
    return {str(i): item for i, item in enumerate(items, 1)}


def _second_pass(base: Any, req: Any, opts: Any) -> Any:
    from hbeam.wasm import parse_result

    prefix = output_prefix(base)
    record = base.get_path(f"results/{prefix}" if prefix else "results")
    if not isinstance(record, Mapping) or "type" not in record:
        return base  # nothing was called this slot (no function)
    rt = _runtime(opts)
    live = rt.live.get("wasm") if rt is not None else None
    image = live.image if isinstance(live, LiveWasm) else _text(base.get("image"))
    pid = _process_id(base, opts)
    if record.get("type") != "ok":
        err = live.last_error if isinstance(live, LiveWasm) else None
        if isinstance(err, AOError):
            raise type(err)(
                f"{DEVICE}: process {pid}: WASM execution error: {err}",
                device=DEVICE,
                key="compute",
                **{k: v for k, v in err.details.items() if k not in ("device", "key")},
            ) from err
        raise WasmError(
            f"{DEVICE}: process {pid}: WASM execution error: {record.get('output')}",
            device=DEVICE,
            key="compute",
        )
    output = record.get("output")
    values = list(output) if isinstance(output, (list, tuple)) else []
    if len(values) != 1 or not isinstance(values[0], int) or isinstance(values[0], bool):
        raise WasmError(
            f"{DEVICE}: image {image}: handle must return one pointer, got {output!r}",
            device=DEVICE,
            key="compute",
        )
    if not isinstance(live, LiveWasm):
        raise DeviceError(
            f"{DEVICE}: process {pid} has no live wasm instance to read the result from",
            device=DEVICE,
            key="compute",
        )
    try:
        text = live.instance.read_cstring(int(values[0]))
    except WasmError as exc:
        raise WasmError(
            f"{DEVICE}: image {image}: handle returned an unreadable result: {exc}",
            device=DEVICE,
            key="compute",
        ) from exc
    result = parse_result(text, process_id=pid, image=image)
    if not result.ok:
        raise WasmError(
            f"{DEVICE}: process {pid}, image {image}: {result.error} "
            f"(output starts {text[:120]!r})",
            device=DEVICE,
            key="compute",
        )
    response = result.raw.get("response") if isinstance(result.raw, dict) else None
    out_value = response.get("Output") if isinstance(response, dict) else None
    outbox = dict(result.outbox)
    for patch in result.patches:
        outbox[str(len(outbox) + 1)] = {**patch, "method": "PATCH"}
    results: dict[str, Any] = {
        "outbox": outbox,
        "data": result.data if result.data is not None else "",
        "output": out_value if isinstance(out_value, dict) else {"data": result.data},
        "patches": _numbered(result.patches),
    }
    if result.spawns:
        results["spawns"] = result.spawns
    return base.merge({"results": results, "parameters": UNSET})


def compute(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Pass 1: write the message and environment JSON; pass 2: read the results; later: nothing."""
    current = _pass(base)
    if current == 1:
        return _first_pass(base, req, opts)
    if current == 2:
        return _second_pass(base, req, opts)
    return base


def normalize(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Passthrough (``wasm-64@1.0`` restores the instance)."""
    return base


def snapshot(base: Any = None, req: Any = None, opts: Any = None) -> Any:
    """Nothing (``not_found``): the interface keeps no state of its own."""
    return NOT_FOUND


info: Final[dict[str, Any]] = {
    "exports": ["init", "compute", "normalize", "snapshot"],
    "default": "message@1.0",
}
