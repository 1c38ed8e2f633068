"""Benchmarks are collected only by `make bench` (pytest benches/), never by `make test`."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from hbeam import _core


@pytest.fixture(params=["native", "pure"])
def core(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The core backend module under benchmark; also activates it for the resolver."""
    with _core.use(request.param) as module:
        yield module
