"""Wallets shared by the signing tests: RSA-4096 generation takes about a second, so once."""

from __future__ import annotations

from types import ModuleType

import pytest
from hbeam.wallet import Wallet


@pytest.fixture(scope="session")
def wallet_a() -> Wallet:
    """An RSA-4096 wallet (Arweave's kind)."""
    return Wallet.generate("rsa")


@pytest.fixture(scope="session")
def wallet_b() -> Wallet:
    """A second RSA-4096 wallet."""
    return Wallet.generate("rsa")


@pytest.fixture(scope="session")
def wallet_ed() -> Wallet:
    """An Ed25519 wallet."""
    return Wallet.generate("ed25519")


@pytest.fixture(autouse=True)
def _on_both_backends(backend: ModuleType) -> ModuleType:
    """Every test here runs on the pure and the native core (the project's rule)."""
    return backend
