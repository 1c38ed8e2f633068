"""``wasm-64@1.0`` — WebAssembly (memory64) execution for AO processes (execution-http.md §5).

The device keeps one live :class:`LiveWasm` per process in its runtime
(``opts["runtime"].live["wasm"]``), never in the message:

* ``init`` (first pass only) reads the image — ``<input-prefix>/image``, else ``image``,
  else the process's ``image``, else the base's ``body``; an image is a 43-character ID
  of data in the store (``node.publish``), raw bytes, or a message with a ``body`` — and
  instantiates it with the node's limits (``wasm_fuel`` per call, ``wasm_memory_limit``
  per instance).  When the runtime restored a memory snapshot (``runtime.restored["wasm"]``)
  that memory is loaded, so a restart resumes without replay.
* ``compute`` (pass 1, or when there is no ``pass``) calls ``function`` with
  ``parameters`` — each looked up in the request's ``body``, then the request, then the
  base — and writes ``results/<output-prefix>/type`` (``ok`` | ``error``) and
  ``results/<output-prefix>/output`` (the list of return values; for an error, its
  text).  A trap, fuel exhaustion or the memory limit is an *error result*: the state is
  returned with ``type: error`` and the exception is kept on the live object
  (``json-iface@1.0`` raises it in pass 2, so the node records that slot as failed and
  goes on).  A missing export or arguments that do not fit the signature raise.
* ``snapshot`` → ``{body: memory image}`` (zlib-compressed memory + mutable globals);
  ``normalize`` makes sure a live instance exists, restoring it from ``snapshot/…/body``
  on the state, the runtime's restored snapshot, or the stored snapshot of ``at-slot``.

Imports: with ``wasi@1.0`` earlier in the stack the deterministic WASI/emscripten host
(:class:`hbeam.wasm.WasiHost`) provides them; any other import is refused at
instantiation (node option ``wasm_strict_imports=False`` instead stubs it to return zeros
and records the calls in ``results/<prefix>/undefined-calls``, as HyperBEAM does).

Errors name the image ID: bad bytes, a 32-bit memory, a missing export or import →
:class:`~hbeam.errors.WasmError` (a ``DeviceError``); limits →
:class:`~hbeam.errors.LimitExceeded`.

hbeam difference: a failed call's partial effects on linear memory are kept (as a WAMR
instance in HyperBEAM keeps them); replay is deterministic, so snapshots and restarts
agree with an uninterrupted run.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from hbeam import _core
from hbeam._sentinels import NOT_FOUND
from hbeam.errors import AOError, DeviceError, InvalidMessage, LimitExceeded, NotFound, WasmError

if TYPE_CHECKING:
    from hbeam.node.process import ProcessRuntime
    from hbeam.wasm import WasiHost, WasmEngine, WasmInstance

__all__ = [
    "LIVE_KEY",
    "LiveWasm",
    "compute",
    "image_of",
    "info",
    "init",
    "live_instance",
    "normalize",
    "output_prefix",
    "snapshot",
]

DEVICE: Final = "wasm-64@1.0"
LIVE_KEY: Final = "wasm"
#: The state key wasi@1.0 sets (under the output prefix) to say the WASI host is wanted.
WASI_MARK: Final = "stdlib/wasi_snapshot_preview1"

_engines: dict[str, WasmEngine] = {}
_engines_lock = threading.Lock()


def _engine(opts: Mapping[str, Any] | None) -> WasmEngine:
    """The shared engine; with ``wasm_cache_dir`` one that keeps compiled modules on disk."""
    from hbeam.wasm import WasmEngine, default_engine

    cache_dir = (opts or {}).get("wasm_cache_dir")
    if not cache_dir:
        return default_engine()
    key = str(cache_dir)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = WasmEngine(key)
        return engine


def output_prefix(base: Mapping[str, Any]) -> str:
    """The base's ``output-prefix`` as a path without slashes at the ends ('' for none)."""
    prefix = base.get("output-prefix")
    return prefix.strip("/") if isinstance(prefix, str) else ""


def _under(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


def _pass(base: Mapping[str, Any]) -> int:
    try:
        return int(base.get("pass", 1))
    except (TypeError, ValueError):
        return 1


# -- images -------------------------------------------------------------------------------------


def _is_id(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 43
        and value.isascii()
        and all(c.isalnum() or c in "-_" for c in value)
    )


def image_of(base: Mapping[str, Any]) -> Any:
    """The image spec a process names: ``<input-prefix>/image``, ``image``, process, ``body``."""
    prefix = base.get("input-prefix")
    candidates: list[Any] = []
    if isinstance(prefix, str) and prefix.strip("/"):
        inner = base.get_path(f"{prefix.strip('/')}/image") if hasattr(base, "get_path") else None
        candidates.append(inner)
    candidates.append(base.get("image"))
    process = base.get("process")
    if isinstance(process, Mapping):
        candidates.append(process.get("image"))
    candidates.append(base.get("body"))
    for value in candidates:
        if value is not None and value is not NOT_FOUND:
            return value
    return None


def _image_label(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return str(spec.get("id") or _core.impl.id(spec))
    if isinstance(spec, (bytes, bytearray, memoryview)):
        return str(_core.impl.id(bytes(spec)))
    return repr(spec)[:40]


def _image_bytes(spec: Any, opts: Mapping[str, Any] | None) -> tuple[str, bytes]:
    """``(image ID, module bytes)`` for an image spec (an ID, bytes, or a message with body).

    Raises:
        NotFound: no image named, or the ID is not in the store.
        InvalidMessage: the spec or the stored value holds no module bytes.
    """
    if spec is None:
        raise NotFound(
            f"{DEVICE}: the process names no 'image' (nor a 'body' with the module)",
            key="image",
        )
    if isinstance(spec, str) and _is_id(spec):
        from hbeam import cache

        try:
            value = cache.read(spec, opts=dict(opts or {}))
        except AOError as exc:
            raise NotFound(
                f"{DEVICE}: wasm image {spec} cannot be read from the store: {exc}",
                key="image",
                image=spec,
            ) from exc
        if value is NOT_FOUND:
            raise NotFound(f"{DEVICE}: wasm image {spec} is not in the store", image=spec)
        if isinstance(value, Mapping):
            value = value.get("body", value.get("data"))
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidMessage(
                f"{DEVICE}: wasm image {spec} is a {type(value).__name__}, not module bytes"
            )
        return spec, bytes(value)
    if isinstance(spec, Mapping):
        body = spec.get("body", spec.get("data"))
        if isinstance(body, str) and _is_id(body):
            return _image_bytes(body, opts)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise InvalidMessage(
                f"{DEVICE}: the image message {_image_label(spec)} has no 'body' with module bytes"
            )
        return _image_label(spec), bytes(body)
    if isinstance(spec, (bytes, bytearray, memoryview)):
        return _image_label(spec), bytes(spec)
    if isinstance(spec, str):
        # WAT text given inline (tests, examples); anything else fails to compile below
        return _image_label(spec.encode("utf-8")), spec.encode("utf-8")
    raise InvalidMessage(
        f"{DEVICE}: 'image' must be an ID, module bytes or a message with a body, "
        f"not {type(spec).__name__}"
    )


# -- the live instance --------------------------------------------------------------------------


class LiveWasm:
    """One process's wasm instance, its WASI host, and the outcome of the latest call."""

    def __init__(self, instance: WasmInstance, image: str, wasi: WasiHost | None) -> None:
        self.instance = instance
        self.image = image
        self.wasi = wasi
        #: the exception of the latest failed call (None after a successful one)
        self.last_error: AOError | None = None
        #: json-iface's environment document (constant for a process)
        self.env_json: bytes | None = None

    def snapshot(self) -> bytes:
        """The instance's memory image (see :class:`hbeam.wasm.WasmSnapshot`)."""
        return bytes(self.instance.snapshot().to_bytes())

    def restore(self, data: bytes) -> None:
        """Make memory byte-identical to a :meth:`snapshot` image."""
        try:
            self.instance.restore(data)
        except (WasmError, LimitExceeded) as exc:
            raise type(exc)(
                f"{DEVICE}: image {self.image}: cannot restore the memory snapshot: {exc}",
                device=DEVICE,
                key="normalize",
            ) from exc

    def close(self) -> None:
        """Nothing to free eagerly: the wasmtime store goes with the object."""


def _limits(opts: Mapping[str, Any] | None) -> dict[str, Any]:
    from hbeam.wasm import DEFAULT_FUEL, DEFAULT_MEMORY_LIMIT

    o = opts or {}
    fuel = o.get("wasm_fuel")
    memory = o.get("wasm_memory_limit")
    return {
        "fuel": int(fuel) if fuel else DEFAULT_FUEL,
        "memory_limit": int(memory) if memory else DEFAULT_MEMORY_LIMIT,
        "strict_imports": bool(o.get("wasm_strict_imports", True)),
    }


def _wants_wasi(base: Mapping[str, Any]) -> bool:
    if not hasattr(base, "get_path"):
        return False
    mark = base.get_path(_under(output_prefix(base), WASI_MARK))
    return mark is not NOT_FOUND and mark is not None


def instantiate(base: Mapping[str, Any], opts: Mapping[str, Any] | None) -> LiveWasm:
    """A fresh :class:`LiveWasm` for the image the base names (no memory restored).

    Raises:
        WasmError: the image is not a valid wasm64 module or needs an import nobody
            provides (the message names the image ID).
        NotFound / InvalidMessage: no usable image.
    """
    from hbeam.wasm import WasiHost

    spec = image_of(base)
    image, data = _image_bytes(spec, opts)
    limits = _limits(opts)
    wasi = WasiHost() if _wants_wasi(base) else None
    try:
        inst = _engine(opts).instantiate(
            data,
            imports=wasi.resolve if wasi is not None else None,
            strict_imports=limits["strict_imports"],
            fuel=limits["fuel"],
            memory_limit=limits["memory_limit"],
            require_memory64=True,
            module_id=image,
        )
    except LimitExceeded as exc:
        raise LimitExceeded(
            f"{DEVICE}: image {image}: {exc}", device=DEVICE, key="init", image=image
        ) from exc
    except WasmError as exc:
        raise WasmError(
            f"{DEVICE}: image {image}: {exc}", device=DEVICE, key="init", image=image
        ) from exc
    return LiveWasm(inst, image, wasi)


def _runtime(base: Mapping[str, Any], opts: Mapping[str, Any] | None) -> ProcessRuntime | None:
    rt = (opts or {}).get("runtime")
    if rt is not None:
        return rt  # type: ignore[no-any-return]
    node = (opts or {}).get("node")
    if node is None:
        return None
    from hbeam.devices.process import pid_of

    try:
        return node.runtime(pid_of(base))  # type: ignore[no-any-return]
    except NotFound:
        return None  # not a process on this node: a one-off call


def _snapshot_body(base: Mapping[str, Any]) -> bytes | None:
    """A memory image carried by the state itself (HyperBEAM's ``snapshot/<key>/body``)."""
    snap = base.get("snapshot")
    if not isinstance(snap, Mapping):
        return None
    key = base.get("device-key")
    candidates = [snap.get(str(key))] if key is not None else []
    candidates.append(snap)
    for entry in candidates:
        if isinstance(entry, Mapping):
            body = entry.get("body")
            if isinstance(body, (bytes, bytearray)):
                return bytes(body)
    return None


def _stored_snapshot(rt: ProcessRuntime, slot: int) -> bytes | None:
    data = rt.node.store.read(f"snapshots/{rt.pid}/{slot}/live/{LIVE_KEY}")
    return bytes(data) if data is not None else None


def live_instance(base: Mapping[str, Any], opts: Mapping[str, Any] | None) -> LiveWasm:
    """The process's live instance, instantiated (and its memory restored) when missing.

    With no process runtime (a one-off resolve) a fresh instance is returned each time.

    Raises:
        DeviceError: the state is past slot 0 but no live instance and no memory
            snapshot for it exist (the memory cannot be reconstructed).
    """
    rt = _runtime(base, opts)
    if rt is None:
        return instantiate(base, opts)
    live = rt.live.get(LIVE_KEY)
    if isinstance(live, LiveWasm):
        return live
    live = instantiate(base, opts)
    try:
        at = int(base.get("at-slot", -1))
    except (TypeError, ValueError):
        at = -1
    memory = _snapshot_body(base) or rt.restored.pop(LIVE_KEY, None)
    if memory is None and at >= 0:
        memory = _stored_snapshot(rt, at)
    if memory is not None:
        live.restore(memory)
    elif at >= 0:
        raise DeviceError(
            f"{DEVICE}: process {rt.pid} is at slot {at} but has no live instance and no "
            f"memory snapshot for that slot; its memory cannot be reconstructed",
            device=DEVICE,
            key="compute",
        )
    rt.live[LIVE_KEY] = live
    return live


# -- calls --------------------------------------------------------------------------------------


def _lookup(base: Mapping[str, Any], req: Mapping[str, Any] | None, key: str) -> Any:
    body = req.get("body") if isinstance(req, Mapping) else None
    for where in (body, req, base):
        if isinstance(where, Mapping):
            value = where.get(key)
            if value is not None and value is not NOT_FOUND:
                return value
    return None


def _parameters(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Mapping):
        keys = [k for k in value if not _core.impl.is_private(k)]
        if all(str(k).isdigit() for k in keys):
            return [value[k] for k in sorted(keys, key=int)]
        raise InvalidMessage(f"{DEVICE}: 'parameters' must be a list, not a map with keys {keys}")
    return [value]


def call(live: LiveWasm, function: str, params: Sequence[Any]) -> tuple[str, Any]:
    """Call ``function``; ``("ok", values)`` or ``("error", text)`` for a trap or limit.

    Raises:
        WasmError: no such export, or arguments that do not fit its signature.
    """
    inst = live.instance
    if not inst.has_export(function):
        raise WasmError(
            f"{DEVICE}: image {live.image} has no exported function {function!r}",
            device=DEVICE,
            key="compute",
            image=live.image,
        )
    try:
        # argument problems are the caller's mistake, not an execution failure: raise them
        entry = inst._export(function)
        inst._convert(function, entry.params, params)
    except WasmError as exc:
        raise WasmError(
            f"{DEVICE}: image {live.image}: {exc}", device=DEVICE, key="compute"
        ) from exc
    try:
        values = inst.call(function, *params)
    except (LimitExceeded, WasmError) as exc:
        live.last_error = exc
        return "error", str(exc)
    live.last_error = None
    return "ok", values


def init(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Instantiate the process's image (first pass only); the base unchanged.

    Raises:
        WasmError / NotFound / InvalidMessage: the image is missing or unusable.
    """
    if _pass(base) != 1:
        return base
    rt = _runtime(base, opts)
    if rt is None:
        instantiate(base, opts)  # validate only: nothing can keep the instance
        return base
    old = rt.live.pop(LIVE_KEY, None)
    try:
        live_instance(base, opts)
    except AOError:
        if old is not None:
            rt.live[LIVE_KEY] = old
        raise
    return base


def compute(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Call ``function`` with ``parameters`` (pass 1 only); the state with the results."""
    if _pass(base) != 1:
        return base
    function = _lookup(base, req, "function")
    if function is None:
        return base
    if not isinstance(function, str):
        raise InvalidMessage(f"{DEVICE}: 'function' must be an export name, not {function!r}")
    params = _parameters(_lookup(base, req, "parameters"))
    live = live_instance(base, opts)
    status, output = call(live, function, params)
    record: dict[str, Any] = {"type": status, "output": output}
    if status == "error":
        record["error"] = type(live.last_error).__name__
    undefined = live.instance.undefined_calls
    if undefined:
        record["undefined-calls"] = {
            str(i): {"module": c.module, "name": c.name} for i, c in enumerate(undefined, 1)
        }
    if live.wasi is not None and live.wasi.stdout:
        record["stdout"] = live.wasi.take_stdout().decode("utf-8", "replace")
    prefix = output_prefix(base)
    if prefix:
        return base.set(f"results/{prefix}", _core.impl.Message(record))
    return base.merge({"results": record})


def normalize(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Make sure the live instance exists (restoring memory from a snapshot); the base."""
    live_instance(base, opts)
    return base.remove("snapshot") if "snapshot" in base else base


def snapshot(base: Any, req: Any = None, opts: Any = None) -> Any:
    """``{body: memory image}`` of the live instance (not_found when there is none)."""
    rt = _runtime(base, opts)
    live = rt.live.get(LIVE_KEY) if rt is not None else None
    if not isinstance(live, LiveWasm):
        return NOT_FOUND
    return _core.impl.Message({"body": live.snapshot()})


info: Final[dict[str, Any]] = {
    "exports": ["init", "compute", "normalize", "snapshot"],
    "volatile": ["init", "compute", "normalize", "snapshot"],
    "default": "message@1.0",
}
