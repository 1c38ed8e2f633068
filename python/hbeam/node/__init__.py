"""The node: :class:`Node` (in-process), its scheduler and process runtimes, and its HTTP app.

The HTTP side (``create_app``) is imported only when used, so an in-process node does not
load the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hbeam.node.runtime import Node, default_node, wasm_definition

__all__ = ["Node", "create_app", "default_node", "wasm_definition"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from hbeam.node.app import create_app

        return create_app
    raise AttributeError(f"module 'hbeam.node' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from hbeam.node.app import create_app
