"""``patch@1.0`` — move data between paths of a message (core.md §9, seed 001).

Keys: ``all`` (move everything at the source), ``patches`` (move only patch messages:
entries whose ``method`` is ``PATCH`` or whose ``device`` is ``patch@1.0``), ``compute``
(= ``patches``; the execution-device hook), and ``init`` / ``normalize`` / ``snapshot``
(return the base unchanged).  Every other key is a plain read (``message@1.0``).

* Source path: the first found of the request's ``patch-from``, the request's ``from``,
  the base's ``patch-from``, the base's ``from`` (seed 001's order; HyperBEAM's code
  looks at both ``patch-from`` keys before either ``from``); default ``/``.  A first
  segment ``base:`` or ``req:`` picks the message the path is in (default: the base);
  the result is built on that message.
* Destination: same lookup with ``patch-to`` / ``to``; no prefixes; default ``/``.
* A missing source is ``not_found``.  A list source is a numbered message (``"1"``…);
  an empty one holds no patches.
* ``patches``: each patch loses ``method``, ``commitments`` and ``Tags`` (any case) and
  keeps everything else (``device`` included); patches are merged in numeric key order
  (``"2"`` before ``"10"``), then deep-merged at the destination.  Non-patch entries stay
  at the source.  ``all``: the source value is written as is and removed from the source
  (its parent stays, possibly ``{}``).
* Writing goes through ``hbeam.set``, so a destination level with its own device (a
  ``trie@1.0`` balance table) is set through that device.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Final

from hbeam import _core, ao
from hbeam import device as _device
from hbeam._sentinels import NOT_FOUND, UNDEFINED, UNSET
from hbeam.devices import message as _message
from hbeam.errors import AOError

__all__ = ["all", "compute", "init", "normalize", "patches", "snapshot"]

_STRIPPED: Final = frozenset({"method", "commitments", "tags"})
PLACEHOLDER: Final = "patch-error"


# -- fast paths -------------------------------------------------------------------------------
# Moving patches is a few plain reads and deep merges on core Messages.  Going through
# ao.get / ao.set costs a resolver context, a device lookup and a resolver step per call;
# when every message involved is a core Message whose reads and sets the resolver would
# hand to message@1.0 (same device decision), the helpers below call message@1.0 directly
# with the very requests the resolver would pass — or, where message@1.0's set could only
# end in one deep merge (no commitments, no nested level with a device), do that merge.
# Anything else (opts["on_step"], a replaced message@1.0, devices) goes through ao.get/set.


def _fast(opts: Any) -> bool:
    return _device.plain_reads_builtin and not (opts and opts.get("on_step") is not None)


def _decision(msg: Any, key: str, opts: Any) -> Any:
    """The resolver's device decision for ``key`` on core Message ``msg`` (None if that
    fails: the resolver then reports it)."""
    name = msg.get("device")
    try:
        if type(name) is str:
            decision = _device.static_decision(name, key, msg, opts)
            if decision is not None:
                return decision
        dev = _device.default() if name is None else _device.load(name, opts=opts)
        return _device.lookup(dev, key, msg, opts)
    except AOError:
        return None


def _direct(msg: Any, key: str, opts: Any) -> bool:
    """Whether the resolver answers ``key`` on ``msg`` with message@1.0's plain read."""
    if type(msg) is not _core.impl.Message:
        return False
    if msg.get("device") is None:
        # message@1.0 itself (built in, as _fast checked): ao.get's own plain-read test
        return key not in _device.MESSAGE_FUNCTION_KEYS and not _core.impl.is_private(key)
    decision = _decision(msg, key, opts)
    return decision is not None and bool(decision.direct)


def _sets_plainly(msg: Any, opts: Any) -> bool:
    """Whether ``set`` on ``msg`` is message@1.0's :func:`~hbeam.devices.message.set`."""
    if type(msg) is not _core.impl.Message:
        return False
    decision = _decision(msg, "set", opts)
    return (
        decision is not None
        and decision.fun is _message.set
        and decision.status == "ok"
        and not decision.volatile
    )


def _get(msg: Any, segs: list[str], opts: Any) -> Any:
    """``ao.get("/".join(segs), msg)`` (``NOT_FOUND`` when absent)."""
    if _fast(opts):
        cur = msg
        for seg in segs:
            if not _direct(cur, seg, opts):
                break
            cur = _message.read(cur, seg)
            if cur is NOT_FOUND:
                return NOT_FOUND
        else:
            return cur
    return ao.get("/".join(segs), msg, opts=opts)


def _first(pairs: list[tuple[Any, str]], opts: Any) -> Any:
    """``ao.get_first(pairs, "/")`` for single keys."""
    for msg, key in pairs:
        value = _get(msg, [key], opts)
        if value is not NOT_FOUND:
            return value
    return "/"


def _set_req(updates: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``set`` request ao.set would pass message@1.0 for ``updates``, or None when
    ao.set has more to do (non-str or ``/`` keys, ``path``)."""
    req: dict[str, Any] = {}
    for k, v in updates.items():
        if type(k) is not str or "/" in k or k == "path" or not k:
            return None
        if k != "hashpath" and k != "priv":
            req[k] = v
    req["path"] = "set"
    return req


def _set(msg: Any, updates: Mapping[str, Any], opts: Any) -> Any:
    """``ao.set(msg, updates)``."""
    if _fast(opts) and _sets_plainly(msg, opts):
        req = _set_req(updates)
        if req is not None:
            if len(req) == 1:
                return msg
            if (
                "set-mode" not in req
                and "commitments" not in msg
                and not _nested_devices(msg, req, 0)
            ):
                # message@1.0's set with nothing to drop and no level with its own device
                # to go through: the deep merge of the public keys
                is_private = _core.impl.is_private
                return msg.merge(
                    {
                        k: v
                        for k, v in req.items()
                        if k not in _message.RESERVED and v is not UNDEFINED and not is_private(k)
                    }
                )
            try:
                return _message.set(msg, req, opts)
            except AOError:
                raise
            except Exception:  # let the resolver report it its own way
                pass
    return ao.set(msg, updates, opts=opts)


def _nested_devices(old: Any, new: Mapping[str, Any], depth: int) -> bool:
    """Whether merging ``new`` into ``old`` may meet a nested message with a device (or
    anything but plain core Messages): then message@1.0's set decides how.  Errs on the
    side of True."""
    M = _core.impl.Message
    if depth > 64:
        return True
    for k, v in new.items():
        if type(v) is M or type(v) is dict:
            sub = old.get(k)
            if sub is None or type(sub) is str or type(sub) is bytes:
                continue
            if type(sub) is not M or sub.get("device") is not None:
                return True
            if _nested_devices(sub, v, depth + 1):
                return True
        elif isinstance(v, Mapping):
            return True
    return False


def _set_at(msg: Any, segs: list[str], value: Any, opts: Any) -> Any:
    """``ao.set(msg, "/".join(segs), value)`` for a non-empty path."""
    M = _core.impl.Message
    if _fast(opts) and "" not in segs and _sets_plainly(msg, opts):
        # every level below is a plain message (or new): one message@1.0 set does it,
        # as ao.set's deep set decides
        cur = msg
        plain = True
        for seg in segs[:-1]:
            cur = cur.get(seg)
            if cur is None:
                break
            if type(cur) is not M or cur.get("device") is not None:
                plain = False
                break
        key = "/".join(segs)
        if plain and key not in ("path", "hashpath", "priv"):
            existing = None if cur is None else cur.get(segs[-1])
            if (
                len(segs) > 1
                and "commitments" not in msg
                and not _core.impl.is_private(key)
                and (
                    type(value) is str
                    or (type(value) is M and (existing is None or type(existing) is str))
                )
            ):
                # what message@1.0's set does here, without its generic steps: the path
                # as nested maps, merged once (no commitments to drop; no level with a
                # device to go through, as the value merges into no existing map)
                nested: Any = value
                for seg in reversed(segs):
                    nested = {seg: nested}
                return msg.merge(nested)
            try:
                return _message.set(msg, {key: value, "path": "set"}, opts)
            except AOError:
                raise
            except Exception:  # let the resolver report it its own way
                pass
    return ao.set(msg, "/".join(segs), value, opts=opts)


def _setting(base: Any, req: Any, name: str, opts: Any) -> Any:
    return _first(
        [(req, f"patch-{name}"), (req, name), (base, f"patch-{name}"), (base, name)], opts
    )


def _segments(raw: Any) -> list[str]:
    if isinstance(raw, (str, bytes, list, tuple, int)) and not isinstance(raw, bool):
        return list(_core.impl.parts(raw))
    return []


def _is_patch(entry: Any) -> bool:
    if type(entry) is not _core.impl.Message and not isinstance(entry, Mapping):
        return False
    method = entry.get("method")
    dev = entry.get("device")
    if method is None or dev is None:
        # the first key matching case-insensitively, as a plain read finds it
        for k, v in entry.items():
            if isinstance(k, str):
                low = k.lower()
                if method is None and low == "method":
                    method = v
                elif dev is None and low == "device":
                    dev = v
    if isinstance(method, str) and method.upper() == "PATCH":
        return True
    return isinstance(dev, str) and dev.lower() == "patch@1.0"


def _clean(entry: Mapping[str, Any]) -> Any:
    drop = [k for k in entry if isinstance(k, str) and k.lower() in _STRIPPED]
    msg: Any = entry if type(entry) is _core.impl.Message else _core.impl.Message(entry)
    return msg.remove(drop) if drop else msg


def _order(key: str) -> tuple[int, int, str]:
    return (0, int(key), key) if key.isdigit() else (1, 0, key)


_SETTINGS: Final = (("patch-from", "from"), ("patch-to", "to"))
_PATCH_FROM, _FROM, _PATCH_TO, _TO = (["patch-from"], ["from"], ["patch-to"], ["to"])
_PARTS: dict[str, list[str]] = {}  # setting text -> its segments (settings repeat)


def _plain_read(msg: Any, key: str) -> Any:
    """message@1.0's read of a public, non-function ``key`` on a core Message."""
    value = msg.get(key, NOT_FOUND)
    return msg.get_path([key], NOT_FOUND) if value is NOT_FOUND else value


def _setting_parts(value: Any) -> list[str] | None:
    if type(value) is not str:
        return _segments(value)
    parts = _PARTS.get(value)
    if parts is None:
        parts = _segments(value)
        if len(_PARTS) >= 256:
            _PARTS.clear()
        _PARTS[value] = parts
    return parts


def _move_plain(base: Any, req: Any, opts: Any) -> Any:
    """``patches`` in one core call (:func:`apply_patches`) when the base's device reads and
    sets plainly and nothing on the way has a device of its own; None otherwise.

    The settings are read as :func:`_setting` reads them — the request's ``patch-<x>``,
    its ``<x>``, the base's ``patch-<x>``, its ``<x>`` — all plain reads here (the
    request has no device; the base's device must read them plainly)."""
    M = _core.impl.Message
    if type(req) is not M or req.get("device") is not None or not _sets_plainly(base, opts):
        return None
    found: list[Any] = []
    for keys in _SETTINGS:
        value = NOT_FOUND
        for key in keys:
            value = _plain_read(req, key)
            if value is not NOT_FOUND:
                break
        else:
            for key in keys:
                if not _direct(base, key, opts):
                    return None
                value = _plain_read(base, key)
                if value is not NOT_FOUND:
                    break
        found.append("/" if value is NOT_FOUND else value)
    segs = _setting_parts(found[0])
    if not segs or _setting_parts(found[1]):
        return None
    if segs[0].startswith(("base:", "req:")) or not _direct(base, segs[0], opts):
        return None
    return _core.impl.apply_patches(base, list(segs), [])


def _static_direct(base: Any, key: str, opts: Any) -> bool:
    """Whether every message with ``base``'s device answers ``key`` with a plain read
    (the device's info is static, so the decision does not depend on the message)."""
    name = base.get("device")
    try:
        decision = _device.static_decision(name, key, base, opts) if type(name) is str else None
    except AOError:
        return False
    return decision is not None and bool(decision.direct)


def plan(base: Any, key: str, opts: Any = None) -> Any:
    """Host hook for :func:`hbeam.ao.key_step` (not a key): ``compute`` / ``patches`` on
    messages configured like ``base``, compiled — :func:`_move_plain`'s device checks
    made once. The compiled function checks each call's request and settings against
    ``base``'s and calls :func:`apply_patches`; anything else goes the general way. None
    (no compiled function) for other keys or when ``base`` would not move plainly."""
    general = {"compute": compute, "patches": patches}.get(key)
    moved = lane(base, key, opts)
    if general is None or moved is None:
        return None

    def move(msg: Any, req: Any) -> Any:
        value = moved(msg, req)
        return value if value is not None else general(msg, req, opts)

    return move


def lane(base: Any, key: str, opts: Any = None) -> Any:
    """Host hook for :func:`hbeam.ao.step_lane` (not a key): the plain move :func:`plan`
    compiles, as ``f(msg, req)`` returning None (having done nothing) where it does not
    apply; None for keys and bases :func:`plan` does not compile."""
    M = _core.impl.Message
    if key not in ("compute", "patches") or type(base) is not M or not _fast(opts):
        return None
    name = base.get("device")
    try:
        setter = _device.static_decision(name, "set", base, opts) if type(name) is str else None
    except AOError:
        return None
    if (
        setter is None
        or setter.fun is not _message.set
        or setter.status != "ok"
        or setter.volatile
        # (builtins.all: this module's ``all`` is the device key)
        or not builtins.all(_static_direct(base, k, opts) for keys in _SETTINGS for k in keys)
    ):
        return None
    found: list[Any] = []
    for keys in _SETTINGS:
        value: Any = NOT_FOUND
        for k in keys:
            value = _plain_read(base, k)
            if value is not NOT_FOUND:
                break
        found.append("/" if value is NOT_FOUND else value)
    segs = _setting_parts(found[0])
    if (
        not segs
        or _setting_parts(found[1])
        or segs[0].startswith(("base:", "req:"))
        or not _static_direct(base, segs[0], opts)
    ):
        return None
    source, from_setting, to_setting = list(segs), found[0], found[1]
    apply_patches = _core.impl.apply_patches
    read = _plain_read

    def moved(msg: Any, req: Any) -> Any:
        # the key_step guard has checked msg's device (so the decisions above hold)
        if (
            type(req) is M
            and type(msg) is M
            and req.get("device") is None
            # (get_path of one key is _plain_read in one call: exact, else case-folded)
            and req.get_path(_PATCH_FROM, NOT_FOUND) is NOT_FOUND
            and req.get_path(_FROM, NOT_FOUND) is NOT_FOUND
            and req.get_path(_PATCH_TO, NOT_FOUND) is NOT_FOUND
            and req.get_path(_TO, NOT_FOUND) is NOT_FOUND
        ):
            value = read(msg, "patch-from")
            if value is NOT_FOUND:
                value = read(msg, "from")
            if (value if value is not NOT_FOUND else "/") == from_setting:
                value = read(msg, "patch-to")
                if value is NOT_FOUND:
                    value = read(msg, "to")
                if (value if value is not NOT_FOUND else "/") == to_setting:
                    return apply_patches(msg, source, [])
        return None

    return moved


def _move(mode: str, base: Any, req: Any, opts: Any) -> Any:
    M = _core.impl.Message
    if mode == "patches" and type(base) is M and _fast(opts):
        moved = _move_plain(base, req, opts)
        if moved is not None:
            return moved
    segs = _segments(_setting(base, req, "from", opts))
    target: Any = base
    if segs and segs[0].startswith("base:"):
        rest = segs[0][len("base:") :]
        segs = ([rest] if rest else []) + segs[1:]
    elif segs and segs[0].startswith("req:"):
        rest = segs[0][len("req:") :]
        segs = ([rest] if rest else []) + segs[1:]
        target = req if type(req) is M else M(req)
    to_segs = _segments(_setting(base, req, "to", opts))
    source = _get(target, segs, opts) if segs else target
    if source is NOT_FOUND:
        return NOT_FOUND
    if isinstance(source, (list, tuple)):
        source = _core.impl.normalize_keys(list(source))

    if mode == "all":
        written: Any = source
        new_source: Any = UNSET
    elif isinstance(source, Mapping):
        found: list[Any] = []
        kept: dict[str, Any] = {}
        for k in sorted(source, key=_order):
            entry = source[k]
            if not _core.impl.is_private(k) and _is_patch(entry):
                found.append(_clean(entry))
            else:
                kept[k] = entry
        if not found:
            return target
        written = M()
        for patch in found:
            written = _set(written, patch, opts)
        new_source = M(kept)
    else:
        return target

    if segs:
        target = _set_at(target, segs, PLACEHOLDER, opts)
        target = _set_at(target, segs, new_source, opts)
    else:
        target = M() if new_source is UNSET else new_source
    if to_segs:
        return ao.set(target, "/".join(to_segs), written, opts=opts)
    if isinstance(written, Mapping):
        return _set(target, written, opts)
    return written


def all(base: Any, req: Any, opts: Any = None) -> Any:
    """Move the whole source value to the destination; the source key is removed."""
    return _move("all", base, req, opts)


def patches(base: Any, req: Any, opts: Any = None) -> Any:
    """Move the patch messages at the source into the destination; others stay."""
    return _move("patches", base, req, opts)


def compute(base: Any, req: Any, opts: Any = None) -> Any:
    """The execution-device hook: :func:`patches`."""
    return _move("patches", base, req, opts)


info: Final[dict[str, Any]] = {"excludes": ["plan", "lane"]}


def init(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Execution-device hook: the base, unchanged."""
    return base


def normalize(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Execution-device hook: the base, unchanged."""
    return base


def snapshot(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Execution-device hook: the base, unchanged."""
    return base
