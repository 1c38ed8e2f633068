"""hbeam's Lua execution layer: real Lua 5.3 (lupa), sandboxed, with an aos-compatible runtime.

* :class:`LuaVM` — one sandboxed Lua state with instruction and memory limits
  (:mod:`hbeam.lua.vm`);
* :func:`encode_values` / :func:`decode_values` — the value conversion both ways
  (:mod:`hbeam.lua.convert`);
* :class:`AosProcess` — an aos-style process (Handlers, Send, Inbox...) on a LuaVM, plus
  the bundled token blueprint (:mod:`hbeam.lua.aos`).

The ``lua@5.3a`` device (``hbeam.devices.lua``) is a thin layer over these.
"""

from __future__ import annotations

from hbeam.lua.aos import AOS_SOURCE, JSON_SOURCE, TOKEN_SOURCE, AosProcess
from hbeam.lua.convert import MAX_DEPTH, decode_values, encode_values
from hbeam.lua.vm import DEFAULT_MAX_INSTRUCTIONS, DEFAULT_MAX_MEMORY, LuaVM

__all__ = [
    "AOS_SOURCE",
    "DEFAULT_MAX_INSTRUCTIONS",
    "DEFAULT_MAX_MEMORY",
    "JSON_SOURCE",
    "MAX_DEPTH",
    "TOKEN_SOURCE",
    "AosProcess",
    "LuaVM",
    "decode_values",
    "encode_values",
]
