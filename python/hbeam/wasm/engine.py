"""WebAssembly execution on wasmtime: one configured engine, a compile cache, sandboxed instances.

:class:`WasmEngine` owns one ``wasmtime.Engine`` (memory64, exceptions and fuel on) and
compiles module bytes once: legacy exception handling is translated to the standard
exnref form first (wasmtime runs only that), and compiled artefacts are kept in memory
and, when a cache directory is given, on disk so a restart does not recompile.

:class:`WasmInstance` is one instantiated module with its own store: host imports from a
resolver (unknown imports become stubs that return zeros and are recorded, as
HyperBEAM does, or an error when ``strict_imports``), a fuel budget per call and a memory
limit per instance, typed argument conversion, memory helpers and byte-exact memory
snapshots.  Every failure is an :class:`hbeam.errors.WasmError` (or
:class:`~hbeam.errors.LimitExceeded` for fuel and memory) naming the module and export.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import json
import math
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import wasmtime

from hbeam import _core
from hbeam.errors import AOError, LimitExceeded, WasmError

__all__ = [
    "DEFAULT_FUEL",
    "DEFAULT_MEMORY_LIMIT",
    "HostFunc",
    "ImportResolver",
    "UndefinedCall",
    "WasmEngine",
    "WasmInstance",
    "WasmSnapshot",
    "default_engine",
]

#: Fuel (roughly: wasm instructions) one call may use before it is stopped.
DEFAULT_FUEL = 10_000_000_000
#: Bytes of linear memory one instance may grow to (aos' usual "1-gb").
DEFAULT_MEMORY_LIMIT = 1 << 30

WASM_PAGE = 65536

#: A host function: called with the instance first, then the wasm arguments.
HostFunc: TypeAlias = Callable[..., Any]
#: Maps (import module, import name, wasmtime function type) to a host function, or None.
ImportResolver: TypeAlias = Callable[[str, str, Any], HostFunc | None]
Imports: TypeAlias = Mapping[tuple[str, str], HostFunc] | ImportResolver

_INT_RANGES = {"i32": (-(1 << 31), (1 << 32) - 1), "i64": (-(1 << 63), (1 << 64) - 1)}
_SNAPSHOT_MAGIC = b"hbeam-wasm-snapshot\x001"


def _short(module_id: str) -> str:
    return module_id if len(module_id) <= 20 else module_id[:16] + "…"


@dataclass(frozen=True)
class UndefinedCall:
    """A call the module made to an import nobody provides (it returned zeros)."""

    module: str
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class WasmSnapshot:
    """An instance's state: its linear memory (zlib-compressed) and exported mutable globals."""

    memory: bytes
    memory_size: int
    globals: dict[str, int | float] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Serialise to one byte string (magic, JSON header, compressed memory)."""
        header = json.dumps(
            {"memory_size": self.memory_size, "globals": self.globals}, sort_keys=True
        ).encode()
        return _SNAPSHOT_MAGIC + struct.pack("<I", len(header)) + header + self.memory

    @classmethod
    def from_bytes(cls, data: bytes) -> WasmSnapshot:
        """Parse :meth:`to_bytes` output; anything else is a :class:`WasmError`."""
        n = len(_SNAPSHOT_MAGIC)
        if not data.startswith(_SNAPSHOT_MAGIC) or len(data) < n + 4:
            raise WasmError("not a wasm memory snapshot (bad magic)")
        (hlen,) = struct.unpack_from("<I", data, n)
        try:
            header = json.loads(data[n + 4 : n + 4 + hlen])
            size = int(header["memory_size"])
            globals_ = {str(k): v for k, v in dict(header["globals"]).items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise WasmError(f"corrupt wasm memory snapshot header: {exc}") from exc
        return cls(memory=bytes(data[n + 4 + hlen :]), memory_size=size, globals=globals_)


def _translate_legacy_eh(data: bytes, module_id: str) -> bytes:
    """Bytes with legacy exception handling rewritten to exnref (unchanged if none)."""
    try:
        return bytes(_core.impl.wasm_translate_legacy_eh(data))
    except WasmError as exc:
        raise WasmError(f"module {_short(module_id)}: {exc}") from exc


class WasmEngine:
    """One wasmtime engine (memory64 + exceptions + fuel) with a compile cache.

    ``cache_dir`` keeps serialised compiled modules across restarts (only ever load
    artefacts this process family wrote: wasmtime trusts them).
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        config = wasmtime.Config()
        config.wasm_memory64 = True
        config.wasm_exceptions = True
        config.wasm_multi_value = True
        config.wasm_bulk_memory = True
        config.wasm_reference_types = True
        config.consume_fuel = True
        self._engine = wasmtime.Engine(config)
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._modules: dict[str, Any] = {}
        self._lock = threading.Lock()
        #: How many compilations ran (cache misses), and how many were loaded from disk.
        self.compiled = 0
        self.loaded = 0
        self._salt = hashlib.sha256(
            b"hbeam-wasm-engine/1\0wasmtime "
            + _wasmtime_version().encode()
            + b"\0memory64,exceptions,fuel,translate-eh"
        ).digest()

    @property
    def engine(self) -> Any:
        """The underlying ``wasmtime.Engine``."""
        return self._engine

    def module_key(self, data: bytes) -> str:
        """The cache key of ``data`` (sha256 of the bytes and this engine's configuration)."""
        return hashlib.sha256(self._salt + data).hexdigest()

    def compile(self, data: bytes | bytearray | memoryview, *, module_id: str | None = None) -> Any:
        """The compiled ``wasmtime.Module`` for wasm bytes (or WAT text), cached.

        Raises:
            WasmError: the bytes are not a valid module (message names ``module_id``).
        """
        raw = bytes(data)
        key = self.module_key(raw)
        label = module_id or key[:16]
        with self._lock:
            cached = self._modules.get(key)
        if cached is not None:
            return cached
        module = self._load_artefact(key)
        if module is None:
            module = self._compile_new(raw, label)
            self._store_artefact(key, module)
        with self._lock:
            self._modules[key] = module
        return module

    def _compile_new(self, raw: bytes, label: str) -> Any:
        if not raw.startswith(b"\0asm"):
            try:
                raw = bytes(wasmtime.wat2wasm(raw.decode("utf-8")))
            except (UnicodeDecodeError, wasmtime.WasmtimeError) as exc:
                raise WasmError(
                    f"module {_short(label)}: not a WebAssembly module "
                    f"(no \\0asm header and not WAT text: {_first_line(exc)})"
                ) from exc
        raw = _translate_legacy_eh(raw, label)
        try:
            module = wasmtime.Module(self._engine, raw)
        except wasmtime.WasmtimeError as exc:
            raise WasmError(
                f"module {_short(label)}: invalid WebAssembly: {_first_line(exc)}"
            ) from exc
        self.compiled += 1
        return module

    def _artefact_path(self, key: str) -> Path | None:
        return None if self._cache_dir is None else self._cache_dir / f"{key}.cwasm"

    def _load_artefact(self, key: str) -> Any:
        path = self._artefact_path(key)
        if path is None or not path.is_file():
            return None
        try:
            # Read into memory rather than mmap the file: a file replaced or truncated
            # underneath a mapping would crash the process (SIGBUS).
            module = wasmtime.Module.deserialize(self._engine, path.read_bytes())
        except (wasmtime.WasmtimeError, OSError):
            return None  # stale (other wasmtime version) or damaged: recompile
        self.loaded += 1
        return module

    def _store_artefact(self, key: str, module: Any) -> None:
        path = self._artefact_path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
            with os.fdopen(fd, "wb") as fh:
                fh.write(module.serialize())
            os.replace(tmp, path)
        except OSError:
            pass  # the cache is an optimisation; a read-only disk must not fail a compile

    def instantiate(
        self, data: bytes | bytearray | memoryview | Any, **options: Any
    ) -> WasmInstance:
        """Compile (cached) and instantiate; ``options`` are :class:`WasmInstance`'s."""
        return WasmInstance(self, data, **options)


def _wasmtime_version() -> str:
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _trap_text(exc: Any) -> str:
    """wasmtime's trap cause (the last line of its report) and the innermost function."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    try:
        frames = exc.frames
    except (AttributeError, wasmtime.WasmtimeError):
        frames = []
    if frames:
        frame = frames[0]
        text += f" (in {frame.func_name or f'function {frame.func_index}'})"
    return text


_default_engine: WasmEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> WasmEngine:
    """The process-wide engine (in-memory cache only), created on first use."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = WasmEngine()
            # free it before interpreter teardown unloads wasmtime's FFI bindings
            atexit.register(_default_engine.engine.close)
        return _default_engine


class _Export:
    """A cached export: the function, its parameter kinds and result count."""

    __slots__ = ("func", "n_results", "params")

    def __init__(self, func: Any, params: tuple[str, ...], n_results: int) -> None:
        self.func = func
        self.params = params
        self.n_results = n_results


class WasmInstance:
    """One instance of a module in its own store, with fuel and memory limits.

    Args:
        engine: the :class:`WasmEngine` (compile cache) to use.
        module: wasm bytes / WAT text, or an already compiled ``wasmtime.Module``.
        imports: host functions, as ``{(module, name): fn}`` or a resolver
            ``(module, name, functype) -> fn | None``; ``fn(instance, *args)``.
        strict_imports: an import nobody provides is an error instead of a stub.
        fuel: fuel per :meth:`call` (None = unlimited).
        memory_limit: bytes the linear memory may grow to.
        require_memory64: refuse a module whose memory is 32-bit.
        module_id: how errors name the module (e.g. its image ID).
    """

    def __init__(
        self,
        engine: WasmEngine,
        module: bytes | bytearray | memoryview | Any,
        *,
        imports: Imports | None = None,
        strict_imports: bool = False,
        fuel: int | None = DEFAULT_FUEL,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        require_memory64: bool = False,
        module_id: str | None = None,
    ) -> None:
        self.engine = engine
        if isinstance(module, (bytes, bytearray, memoryview)):
            label = module_id or engine.module_key(bytes(module))[:16]
            module = engine.compile(module, module_id=label)
        self.module_id = module_id or "module"
        self._module = module
        self.fuel = fuel
        self.memory_limit = memory_limit
        #: Calls to unprovided imports during the latest :meth:`call`.
        self.undefined_calls: list[UndefinedCall] = []
        self._lock = threading.RLock()
        self._exports: dict[str, _Export] = {}
        self._check_memory(require_memory64)
        self._store = wasmtime.Store(engine.engine)
        self._store.set_limits(memory_size=memory_limit)
        self._store.set_fuel(fuel if fuel is not None else (1 << 63) - 1)
        externs = [self._resolve_import(imp, imports, strict_imports) for imp in module.imports]
        try:
            self._instance = wasmtime.Instance(self._store, module, externs)
        except wasmtime.Trap as exc:
            raise self._trap_error("instantiation (start function)", exc) from exc
        except wasmtime.WasmtimeError as exc:
            raise WasmError(
                f"module {_short(self.module_id)}: cannot instantiate: {_first_line(exc)}"
            ) from exc
        self._export_map: dict[str, Any] = dict(self._instance.exports(self._store).items())
        mem = self._export_map.get("memory")
        self._memory = mem if isinstance(mem, wasmtime.Memory) else None

    # -- setup -----------------------------------------------------------------

    def _check_memory(self, require_memory64: bool) -> None:
        if not require_memory64:
            return
        memtypes = [e.type for e in self._module.exports if isinstance(e.type, wasmtime.MemoryType)]
        memtypes += [
            i.type for i in self._module.imports if isinstance(i.type, wasmtime.MemoryType)
        ]
        bad = [m for m in memtypes if not m.is_64]
        if bad:
            raise WasmError(
                f"module {_short(self.module_id)} has a 32-bit linear memory; "
                "wasm-64@1.0 needs a 64-bit (memory64) module"
            )

    def _resolve_import(self, imp: Any, imports: Imports | None, strict: bool) -> Any:
        module_name, name, ty = imp.module, imp.name or "", imp.type
        where = f"module {_short(self.module_id)} imports {module_name}.{name}"
        if not isinstance(ty, wasmtime.FuncType):
            raise WasmError(f"{where}, a {type(ty).__name__} import, which hbeam cannot provide")
        fn: HostFunc | None
        if imports is None:
            fn = None
        elif callable(imports):
            fn = imports(module_name, name, ty)
        else:
            fn = imports.get((module_name, name))
        if fn is None:
            if strict:
                raise WasmError(f"{where}, which is not provided")
            return wasmtime.Func(self._store, ty, self._stub(module_name, name, ty))
        host = fn

        def call_host(*args: Any) -> Any:
            try:
                return host(self, *args)
            except AOError:
                raise
            except Exception as exc:
                raise WasmError(
                    f"module {_short(self.module_id)}: host function {module_name}.{name} "
                    f"failed: {type(exc).__name__}: {exc}"
                ) from exc

        return wasmtime.Func(self._store, ty, call_host)

    def _stub(self, module: str, name: str, ty: Any) -> HostFunc:
        zeros = [0.0 if str(r) in ("f32", "f64") else 0 for r in ty.results]
        result: Any = None if not zeros else zeros[0] if len(zeros) == 1 else zeros

        def stub(*args: Any) -> Any:
            self.undefined_calls.append(UndefinedCall(module, name, tuple(args)))
            return result

        return stub

    # -- calls -----------------------------------------------------------------

    def _export(self, name: str) -> _Export:
        cached = self._exports.get(name)
        if cached is not None:
            return cached
        func = self._export_map.get(name)
        if not isinstance(func, wasmtime.Func):
            have = sorted(k for k, v in self._export_map.items() if isinstance(v, wasmtime.Func))
            what = "no export" if func is None else "an export that is not a function named"
            raise WasmError(
                f"module {_short(self.module_id)} has {what} {name!r} "
                f"(function exports: {', '.join(have) or 'none'})"
            )
        ty = func.type(self._store)
        params = tuple(str(p) for p in ty.params)
        entry = _Export(func, params, len(ty.results))
        self._exports[name] = entry
        return entry

    def has_export(self, name: str) -> bool:
        """Whether the module exports a function called ``name``."""
        return isinstance(self._export_map.get(name), wasmtime.Func)

    def _convert(self, name: str, kinds: tuple[str, ...], args: Sequence[Any]) -> list[Any]:
        if len(args) != len(kinds):
            raise WasmError(
                f"export {name!r} of module {_short(self.module_id)} takes {len(kinds)} "
                f"argument(s) ({', '.join(kinds) or 'none'}), got {len(args)}"
            )
        out: list[Any] = []
        for i, (kind, arg) in enumerate(zip(kinds, args, strict=True)):
            out.append(self._convert_one(name, i, kind, arg))
        return out

    def _convert_one(self, name: str, i: int, kind: str, arg: Any) -> Any:
        def bad(why: str) -> WasmError:
            return WasmError(
                f"argument {i + 1} of export {name!r} (module {_short(self.module_id)}) "
                f"must be {kind}: {why}"
            )

        if isinstance(arg, bool) or not isinstance(arg, (int, float)):
            if isinstance(arg, str):
                try:
                    arg = float(arg) if kind in ("f32", "f64") else int(arg, 0)
                except ValueError as exc:
                    raise bad(f"got the string {arg!r}") from exc
            else:
                raise bad(f"got {type(arg).__name__}")
        if kind in ("i32", "i64"):
            if isinstance(arg, float):
                if not math.isfinite(arg) or not arg.is_integer():
                    raise bad(f"{arg!r} is not an integer")
                arg = int(arg)
            lo, hi = _INT_RANGES[kind]
            if not lo <= arg <= hi:
                raise bad(f"{arg} is out of range")
            bits = 32 if kind == "i32" else 64
            if arg >= 1 << (bits - 1):  # unsigned spelling of a negative value
                arg -= 1 << bits
            return arg
        if kind in ("f32", "f64"):
            return float(arg)
        raise bad("hbeam only passes numbers to wasm")

    def call(self, export: str, *args: Any) -> list[Any]:
        """Call an exported function; returns its results as a list.

        Arguments are converted to the signature's types (ints for i32/i64, floats for
        f32/f64; integral floats and numeric strings are accepted).

        Raises:
            WasmError: no such export, wrong arguments, or the call trapped (the message
                has wasmtime's trap text).
            LimitExceeded: the call ran out of fuel or hit the memory limit.
        """
        entry = self._exports.get(export) or self._export(export)
        params = self._convert(export, entry.params, args)
        with self._lock:
            self.undefined_calls = []
            store = self._store
            if self.fuel is not None:
                store.set_fuel(self.fuel)
            try:
                result = entry.func(store, *params)
            except wasmtime.Trap as exc:
                raise self._trap_error(f"export {export!r}", exc) from exc
            except wasmtime.WasmtimeError as exc:
                raise WasmError(
                    f"module {_short(self.module_id)}: calling {export!r} failed: "
                    f"{_first_line(exc)}"
                ) from exc
        if entry.n_results == 0:
            return []
        if entry.n_results == 1:
            return [result]
        return list(result)

    def _trap_error(self, what: str, exc: Any) -> WasmError | LimitExceeded:
        code = getattr(exc, "trap_code", None)
        message = _trap_text(exc)
        where = f"module {_short(self.module_id)}: {what}"
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return LimitExceeded(
                f"{where} ran out of fuel (limit {self.fuel} per call)",
                limit="fuel",
                fuel=self.fuel,
            )
        if self._memory is not None and code in (
            wasmtime.TrapCode.UNREACHABLE,
            wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS,
            None,
        ):
            size = self._memory.data_len(self._store)
            if size + WASM_PAGE > self.memory_limit:
                return LimitExceeded(
                    f"{where} trapped at the memory limit ({size} of {self.memory_limit} "
                    f"bytes in use): {message}",
                    limit="memory",
                    memory_limit=self.memory_limit,
                )
        return WasmError(f"{where} trapped: {message}", trap=message, trace=str(exc))

    # -- memory ----------------------------------------------------------------

    @property
    def memory(self) -> Any:
        """The exported ``memory`` (a ``wasmtime.Memory``), or a WasmError if none."""
        if self._memory is None:
            raise WasmError(f"module {_short(self.module_id)} exports no 'memory'")
        return self._memory

    @property
    def store(self) -> Any:
        """The instance's ``wasmtime.Store``."""
        return self._store

    def function_table(self) -> Any:
        """The exported ``__indirect_function_table`` (a ``wasmtime.Table``)."""
        table = self._export_map.get("__indirect_function_table")
        if not isinstance(table, wasmtime.Table):
            raise WasmError(
                f"module {_short(self.module_id)} exports no '__indirect_function_table'"
            )
        return table

    def memory_size(self) -> int:
        """Current linear memory size in bytes."""
        return int(self.memory.data_len(self._store))

    def read(self, ptr: int, length: int) -> bytes:
        """``length`` bytes of linear memory at ``ptr``."""
        size = self.memory_size()
        if ptr < 0 or length < 0 or ptr + length > size:
            raise WasmError(
                f"module {_short(self.module_id)}: read of {length} bytes at {ptr} is outside "
                f"its {size}-byte memory"
            )
        if length == 0:
            return b""
        return bytes(self.memory.get_buffer_ptr(self._store, length, ptr))

    def write(self, ptr: int, data: bytes | bytearray) -> None:
        """Copy ``data`` into linear memory at ``ptr``."""
        size = self.memory_size()
        if ptr < 0 or ptr + len(data) > size:
            raise WasmError(
                f"module {_short(self.module_id)}: write of {len(data)} bytes at {ptr} is "
                f"outside its {size}-byte memory"
            )
        if data:
            buf = self.memory.get_buffer_ptr(self._store, len(data), ptr)
            buf[:] = bytes(data)

    def read_cstring(self, ptr: int, *, max_len: int | None = None) -> bytes:
        """The NUL-terminated byte string at ``ptr`` (without the NUL)."""
        size = self.memory_size()
        if ptr < 0 or ptr >= size:
            raise WasmError(
                f"module {_short(self.module_id)}: string pointer {ptr} is outside its "
                f"{size}-byte memory"
            )
        end_limit = size if max_len is None else min(size, ptr + max_len)
        chunk = 4096
        pos = ptr
        parts: list[bytes] = []
        while pos < end_limit:
            n = min(chunk, end_limit - pos)
            block = bytes(self.memory.get_buffer_ptr(self._store, n, pos))
            nul = block.find(b"\0")
            if nul >= 0:
                parts.append(block[:nul])
                return b"".join(parts)
            parts.append(block)
            pos += n
            chunk = min(chunk * 4, 1 << 24)
        raise WasmError(
            f"module {_short(self.module_id)}: string at {ptr} has no NUL terminator "
            "before the end of memory"
        )

    def malloc(self, size: int) -> int:
        """Allocate ``size`` bytes with the module's exported ``malloc``."""
        result = self.call("malloc", size)
        if len(result) != 1 or not isinstance(result[0], int):
            raise WasmError(
                f"module {_short(self.module_id)}: its malloc export must return one "
                f"integer pointer, got {result!r}"
            )
        ptr = result[0]
        if not ptr:
            raise WasmError(f"module {_short(self.module_id)}: malloc({size}) failed (returned 0)")
        return int(ptr)

    def write_cstring(self, data: str | bytes) -> int:
        """Copy ``data`` plus a NUL into freshly malloc'd memory; returns the pointer."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        ptr = self.malloc(len(raw) + 1)
        self.write(ptr, raw + b"\0")
        return ptr

    # -- snapshots -------------------------------------------------------------

    def _mutable_globals(self) -> dict[str, Any]:
        out = {}
        for name, ext in self._export_map.items():
            if isinstance(ext, wasmtime.Global):
                ty = ext.type(self._store)
                if ty.mutable and str(ty.content) in ("i32", "i64", "f32", "f64"):
                    out[name] = ext
        return out

    def snapshot(self, *, level: int = 1) -> WasmSnapshot:
        """The instance's memory (zlib at ``level``) and exported mutable globals."""
        with self._lock:
            size = self.memory_size()
            data = self.read(0, size) if size else b""
            globals_ = {n: g.value(self._store) for n, g in self._mutable_globals().items()}
        return WasmSnapshot(memory=zlib.compress(data, level), memory_size=size, globals=globals_)

    def restore(self, snapshot: WasmSnapshot | bytes) -> None:
        """Make memory (and exported mutable globals) byte-identical to ``snapshot``.

        Raises:
            WasmError: the snapshot is corrupt or smaller than the module's memory.
            LimitExceeded: it is larger than this instance's memory limit.
        """
        if isinstance(snapshot, (bytes, bytearray, memoryview)):
            snapshot = WasmSnapshot.from_bytes(bytes(snapshot))
        try:
            data = zlib.decompress(snapshot.memory)
        except zlib.error as exc:
            raise WasmError(f"corrupt wasm memory snapshot: {exc}") from exc
        if len(data) != snapshot.memory_size:
            raise WasmError(
                f"corrupt wasm memory snapshot: {len(data)} bytes, header says "
                f"{snapshot.memory_size}"
            )
        if snapshot.memory_size > self.memory_limit:
            raise LimitExceeded(
                f"module {_short(self.module_id)}: snapshot of {snapshot.memory_size} bytes "
                f"exceeds the memory limit of {self.memory_limit}",
                limit="memory",
            )
        with self._lock:
            size = self.memory_size()
            if snapshot.memory_size < size:
                raise WasmError(
                    f"module {_short(self.module_id)}: snapshot memory ({snapshot.memory_size} "
                    f"bytes) is smaller than the instance's ({size}); wrong module?"
                )
            if snapshot.memory_size > size:
                pages = -(-(snapshot.memory_size - size) // WASM_PAGE)
                try:
                    self.memory.grow(self._store, pages)
                except wasmtime.WasmtimeError as exc:
                    raise LimitExceeded(
                        f"module {_short(self.module_id)}: cannot grow memory to "
                        f"{snapshot.memory_size} bytes: {_first_line(exc)}",
                        limit="memory",
                    ) from exc
            self.write(0, data)
            globals_ = self._mutable_globals()
            for name, value in snapshot.globals.items():
                g = globals_.get(name)
                if g is not None:
                    g.set_value(self._store, value)
