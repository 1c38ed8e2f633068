"""MemoryStore: the store interface over a dict, for tests and throwaway nodes."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from hbeam.store.base import (
    _GROUP_NODE,
    Node,
    Overlay,
    Store,
    View,
    _Planned,
    iter_prefixes,
    plan,
)

__all__ = ["MemoryStore"]

_counter = itertools.count(1)


class _DictView:
    """The node-level view of a MemoryStore (the caller holds the store's lock)."""

    __slots__ = ("_children", "_nodes")

    def __init__(self, nodes: dict[str, Node], children: dict[str, set[str]]) -> None:
        self._nodes = nodes
        self._children = children

    def node(self, key: str) -> Node | None:
        return self._nodes.get(key)

    def has_children(self, key: str) -> bool:
        return bool(self._children.get(key))

    def lookup(self, key: str) -> Node | None:
        found = self._nodes.get(key)
        if found is None and self._children.get(key):
            return _GROUP_NODE
        return found

    def children(self, key: str) -> Iterable[str]:
        return list(self._children.get(key, ()))


class MemoryStore(Store):
    """A store in memory: nothing survives the process; thread-safe.

    ``durable`` is accepted (and ignored) so every backend takes the same options.
    """

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable
        self.where = f"MemoryStore#{next(_counter)}"
        self._nodes: dict[str, Node] = {}
        self._children: dict[str, set[str]] = {}
        self._lock = threading.RLock()
        self._view = _DictView(self._nodes, self._children)

    @contextmanager
    def _reading(self) -> Iterator[View]:
        with self._lock:
            self._check_open()
            yield self._view

    def _submit(self, ops: list[_Planned], wait: bool = True) -> None:
        with self._lock:
            self._check_open()
            overlay = Overlay(self._view)
            plan(overlay, ops, self.where)
            children = self._children
            for key, node in overlay.puts.items():
                self._nodes[key] = node
                head, _, name = key.rpartition("/")
                known = children.get(head)
                if known is not None:  # its parent is listed, and so are the parent's
                    known.add(name)
                    continue
                parent = ""
                for prefix in (*iter_prefixes(key), key):
                    children.setdefault(parent, set()).add(prefix.rsplit("/", 1)[-1])
                    parent = prefix

    def close(self) -> None:
        """Drop the contents; later calls raise StoreError."""
        with self._lock:
            self._closed = True
            self._nodes.clear()
            self._children.clear()
