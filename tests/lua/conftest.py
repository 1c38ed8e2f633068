"""Fixtures for tests/lua."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture(autouse=True)
def _on_both_backends(backend: ModuleType) -> ModuleType:
    """Every test here runs on the pure and the native core (the project's rule)."""
    return backend
