"""Python ↔ Lua value conversion for hbeam's Lua layer (execution-http.md §4.4).

Python → Lua: any ``Mapping`` (dicts, core Messages) → table with string keys; a mapping
whose keys are exactly ``"1".."n"`` and any ``list``/``tuple`` → array; ``str`` and
``bytes`` → string; ``int`` → integer (beyond 64 bits → float, as Lua itself reads such
literals); ``float`` → float; ``bool`` → boolean; ``None`` → nil (the key vanishes).

Lua → Python: string → ``str`` (``bytes`` when not valid UTF-8); integer → ``int``; float →
``float`` (integral floats stay floats); boolean → ``bool``; a table whose keys are exactly
``1..n`` → ``list``; any other table → ``dict`` with string keys (numbers become their
decimal text); the EMPTY table → ``{}``; nil entries vanish.

Both directions reject nesting deeper than 200 levels (and therefore cycles) with
:class:`~hbeam.errors.InvalidMessage`.

The wire between the two halves is a flat sequence of scalars with ``None`` markers (the
format is described at the top of ``convert.lua``), so a message crosses the boundary in
one lupa call instead of one call per table entry. The codec itself is part of the core
(``lua_encode_values``, ``lua_encode_map``, ``lua_decode_values`` of ``hbeam._pure`` and
its Rust twin): these functions call the active backend's. Use :meth:`hbeam.lua.LuaVM.call`
and friends; these functions are the building blocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hbeam import _core

__all__ = ["MAX_DEPTH", "decode_values", "encode_map", "encode_values"]

MAX_DEPTH = 200

# wire kinds (convert.lua)
FMAP, MAP, FLIST, LIST, NIL, BYTES, FPAIRS = 1, 2, 3, 4, 5, 6, 7


def encode_map(value: Mapping[str, Any]) -> list[Any]:
    """The flat wire form of one mapping: :func:`encode_values` of ``(value,)``, with a fast
    path for the common message shape (string keys, scalar values)."""
    result: list[Any] = _core.impl.lua_encode_map(value)
    return result


def encode_values(values: Sequence[Any]) -> list[Any]:
    """The flat wire form of ``values`` (each one top-level argument for Lua).

    Raises:
        InvalidMessage: a value nests deeper than 200 levels (or is cyclic), or holds a
            type that has no Lua form (sets, objects...).
    """
    result: list[Any] = _core.impl.lua_encode_values(values)
    return result


def decode_values(vals: Sequence[Any], start: int = 0) -> list[Any]:
    """The Python values encoded in the flat sequence ``vals[start:]``.

    Raises:
        InvalidMessage: ``vals`` is not a well-formed encoding (it ends inside a value, a
            table code or kind is wrong, tables nest deeper than 200 levels, a map key is
            unusable).
    """
    result: list[Any] = _core.impl.lua_decode_values(vals, start)
    return result
