"""``wasi@1.0`` — provide the deterministic WASI host to ``wasm-64@1.0`` (execution-http.md §5).

``init`` marks the state (``<output-prefix>/stdlib/wasi_snapshot_preview1 = "wasi@1.0"``,
where HyperBEAM installs its WASI device) so that ``wasm-64@1.0``, later in the stack,
instantiates the module with :class:`hbeam.wasm.WasiHost` resolving its
``wasi_snapshot_preview1`` and emscripten ``env`` imports: no real clock, filesystem,
network or entropy; stdout is collected into ``results/<prefix>/stdout``.  Every other
hook (``compute``, ``normalize``) passes the state through; ``snapshot`` contributes
nothing (the host holds no state worth keeping between calls).
"""

from __future__ import annotations

from typing import Any, Final

from hbeam._sentinels import NOT_FOUND
from hbeam.devices.wasm import WASI_MARK, output_prefix

__all__ = ["compute", "info", "init", "normalize", "snapshot"]

DEVICE: Final = "wasi@1.0"


def init(base: Any, req: Any = None, opts: Any = None) -> Any:
    """The state with the WASI mark set (idempotent, so every pass may run it)."""
    prefix = output_prefix(base)
    path = f"{prefix}/{WASI_MARK}" if prefix else WASI_MARK
    if base.get_path(path) == DEVICE:
        return base
    return base.set(path, DEVICE)


def compute(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Passthrough: the host is bound at instantiation."""
    return base


def normalize(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Passthrough."""
    return base


def snapshot(base: Any = None, req: Any = None, opts: Any = None) -> Any:
    """Nothing (``not_found``): WASI keeps no state between calls."""
    return NOT_FOUND


info: Final[dict[str, Any]] = {
    "exports": ["init", "compute", "normalize", "snapshot"],
    "default": "message@1.0",
}
