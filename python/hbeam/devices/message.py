"""``message@1.0`` — the default device: a message's keys are its values (core.md §7).

Any key that is not one of the functions below is a plain read of the message: exact
first, then case-insensitively (in both directions: ``"A"`` finds ``"a"`` and ``"a"``
finds ``"A"``).  Private keys (``priv*``) are never returned.

Function keys: ``get`` (request ``key``), ``set`` (deep-merge the request's keys),
``set_path`` (the ``path`` key itself, from request ``value``), ``remove`` (request
``item`` or ``items``), ``keys`` (public keys, without ``commitments``), ``id`` (the
unsigned ID), ``committers`` and ``committed`` (read from ``commitments``).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Final

from hbeam import _core
from hbeam._message_keys import RESERVED as RESERVED
from hbeam._sentinels import NOT_FOUND, UNDEFINED, UNSET
from hbeam.errors import InvalidMessage

__all__ = [
    "committed",
    "committers",
    "get",
    "id",
    "info",
    "keys",
    "read",
    "remove",
    "set",
    "set_path",
]

HIDDEN: Final = frozenset({"commitments"})


_MISS: Any = object()


def read(base: Any, key: str) -> Any:
    """``base[key]``, else a case-insensitive match, else ``NOT_FOUND``; private keys are
    ``NOT_FOUND``."""
    if not key or _core.impl.is_private(key):
        return NOT_FOUND
    value = base.get(key, _MISS)
    if value is not _MISS:
        return value
    get_path = getattr(base, "get_path", None)
    if get_path is not None and "/" not in key:
        return get_path([key], NOT_FOUND)
    low = key.lower()
    for k in base:
        if isinstance(k, str) and k.lower() == low:
            return base[k]
    return NOT_FOUND


def _default_get(key: str, base: Any, req: Any = None, opts: Any = None) -> Any:
    return read(base, key)


info: Final[dict[str, Any]] = {"default": _default_get}


def get(base: Any, req: Mapping[str, Any]) -> Any:
    """The key named by the request's ``key``, read as any plain key is."""
    key = req.get("key")
    if key is None:
        return NOT_FOUND
    return read(base, _core.impl.normalize_key(key))


def keys(base: Any) -> list[str]:
    """The message's public keys (private ``priv*`` keys and ``commitments`` hidden)."""
    pk = getattr(base, "public_keys", None)
    listed = pk() if pk is not None else [k for k in base if not _core.impl.is_private(k)]
    return [k for k in listed if k not in HIDDEN]


def _unflatten(updates: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in updates.items():
        segs = _core.impl.parts(k) if "/" in k else [k]
        if not segs:
            continue
        node = out
        for seg in segs[:-1]:
            nxt = node.get(seg)
            if not isinstance(nxt, dict):
                nxt = dict(nxt) if isinstance(nxt, Mapping) else {}
                node[seg] = nxt
            node = nxt
        last = segs[-1]
        old = node.get(last)
        if isinstance(v, Mapping) and isinstance(old, Mapping):
            merged = dict(old)
            merged.update(_unflatten({str(a): b for a, b in v.items()}))
            node[last] = merged
        else:
            node[last] = v
    return out


def uses_message_set(msg: Any) -> bool:
    """Whether setting keys on ``msg`` is this device's plain :func:`set` (no own device)."""
    if not isinstance(msg, Mapping):
        return True
    name = msg.get("device")
    if name is None or (isinstance(name, str) and name.lower() == "message@1.0"):
        return True
    from hbeam import device

    dev = device.load(name)
    return device.lookup(dev, "set", msg).fun is set


def _foreign_device(msg: Mapping[str, Any]) -> bool:
    return not uses_message_set(msg)


def _needs_devices(old: Mapping[str, Any], new: Mapping[str, Any], depth: int = 0) -> bool:
    """Whether merging ``new`` into ``old`` meets a nested message with its own device."""
    if depth > _core.impl.MAX_DEPTH:
        return False
    for k, v in new.items():
        if isinstance(v, Mapping):
            sub = old.get(k)
            if isinstance(sub, Mapping) and (
                _foreign_device(sub) or _needs_devices(sub, v, depth + 1)
            ):
                return True
    return False


def merge(base: Any, updates: Mapping[str, Any], opts: Mapping[str, Any] | None) -> Any:
    """HyperBEAM's deep merge of ``updates`` into ``base``, setting any nested message that
    names its own device (e.g. ``trie@1.0``) through that device's ``set``."""
    if any("/" in k for k in updates):
        updates = _unflatten(updates)
    if not _needs_devices(base, updates):
        return base.merge(updates)
    from hbeam import ao

    plain: dict[str, Any] = {}
    special: dict[str, Any] = {}
    for k, v in updates.items():
        if isinstance(v, Mapping):
            sub = base.get(k)
            if isinstance(sub, Mapping):
                if _foreign_device(sub):
                    special[k] = ao.set(sub, v, opts=opts)
                    continue
                if _needs_devices(sub, v):
                    special[k] = merge(_message(sub), v, opts)
                    continue
        plain[k] = v
    out = base.merge(plain) if plain else base
    for k, v in special.items():
        out = out.set(k, v)
    return out


def _message(value: Mapping[str, Any]) -> Any:
    M = _core.impl.Message
    return value if type(value) is M else M(value)


def _committed_keys(base: Mapping[str, Any]) -> builtins.set[str] | None:
    comms = base.get("commitments")
    if not isinstance(comms, Mapping) or not comms:
        return None
    covered: builtins.set[str] = builtins.set()
    for c in comms.values():
        if isinstance(c, Mapping):
            listed = c.get("committed")
            if isinstance(listed, list):
                covered.update(str(x) for x in listed)
            else:
                return builtins.set(base)  # unknown shape: assume it covers everything
    return covered


def set(base: Any, req: Mapping[str, Any], opts: Mapping[str, Any] | None = None) -> Any:
    """``base`` with the request's public keys merged in (``set-mode: explicit`` replaces
    instead of deep-merging); ``UNSET`` removes, ``UNDEFINED`` is ignored; reserved keys
    (``id keys path set remove verify commitments committers set-mode``) are skipped.

    Overwriting a key some commitment covers with a different value drops
    ``commitments`` (the signatures would no longer verify).
    """
    is_private = _core.impl.is_private
    updates = {
        k: v
        for k, v in req.items()
        if k not in RESERVED and v is not UNDEFINED and not is_private(k)
    }
    if not updates:
        return base
    covered = _committed_keys(base)
    if covered is not None:
        for k, v in updates.items():
            head = k.split("/", 1)[0]
            if head in covered and base.get(head, NOT_FOUND) != v:
                base = base.remove("commitments")
                break
    if req.get("set-mode") == "explicit":
        out = base
        for k, v in updates.items():
            out = out.remove(k) if v is UNSET else out.set(k, v)
        return out
    return merge(base, updates, opts)


def set_path(base: Any, req: Mapping[str, Any]) -> Any:
    """``base`` with its ``path`` key set to the request's ``value`` (``UNSET`` removes it)."""
    value = req.get("value", UNDEFINED)
    if value is UNDEFINED:
        return base
    if value is UNSET:
        return base.remove("path")
    return base.set("path", value)


def remove(base: Any, req: Mapping[str, Any]) -> Any:
    """``base`` without the request's ``item`` key or ``items`` keys (missing ones ignored)."""
    items = req.get("items")
    if items is None:
        item = req.get("item")
        if item is None:
            return base
        items = [item]
    elif not isinstance(items, list):
        items = [items]
    names = [_core.impl.normalize_key(i) for i in items]
    return base.remove(names)


def id(base: Any) -> str:
    """The message's unsigned ID (its public content, commitments excluded)."""
    result: str = _core.impl.id(base)
    return result


def committers(base: Any) -> list[Any]:
    """The ``committer`` of every commitment that names one."""
    comms = base.get("commitments")
    if not isinstance(comms, Mapping):
        return []
    out = []
    for c in comms.values():
        if isinstance(c, Mapping) and c.get("committer") is not None:
            out.append(c.get("committer"))
    return out


def committed(base: Any) -> list[str]:
    """The keys every commitment covers (all public keys when there are none)."""
    comms = base.get("commitments")
    if not isinstance(comms, Mapping) or not comms:
        return keys(base)
    result: builtins.set[str] | None = None
    for c in comms.values():
        listed = c.get("committed") if isinstance(c, Mapping) else None
        if not isinstance(listed, list):
            raise InvalidMessage("a commitment has no 'committed' list")
        cur = {str(x) for x in listed}
        result = cur if result is None else result & cur
    return sorted(result or ())
