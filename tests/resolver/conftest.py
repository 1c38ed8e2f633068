"""Fixtures for resolver tests: devices registered for one test, fresh result caches."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import hbeam
import pytest
from hbeam import NOT_FOUND, device


@pytest.fixture
def register() -> Iterator[Callable[[str, Any], Any]]:
    """``register(name, dev)``: a device registered until the test ends."""
    names: list[str] = []

    def add(name: str, dev: Any) -> Any:
        device.register(name, dev)
        names.append(name)
        return dev

    yield add
    for name in names:
        device.unregister(name)


class FakeCacheModule(types.ModuleType):
    """Stands in for ``hbeam.cache`` (the store layer): records calls, holds a dict."""

    def __init__(self) -> None:
        super().__init__("hbeam.cache")
        self.messages: dict[str, Any] = {}
        self.results: dict[str, Any] = {}
        self.log: list[str] = []

    def read(self, ident: str, *, opts: Any) -> Any:
        self.log.append(f"read {ident}")
        return self.messages.get(ident, NOT_FOUND)

    def write(self, value: Any, *, opts: Any) -> str:
        ident: str = hbeam.id(value)
        self.messages[ident] = value
        return ident

    def read_result(self, hp: str, *, opts: Any) -> Any:
        self.log.append("read_result")
        return self.results.get(hp, NOT_FOUND)

    def write_result(self, hp: str, value: Any, *, opts: Any) -> None:
        self.log.append("write_result")
        self.results[hp] = value


@pytest.fixture
def fake_store(monkeypatch: pytest.MonkeyPatch) -> FakeCacheModule:
    fake = FakeCacheModule()
    monkeypatch.setitem(sys.modules, "hbeam.cache", fake)
    monkeypatch.setattr(hbeam, "cache", fake, raising=False)
    return fake


@pytest.fixture(autouse=True)
def fresh_default_caches() -> Iterator[None]:
    """Each test starts with empty default result caches (devices are re-registered with
    the same names by different tests)."""
    from hbeam import ao

    for cache in ao._default_caches.values():
        cache.clear()
    yield
