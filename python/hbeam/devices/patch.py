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

from collections.abc import Mapping
from typing import Any, Final

from hbeam import _core, ao
from hbeam._sentinels import NOT_FOUND, UNSET

__all__ = ["all", "compute", "init", "normalize", "patches", "snapshot"]

_STRIPPED: Final = frozenset({"method", "commitments", "tags"})
PLACEHOLDER: Final = "patch-error"


def _setting(base: Any, req: Any, name: str, opts: Any) -> Any:
    return ao.get_first(
        [(req, f"patch-{name}"), (req, name), (base, f"patch-{name}"), (base, name)],
        "/",
        opts=opts,
    )


def _segments(raw: Any) -> list[str]:
    if isinstance(raw, (str, bytes, list, tuple, int)) and not isinstance(raw, bool):
        return list(_core.impl.parts(raw))
    return []


def _read_ci(msg: Mapping[str, Any], key: str) -> Any:
    for k, v in msg.items():
        if isinstance(k, str) and k.lower() == key:
            return v
    return None


def _is_patch(entry: Any) -> bool:
    if not isinstance(entry, Mapping):
        return False
    method = entry.get("method")
    if method is None:
        method = _read_ci(entry, "method")
    if isinstance(method, str) and method.upper() == "PATCH":
        return True
    dev = entry.get("device")
    if dev is None:
        dev = _read_ci(entry, "device")
    return isinstance(dev, str) and dev.lower() == "patch@1.0"


def _clean(entry: Mapping[str, Any]) -> Any:
    drop = [k for k in entry if isinstance(k, str) and k.lower() in _STRIPPED]
    msg: Any = entry if type(entry) is _core.impl.Message else _core.impl.Message(entry)
    return msg.remove(drop) if drop else msg


def _order(key: str) -> tuple[int, int, str]:
    return (0, int(key), key) if key.isdigit() else (1, 0, key)


def _move(mode: str, base: Any, req: Any, opts: Any) -> Any:
    M = _core.impl.Message
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
    from_path = "/".join(segs)

    source = ao.get(from_path, target, opts=opts) if segs else target
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
            written = ao.set(written, patch, opts=opts)
        new_source = M(kept)
    else:
        return target

    if segs:
        target = ao.set(target, from_path, PLACEHOLDER, opts=opts)
        target = ao.set(target, from_path, new_source, opts=opts)
    else:
        target = M() if new_source is UNSET else new_source
    if to_segs:
        return ao.set(target, "/".join(to_segs), written, opts=opts)
    if isinstance(written, Mapping):
        return ao.set(target, written, opts=opts)
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


def init(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Execution-device hook: the base, unchanged."""
    return base


def normalize(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Execution-device hook: the base, unchanged."""
    return base


def snapshot(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Execution-device hook: the base, unchanged."""
    return base
