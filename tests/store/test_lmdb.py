"""LMDBStore specifics: group commit, map growth, a full map, damaged files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import lmdb
import pytest
from hbeam.errors import StoreError
from hbeam.store import LMDBStore, Write


def test_group_commit_64_threads(tmp_path: Path) -> None:
    threads, per_thread = 64, 50
    store = LMDBStore(tmp_path / "db")
    start = store._live().env.info()["last_txnid"]
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                if i % 10 == 9:  # some callers commit several writes at once
                    store.write_many({f"w/{t}/{i}": f"{t}:{i}".encode(), f"x/{t}/{i}": b"x"})
                else:
                    store.write(f"w/{t}/{i}", f"{t}:{i}".encode())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    commits = store._live().env.info()["last_txnid"] - start
    assert 0 < commits <= threads * per_thread
    store.close()
    with LMDBStore(tmp_path / "db") as again:
        assert len(again.list("w")) == threads
        for t in range(threads):
            assert len(again.list(f"w/{t}")) == per_thread
            for i in range(per_thread):
                assert again.read(f"w/{t}/{i}") == f"{t}:{i}".encode()
            assert len(again.list(f"x/{t}")) == per_thread // 10


def test_group_commit_isolates_a_bad_request(tmp_path: Path) -> None:
    """A request that breaks a rule fails alone; the others in the same commit succeed."""
    with LMDBStore(tmp_path / "db") as store:
        store.write("v", b"value")
        barrier = threading.Barrier(16)
        results: dict[int, BaseException | None] = {}

        def work(t: int) -> None:
            barrier.wait()
            try:
                store.write("v/under" if t == 0 else f"ok/{t}", b"x")
                results[t] = None
            except StoreError as exc:
                results[t] = exc

        workers = [threading.Thread(target=work, args=(t,)) for t in range(16)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert isinstance(results[0], StoreError)
        assert "is a value" in str(results[0])
        assert all(results[t] is None for t in range(1, 16))
        assert len(store.list("ok")) == 15


def test_map_grows_while_readers_read(tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "db", map_size=128 << 10, max_map_size=64 << 20)
    store.write("first", b"1")
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                assert store.read("first") == b"1"
                store.list("big")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for r in readers:
        r.start()
    blob = os.urandom(64 << 10)
    try:
        for i in range(64):  # 4 MiB through a 128 KiB map
            store.write(f"big/{i}", blob)
    finally:
        stop.set()
        for r in readers:
            r.join()
    assert not errors
    assert store.stats()["map_size"] > 128 << 10
    store.close()
    with LMDBStore(tmp_path / "db") as again:
        assert len(again.list("big")) == 64
        assert again.read("big/63") == blob


def test_full_map_fails_the_write_and_keeps_acknowledged_data(tmp_path: Path) -> None:
    limit = 256 << 10
    acked: dict[str, bytes] = {}
    with LMDBStore(tmp_path / "db", map_size=limit, max_map_size=limit) as store:
        with pytest.raises(StoreError, match="full") as info:
            for i in range(1000):
                value = os.urandom(8 << 10)
                store.write(f"k/{i}", value)
                acked[f"k/{i}"] = value
        assert "data.mdb" in str(info.value)
        assert isinstance(info.value.__cause__, lmdb.MapFullError)
        failed = f"k/{len(acked)}"
        assert store.read(failed) is None
        assert 10 < len(acked) < 1000
        for key, value in acked.items():
            assert store.read(key) == value
    with LMDBStore(tmp_path / "db", map_size=limit, max_map_size=limit * 4) as again:
        for key, value in acked.items():
            assert again.read(key) == value
        assert again.read(failed) is None
        again.write(failed, b"fits now")  # a larger maximum lets it grow
        assert again.read(failed) == b"fits now"


def _filled(tmp_path: Path) -> Path:
    directory = tmp_path / "db"
    with LMDBStore(directory) as store:
        store.write_many({f"key/{i:05d}": os.urandom(200) for i in range(3000)})
    return directory


def test_damaged_header_is_named_at_open(tmp_path: Path) -> None:
    directory = _filled(tmp_path)
    with open(directory / "data.mdb", "r+b") as fh:
        fh.write(b"\x5a" * 8192)
    with pytest.raises(StoreError, match=r"data\.mdb") as info:
        LMDBStore(directory)
    assert "not an LMDB file" in str(info.value) or "corrupt" in str(info.value)


def test_truncated_file_is_named_at_open(tmp_path: Path) -> None:
    directory = _filled(tmp_path)
    size = os.path.getsize(directory / "data.mdb")
    os.truncate(directory / "data.mdb", size // 2)
    with pytest.raises(StoreError, match=r"data\.mdb.* truncated"):
        LMDBStore(directory)


@pytest.mark.parametrize("damage", ["emptied", "deleted"])
def test_lost_data_file_is_not_a_fresh_store(tmp_path: Path, damage: str) -> None:
    directory = _filled(tmp_path)
    if damage == "emptied":
        os.truncate(directory / "data.mdb", 0)
    else:
        os.unlink(directory / "data.mdb")
    with pytest.raises(StoreError, match=r"data\.mdb.*(empty|missing)"):
        LMDBStore(directory)


def test_verify_finds_damaged_pages(tmp_path: Path) -> None:
    directory = _filled(tmp_path)
    with open(directory / "data.mdb", "r+b") as fh:
        fh.seek(4096 * 5)
        fh.write(b"\0" * 4096 * 20)
    with pytest.raises(StoreError, match=r"data\.mdb.* corrupt"):
        LMDBStore(directory, verify=True)


def test_verify_passes_a_sound_file(tmp_path: Path) -> None:
    directory = _filled(tmp_path)
    with LMDBStore(directory, verify=True) as store:
        assert len(store.list("key")) == 3000


def test_corrupt_entry_is_a_store_error(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    LMDBStore(directory).close()
    env = lmdb.open(str(directory))
    with env.begin(write=True) as txn:
        txn.put(b"bad", b"?not a kind byte")
        txn.put(b"badlink", b"l\xff\xfe not utf-8")
    env.close()
    with LMDBStore(directory) as store:
        with pytest.raises(StoreError, match=r"corrupt entry 'bad'"):
            store.read("bad")
        with pytest.raises(StoreError, match=r"corrupt link 'badlink'"):
            store.read("badlink/x")


def test_one_environment_per_directory(tmp_path: Path) -> None:
    a = LMDBStore(tmp_path / "db")
    b = LMDBStore(str(tmp_path / "db"))
    assert a._live() is b._live()
    a.write("k", b"v")
    assert b.read("k") == b"v"
    a.close()
    assert b.read("k") == b"v"  # still open through b
    with pytest.raises(StoreError, match="closed"):
        a.read("k")
    with pytest.raises(StoreError, match="durable"):
        LMDBStore(tmp_path / "db", durable=False)
    b.close()
    with LMDBStore(tmp_path / "db", durable=False) as c:
        assert c.read("k") == b"v"
        c.commit([Write("nd", b"not synced yet")])
        c.sync()
    with LMDBStore(tmp_path / "db") as d:
        assert d.read("nd") == b"not synced yet"


def test_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(StoreError, match="file"):
        LMDBStore(tmp_path / "file")
