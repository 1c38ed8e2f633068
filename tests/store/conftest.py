"""Store fixtures: ``store_kind`` runs a test on LMDB, FS and memory; ``make_store`` opens one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam.store import FSStore, LMDBStore, MemoryStore, Store

KINDS = ("lmdb", "fs", "memory")


@pytest.fixture(params=KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """``"lmdb"``, ``"fs"`` or ``"memory"``."""
    return str(request.param)


@pytest.fixture
def make_store(store_kind: str, tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """Open (or reopen) the store of ``store_kind`` in ``tmp_path/store``; all closed at the end."""
    opened: list[Store] = []
    memory: list[MemoryStore] = []

    def make(**options: Any) -> Store:
        if store_kind == "lmdb":
            store: Store = LMDBStore(tmp_path / "store", **options)
        elif store_kind == "fs":
            store = FSStore(tmp_path / "store", **options)
        else:
            # "reopening" a memory store gives the same live object back
            if not memory or memory[0]._closed:
                memory[:] = [MemoryStore()]
            store = memory[0]
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    """A fresh store of ``store_kind``."""
    return make_store()


@pytest.fixture
def reopen(store_kind: str, make_store: Callable[..., Store]) -> Callable[[Store], Store]:
    """Close a store and open it again (memory: the same object, still open)."""

    def again(store: Store) -> Store:
        if store_kind == "memory":
            return store
        store.close()
        return make_store()

    return again


@pytest.fixture(autouse=True)
def _on_both_backends(backend: ModuleType) -> ModuleType:
    """Every test here runs on the pure and the native core (the project's rule)."""
    return backend
