"""hbeam — AO-Core (the message-resolution engine behind HyperBEAM) for Python.

Everything is a message (an immutable mapping); computing means resolving a request
message against a base message through a device; every result is linked to its inputs by
a hash path.  The hot core (keys, paths, deep get/set/merge, IDs, hash paths, caches) is
Rust (``hbeam._native``) with a pure-Python twin (``hbeam._pure``); ``HBEAM_BACKEND``
chooses, ``hbeam.BACKEND`` tells which is active.

Public names are imported lazily, so ``import hbeam`` stays cheap and the Lua, wasm and
HTTP layers load only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hbeam import _core
from hbeam._sentinels import NOT_FOUND, UNDEFINED, UNSET
from hbeam.errors import (
    AOError,
    CacheMiss,
    DeviceError,
    InvalidMessage,
    InvalidPath,
    InvalidSignature,
    LimitExceeded,
    LuaError,
    NotFound,
    RecursionLimit,
    StoreError,
    Unauthorized,
    WasmError,
)

__version__ = "0.1.0"

# name -> "module:attribute" (attribute omitted = the module itself)
_LAZY: dict[str, str] = {
    "resolve": "hbeam.ao:resolve",
    "resolve_many": "hbeam.ao:resolve_many",
    "get": "hbeam.ao:get",
    "get_first": "hbeam.ao:get_first",
    "set": "hbeam.ao:set",
    "remove": "hbeam.ao:remove",
    "keys": "hbeam.ao:keys",
    "force_message": "hbeam.ao:force_message",
    "device": "hbeam.device",
    "path": "hbeam.path",
    "store": "hbeam.store",
    "Node": "hbeam.node:Node",
    "Client": "hbeam.client:Client",
    "AsyncClient": "hbeam.client:AsyncClient",
    "Wallet": "hbeam.wallet:Wallet",
    "commit": "hbeam.commitment:commit",
    "verify": "hbeam.commitment:verify",
    "committers": "hbeam.commitment:committers",
}

# names served by the active core backend at call time
_CORE = ("Message", "ResultCache")

__all__ = [
    "BACKEND",
    "NOT_FOUND",
    "UNDEFINED",
    "UNSET",
    "AOError",
    "AsyncClient",
    "CacheMiss",
    "Client",
    "DeviceError",
    "InvalidMessage",
    "InvalidPath",
    "InvalidSignature",
    "LimitExceeded",
    "LuaError",
    "Message",
    "Node",
    "NotFound",
    "RecursionLimit",
    "ResultCache",
    "StoreError",
    "Unauthorized",
    "Wallet",
    "WasmError",
    "__version__",
    "commit",
    "committers",
    "device",
    "force_message",
    "get",
    "get_first",
    "hashpath",
    "id",
    "keys",
    "normalize_key",
    "normalize_keys",
    "path",
    "remove",
    "resolve",
    "resolve_many",
    "set",
    "store",
    "to_dict",
    "verify",
]


def normalize_key(key: Any) -> str:
    """A key in its normalised form: ``42`` → ``"42"``, ``["a", "b"]`` → ``"a/b"``.

    Raises:
        InvalidMessage: ``key`` is of a type that cannot be a key (float, None, set, …).
    """
    result: str = _core.impl.normalize_key(key)
    return result


def normalize_keys(value: Any) -> Any:
    """A Message with normalised keys; a list becomes ``{"1": …, "2": …}``; others as is."""
    return _core.impl.normalize_keys(value)


def id(value: Any) -> str:  # the AO-Core name, shadowing the builtin on purpose
    """The 43-character ID of a message (or the content address of bytes/str)."""
    result: str = _core.impl.id(value)
    return result


def hashpath(base: Any, req: Any = None) -> str:
    """A result's hash path (one argument), or the hash path of resolving ``req`` on ``base``."""
    result: str = _core.impl.hashpath(base) if req is None else _core.impl.hashpath(base, req)
    return result


def to_dict(value: Any) -> Any:
    """Plain nested dicts/lists from a Message (or a value holding Messages)."""
    from collections.abc import Mapping

    if isinstance(value, Mapping):
        to = getattr(value, "to_dict", None)
        if to is not None:
            return to()
        return {str(k): to_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dict(v) for v in value]
    return value


def __getattr__(name: str) -> Any:
    if name == "BACKEND":
        return _core.name
    if name in _CORE:
        return getattr(_core.impl, name)
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'hbeam' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value  # resolve once: later lookups skip __getattr__ (hot path)
    return value


def __dir__() -> list[str]:
    # not set(): once hbeam.set is resolved, the module global `set` is hbeam.ao.set
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # pragma: no cover - static view of the lazy names
    from hbeam import device, path, store
    from hbeam._pure import Message, ResultCache
    from hbeam.ao import force_message, get, get_first, keys, remove, resolve, resolve_many, set
    from hbeam.client import AsyncClient, Client
    from hbeam.commitment import commit, committers, verify
    from hbeam.node import Node
    from hbeam.wallet import Wallet

    BACKEND: str
