"""Wallets: generation, Arweave addresses, JWK files, signing, and file errors."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hbeam.errors import AOError, WalletError
from hbeam.wallet import PublicKey, Wallet, b64url_decode, b64url_encode, default_wallet_path


def _b64url_int(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")


def test_rsa_wallet_is_arweave_shaped(wallet_a: Wallet) -> None:
    jwk = wallet_a.to_jwk()
    assert set(jwk) == {"kty", "n", "e", "d", "p", "q", "dp", "dq", "qi"}
    assert jwk["kty"] == "RSA"
    assert jwk["e"] == "AQAB"  # 65537
    modulus = b64url_decode(jwk["n"])
    assert len(modulus) == 512  # 4096 bits
    assert all("=" not in v and "+" not in v and "/" not in v for v in jwk.values())
    expected = base64.urlsafe_b64encode(hashlib.sha256(modulus).digest()).rstrip(b"=").decode()
    assert wallet_a.address == expected
    assert len(wallet_a.address) == 43
    assert wallet_a.kind == "rsa"
    assert wallet_a.alg == "rsa-pss-sha512"
    assert wallet_a.keyid == "publickey:" + base64.b64encode(modulus).decode()
    assert wallet_a.public_jwk == {"kty": "RSA", "e": "AQAB", "n": jwk["n"]}


def test_rsa_sign_verify_is_pss_sha512(wallet_a: Wallet, wallet_b: Wallet) -> None:
    sig = wallet_a.sign(b"hello")
    assert len(sig) == 512
    assert wallet_a.verify(b"hello", sig)
    assert not wallet_a.verify(b"hellO", sig)
    assert not wallet_b.verify(b"hello", sig)
    assert not wallet_a.verify(b"hello", sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not wallet_a.verify(b"hello", b"short")
    # independent check with cryptography: PSS, MGF1-SHA512, 64-byte salt (HyperBEAM's)
    pub = wallet_a.public._key
    assert isinstance(pub, rsa.RSAPublicKey)
    pub.verify(sig, b"hello", padding.PSS(padding.MGF1(hashes.SHA512()), 64), hashes.SHA512())
    # PSS is randomised: two signatures differ, both verify
    assert wallet_a.sign(b"hello") != sig


def test_ed25519_wallet(wallet_ed: Wallet) -> None:
    jwk = wallet_ed.to_jwk()
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    raw = b64url_decode(jwk["x"])
    assert len(raw) == 32
    assert wallet_ed.address == b64url_encode(hashlib.sha256(raw).digest())
    assert wallet_ed.alg == "ed25519"
    sig = wallet_ed.sign(b"data")
    assert wallet_ed.sign(b"data") == sig  # deterministic
    assert wallet_ed.verify(b"data", sig)
    assert not wallet_ed.verify(b"datA", sig)
    assert Wallet.from_jwk(jwk) == wallet_ed


def test_jwk_round_trip(wallet_a: Wallet, wallet_ed: Wallet, tmp_path: Path) -> None:
    for wallet in (wallet_a, wallet_ed):
        again = Wallet.from_jwk(json.loads(json.dumps(wallet.to_jwk())))
        assert again == wallet
        assert again.address == wallet.address
        assert again.to_jwk() == wallet.to_jwk()
        assert wallet.verify(b"x", again.sign(b"x"))
        path = wallet.save(tmp_path / f"{wallet.kind}.json")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert Wallet.load(path) == wallet


def test_hyperbeam_style_jwk_without_crt_fields(wallet_a: Wallet) -> None:
    """HyperBEAM writes only kty/n/e/d (e as 4 bytes); p, q, … are recovered."""
    jwk = wallet_a.to_jwk()
    minimal = {
        "kty": "RSA",
        "ext": True,
        "e": b64url_encode((65537).to_bytes(4, "big")),
        "n": jwk["n"],
        "d": jwk["d"],
    }
    loaded = Wallet.from_jwk(minimal)
    assert loaded == wallet_a
    assert wallet_a.verify(b"m", loaded.sign(b"m"))


def test_public_key_from_jwk_and_keyid(wallet_a: Wallet, wallet_ed: Wallet) -> None:
    for wallet in (wallet_a, wallet_ed):
        pub = PublicKey.from_jwk(wallet.public_jwk)
        assert pub == wallet.public
        assert PublicKey.from_jwk(wallet.to_jwk()) == wallet.public
        assert PublicKey.from_keyid(wallet.keyid, wallet.alg) == wallet.public
        assert PublicKey.from_keyid(wallet.keyid) == wallet.public  # type from size
        url_form = "publickey:" + b64url_encode(wallet.public.raw)
        assert PublicKey.from_keyid(url_form, wallet.alg) == wallet.public
        assert PublicKey.from_keyid(b64url_encode(wallet.public.raw)) == wallet.public
    with pytest.raises(WalletError, match="scheme"):
        PublicKey.from_keyid("constant:ao")
    with pytest.raises(WalletError, match="algorithm"):
        PublicKey.from_keyid(wallet_a.keyid, "rsa-v1_5-sha256")
    with pytest.raises(WalletError, match="32 bytes"):
        PublicKey.from_keyid(wallet_a.keyid, "ed25519")
    with pytest.raises(WalletError, match="base64"):
        PublicKey.from_keyid("publickey:***")


def test_repr_never_shows_key_material(wallet_a: Wallet) -> None:
    text = repr(wallet_a)
    assert wallet_a.address in text
    assert wallet_a.to_jwk()["d"][:20] not in text


@pytest.mark.parametrize(
    ("jwk", "match"),
    [
        ([1, 2], "JSON object"),
        ({"kty": "EC", "crv": "P-256"}, "unsupported JWK key type"),
        ({"kty": "RSA", "e": "AQAB"}, "public key, not a wallet"),
        ({"kty": "RSA", "e": "AQAB", "n": "AQAB", "d": "AQAB"}, "bits"),
        ({"kty": "RSA", "e": "Aw", "n": "AQAB", "d": "AQAB"}, "65537"),
        ({"kty": "RSA", "e": "AQAB", "n": 5, "d": "AQAB"}, "'n'"),
        ({"kty": "RSA", "e": "AQAB", "n": "!!!", "d": "AQAB"}, "base64"),
        ({"kty": "OKP", "crv": "X25519", "d": "AA"}, "curve"),
        ({"kty": "OKP", "crv": "Ed25519", "d": "AAAA"}, "Ed25519 private key"),
    ],
)
def test_bad_jwks_are_refused_clearly(jwk: object, match: str) -> None:
    with pytest.raises(WalletError, match=match):
        Wallet.from_jwk(jwk)  # type: ignore[arg-type]


def test_inconsistent_rsa_jwk(wallet_a: Wallet, wallet_b: Wallet) -> None:
    jwk = dict(wallet_a.to_jwk())
    jwk["d"] = wallet_b.to_jwk()["d"]
    with pytest.raises(WalletError):
        Wallet.from_jwk(jwk)
    jwk = dict(wallet_a.to_jwk())
    jwk["p"] = wallet_b.to_jwk()["p"]
    with pytest.raises(WalletError, match="'p' and 'q'"):
        Wallet.from_jwk(jwk)


def test_ed25519_x_must_match_d(wallet_ed: Wallet) -> None:
    jwk = dict(wallet_ed.to_jwk())
    jwk["x"] = b64url_encode(bytes(32))
    with pytest.raises(WalletError, match="does not match"):
        Wallet.from_jwk(jwk)


def test_generate_arguments() -> None:
    with pytest.raises(WalletError, match="2048"):
        Wallet.generate("rsa", bits=1024)
    with pytest.raises(WalletError, match="unknown wallet type"):
        Wallet.generate("dsa")  # type: ignore[arg-type]


# --- files ------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(WalletError, match="does not exist") as info:
        Wallet.load(path)
    assert str(path) in str(info.value)
    assert info.value.details["reason"] == "missing"
    assert isinstance(info.value, AOError)


def test_corrupt_json_file(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(WalletError, match="not valid JSON") as info:
        Wallet.load(path)
    assert info.value.details["reason"] == "corrupt"


def test_json_that_is_not_a_wallet(tmp_path: Path, wallet_a: Wallet) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps(wallet_a.public_jwk))
    path.chmod(0o600)
    with pytest.raises(WalletError, match=r"not a usable JWK wallet.*public key"):
        Wallet.load(path)
    path.write_text('"just a string"')
    with pytest.raises(WalletError, match="JSON object"):
        Wallet.load(path)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_wrong_permissions_refused_like_ssh(tmp_path: Path, wallet_ed: Wallet, mode: int) -> None:
    path = wallet_ed.save(tmp_path / "w.json")
    path.chmod(mode)
    with pytest.raises(WalletError, match=r"accessible by group or others") as info:
        Wallet.load(path)
    message = str(info.value)
    assert f"{mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert info.value.details["reason"] == "permissions"
    assert Wallet.load(path, check_permissions=False) == wallet_ed
    path.chmod(0o400)
    assert Wallet.load(path) == wallet_ed


def test_directory_is_not_a_wallet(tmp_path: Path) -> None:
    with pytest.raises(WalletError, match="not a regular file"):
        Wallet.load(tmp_path)


def test_save_refuses_to_overwrite(tmp_path: Path, wallet_a: Wallet, wallet_ed: Wallet) -> None:
    path = wallet_ed.save(tmp_path / "sub" / "dir" / "w.json")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(WalletError, match="already exists"):
        wallet_a.save(path)
    assert Wallet.load(path) == wallet_ed
    wallet_a.save(path, overwrite=True)
    assert Wallet.load(path) == wallet_a
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["w.json"]  # no temp files left


def test_default_wallet_created_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("HBEAM_WALLET", raising=False)
    expected = tmp_path / ".hbeam" / "wallet.json"
    assert default_wallet_path() == expected
    first = Wallet.default()
    assert expected.exists()
    assert stat.S_IMODE(expected.stat().st_mode) == 0o600
    assert first.kind == "rsa"
    assert Wallet.default() == first  # loaded, not regenerated


def test_default_wallet_env_and_explicit_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wallet_ed: Wallet
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    named = tmp_path / "mine.json"
    monkeypatch.setenv("HBEAM_WALLET", str(named))
    assert default_wallet_path() == named
    # an explicitly named wallet must exist: a typo must not mint a new identity
    with pytest.raises(WalletError, match="does not exist"):
        Wallet.default()
    with pytest.raises(WalletError, match="does not exist"):
        Wallet.default(tmp_path / "other.json")
    assert not (tmp_path / "home").exists()
    wallet_ed.save(named)
    assert Wallet.default() == wallet_ed
    assert Wallet.default(named) == wallet_ed
    created = Wallet.default(tmp_path / "new.json", create=True)
    assert Wallet.load(tmp_path / "new.json") == created
