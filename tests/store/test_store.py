"""The store interface, on every backend (LMDB, FS, memory): values, groups, links, paths."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hbeam.errors import InvalidPath, StoreError
from hbeam.store import (
    MAX_LINK_HOPS,
    FSStore,
    Group,
    Link,
    LMDBStore,
    MemoryStore,
    Store,
    Write,
)
from hbeam.store import (
    open as open_store,
)


def test_write_read_roundtrip(store: Store, reopen: Callable[[Store], Store]) -> None:
    store.write("a", b"1")
    store.write("b/c/d", b"\x00\xff binary")
    store.write(["e", "f"], b"")
    store.write("a", b"2")  # replace
    assert store.read("a") == b"2"
    assert store.read("b/c/d") == b"\x00\xff binary"
    assert store.read(["b", "c", "d"]) == b"\x00\xff binary"
    assert store.read("e/f") == b""
    assert store.read("missing") is None
    assert store.read("b/c") is None  # a group has no bytes
    store = reopen(store)
    assert store.read("a") == b"2"
    assert store.read("b/c/d") == b"\x00\xff binary"
    assert store.read("e/f") == b""


def test_type_and_list(store: Store) -> None:
    store.write("g/x", b"1")
    store.write("g/a/deep", b"2")
    store.write("g/b", b"3")
    store.write("top", b"4")
    assert store.type("g") == "composite"
    assert store.type("g/a") == "composite"  # made implicitly by the write below it
    assert store.type("g/x") == "simple"
    assert store.type("nothing") is None
    assert store.type("g/x/below") is None
    assert store.list("g") == ["a", "b", "x"]
    assert store.list("") == ["g", "top"]
    assert store.list("nothing") == []
    assert store.list("top") == []
    assert store.type("") == "composite"


def test_list_does_not_confuse_siblings_with_prefixes(store: Store) -> None:
    for key in ["p/a/c", "p/a/e/d", "p/a-b", "p/a.x", "p/a0", "p/ab", "p/a/e/f", "pq/z"]:
        store.write(key, b"v")
    assert store.list("p") == ["a", "a-b", "a.x", "a0", "ab"]
    assert store.list("p/a") == ["c", "e"]
    assert store.list("") == ["p", "pq"]


def test_make_group(store: Store) -> None:
    store.make_group("empty")
    assert store.type("empty") == "composite"
    assert store.list("empty") == []
    assert "empty" in store.list("")
    store.make_group("empty")  # already a group: nothing happens
    store.write("empty/x", b"1")
    store.make_group("empty")
    assert store.list("empty") == ["x"]
    store.make_group("nested/group/here")
    assert store.list("nested/group") == ["here"]
    store.write("val", b"v")
    with pytest.raises(StoreError, match="val"):
        store.make_group("val")
    assert store.read("val") == b"v"


def test_links(store: Store, reopen: Callable[[Store], Store]) -> None:
    store.write("data/x", b"payload")
    store.make_link("data/x", "alias")  # target first, as HyperBEAM
    store.make_link("alias", "alias2")  # a chain
    assert store.read("alias") == b"payload"
    assert store.read("alias2") == b"payload"
    assert store.type("alias2") == "simple"
    assert store.resolve("alias2") == "data/x"
    # a link in the middle of a path
    store.make_link("data", "d")
    assert store.read("d/x") == b"payload"
    assert store.list("d") == ["x"]
    assert store.type("d") == "composite"
    assert store.resolve("d/x") == "data/x"
    # writing below a link lands at the target
    store.write("d/y", b"via link")
    assert store.read("data/y") == b"via link"
    assert store.list("data") == ["x", "y"]
    # a link to something that does not exist yet
    store.make_link("later/value", "dangling")
    assert store.read("dangling") is None
    assert store.type("dangling") is None
    store.write("later/value", b"now")
    assert store.read("dangling") == b"now"
    store = reopen(store)
    assert store.read("alias2") == b"payload"
    assert store.read("d/y") == b"via link"
    assert store.read("dangling") == b"now"


def test_make_link_creates_parent_groups(store: Store) -> None:
    store.write("v", b"1")
    store.make_link("v", "computed/pid/slot/7")
    assert store.list("computed/pid/slot") == ["7"]
    assert store.read("computed/pid/slot/7") == b"1"


def test_replace_rules(store: Store) -> None:
    store.write("v", b"1")
    store.write("w", b"2")
    store.make_link("v", "l")
    store.write("l", b"replaced")  # a value replaces a link
    assert store.read("l") == b"replaced"
    assert store.read("v") == b"1"
    store.make_link("w", "l")  # a link replaces a value
    assert store.read("l") == b"2"
    store.write("grp/child", b"c")
    with pytest.raises(StoreError, match="group"):
        store.write("grp", b"x")
    with pytest.raises(StoreError, match="group"):
        store.make_link("v", "grp")
    with pytest.raises(StoreError, match="is a value"):
        store.write("v/below", b"x")
    with pytest.raises(StoreError, match="is a value"):
        store.make_link("w", "v/below")
    assert store.list("grp") == ["child"]
    assert store.read("v") == b"1"


def test_link_loop_is_an_error(store: Store) -> None:
    store.make_link("loop-b", "loop-a")
    store.make_link("loop-a", "loop-b")
    store.make_link("self", "self")
    for path in ("loop-a", "self", "loop-a/x"):
        with pytest.raises(StoreError, match="link loop"):
            store.read(path)
    with pytest.raises(StoreError, match="link loop"):
        store.write("loop-a/x", b"1")
    # a long but finite chain is fine
    store.commit(
        [Write("chain/0", b"end")] + [Link(f"chain/{i - 1}", f"chain/{i}") for i in range(1, 50)]
    )
    assert store.read("chain/49") == b"end"
    assert MAX_LINK_HOPS == 1000


@pytest.mark.parametrize(
    "path",
    ["", "a//b", "/a", "a/", "//", ["a", ""], ["a/b"], [1], 5, None, "bad\udc80text", "x" * 70000],
)
def test_invalid_paths(store: Store, path: object) -> None:
    with pytest.raises(InvalidPath):
        store.write(path, b"x")  # type: ignore[arg-type]
    with pytest.raises(InvalidPath):
        store.read(path)  # type: ignore[arg-type]
    if path != "":
        with pytest.raises(InvalidPath):
            store.make_link(path, "ok")  # type: ignore[arg-type]
        with pytest.raises(InvalidPath):
            store.list(path)  # type: ignore[arg-type]
    assert store.list("") == []


def test_data_must_be_bytes(store: Store) -> None:
    with pytest.raises(StoreError, match="bytes"):
        store.write("a", "text")  # type: ignore[arg-type]
    store.write("b", bytearray(b"ok"))
    assert store.read("b") == b"ok"


ODD_KEYS = [
    "..",
    ".",
    "...",
    ".hidden",
    "%2F",
    "%",
    "~tilde",
    "sp ace",
    "back\\slash",
    "nul\x00byte",
    "é日本",
    "CASE",
    "case",
    "x" * 300,  # longer than a file name may be
    "ü" * 200,
]


def test_odd_keys_are_ordinary(store: Store, reopen: Callable[[Store], Store]) -> None:
    for i, key in enumerate(ODD_KEYS):
        store.write(["odd", key], str(i).encode())
        store.write(["odd-dirs", key, "inner"], str(i).encode())
    store.make_link(["odd", ".."], ["odd-link", "..."])
    store = reopen(store)
    for i, key in enumerate(ODD_KEYS):
        assert store.read(["odd", key]) == str(i).encode()
        assert store.read(["odd-dirs", key, "inner"]) == str(i).encode()
        assert store.list(["odd-dirs", key]) == ["inner"]
    assert store.list("odd") == sorted(ODD_KEYS)
    assert store.list("odd-dirs") == sorted(ODD_KEYS)
    assert store.read(["odd-link", "..."]) == b"0"


def test_long_paths(store: Store, reopen: Callable[[Store], Store]) -> None:
    # far past LMDB's 511-byte keys, with shared long prefixes
    base = ["long", "p" * 400]
    for i in range(5):
        store.write([*base, f"child-{i}", "q" * 300], str(i).encode())
    store.write([*base, "short"], b"s")
    store.make_link([*base, "short"], ["long", "l" * 600])
    store = reopen(store)
    assert store.list(base) == ["child-0", "child-1", "child-2", "child-3", "child-4", "short"]
    assert store.list([*base, "child-3"]) == ["q" * 300]
    assert store.read([*base, "child-3", "q" * 300]) == b"3"
    assert store.type([*base, "child-3"]) == "composite"
    assert store.read(["long", "l" * 600]) == b"s"
    assert store.list("long") == sorted(["p" * 400, "l" * 600])


def test_paths_stay_inside_an_fs_store(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    with FSStore(root) as store:
        store.write(["..", "outside", "escaped"], b"no")
        store.write(["..", "..", "etc", "passwd"], b"no")
        store.write([".", "x"], b"dot")
        store.make_link("../outside", ["..", "lnk"])
        assert store.read(["..", "outside", "escaped"]) == b"no"
        assert store.read([".", "x"]) == b"dot"
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside", "root"]
    for path in root.rglob("*"):
        assert path.resolve(strict=False).is_relative_to(root.resolve())
        name = path.name
        assert name not in (".", "..")
    # links are symlinks the OS cannot follow anywhere
    links = [p for p in root.rglob("*") if p.is_symlink()]
    assert links
    for link in links:
        assert os.readlink(link).startswith("hbeam:")
        assert not link.exists()  # points at nothing real


def test_fs_refuses_foreign_symlinks(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"top secret")
    with FSStore(tmp_path / "root") as store:
        os.symlink(secret, tmp_path / "root" / "evil")
        with pytest.raises(StoreError, match="symlink hbeam did not make"):
            store.read("evil")


def test_commit_is_atomic(store: Store, reopen: Callable[[Store], Store]) -> None:
    store.write("occupied/child", b"c")
    with pytest.raises(StoreError, match="group"):
        store.commit([Write("n/1", b"1"), Link("n/1", "n/2"), Write("occupied", b"x")])
    assert store.read("n/1") is None
    assert store.type("n") is None
    store.commit([Write("n/1", b"1"), Link("n/1", "n/2"), Group("n/g"), Write("n/g/z", b"z")])
    store.write_many({"m/a": b"A", "m/b": b"B"})
    store.write_many([("m/c", b"C"), Link("m/a", "m/d")])
    store = reopen(store)
    assert store.read("n/2") == b"1"
    assert store.list("n") == ["1", "2", "g"]
    assert store.list("m") == ["a", "b", "c", "d"]
    assert store.read("m/d") == b"A"
    # ops inside one commit see each other
    store.commit([Group("q"), Link("q", "qq"), Write("qq/inner", b"i")])
    assert store.read("q/inner") == b"i"


def test_commit_rejects_bad_ops_before_writing(store: Store) -> None:
    with pytest.raises(InvalidPath):
        store.commit([Write("fine", b"1"), Write("bad//path", b"2")])
    with pytest.raises(StoreError, match="unknown store operation"):
        store.commit([Write("fine", b"1"), ("write", "x", b"y")])  # type: ignore[list-item]
    assert store.read("fine") is None


def test_deferred_commit_and_flush(store: Store, reopen: Callable[[Store], Store]) -> None:
    for i in range(20):
        store.commit([Write(f"cache/{i}", str(i).encode())], wait=False)
    store.flush()
    assert store.list("cache") == sorted(str(i) for i in range(20))
    store.commit([Write("cache/last", b"L")], wait=False)
    store = reopen(store)  # close commits what is still queued
    assert store.read("cache/last") == b"L"


def test_concurrent_writers_and_readers(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(10):
                store.write(f"t{t}/{i}", f"{t}-{i}".encode())
                assert store.read(f"t{t}/{i}") == f"{t}-{i}".encode()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(store.list("")) == 8
    assert all(len(store.list(f"t{t}")) == 10 for t in range(8))


def test_closed_store_refuses(make_store: Callable[..., Store]) -> None:
    with make_store() as store:
        store.write("a", b"1")
    with pytest.raises(StoreError, match="closed"):
        store.read("a")
    with pytest.raises(StoreError, match="closed"):
        store.write("a", b"2")
    store.close()  # idempotent


def test_open_specs(tmp_path: Path) -> None:
    with open_store(f"lmdb:{tmp_path / 'l'}") as s1:
        assert isinstance(s1, LMDBStore)
        s1.write("k", b"v")
    with open_store(str(tmp_path / "l")) as s2:  # a bare directory means LMDB
        assert isinstance(s2, LMDBStore)
        assert s2.read("k") == b"v"
    with open_store(tmp_path / "l2") as s3:
        assert isinstance(s3, LMDBStore)
    with open_store(f"fs:{tmp_path / 'f'}") as s4:
        assert isinstance(s4, FSStore)
    mem = open_store("memory:")
    assert isinstance(mem, MemoryStore)
    assert open_store(mem) is mem
    with pytest.raises(StoreError, match="unknown store spec"):
        open_store("redis:x")
    with pytest.raises(StoreError, match="names no directory"):
        open_store("lmdb:")
    with pytest.raises(StoreError):
        open_store(42)  # type: ignore[arg-type]
