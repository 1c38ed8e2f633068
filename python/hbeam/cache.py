"""The message cache: messages, data and results in a store, by ID and by hash path.

HyperBEAM's ``hb_cache``, simplified.  The store is ``opts["store"]`` (a
:class:`~hbeam.store.Store`, or a list of them: reads try each in turn, writes go to the
first).  Layout in the store:

* ``data/<ID>`` — every value, as the core's canonical encoding (``encode``), under its ID
  (``id``): a message's unsigned ID, or the content address of bytes/str data.  One blob
  per message: the core's encoding is compact and typed, and a message is read whole.
* ``<hash>/<key>`` — a result stored by :func:`write_result` is a link from its hash path
  to the ``data/<ID>`` of its value.
* any other path (``computed/<pid>/slot/<n>``, ``assignments/<pid>/<slot>``, …) — links
  and groups made by :func:`link` and :func:`batch`.

A path given to these functions is "logical": a single ID segment stands for
``data/<ID>``; anything else is used as is (so ``"data"`` itself is reserved).
:func:`read` follows links and, when no node exists at the path, reads the longest stored
prefix and looks the rest up inside that message (``<pid-state>/balances/<addr>``).

Messages carry no private keys in the store (``priv…`` is never encoded).  A message
with ``commitments`` shares its ID with its unsigned form; writing the unsigned form over
a stored signed one keeps the signed one, and writing a signed one merges commitments.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from hbeam import _core
from hbeam._sentinels import NOT_FOUND
from hbeam.errors import InvalidMessage, InvalidPath, StoreError
from hbeam.store.base import Link, Op, Store, Write

__all__ = [
    "DATA",
    "Batch",
    "batch",
    "link",
    "list",
    "read",
    "read_result",
    "write",
    "write_many",
    "write_result",
]

DATA = "data"
"""The group holding every value by ID."""

_ID = re.compile(r"[A-Za-z0-9_-]{43}\Z")


def _stores(opts: Mapping[str, Any]) -> builtins.list[Store]:
    found = opts.get("store") if isinstance(opts, Mapping) else None
    if isinstance(found, Store):
        return [found]
    if (
        isinstance(found, (builtins.list, tuple))
        and found
        and all(isinstance(s, Store) for s in found)
    ):
        return builtins.list(found)
    if found is None:
        raise StoreError("the message cache needs a store: opts['store'] is not set")
    raise StoreError(
        f"opts['store'] must be a Store or a list of Stores, not {type(found).__name__} "
        "(open one with hbeam.store.open(spec))"
    )


def _physical(path: Any) -> tuple[str, ...]:
    segs = tuple(_core.impl.parts(path))
    if not segs:
        raise InvalidPath(f"cache path {path!r} is empty")
    if len(segs) == 1 and _ID.match(segs[0]):
        return (DATA, segs[0])
    return segs


def _target(path: Any) -> tuple[str, ...]:
    segs = _physical(path)
    if segs == (DATA,):
        raise InvalidPath(f"cache path {path!r}: '{DATA}' is reserved for the values by ID")
    return segs


def _decode(data: bytes, store: Store, where: Sequence[str]) -> Any:
    try:
        return _core.impl.decode(data)
    except (InvalidMessage, ValueError) as exc:
        shown = "/".join(where)
        raise StoreError(
            f"corrupt value at {shown!r} in {store.where}: {exc}",
            path=shown,
            file=getattr(store, "file", None),
        ) from exc


def _read_raw(stores: Sequence[Store], segs: tuple[str, ...]) -> tuple[bytes, Store] | None:
    for store in stores:
        data = store.read(segs)
        if data is not None:
            return data, store
    return None


def _prepare(value: Any, store: Store) -> tuple[str, bytes | None]:
    """``(ID, bytes to write)``; bytes None when the stored copy already has it all."""
    vid: str = _core.impl.id(value)
    if isinstance(value, Mapping):
        existing = store.read((DATA, vid))
        if existing is not None:
            if "commitments" not in value:
                return vid, None
            old = _decode(existing, store, (DATA, vid))
            old_commitments = old.get("commitments") if isinstance(old, Mapping) else None
            new_commitments = value["commitments"]
            if (
                isinstance(old_commitments, Mapping)
                and isinstance(new_commitments, Mapping)
                and not all(k in new_commitments for k in old_commitments)
            ):
                merged = _core.impl.Message(value).set(
                    "commitments", {**dict(old_commitments), **dict(new_commitments)}
                )
                return vid, _core.impl.encode(merged)
    blob: bytes = _core.impl.encode(value)
    return vid, blob


def write(value: Any, *, opts: Mapping[str, Any]) -> str:
    """Store ``value`` (a message, bytes, str or any value) under its ID; durable on return.

    Returns:
        The value's ID (``hbeam.id(value)``).

    Raises:
        InvalidMessage: the value holds something that cannot be encoded.
        StoreError: no store in ``opts``, or the store failed.
    """
    with Batch(opts=opts) as b:
        vid = b.write(value)
    return vid


def write_many(
    values: Iterable[Any],
    *,
    links: Iterable[tuple[Any, Any]] = (),
    opts: Mapping[str, Any],
) -> builtins.list[str]:
    """Store several values and ``(existing, new)`` links in one atomic, durable commit.

    Returns:
        The IDs of ``values``, in order.
    """
    with Batch(opts=opts) as b:
        ids = [b.write(v) for v in values]
        for existing, new in links:
            b.link(existing, new)
    return ids


def read(id_or_path: Any, *, opts: Mapping[str, Any]) -> Any:
    """The value at an ID or path (links followed), or ``NOT_FOUND``.

    A path that runs past a stored message continues inside it:
    ``read("computed/PID/slot/3/balances/ADDR")`` reads the slot-3 state and returns its
    ``balances/ADDR``.

    Raises:
        InvalidPath: a malformed path.
        StoreError: no store, a store failure, or corrupt data (naming the path).
    """
    stores = _stores(opts)
    segs = _physical(id_or_path)
    found = _read_raw(stores, segs)
    if found is None:
        for store in stores:  # a write queued without waiting may hold it
            store.flush()
        found = _read_raw(stores, segs)
    if found is not None:
        return _decode(found[0], found[1], segs)
    logical = tuple(_core.impl.parts(id_or_path))
    for k in range(len(logical) - 1, 0, -1):
        prefix = _physical(logical[:k])
        found = _read_raw(stores, prefix)
        if found is None:
            continue
        value = _decode(found[0], found[1], prefix)
        if not isinstance(value, Mapping):
            return NOT_FOUND
        return _get_path(value, logical[k:])
    return NOT_FOUND


def _get_path(value: Mapping[str, Any], rest: Sequence[str]) -> Any:
    get_path = getattr(value, "get_path", None)
    if get_path is not None:
        return get_path(builtins.list(rest), NOT_FOUND)
    current: Any = value
    for key in rest:
        if not isinstance(current, Mapping) or key not in current:
            return NOT_FOUND
        current = current[key]
    return current


def write_result(hashpath: Any, value: Any, *, opts: Mapping[str, Any]) -> str:
    """Store a resolution result: ``value`` under its ID, linked from ``hashpath``.

    By default the write is not waited for (``opts["async_cache"]``, default True: a
    result cache need not cost an fsync per resolution; it is committed within
    milliseconds, and :func:`read`, ``store.flush()`` and ``store.close()`` wait for it).
    ``async_cache=False`` makes it durable on return.

    Returns:
        The value's ID.
    """
    with Batch(opts=opts, wait=not opts.get("async_cache", True)) as b:
        vid = b.write_result(hashpath, value)
    return vid


def read_result(hashpath: Any, *, opts: Mapping[str, Any]) -> Any:
    """The result stored for ``hashpath``, or ``NOT_FOUND`` (no look inside messages)."""
    stores = _stores(opts)
    segs = _physical(hashpath)
    found = _read_raw(stores, segs)
    if found is None:
        return NOT_FOUND
    return _decode(found[0], found[1], segs)


def link(existing: Any, new: Any, *, opts: Mapping[str, Any]) -> None:
    """Make ``new`` a link to ``existing`` (an ID or a path; target first); durable on return."""
    with Batch(opts=opts) as b:
        b.link(existing, new)


def list(path: Any, *, opts: Mapping[str, Any]) -> builtins.list[str]:
    """The sorted child names of the group at ``path`` (links followed; [] if none)."""
    names: set[str] = set()
    segs = _physical(path)
    for store in _stores(opts):
        names.update(store.list(segs))
    return sorted(names)


class Batch:
    """Writes and links collected and committed together: one atomic, durable commit.

    >>> with batch(opts=opts) as b:                       # doctest: +SKIP
    ...     aid = b.write(assignment)
    ...     b.link(aid, f"assignments/{pid}/{slot}")

    The commit happens when the ``with`` block ends without an exception (or on
    :meth:`commit`); IDs are known as soon as ``write`` returns.
    """

    def __init__(self, *, opts: Mapping[str, Any], wait: bool = True) -> None:
        self._store = _stores(opts)[0]
        self._wait = wait
        self._ops: builtins.list[Op] = []
        self._pending: dict[str, bytes] = {}

    def write(self, value: Any) -> str:
        """Queue ``value`` under its ID; returns the ID."""
        vid, _ = self._prepared(value)
        return vid

    def _prepared(self, value: Any) -> tuple[str, bytes | None]:
        vid, blob = _prepare(value, self._store)
        if blob is not None and self._pending.get(vid) != blob:
            self._pending[vid] = blob
            self._ops.append(Write((DATA, vid), blob))
        return vid, blob

    def write_result(self, hashpath: Any, value: Any) -> str:
        """Queue ``value`` and a link from ``hashpath`` to it; returns the value's ID."""
        vid, _ = self._prepared(value)
        target = _target(hashpath)
        if target != (DATA, vid):
            self._ops.append(Link((DATA, vid), target))
        return vid

    def link(self, existing: Any, new: Any) -> None:
        """Queue a link: ``new`` will stand for ``existing`` (an ID or a path)."""
        self._ops.append(Link(_physical(existing), _target(new)))

    def commit(self) -> None:
        """Commit everything queued so far (one atomic, durable commit)."""
        ops, self._ops, self._pending = self._ops, [], {}
        if ops:
            self._store.commit(ops, wait=self._wait)

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()


def batch(*, opts: Mapping[str, Any]) -> Batch:
    """A :class:`Batch` on ``opts["store"]`` (commits when its ``with`` block ends)."""
    return Batch(opts=opts)
