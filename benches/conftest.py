"""Benchmarks are collected only by `make bench` (pytest benches/), never by `make test`."""

from __future__ import annotations

import pytest

from hbeam import _core


@pytest.fixture(params=["native", "pure"])
def core(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The core backend module under benchmark; also activates it for the resolver."""
    with _core.use(request.param) as module:
        yield module
