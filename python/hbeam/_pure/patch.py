"""``apply_patches``: patch@1.0's move of patch messages, in one core call.

Twin of ``rust/src/patch.rs``; the contract is ``docs/core-contract.md`` §apply_patches.
The result equals what ``hbeam.devices.patch._move("patches", …)`` returns for the same
state (destination ``/``), or is ``None`` whenever the case is not a plain one (a level
with its own device, commitments, reserved or private names, odd keys …): the caller
then takes the generic path.  It never raises.
"""

from __future__ import annotations

from typing import Any, Final

from hbeam._message_keys import MESSAGE_FUNCTION_KEYS as _FUNCTION_KEYS
from hbeam._message_keys import RESERVED as _RESERVED
from hbeam._pure.key import is_private
from hbeam._pure.message import _EMPTY, Message, _merge, _new
from hbeam._pure.pmap import PMap
from hbeam.errors import AOError

__all__ = ["apply_patches"]

_ABSENT: Any = object()

_STRIPPED: Final = frozenset({"method", "commitments", "tags"})
_PLAIN_DEVICES: Final = frozenset({"patch@1.0", "message@1.0"})
_NESTED_LIMIT: Final = 64
_DIGITS: Final = frozenset("0123456789")
_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class _NotPlain(Exception):
    """The case is not a plain one: the caller uses the generic path."""


def _lower(text: str) -> str:
    return text.translate(_LOWER)


def _order(key: str) -> tuple[int, int, str, str]:
    if key and _DIGITS.issuperset(key):
        digits = key.lstrip("0")
        return (0, len(digits), digits, key)
    return (1, 0, "", key)


def _first_ci(entry: Message, word: str) -> Any:
    """``entry[word]`` when present and not None, else the first non-None value of a key
    equal to ``word`` under ASCII case folding (as ``_is_patch``'s scan finds it)."""
    value = entry._map.get(word, None)
    if value is not None:
        return value
    for k, v in entry._map.items():
        if v is not None and len(k) == len(word) and _lower(k) == word:
            return v
    return None


def _is_patch(entry: Any) -> bool:
    if entry.__class__ is not Message:
        return False
    method = _first_ci(entry, "method")
    if method.__class__ is str and _lower(method) == "patch":
        return True
    dev = _first_ci(entry, "device")
    return dev.__class__ is str and _lower(dev) == "patch@1.0"


def _nested_devices(old: Message, new: Any, depth: int) -> bool:
    """Whether merging ``new`` into ``old`` may meet a level that is not a plain core
    Message (``devices.patch._nested_devices``): then message@1.0's set decides how."""
    if depth > _NESTED_LIMIT:
        return True
    for k, v in new.items():
        if v.__class__ is Message:
            sub = old._map.get(k, None)
            if sub is None or sub.__class__ is str or sub.__class__ is bytes:
                continue
            if sub.__class__ is not Message or sub._map.get("device", None) is not None:
                return True
            if _nested_devices(sub, v._map, depth + 1):
                return True
    return False


def _set_updates(old: Message, pm: PMap) -> dict[str, Any] | None:
    """The keys message@1.0's ``set`` would merge into ``old`` for ``pm`` (a map without
    ``/`` or ``path`` keys), or None when that set is not one plain deep merge."""
    req: dict[str, Any] = {}
    for k, v in pm.items():
        if k != "hashpath" and k != "priv":
            req[k] = v
    if not req:
        return {}
    if "set-mode" in req:
        return None
    if _nested_devices(old, req, 0):
        return None
    return {k: v for k, v in req.items() if k not in _RESERVED and not is_private(k)}


def _move(msg: Message, source: list[str]) -> Message:
    """The plain-case move (raises :class:`_NotPlain` otherwise)."""
    if not all(part.__class__ is str for part in source):
        raise _NotPlain
    if "commitments" in msg._map or "/".join(source) in ("path", "hashpath", "priv"):
        raise _NotPlain
    if len(source) == 1 and source[0] in _RESERVED:
        raise _NotPlain
    levels: list[Message] = []
    cur: Any = msg
    for i, part in enumerate(source):
        if not part or "/" in part:
            raise _NotPlain
        if is_private(part) or part in _FUNCTION_KEYS:
            raise _NotPlain
        if i > 0 and (cur.__class__ is not Message or "device" in cur._map):
            raise _NotPlain
        levels.append(cur)
        cur = cur._map.get(part, _ABSENT)
        if cur is _ABSENT:
            raise _NotPlain
    if cur.__class__ is tuple:
        raise _NotPlain
    if cur.__class__ is not Message:
        return msg

    keys = list(cur._map.keys())
    if not all(k.isascii() for k in keys):
        raise _NotPlain
    found: list[PMap] = []
    kept: list[str] = []
    for k in sorted(keys, key=_order):
        entry = cur._map.get(k)
        if not is_private(k) and _is_patch(entry):
            pm = entry._map
            for ek in list(pm.keys()):
                if _lower(ek) in _STRIPPED:
                    pm = pm.delete(ek)
            found.append(pm)
        else:
            kept.append(k)
    if not found:
        return msg

    written = _EMPTY
    for pm in found:
        dev = written._map.get("device", _ABSENT)
        if dev is not _ABSENT and not (dev.__class__ is str and _lower(dev) in _PLAIN_DEVICES):
            raise _NotPlain
        if any("/" in k or k == "path" for k in pm.keys()):
            raise _NotPlain
        updates = _set_updates(written, pm)
        if updates is None:
            raise _NotPlain
        if updates:
            written = written.merge(updates)

    kept.sort()
    # a subset of the source's entries: its height bound holds
    node: Message = _new(PMap.from_sorted(kept, [cur._map.get(k) for k in kept]), cur._height)
    # the generic path sets it over a placeholder string, i.e. merges it into an empty
    # message at its depth: "/" keys inside become paths
    node = _merge(_EMPTY, node, len(source) + 1, [])
    for level, part in zip(reversed(levels), reversed(source), strict=True):
        node = _new(level._map.set(part, node), max(level._height, node._height + 1))
    updates = _set_updates(node, written._map)
    if updates is None:
        raise _NotPlain
    return node.merge(updates) if updates else node


def apply_patches(msg: Any, source: Any, dest: Any) -> Message | None:
    """``msg`` with the patch messages at path ``source`` moved to ``dest`` (patch@1.0's
    ``patches``), or None when the case is not a plain one (then use the generic path).

    Equals ``devices.patch._move("patches", …)`` for a base whose reads at the root are
    plain and whose ``set`` is message@1.0's; only ``dest == []`` is handled.  Never
    raises.
    """
    if msg.__class__ is not Message or type(source) is not list or not source:
        return None
    if type(dest) is not list or dest:
        return None
    try:
        return _move(msg, source)
    except (_NotPlain, AOError, RecursionError):
        return None
