"""Fixtures for the wasm tests: the .wat modules and a shared engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hbeam.wasm import WasmEngine

MODULES = Path(__file__).parent / "modules"


@pytest.fixture(scope="session")
def wat() -> Callable[[str], bytes]:
    """Source of ``modules/<name>.wat`` as bytes (the engine compiles WAT directly)."""

    def load(name: str) -> bytes:
        return (MODULES / f"{name}.wat").read_bytes()

    return load


@pytest.fixture(scope="session")
def engine() -> WasmEngine:
    """One engine (in-memory compile cache) shared by the session."""
    return WasmEngine()
