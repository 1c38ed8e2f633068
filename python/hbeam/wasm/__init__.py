"""WebAssembly processes for hbeam: the wasmtime engine, the aos JSON ABI and its host.

* :mod:`hbeam.wasm.engine` — :class:`WasmEngine` (compile cache, legacy exception
  handling translated at load) and :class:`WasmInstance` (fuel, memory limit,
  imports, snapshots);
* :mod:`hbeam.wasm.jsoniface` — json-iface@1.0: message/environment JSON in,
  outbox/data/patches out;
* :mod:`hbeam.wasm.wasi` — the deterministic WASI preview1 + emscripten subset.
"""

from __future__ import annotations

from hbeam.wasm.engine import (
    DEFAULT_FUEL,
    DEFAULT_MEMORY_LIMIT,
    UndefinedCall,
    WasmEngine,
    WasmInstance,
    WasmSnapshot,
    default_engine,
)
from hbeam.wasm.jsoniface import JsonIfaceResult, call_handle, env_json, message_json, parse_result
from hbeam.wasm.wasi import WasiHost

__all__ = [
    "DEFAULT_FUEL",
    "DEFAULT_MEMORY_LIMIT",
    "JsonIfaceResult",
    "UndefinedCall",
    "WasiHost",
    "WasmEngine",
    "WasmInstance",
    "WasmSnapshot",
    "call_handle",
    "default_engine",
    "env_json",
    "message_json",
    "parse_result",
]
