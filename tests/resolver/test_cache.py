"""Result caching: hits, cache-control directives, volatile keys, the store hook (§13)."""

from __future__ import annotations

import types
from collections.abc import Callable
from types import ModuleType
from typing import Any

import hbeam
import pytest
from hbeam import ao
from hbeam.errors import CacheMiss, NotFound

from .conftest import FakeCacheModule

Register = Callable[[str, Any], Any]


class Counting:
    """A device whose keys count their calls."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def _count(self, key: str) -> int:
        self.calls[key] = self.calls.get(key, 0) + 1
        return self.calls[key]

    def work(self, base: Any) -> Any:
        return {"n": self._count("work")}

    def now(self, base: Any) -> Any:
        return {"n": self._count("now"), "data": {"x": 1}}

    def tick(self, base: Any) -> Any:
        return {"n": self._count("tick")}

    def literal(self, base: Any) -> Any:
        return self._count("literal")

    def nostore(self, base: Any) -> Any:
        return {"n": self._count("nostore"), "cache-control": "no-store"}

    info = {"volatile": ["tick"]}


@pytest.fixture
def counting(register: Register) -> Counting:
    dev = Counting()
    register("counting@1.0", dev)
    return dev


BASE = {"device": "counting@1.0", "id-of-test": "cache"}


def test_second_identical_resolution_is_a_hit(backend: ModuleType, counting: Counting) -> None:
    cache = backend.ResultCache()
    first = hbeam.resolve(BASE, "work", opts={"cache": cache})
    second = hbeam.resolve(BASE, "work", opts={"cache": cache})
    assert first == second == {"n": 1}
    assert counting.calls["work"] == 1
    assert (cache.hits, cache.misses) == (1, 1)
    assert hbeam.hashpath(second) in cache
    assert hbeam.resolve(BASE, "literal", opts={"cache": cache}) == 1
    assert hbeam.resolve(BASE, "literal", opts={"cache": cache}) == 1  # literals cached too


def test_default_cache(backend: ModuleType, counting: Counting) -> None:
    cache = ao.default_cache()
    base = {**BASE, "unique": "default-cache-test"}
    hits = cache.hits
    hbeam.resolve(base, "work")
    hbeam.resolve(base, "work")
    assert cache.hits == hits + 1
    assert counting.calls["work"] == 1


def test_direct_reads_and_internal_calls_skip_the_cache(
    backend: ModuleType, counting: Counting
) -> None:
    cache = backend.ResultCache()
    opts = {"cache": cache}
    hbeam.resolve({"a": {"b": 1}}, "a/b", opts=opts)
    hbeam.get("work", BASE, opts=opts)
    hbeam.get("work", BASE, opts=opts)
    hbeam.set(BASE, "x", 1, opts=opts)
    hbeam.remove(BASE, "x", opts=opts)
    hbeam.keys(BASE, opts=opts)
    assert (cache.hits, cache.misses, len(cache)) == (0, 0, 0)
    assert counting.calls["work"] == 2


@pytest.mark.parametrize(
    ("directives", "calls", "stored"),
    [
        (["no-cache"], 2, 1),
        (["no-store"], 2, 0),
        (["no-cache", "no-store"], 2, 0),
        ("no_cache, no_store", 2, 0),
        (["always"], 1, 1),
        (["store", "cache"], 1, 1),
    ],
)
def test_node_directives(
    backend: ModuleType, counting: Counting, directives: Any, calls: int, stored: int
) -> None:
    cache = backend.ResultCache()
    opts = {"cache": cache, "cache_control": directives}
    hbeam.resolve(BASE, "work", opts=opts)
    hbeam.resolve(BASE, "work", opts=opts)
    assert counting.calls["work"] == calls
    assert len(cache) == stored


def test_message_directives(backend: ModuleType, counting: Counting) -> None:
    cache = backend.ResultCache()
    opts = {"cache": cache}
    base = {**BASE, "cache-control": "no-cache"}
    hbeam.resolve(base, "work", opts=opts)
    hbeam.resolve(base, "work", opts=opts)
    assert counting.calls["work"] == 2 and len(cache) == 1
    req = {"path": "work", "cache-control": ["no-store"]}
    hbeam.resolve(BASE, req, opts=opts)
    assert len(cache) == 1
    # the result's own cache-control: no-store
    hbeam.resolve(BASE, "nostore", opts=opts)
    hbeam.resolve(BASE, "nostore", opts=opts)
    assert counting.calls["nostore"] == 2
    # the node has the last word: `always` beats the messages
    opts_always = {"cache": cache, "cache_control": "always"}
    hbeam.resolve(base, "nostore", opts=opts_always)
    hbeam.resolve(base, "nostore", opts=opts_always)
    assert counting.calls["nostore"] == 3


def test_only_if_cached(backend: ModuleType, counting: Counting) -> None:
    cache = backend.ResultCache()
    with pytest.raises(CacheMiss) as info:
        hbeam.resolve(BASE, "work", opts={"cache": cache, "cache_control": "only-if-cached"})
    assert info.value.http_status == 504
    assert "work" not in counting.calls
    with pytest.raises(CacheMiss):
        hbeam.resolve(
            BASE, {"path": "work", "cache-control": "only-if-cached"}, opts={"cache": cache}
        )
    hbeam.resolve(BASE, "work", opts={"cache": cache})
    cached = hbeam.resolve(BASE, "work", opts={"cache": cache, "cache_control": "only-if-cached"})
    assert cached == {"n": 1} and counting.calls["work"] == 1
    # plain reads are served from the message itself
    assert (
        hbeam.resolve({"a": 1}, "a", opts={"cache": cache, "cache_control": "only-if-cached"}) == 1
    )


def test_volatile_keys_are_never_cached(backend: ModuleType, counting: Counting) -> None:
    cache = backend.ResultCache()
    opts = {"cache": cache, "cache_control": "always"}
    assert hbeam.resolve(BASE, "now", opts=opts)["n"] == 1
    assert hbeam.resolve(BASE, "now", opts=opts)["n"] == 2
    assert hbeam.resolve(BASE, "tick", opts=opts)["n"] == 1  # marked volatile by the device
    assert hbeam.resolve(BASE, "tick", opts=opts)["n"] == 2
    assert len(cache) == 0
    with pytest.raises(CacheMiss):
        hbeam.resolve(BASE, "now", opts={"cache": cache, "cache_control": "only-if-cached"})


def test_results_derived_from_volatile_keys_are_not_cached(
    backend: ModuleType, counting: Counting
) -> None:
    cache = backend.ResultCache()
    opts = {"cache": cache}
    state = hbeam.resolve(BASE, "now", opts=opts)
    derived = {**BASE}
    # a derived message keeps the volatile mark, and so does what is resolved from it
    later = hbeam.resolve(state, "data", opts=opts)
    assert later["priv"]["ao-volatile"] is True
    s1 = hbeam.resolve(hbeam.set(state, "device", "counting@1.0"), "work", opts=opts)
    s2 = hbeam.resolve(hbeam.set(state, "device", "counting@1.0"), "work", opts=opts)
    assert (s1["n"], s2["n"]) == (1, 2)
    assert len(cache) == 0
    assert hbeam.resolve(derived, "work", opts=opts)["n"] == 3  # not tainted: cached
    assert hbeam.resolve(derived, "work", opts=opts)["n"] == 3


def test_hashpath_ignore_stores_nothing(backend: ModuleType, counting: Counting) -> None:
    cache = backend.ResultCache()
    opts = {"cache": cache, "hashpath": "ignore"}
    hbeam.resolve(BASE, "work", opts=opts)
    hbeam.resolve(BASE, "work", opts=opts)
    assert counting.calls["work"] == 2 and len(cache) == 0


def test_casts_do_not_share_cache_entries(backend: ModuleType, register: Register) -> None:
    register("da@1.0", types.SimpleNamespace(what=lambda base: "da"))
    register("db@1.0", types.SimpleNamespace(what=lambda base: "db"))
    cache = backend.ResultCache()
    opts = {"cache": cache}
    # a message with a hash path: switching its device alone would not change hashpath(base)
    data = backend.Message({"a": 1, "priv": {"hashpath": "Q" * 43 + "/x"}})
    got_a = hbeam.resolve_many([data, ("as", "da@1.0", {"path": "what"})], opts=opts)
    got_b = hbeam.resolve_many([data, ("as", "db@1.0", {"path": "what"})], opts=opts)
    assert (got_a, got_b) == ("da", "db")
    assert len(cache) == 2


def test_store_hook(backend: ModuleType, counting: Counting, fake_store: FakeCacheModule) -> None:
    stored = {"device": "counting@1.0", "balance": 7}
    ident = fake_store.write(stored, opts={})
    opts = {"store": object(), "cache": backend.ResultCache()}
    assert hbeam.resolve(ident, "balance", opts=opts) == 7
    assert hbeam.resolve_many([ident], opts=opts) == stored
    assert hbeam.resolve(f"/{ident}/balance", opts=opts) == 7
    missing = "A" * 43
    with pytest.raises(NotFound, match="not found in the store"):
        hbeam.resolve(missing, "balance", opts=opts)
    assert hbeam.get("balance", missing, "d", opts=opts) == "d"

    first = hbeam.resolve(ident, "work", opts=opts)
    assert "write_result" in fake_store.log and len(fake_store.results) == 1
    # a fresh in-memory cache: the result comes back from the store, not the device
    again = hbeam.resolve(
        ident, "work", opts={"store": opts["store"], "cache": backend.ResultCache()}
    )
    assert again == first and counting.calls["work"] == 1
    # no store in opts: hbeam.cache is never consulted
    fake_store.log.clear()
    hbeam.resolve({"x": 1}, "keys")
    assert fake_store.log == []
