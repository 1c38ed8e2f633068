"""hbeam.cache: messages and results in a store, on both core backends and every store."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hbeam import NOT_FOUND, cache
from hbeam.errors import InvalidMessage, InvalidPath, StoreError
from hbeam.store import MemoryStore, Store

MSG = {
    "name": "token",
    "count": 3,
    "ratio": 0.5,
    "flag": True,
    "none": None,
    "blob": b"\x00\x01",
    "text": "\x00\x01",
    "list": [1, "two", [3.0, False], {"k": b"v"}],
    "nested": {"deep": {"er": {"est": "x"}}},
    "priv": {"secret": 1},
}


def test_write_read_message(
    backend: ModuleType, store: Store, reopen: Callable[[Store], Store]
) -> None:
    opts: dict[str, Any] = {"store": store}
    ident = cache.write(MSG, opts=opts)
    assert ident == backend.id(MSG)
    got = cache.read(ident, opts=opts)
    assert got == MSG  # typed equality on the public content
    assert "priv" not in got  # private keys never reach the store
    assert isinstance(got["blob"], bytes) and isinstance(got["text"], str)
    assert got["list"] == [1, "two", [3.0, False], {"k": b"v"}]
    opts = {"store": reopen(store)}
    assert cache.read(ident, opts=opts) == MSG
    assert cache.read(f"data/{ident}", opts=opts) == MSG


def test_data_is_content_addressed(backend: ModuleType, store: Store) -> None:
    opts = {"store": store}
    ident = cache.write(b"-- lua module", opts=opts)
    assert ident == backend.id(b"-- lua module")
    assert cache.read(ident, opts=opts) == b"-- lua module"
    text = cache.write("print('hi')", opts=opts)
    assert text == backend.id("print('hi')")
    assert cache.read(text, opts=opts) == "print('hi')"
    assert cache.write(42, opts=opts) == backend.id(42)
    assert cache.read(backend.id(42), opts=opts) == 42


def test_missing_is_not_found(backend: ModuleType, store: Store) -> None:
    opts = {"store": store}
    assert cache.read("A" * 43, opts=opts) is NOT_FOUND
    assert cache.read("no/such/path", opts=opts) is NOT_FOUND
    assert cache.read_result("B" * 43 + "/key", opts=opts) is NOT_FOUND


def test_results_by_hashpath(
    backend: ModuleType, store: Store, reopen: Callable[[Store], Store]
) -> None:
    base = backend.Message({"a": 1})
    hp = backend.hashpath(base, "a")
    assert cache.write_result(hp, 1, opts={"store": store, "async_cache": False}) == backend.id(1)
    assert cache.read_result(hp, opts={"store": store}) == 1
    # the default does not wait for the fsync; flush() (or read/close) does
    state = {"balances": {"alice": "10"}}
    hp2 = backend.hashpath(base, {"path": "compute", "slot": 2})
    ident = cache.write_result(hp2, state, opts={"store": store})
    store.flush()
    assert cache.read_result(hp2, opts={"store": store}) == state
    assert cache.read(hp2, opts={"store": store}) == state
    assert cache.read(ident, opts={"store": store}) == state
    # a result whose hash path is its own ID needs no link
    assert cache.write_result(backend.id(state), state, opts={"store": store}) == ident
    store = reopen(store)
    assert cache.read_result(hp, opts={"store": store}) == 1
    assert cache.read_result(hp2, opts={"store": store}) == state


def test_links_and_reading_into_messages(backend: ModuleType, store: Store) -> None:
    opts = {"store": store}
    states = [{"slot": n, "balances": {"alice": str(100 - n)}} for n in range(3)]
    ids = cache.write_many(states, links=[], opts=opts)
    for n, ident in enumerate(ids):
        cache.link(ident, f"computed/PID/slot/{n}", opts=opts)
    assert cache.list("computed/PID/slot", opts=opts) == ["0", "1", "2"]
    assert cache.read("computed/PID/slot/2", opts=opts) == states[2]
    # a path that runs past a stored message continues inside it
    assert cache.read("computed/PID/slot/1/balances/alice", opts=opts) == "99"
    assert cache.read(f"{ids[0]}/balances", opts=opts) == {"alice": "100"}
    assert cache.read("computed/PID/slot/1/balances/bob", opts=opts) is NOT_FOUND
    assert cache.read("computed/PID/slot/1/slot/deeper", opts=opts) is NOT_FOUND
    cache.link("computed/PID/slot/2", "computed/PID/latest", opts=opts)
    assert cache.read("computed/PID/latest", opts=opts) == states[2]


def test_write_many_and_batch_are_one_commit(backend: ModuleType, store: Store) -> None:
    opts = {"store": store}
    a, b = {"n": 1}, {"n": 2}
    ids = cache.write_many([a, b], links=[(backend.id(a), "assignments/P/0")], opts=opts)
    assert ids == [backend.id(a), backend.id(b)]
    assert cache.read("assignments/P/0", opts=opts) == a
    with cache.batch(opts=opts) as bt:
        aid = bt.write({"slot": 1})
        bt.link(aid, "assignments/P/1")
        assert cache.read("assignments/P/1", opts=opts) is NOT_FOUND  # not yet committed
    assert cache.read("assignments/P/1", opts=opts) == {"slot": 1}
    with pytest.raises(RuntimeError), cache.batch(opts=opts) as bt:
        bt.link(bt.write({"slot": 2}), "assignments/P/2")
        raise RuntimeError("abandon the batch")
    assert cache.list("assignments/P", opts=opts) == ["0", "1"]
    # a batch that breaks a store rule writes nothing
    store.write("assignments/P/blocker/x", b"")
    with pytest.raises(StoreError, match="group"):
        cache.write_many(
            [{"slot": 3}], links=[(backend.id({"slot": 3}), "assignments/P/blocker")], opts=opts
        )
    assert cache.read(backend.id({"slot": 3}), opts=opts) is NOT_FOUND


def test_corrupt_value_names_the_path(backend: ModuleType, store: Store) -> None:
    opts = {"store": store}
    ident = cache.write({"a": 1}, opts=opts)
    store.write(["data", ident], b"m\x00\x00\x00\x05garbage")
    with pytest.raises(StoreError, match=f"corrupt value at 'data/{ident}'") as info:
        cache.read(ident, opts=opts)
    assert isinstance(info.value.__cause__, InvalidMessage)
    cache.link(ident, "some/link", opts=opts)
    with pytest.raises(StoreError, match="corrupt value"):
        cache.read_result("some/link", opts=opts)


def test_bad_opts_and_paths(backend: ModuleType) -> None:
    with pytest.raises(StoreError, match="needs a store"):
        cache.read("x", opts={})
    with pytest.raises(StoreError, match="must be a Store"):
        cache.write({"a": 1}, opts={"store": "lmdb:/tmp/x"})
    opts = {"store": MemoryStore()}
    with pytest.raises(InvalidPath):
        cache.read("", opts=opts)
    with pytest.raises(InvalidPath, match="reserved"):
        cache.link("A" * 43, "data", opts=opts)
    with pytest.raises(InvalidMessage):
        cache.write({"a": {1, 2}}, opts=opts)


def test_signed_and_unsigned_forms_share_an_id(backend: ModuleType, store: Store) -> None:
    opts = {"store": store}
    unsigned = {"data": "hello"}
    signed = {"data": "hello", "commitments": {"c1": {"signature": "s1"}}}
    ident = cache.write(signed, opts=opts)
    assert cache.write(unsigned, opts=opts) == ident  # does not drop the commitments
    assert cache.read(ident, opts=opts)["commitments"] == {"c1": {"signature": "s1"}}
    other = {"data": "hello", "commitments": {"c2": {"signature": "s2"}}}
    cache.write(other, opts=opts)  # commitments accumulate
    assert set(cache.read(ident, opts=opts)["commitments"]) == {"c1", "c2"}


def test_a_list_of_stores(backend: ModuleType) -> None:
    first, second = MemoryStore(), MemoryStore()
    old = cache.write({"old": True}, opts={"store": second})
    opts = {"store": [first, second]}
    new = cache.write({"new": True}, opts=opts)
    assert cache.read(old, opts=opts) == {"old": True}
    assert cache.read(new, opts=opts) == {"new": True}
    assert cache.read(new, opts={"store": second}) is NOT_FOUND  # writes go to the first
