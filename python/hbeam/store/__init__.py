"""Stores: a durable tree of values, groups and links — LMDB (default), filesystem, memory.

>>> store = open("memory:")
>>> store.write("a/b", b"x"); store.make_link("a/b", "c"); store.read("c")
b'x'

``open(spec)`` takes ``"lmdb:DIR"``, ``"fs:DIR"``, ``"memory:"``, a bare directory (LMDB),
or a :class:`Store` (returned as is).  See :mod:`hbeam.store.base` for the interface and
its durability contract.
"""

from __future__ import annotations

import os
from typing import Any

from hbeam.errors import StoreError
from hbeam.store.base import (
    MAX_LINK_HOPS,
    Group,
    Link,
    Op,
    Store,
    Write,
)
from hbeam.store.fs import FSStore
from hbeam.store.lmdb import LMDBStore
from hbeam.store.memory import MemoryStore

__all__ = [
    "MAX_LINK_HOPS",
    "FSStore",
    "Group",
    "LMDBStore",
    "Link",
    "MemoryStore",
    "Op",
    "Store",
    "Write",
    "open",
]


def open(spec: str | os.PathLike[str] | Store, **options: Any) -> Store:
    """The store a spec names: ``"lmdb:DIR"``, ``"fs:DIR"``, ``"memory:"`` or a Store.

    A bare path (no known scheme) means LMDB.  ``options`` go to the backend's
    constructor (e.g. ``durable=False``, ``max_map_size=...``).

    Raises:
        StoreError: an unknown scheme, a missing directory name, or the backend could not
            open the store.
    """
    if isinstance(spec, Store):
        return spec
    if isinstance(spec, os.PathLike):
        return LMDBStore(spec, **options)
    if not isinstance(spec, str):
        raise StoreError(f"a store spec is a str, a path or a Store, not {type(spec).__name__}")
    scheme, sep, rest = spec.partition(":")
    if not sep or len(scheme) < 2:  # "C:\\x" style paths and bare paths are LMDB dirs
        return LMDBStore(spec, **options)
    if scheme == "memory":
        if rest:
            raise StoreError(f"store spec {spec!r}: 'memory:' takes no directory")
        return MemoryStore(**options)
    if scheme not in ("lmdb", "fs"):
        raise StoreError(f"unknown store spec {spec!r}: expected lmdb:DIR, fs:DIR or memory:")
    if not rest:
        raise StoreError(f"store spec {spec!r} names no directory")
    return LMDBStore(rest, **options) if scheme == "lmdb" else FSStore(rest, **options)
