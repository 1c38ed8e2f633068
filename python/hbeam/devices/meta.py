"""``meta@1.0`` — the node describing itself: ``info`` and ``build`` (HyperBEAM's dev_meta).

``GET /~meta@1.0/info`` → ``{node, version, backend, store, devices, address (when the node
has a wallet), require-signed, max-body-bytes, processes}``.  ``build`` →
``{node, version, backend, build-profile}``.  Read-only: HyperBEAM's operator-signed
``POST`` to change the node message is not offered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hbeam import _core
from hbeam.errors import NotFound

__all__ = ["DEFAULT_MAX_BODY_BYTES", "build_info", "info", "node_info"]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


def build_info() -> dict[str, Any]:
    """``{node, version, backend, build-profile}``."""
    from hbeam import __version__

    return {
        "node": "hbeam",
        "version": __version__,
        "backend": _core.name,
        "build-profile": str(getattr(_core.impl, "build_profile", "unknown")),
    }


def node_info(node: Any) -> dict[str, Any]:
    """What ``/~meta@1.0/info`` answers for ``node`` (None: only the build facts)."""
    from hbeam import device

    out = build_info()
    out["devices"] = device.known()
    if node is None:
        return out
    opts: Mapping[str, Any] = node.opts
    out["store"] = repr(node.store)
    wallet = getattr(node, "wallet", None)
    if wallet is not None:
        out["address"] = wallet.address
    out["require-signed"] = bool(opts.get("require_signed", True))
    out["max-body-bytes"] = int(opts.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES))
    out["processes"] = len(node.store.list("processes"))
    return out


def _handle(key: str, base: Any, req: Any, opts: Any) -> Any:
    if key.lower() == "info":
        return _core.impl.Message(node_info((opts or {}).get("node")))
    if key.lower() == "build":
        return _core.impl.Message(build_info())
    raise NotFound(f"meta@1.0 has no key {key!r} (it offers 'info' and 'build')", key=key)


info = {"handler": _handle, "exports": ["info", "build"], "volatile": True}
