"""Key sets of ``message@1.0`` that the device layer and the core's ``apply_patches`` share.

A leaf module (like ``hbeam._sentinels``): the pure core imports it without importing the
device layer. The Rust twin (``rust/src/patch.rs``) holds the same sets.
"""

from __future__ import annotations

from typing import Final

MESSAGE_FUNCTION_KEYS: Final = frozenset(
    {
        "get",
        "set",
        "set-path",
        "set_path",
        "remove",
        "keys",
        "id",
        "commit",
        "verify",
        "committers",
        "committed",
    }
)
"""Keys of message@1.0 that are functions, not plain reads of the message."""

RESERVED: Final = frozenset(
    {"id", "commitments", "committers", "keys", "path", "set", "remove", "verify", "set-mode"}
)
"""Keys message@1.0's ``set`` never writes (the device's own keys), core.md §7.3."""
