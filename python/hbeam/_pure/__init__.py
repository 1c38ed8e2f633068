"""The pure-Python core backend: the reference implementation of ``docs/core-contract.md``.

``hbeam._native`` (Rust) is its twin, one Rust module per module here; both export the
names of ``__all__`` and behave identically down to exception class and message.
"""

from __future__ import annotations

from hbeam._pure.assign import assign_many
from hbeam._pure.cache import ResultCache
from hbeam._pure.hashpath import decode, encode, hashpath, id
from hbeam._pure.key import MAX_DEPTH, MAX_KEY_BYTES, is_private, normalize_key, normalize_keys
from hbeam._pure.luaflat import (
    lua_decode_values,
    lua_encode_map,
    lua_encode_values,
    lua_payload_bound,
)
from hbeam._pure.message import Message
from hbeam._pure.patch import apply_patches
from hbeam._pure.path import parts, to_str
from hbeam._pure.request import MAX_SEGMENT_BYTES, parse_request
from hbeam._pure.wasm import wasm_translate_legacy_eh

__all__ = [
    "MAX_DEPTH",
    "MAX_KEY_BYTES",
    "MAX_SEGMENT_BYTES",
    "Message",
    "ResultCache",
    "apply_patches",
    "assign_many",
    "build_profile",
    "decode",
    "encode",
    "hashpath",
    "id",
    "is_private",
    "lua_decode_values",
    "lua_encode_map",
    "lua_encode_values",
    "lua_payload_bound",
    "normalize_key",
    "normalize_keys",
    "parse_request",
    "parts",
    "to_str",
    "wasm_translate_legacy_eh",
]

build_profile = "pure"
