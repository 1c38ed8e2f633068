"""Stores: durable writes (LMDB's own synced commits vs hbeam's group commit), reads, cache.

Groups:
* ``store.write durable, 1 writer`` — one write per call: ``lmdb-raw`` is py-lmdb's own
  synced commit (``begin(write=True)`` + put + commit, sync on): the rate the disk allows;
  ``lmdb`` is ``LMDBStore.write``; ``lmdb-nosync`` is ``durable=False``; ``fs``, ``memory``.
* ``store.write durable, 64 writers x 20`` — 1,280 writes per call from 64 threads:
  ``lmdb-raw`` (each thread its own synced transaction; LMDB serialises them) vs ``lmdb``
  (group commit: writers arriving during a commit share the next fsync).
* ``store.read`` — a 100-byte value.
* ``cache.write/read 1,000-key message`` on LMDB, per core backend (native / pure).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import lmdb
import pytest
from hbeam import cache
from hbeam.store import FSStore, LMDBStore, MemoryStore, Store

VALUE = b"v" * 100
THREADS, PER_THREAD = 64, 20


def _open(impl: str, tmp_path: Path) -> Store:
    if impl == "lmdb":
        return LMDBStore(tmp_path / "lmdb")
    if impl == "lmdb-nosync":
        return LMDBStore(tmp_path / "lmdb", durable=False)
    if impl == "fs":
        return FSStore(tmp_path / "fs")
    return MemoryStore()


class _RawLMDB:
    """py-lmdb with no hbeam in between: each write is its own synced transaction."""

    def __init__(self, directory: Path) -> None:
        self.env = lmdb.open(str(directory), map_size=1 << 30, sync=True, metasync=True)

    def write(self, key: str, value: bytes) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(key.encode(), value)

    def close(self) -> None:
        self.env.close()


@pytest.fixture
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    impl: str = request.param
    target: Any = _RawLMDB(tmp_path) if impl == "lmdb-raw" else _open(impl, tmp_path)
    yield impl, target
    target.close()


@pytest.mark.parametrize(
    "writer", ["lmdb-raw", "lmdb", "lmdb-nosync", "fs", "memory"], indirect=True
)
def test_write_one_writer(benchmark: Any, writer: tuple[str, Any]) -> None:
    impl, target = writer
    benchmark.group = "store.write durable, 1 writer"
    benchmark.extra_info["impl"] = impl
    if impl == "lmdb-nosync":
        benchmark.extra_info["note"] = "durable=False: no fsync (survives a process crash only)"
    keys = (f"w/{i}" for i in itertools.count())
    benchmark(lambda: target.write(next(keys), VALUE))


def _many_writers(write: Callable[[str, bytes], None]) -> Callable[[], None]:
    rounds = itertools.count()

    def run() -> None:
        r = next(rounds)

        def work(t: int) -> None:
            for i in range(PER_THREAD):
                write(f"m/{r}/{t}/{i}", VALUE)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    return run


@pytest.mark.parametrize("writer", ["lmdb-raw", "lmdb", "fs", "memory"], indirect=True)
def test_write_64_writers(benchmark: Any, writer: tuple[str, Any]) -> None:
    impl, target = writer
    benchmark.group = f"store.write durable, {THREADS} writers x {PER_THREAD}"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["ops"] = THREADS * PER_THREAD
    if impl == "lmdb-raw":
        benchmark.extra_info["note"] = "one synced LMDB transaction per write (no grouping)"
    benchmark.pedantic(_many_writers(target.write), rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("impl", ["lmdb", "fs", "memory"])
def test_read(benchmark: Any, impl: str, tmp_path: Path) -> None:
    store = _open(impl, tmp_path)
    store.write("group/key", VALUE)
    benchmark.group = "store.read (100-byte value)"
    benchmark.extra_info["impl"] = impl
    result = benchmark(store.read, "group/key")
    benchmark.extra_info["correct"] = result == VALUE
    store.close()


def _big_message(core: ModuleType) -> Any:
    return core.Message(
        {f"key-{i:04d}": {"balance": str(i), "owner": f"addr-{i}"} for i in range(1000)}
    )


def test_cache_write_1000_keys(benchmark: Any, core: ModuleType, tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "lmdb")
    opts = {"store": store}
    benchmark.group = "cache.write 1,000-key message (LMDB, durable)"
    benchmark.extra_info["impl"] = core.__name__.rsplit("_", 1)[-1]
    messages = (_big_message(core).set("n", i) for i in itertools.count())
    benchmark.pedantic(
        lambda msg: cache.write(msg, opts=opts),
        setup=lambda: ((next(messages),), {}),
        rounds=30,
    )
    store.close()


def test_cache_read_1000_keys(benchmark: Any, core: ModuleType, tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "lmdb")
    opts = {"store": store}
    msg = _big_message(core)
    ident = cache.write(msg, opts=opts)
    benchmark.group = "cache.read 1,000-key message (LMDB)"
    benchmark.extra_info["impl"] = core.__name__.rsplit("_", 1)[-1]
    result = benchmark(cache.read, ident, opts=opts)
    benchmark.extra_info["correct"] = result == msg
    store.close()
