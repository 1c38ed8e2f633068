"""Signing and verifying per second: raw signatures, message commitments, HTTP requests.

RSA-4096 (Arweave wallets, ``rsa-pss-sha512``) and Ed25519.  Raw signatures do not touch
the core; commitments do (canonical encoding of non-text values), so those are run on each
available core backend.  pytest-benchmark's ``ops`` column is the per-second figure.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hbeam import _core, commitment, httpsig
from hbeam.wallet import KeyType, Wallet

KINDS: tuple[KeyType, ...] = ("rsa", "ed25519")
LABEL = {"rsa": "rsa-4096", "ed25519": "ed25519"}

# an aos Transfer as a client sends it
TRANSFER = {
    "Action": "Transfer",
    "Recipient": "QSBQZsowVRdvsEbdTv-KEF4_Z5bYf11M3X5-8LN0NM4",
    "Quantity": "1000",
    "Data-Protocol": "ao",
    "Variant": "ao.TN.1",
    "Type": "Message",
    "nonce": 17,
    "body": "",
}
HEADERS = {k: str(v) for k, v in TRANSFER.items() if k != "body"}
BODY = b'{"Action": "Transfer", "Quantity": "1000"}'
URL = "http://127.0.0.1:8734/FkJPkIHp_Gc_7KOLbtyzowPcJUc3SG_G25SJp0fbTmE~process@1.0/schedule"
TARGET = URL.removeprefix("http://127.0.0.1:8734")


@pytest.fixture(scope="module")
def wallets() -> dict[str, Wallet]:
    return {kind: Wallet.generate(kind) for kind in KINDS}


def _backends() -> list[Any]:
    params: list[Any] = ["pure"]
    if _core.available("native"):
        params.insert(0, "native")
    else:
        params.append(pytest.param("native", marks=pytest.mark.skip(reason="native not built")))
    return params


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    with _core.use(request.param) as module:
        yield module


def _impl(backend: ModuleType) -> str:
    return backend.__name__.rsplit("_", 1)[-1]


@pytest.mark.parametrize("kind", KINDS)
def test_sign_raw(benchmark: Any, wallets: dict[str, Wallet], kind: KeyType) -> None:
    wallet = wallets[kind]
    base = commitment.signature_base(*_signed_transfer(wallet))
    benchmark.group = "wallet.sign (aos Transfer signature base)"
    benchmark.extra_info["impl"] = LABEL[kind]
    signature = benchmark(wallet.sign, base)
    benchmark.extra_info["correct"] = wallet.verify(base, signature)


@pytest.mark.parametrize("kind", KINDS)
def test_verify_raw(benchmark: Any, wallets: dict[str, Wallet], kind: KeyType) -> None:
    wallet = wallets[kind]
    base = commitment.signature_base(*_signed_transfer(wallet))
    signature = wallet.sign(base)
    benchmark.group = "wallet.verify (aos Transfer signature base)"
    benchmark.extra_info["impl"] = LABEL[kind]
    benchmark.extra_info["correct"] = benchmark(wallet.verify, base, signature)


def _signed_transfer(wallet: Wallet) -> tuple[Any, Any]:
    signed = commitment.commit(TRANSFER, wallet)
    (c,) = signed["commitments"].values()
    return signed, c


@pytest.mark.parametrize("kind", KINDS)
def test_commit(
    benchmark: Any, wallets: dict[str, Wallet], kind: KeyType, backend: ModuleType
) -> None:
    wallet = wallets[kind]
    msg = backend.Message(TRANSFER)
    benchmark.group = f"commit: aos Transfer ({LABEL[kind]})"
    benchmark.extra_info["impl"] = _impl(backend)
    signed = benchmark(commitment.commit, msg, wallet)
    benchmark.extra_info["correct"] = commitment.committers(signed) == [wallet.address]


@pytest.mark.parametrize("kind", KINDS)
def test_verify_commitment(
    benchmark: Any, wallets: dict[str, Wallet], kind: KeyType, backend: ModuleType
) -> None:
    wallet = wallets[kind]
    signed = commitment.commit(backend.Message(TRANSFER), wallet)
    benchmark.group = f"check (verify + committers): aos Transfer ({LABEL[kind]})"
    benchmark.extra_info["impl"] = _impl(backend)
    result = benchmark(commitment.check, signed)
    benchmark.extra_info["correct"] = result == [wallet.address]


@pytest.mark.parametrize("kind", KINDS)
def test_sign_request(benchmark: Any, wallets: dict[str, Wallet], kind: KeyType) -> None:
    wallet = wallets[kind]
    benchmark.group = f"httpsig.sign_request: Transfer, 7 headers + body ({LABEL[kind]})"
    benchmark.extra_info["impl"] = LABEL[kind]
    headers = benchmark(httpsig.sign_request, "POST", URL, HEADERS, BODY, wallet)
    ok = httpsig.verify_request("POST", TARGET, headers, BODY) == wallet.address
    benchmark.extra_info["correct"] = ok


@pytest.mark.parametrize("kind", KINDS)
def test_verify_request(benchmark: Any, wallets: dict[str, Wallet], kind: KeyType) -> None:
    wallet = wallets[kind]
    headers = httpsig.sign_request("POST", URL, HEADERS, BODY, wallet)
    benchmark.group = f"httpsig.verify_request: Transfer, 7 headers + body ({LABEL[kind]})"
    benchmark.extra_info["impl"] = LABEL[kind]
    signer = benchmark(httpsig.verify_request, "POST", TARGET, headers, BODY)
    benchmark.extra_info["correct"] = signer == wallet.address
