"""Legacy wasm exception handling → exnref translation: the pure backend's stand-in.

The translator lives in the Rust crate ``rust/wasm_eh`` (``hbeam._native``).  The pure
backend passes a module that does not use the legacy instructions through unchanged
(wasmtime's validator, which rejects exactly those, decides) and refuses the others
with a clear error.
"""

from __future__ import annotations

import atexit
import functools
from typing import Any

from hbeam.errors import WasmError

__all__ = ["wasm_translate_legacy_eh"]


@functools.cache
def _validator_engine() -> Any:
    import wasmtime  # only the wasm layer needs it; keep the core import light

    config = wasmtime.Config()
    config.wasm_memory64 = True
    config.wasm_exceptions = True
    engine = wasmtime.Engine(config)
    # free it before interpreter teardown unloads wasmtime's FFI bindings
    atexit.register(engine.close)
    return engine


def wasm_translate_legacy_eh(data: bytes) -> bytes:
    """Return ``data`` rewritten from legacy exception handling to the exnref form.

    The pure backend cannot rewrite: a module that uses the legacy instructions raises
    :class:`~hbeam.errors.WasmError`; any other bytes come back unchanged (invalid ones
    are reported by the compiler that receives them).
    """
    import wasmtime

    raw = bytes(data)
    try:
        wasmtime.Module.validate(_validator_engine(), raw)
    except wasmtime.WasmtimeError as exc:
        if "legacy_exceptions" in str(exc):
            raise WasmError(
                "legacy exception handling translation needs the native core: this module "
                "uses try/catch/rethrow/delegate (build hbeam._native)"
            ) from exc
    return raw
