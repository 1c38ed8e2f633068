"""ResultCache (contract "ResultCache"): a bounded, thread-safe LRU with hit/miss counters."""

from __future__ import annotations

import threading
from types import ModuleType

import pytest


def test_get_put_and_counters(backend: ModuleType) -> None:
    cache = backend.ResultCache(4)
    assert cache.capacity == 4
    assert len(cache) == 0
    assert cache.get("a") is None
    assert cache.get("a", "dflt") == "dflt"
    assert (cache.hits, cache.misses) == (0, 2)
    value = {"any": ["object"]}
    cache.put("a", value)
    assert cache.get("a") is value  # the object itself, not a copy
    assert (cache.hits, cache.misses) == (1, 2)
    assert "a" in cache and "b" not in cache
    assert (cache.hits, cache.misses) == (1, 2)  # `in` does not count
    cache.put("a", 2)
    assert cache.get("a") == 2
    assert len(cache) == 1
    cache.put("n", None)
    assert cache.get("n", "dflt") is None  # a cached None is a hit
    assert cache.hits == 3


def test_lru_eviction(backend: ModuleType) -> None:
    cache = backend.ResultCache(3)
    for key in "abc":
        cache.put(key, key.upper())
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("d", "D")  # evicts b, the least recently used
    assert "b" not in cache
    assert all(k in cache for k in "acd")
    assert "c" in cache  # `in` does not refresh recency
    cache.put("e", "E")  # evicts c
    assert "c" not in cache
    cache.put("a", "A2")  # put refreshes too
    cache.put("f", "F")  # evicts d
    assert sorted(k for k in "abcdef" if k in cache) == ["a", "e", "f"]
    assert len(cache) == 3


def test_capacity_one_and_default(backend: ModuleType) -> None:
    one = backend.ResultCache(1)
    one.put("a", 1)
    one.put("b", 2)
    assert "a" not in one and one.get("b") == 2
    assert backend.ResultCache().capacity == 65536


def test_clear(backend: ModuleType) -> None:
    cache = backend.ResultCache(10)
    cache.put("a", 1)
    cache.get("a")
    cache.get("z")
    cache.clear()
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (0, 0)
    assert cache.capacity == 10


def test_counters_are_read_only(backend: ModuleType) -> None:
    cache = backend.ResultCache(2)
    for name in ("hits", "misses", "capacity"):
        with pytest.raises(AttributeError):
            setattr(cache, name, 5)


@pytest.mark.parametrize("capacity", [0, -1])
def test_bad_capacity(backend: ModuleType, capacity: int) -> None:
    with pytest.raises(ValueError):
        backend.ResultCache(capacity)


def test_keys_must_be_str(backend: ModuleType) -> None:
    cache = backend.ResultCache(2)
    with pytest.raises(TypeError):
        cache.put(1, "x")
    with pytest.raises(TypeError):
        cache.get(b"a")


def test_thread_safety(backend: ModuleType) -> None:
    cache = backend.ResultCache(100)
    rounds = 2000
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(rounds):
                key = f"k{(i * 7 + t) % 300}"
                cache.put(key, i)
                cache.get(key)
                cache.get(f"missing{t}")
                assert len(cache) <= 100
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(cache) == 100
    assert cache.hits + cache.misses == 4 * rounds * 2
    assert cache.misses >= 4 * rounds  # every "missing" lookup
