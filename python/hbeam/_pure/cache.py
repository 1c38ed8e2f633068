"""``ResultCache``: a bounded, thread-safe LRU cache from hash paths to results.

Twin of ``rust/src/cache.rs``.  O(1) per operation (an ``OrderedDict`` under a lock).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["ResultCache"]


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"ResultCache keys must be str, not {type(key).__name__}")
    return key


class ResultCache:
    """A thread-safe LRU map of ``str`` keys to any object, with hit/miss counters.

    ``get`` counts a hit (and refreshes recency) or a miss; ``put`` evicts the least
    recently used entry past ``capacity``; ``key in cache`` neither counts nor refreshes.
    """

    __slots__ = ("_capacity", "_entries", "_hits", "_lock", "_misses")

    def __init__(self, capacity: int = 65536) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = int(capacity)
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value of ``key`` (a hit, now most recent), or ``default`` (a miss)."""
        _check_key(key)
        with self._lock:
            entries = self._entries
            if key in entries:
                entries.move_to_end(key)
                self._hits += 1
                return entries[key]
            self._misses += 1
            return default

    def put(self, key: str, value: Any) -> None:
        """Cache ``value`` under ``key`` as the most recent entry, evicting past capacity."""
        _check_key(key)
        with self._lock:
            entries = self._entries
            entries[key] = value
            entries.move_to_end(key)
            while len(entries) > self._capacity:
                entries.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        _check_key(key)
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Drop every entry and zero the counters."""
        with self._lock:
            self._entries.clear()
            self._hits = 0
            self._misses = 0

    @property
    def hits(self) -> int:
        """How many ``get`` calls found their key."""
        return self._hits

    @property
    def misses(self) -> int:
        """How many ``get`` calls did not."""
        return self._misses

    @property
    def capacity(self) -> int:
        """The most entries kept."""
        return self._capacity

    def __repr__(self) -> str:
        return (
            f"ResultCache(capacity={self._capacity}, len={len(self)}, "
            f"hits={self._hits}, misses={self._misses})"
        )
