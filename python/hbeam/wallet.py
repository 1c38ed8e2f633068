"""Wallets: Arweave-style key pairs that sign hbeam messages and HTTP requests.

A wallet is what AO users already hold: an RSA-4096 key (public exponent 65537) kept as an
Arweave JWK file (``kty``, ``n``, ``e``, ``d``, ``p``, ``q``, ``dp``, ``dq``, ``qi``, all
base64url).  Its **address** is Arweave's: base64url (no padding) of the SHA-256 of the raw
public modulus bytes, 43 characters.  RSA wallets sign with RSA-PSS over SHA-512 (MGF1
SHA-512, salt length 64), HyperBEAM's ``rsa-pss-sha512`` commitment type; verification
accepts any salt length, as HyperBEAM's does.

Ed25519 wallets (JWK ``kty: OKP``, ``crv: Ed25519``, ``x``, ``d``) are a second, much faster
type; their address is the SHA-256 of the 32-byte public key and their signatures use the
RFC 9421 algorithm ``ed25519``.  HyperBEAM's ``httpsig@1.0`` does not verify ``ed25519``
commitments, so messages meant for HyperBEAM nodes should be signed by an RSA wallet.

A public key is named on the wire by its **keyid**, ``publickey:<base64 of the raw key>``,
as HyperBEAM writes it; :meth:`PublicKey.from_keyid` also accepts base64url and the older
un-prefixed form.  Because the keyid of an RSA key carries only the modulus, RSA wallets
must use e = 65537 (every Arweave wallet does).

Key files hold private keys, so they are written with mode 0600 and, like ``ssh`` does,
refused when group or others may read them.  All crypto is the ``cryptography`` package's.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from hbeam.errors import WalletError

__all__ = [
    "ALGORITHMS",
    "DEFAULT_WALLET_ENV",
    "ED25519",
    "RSA_PSS_SHA512",
    "KeyType",
    "PublicKey",
    "Wallet",
    "b64url_decode",
    "b64url_encode",
    "default_wallet_path",
]

KeyType = Literal["rsa", "ed25519"]

RSA_PSS_SHA512: Final = "rsa-pss-sha512"
"""Signature algorithm of RSA wallets (RFC 9421 name; HyperBEAM's commitment ``type``)."""
ED25519: Final = "ed25519"
"""Signature algorithm of Ed25519 wallets (RFC 9421 name)."""
ALGORITHMS: Final[Mapping[str, KeyType]] = {RSA_PSS_SHA512: "rsa", ED25519: "ed25519"}
"""Signature algorithm name → the key type that produces it."""

DEFAULT_WALLET_ENV: Final = "HBEAM_WALLET"
"""Environment variable naming the default wallet file."""

_RSA_E: Final = 65537
_RSA_MIN_BITS: Final = 2048
_ED25519_KEY_BYTES: Final = 32
_KEYID_PREFIX: Final = "publickey:"
_PSS_SIGN = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=padding.PSS.DIGEST_LENGTH)
_PSS_VERIFY = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=padding.PSS.AUTO)
_PROBE: Final = b"hbeam wallet self-test"


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 4648 §5), as Arweave and HyperBEAM write binaries."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url *or* standard base64, with or without padding.

    Raises:
        ValueError: ``text`` is not base64 of either alphabet.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected base64 text, got {type(text).__name__}")
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    if not cleaned.isascii():
        raise ValueError("base64 text contains non-ASCII characters")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from exc


def _int_to_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _b64_int(value: int) -> str:
    return b64url_encode(_int_to_bytes(value))


def _address_of(raw_public_key: bytes) -> str:
    return b64url_encode(hashlib.sha256(raw_public_key).digest())


class PublicKey:
    """The public half of a wallet: verifies signatures and names its owner.

    ``raw`` is the RSA modulus (big-endian, no leading zero bytes) or the 32-byte Ed25519
    key.  Instances are immutable and compare by (type, raw).
    """

    __slots__ = ("_key", "kind", "raw")

    kind: KeyType
    raw: bytes
    _key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey

    def __init__(self, kind: KeyType, raw: bytes) -> None:
        """Build a public key from its raw bytes.

        Raises:
            WalletError: the bytes are not a usable key of that type.
        """
        if kind == "rsa":
            modulus = int.from_bytes(raw, "big")
            if modulus.bit_length() < _RSA_MIN_BITS:
                raise WalletError(
                    f"RSA public key has {modulus.bit_length()} bits "
                    f"(at least {_RSA_MIN_BITS} needed; Arweave wallets have 4096)"
                )
            try:
                key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey = rsa.RSAPublicNumbers(
                    _RSA_E, modulus
                ).public_key()
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise WalletError(f"not a valid RSA public key: {exc}") from exc
            raw = _int_to_bytes(modulus)
        elif kind == "ed25519":
            if len(raw) != _ED25519_KEY_BYTES:
                raise WalletError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
            try:
                key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise WalletError(f"not a valid Ed25519 public key: {exc}") from exc
        else:
            raise WalletError(f"unknown key type {kind!r}; expected 'rsa' or 'ed25519'")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "raw", bytes(raw))
        object.__setattr__(self, "_key", key)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PublicKey is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return (self.kind, self.raw) == (other.kind, other.raw)

    def __hash__(self) -> int:
        return hash((self.kind, self.raw))

    def __repr__(self) -> str:
        return f"PublicKey({self.kind!r}, address={self.address!r})"

    @property
    def alg(self) -> str:
        """The signature algorithm this key verifies (``rsa-pss-sha512`` or ``ed25519``)."""
        return RSA_PSS_SHA512 if self.kind == "rsa" else ED25519

    @property
    def address(self) -> str:
        """43-character base64url SHA-256 of the raw public key (Arweave's address)."""
        return _address_of(self.raw)

    @property
    def keyid(self) -> str:
        """``publickey:<standard base64 of raw>``, the keyid HyperBEAM writes."""
        return _KEYID_PREFIX + base64.b64encode(self.raw).decode("ascii")

    @property
    def jwk(self) -> dict[str, str]:
        """The public JWK (``kty RSA n e`` or ``kty OKP crv x``)."""
        if self.kind == "rsa":
            return {"kty": "RSA", "e": _b64_int(_RSA_E), "n": b64url_encode(self.raw)}
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(self.raw)}

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``data`` (never raises)."""
        try:
            if isinstance(self._key, rsa.RSAPublicKey):
                self._key.verify(signature, data, _PSS_VERIFY, hashes.SHA512())
            else:
                self._key.verify(signature, data)
        except (_CryptoInvalidSignature, ValueError, TypeError):
            return False
        return True

    @classmethod
    def from_keyid(cls, keyid: str, alg: str | None = None) -> PublicKey:
        """The public key a keyid names; ``alg`` picks the key type (else guessed by size).

        Accepts ``publickey:<base64>`` or ``publickey:<base64url>`` (HyperBEAM accepts both)
        and a bare base64url key (older HyperBEAM commitments).

        Raises:
            WalletError: unknown keyid scheme, undecodable key, unsupported ``alg``.
        """
        return _public_key_from_keyid(keyid, alg)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> PublicKey:
        """The public key of a public or private JWK.

        Raises:
            WalletError: not an RSA (e = 65537) or Ed25519 JWK.
        """
        kty = jwk.get("kty") if isinstance(jwk, Mapping) else None
        if kty == "RSA":
            _check_rsa_exponent(_jwk_int(jwk, "e"))
            return cls("rsa", _jwk_bytes(jwk, "n"))
        if kty == "OKP":
            _check_ed25519_curve(jwk)
            return cls("ed25519", _jwk_bytes(jwk, "x"))
        raise WalletError(f"unsupported JWK key type {kty!r}; expected 'RSA' or 'OKP'")


@functools.lru_cache(maxsize=1024)
def _public_key_from_keyid(keyid: str, alg: str | None) -> PublicKey:
    if not isinstance(keyid, str) or not keyid:
        raise WalletError("keyid is missing or not text")
    scheme, sep, encoded = keyid.partition(":")
    if not sep:
        scheme, encoded = "publickey", keyid
    if scheme != "publickey":
        raise WalletError(
            f"unsupported keyid scheme {scheme!r}: only 'publickey:<base64>' keys can be verified"
        )
    try:
        raw = b64url_decode(encoded)
    except ValueError as exc:
        raise WalletError(f"keyid is not base64: {exc}") from exc
    if alg is None:
        kind: KeyType = "ed25519" if len(raw) == _ED25519_KEY_BYTES else "rsa"
    elif alg in ALGORITHMS:
        kind = ALGORITHMS[alg]
    else:
        raise WalletError(
            f"unsupported signature algorithm {alg!r}; expected one of {sorted(ALGORITHMS)}"
        )
    return PublicKey(kind, raw)


def _jwk_bytes(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise WalletError(f"JWK field {name!r} is missing or not a string")
    try:
        return b64url_decode(value)
    except ValueError as exc:
        raise WalletError(f"JWK field {name!r} is not base64url: {exc}") from exc


def _jwk_int(jwk: Mapping[str, Any], name: str) -> int:
    return int.from_bytes(_jwk_bytes(jwk, name), "big")


def _check_rsa_exponent(e: int) -> None:
    if e != _RSA_E:
        raise WalletError(
            f"RSA wallets must use the public exponent 65537 (got {e}): "
            "signatures name the key by its modulus only"
        )


def _check_ed25519_curve(jwk: Mapping[str, Any]) -> None:
    if jwk.get("crv") != "Ed25519":
        raise WalletError(f"unsupported OKP curve {jwk.get('crv')!r}; expected 'Ed25519'")


def default_wallet_path() -> Path:
    """``$HBEAM_WALLET`` if set, else ``~/.hbeam/wallet.json``.

    Raises:
        WalletError: neither is available (no home directory).
    """
    env = os.environ.get(DEFAULT_WALLET_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    try:
        home = Path.home()
    except RuntimeError as exc:
        raise WalletError(
            f"cannot find the home directory for the default wallet: set ${DEFAULT_WALLET_ENV}"
        ) from exc
    return home / ".hbeam" / "wallet.json"


class Wallet:
    """A private key (RSA-4096 or Ed25519) that signs; its public half is :attr:`public`.

    >>> w = Wallet.generate("ed25519")
    >>> len(w.address)
    43
    >>> w.verify(b"data", w.sign(b"data"))
    True
    """

    __slots__ = ("_private", "public")

    _private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    public: PublicKey

    def __init__(self, private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> None:
        """Wrap a ``cryptography`` private key (use :meth:`generate` / :meth:`load` instead).

        Raises:
            WalletError: an unsupported key type, or RSA with e ≠ 65537 or < 2048 bits.
        """
        if isinstance(private_key, rsa.RSAPrivateKey):
            numbers = private_key.private_numbers().public_numbers
            _check_rsa_exponent(numbers.e)
            public = PublicKey("rsa", _int_to_bytes(numbers.n))
        elif isinstance(private_key, ed25519.Ed25519PrivateKey):
            public = PublicKey(
                "ed25519",
                private_key.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                ),
            )
        else:
            raise WalletError(
                f"unsupported private key type {type(private_key).__name__}; "
                "expected RSA or Ed25519"
            )
        object.__setattr__(self, "_private", private_key)
        object.__setattr__(self, "public", public)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Wallet is immutable")

    def __repr__(self) -> str:  # never shows key material
        return f"Wallet({self.kind!r}, address={self.address!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Wallet):
            return NotImplemented
        return self.public == other.public

    def __hash__(self) -> int:
        return hash(self.public)

    # --- identity -------------------------------------------------------------------------

    @property
    def kind(self) -> KeyType:
        """``"rsa"`` or ``"ed25519"``."""
        return self.public.kind

    @property
    def alg(self) -> str:
        """The signature algorithm: ``rsa-pss-sha512`` (RSA) or ``ed25519``."""
        return self.public.alg

    @property
    def address(self) -> str:
        """The wallet's 43-character Arweave address (SHA-256 of the raw public key)."""
        return self.public.address

    @property
    def keyid(self) -> str:
        """``publickey:<base64 of the raw public key>``, as HyperBEAM names signers."""
        return self.public.keyid

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public JWK (safe to share)."""
        return self.public.jwk

    # --- signing --------------------------------------------------------------------------

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``: RSA-PSS/SHA-512 (salt 64 bytes) for RSA, plain Ed25519 otherwise."""
        if isinstance(self._private, rsa.RSAPrivateKey):
            return self._private.sign(bytes(data), _PSS_SIGN, hashes.SHA512())
        return self._private.sign(bytes(data))

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this wallet's signature of ``data``."""
        return self.public.verify(data, signature)

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def generate(cls, kind: KeyType = "rsa", *, bits: int = 4096) -> Wallet:
        """A fresh wallet: RSA (e = 65537, ``bits`` long, Arweave's 4096 by default) or Ed25519.

        RSA-4096 generation takes about a second.

        Raises:
            WalletError: unknown ``kind`` or ``bits`` below 2048.
        """
        if kind == "rsa":
            if not isinstance(bits, int) or bits < _RSA_MIN_BITS:
                raise WalletError(f"RSA wallets need at least {_RSA_MIN_BITS} bits, got {bits!r}")
            return cls(rsa.generate_private_key(public_exponent=_RSA_E, key_size=bits))
        if kind == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        raise WalletError(f"unknown wallet type {kind!r}; expected 'rsa' or 'ed25519'")

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> Wallet:
        """A wallet from a private JWK (Arweave RSA, or OKP/Ed25519).

        RSA JWKs need ``n``, ``e`` (65537) and ``d``; the CRT fields ``p q dp dq qi`` are
        recomputed when absent (HyperBEAM writes only ``n e d``).

        Raises:
            WalletError: not a mapping, a missing or malformed field, inconsistent numbers,
                or a public-only JWK.
        """
        if not isinstance(jwk, Mapping):
            raise WalletError(f"a JWK must be a JSON object, got {type(jwk).__name__}")
        kty = jwk.get("kty")
        if kty == "RSA":
            return cls(_rsa_from_jwk(jwk))
        if kty == "OKP":
            _check_ed25519_curve(jwk)
            if "d" not in jwk:
                raise WalletError("JWK has no private part 'd': it is a public key, not a wallet")
            seed = _jwk_bytes(jwk, "d")
            try:
                private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
            except ValueError as exc:
                raise WalletError(f"JWK field 'd' is not an Ed25519 private key: {exc}") from exc
            wallet = cls(private)
            if "x" in jwk and _jwk_bytes(jwk, "x") != wallet.public.raw:
                raise WalletError("JWK field 'x' does not match its private key 'd'")
            return wallet
        raise WalletError(f"unsupported JWK key type {kty!r}; expected 'RSA' or 'OKP'")

    def to_jwk(self) -> dict[str, str]:
        """The private JWK (Arweave's field set for RSA).  Contains the secret key."""
        if isinstance(self._private, rsa.RSAPrivateKey):
            nums = self._private.private_numbers()
            pub = nums.public_numbers
            return {
                "kty": "RSA",
                "e": _b64_int(pub.e),
                "n": _b64_int(pub.n),
                "d": _b64_int(nums.d),
                "p": _b64_int(nums.p),
                "q": _b64_int(nums.q),
                "dp": _b64_int(nums.dmp1),
                "dq": _b64_int(nums.dmq1),
                "qi": _b64_int(nums.iqmp),
            }
        seed = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url_encode(self.public.raw),
            "d": b64url_encode(seed),
        }

    # --- files ----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, check_permissions: bool = True) -> Wallet:
        """Read a JWK wallet file.

        Raises:
            WalletError: the file is missing, unreadable, not a regular file, readable by
                group/others (unless ``check_permissions=False``), not JSON, or not a
                valid private JWK.  The message names the file and says how to fix it.
        """
        file = Path(path).expanduser()
        try:
            st = file.stat()
        except FileNotFoundError as exc:
            raise WalletError(
                f"wallet file {file} does not exist "
                "(create one with `hbeam.Wallet.generate().save(path)`)",
                path=str(file),
                reason="missing",
            ) from exc
        except OSError as exc:
            raise WalletError(
                f"cannot read wallet file {file}: {exc.strerror or exc}",
                path=str(file),
                reason="unreadable",
            ) from exc
        if not stat.S_ISREG(st.st_mode):
            raise WalletError(
                f"wallet path {file} is not a regular file", path=str(file), reason="not-a-file"
            )
        if check_permissions and os.name == "posix" and st.st_mode & 0o077:
            raise WalletError(
                f"wallet file {file} is accessible by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); a private key must not be: "
                f"run `chmod 600 {file}`",
                path=str(file),
                reason="permissions",
            )
        try:
            text = file.read_bytes()
        except OSError as exc:
            raise WalletError(
                f"cannot read wallet file {file}: {exc.strerror or exc}",
                path=str(file),
                reason="unreadable",
            ) from exc
        try:
            jwk = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise WalletError(
                f"wallet file {file} is not valid JSON ({exc}); expected an Arweave JWK",
                path=str(file),
                reason="corrupt",
            ) from exc
        try:
            return cls.from_jwk(jwk)
        except WalletError as exc:
            raise WalletError(
                f"wallet file {file} is not a usable JWK wallet: {exc.message}",
                path=str(file),
                reason="corrupt",
            ) from exc

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the private JWK to ``path`` with mode 0600 (parents made with mode 0700).

        The write is atomic: the file appears complete or not at all.

        Raises:
            WalletError: the file exists (and not ``overwrite``), or the write failed.
        """
        file = Path(path).expanduser()
        data = json.dumps(self.to_jwk(), separators=(",", ":")).encode("ascii")
        try:
            file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".wallet-", suffix=".tmp", dir=file.parent)
        except OSError as exc:
            raise WalletError(
                f"cannot write wallet file {file}: {exc.strerror or exc}", path=str(file)
            ) from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:  # mkstemp creates the file with mode 0600
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(tmp, file)
            else:
                # link() refuses to replace an existing file, so two processes creating the
                # same wallet at once cannot silently swap keys under each other.
                os.link(tmp, file)
        except FileExistsError as exc:
            raise WalletError(
                f"wallet file {file} already exists (pass overwrite=True to replace it)",
                path=str(file),
                reason="exists",
            ) from exc
        except OSError as exc:
            raise WalletError(
                f"cannot write wallet file {file}: {exc.strerror or exc}", path=str(file)
            ) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return file

    @classmethod
    def default(
        cls, path: str | os.PathLike[str] | None = None, *, create: bool | None = None
    ) -> Wallet:
        """The user's wallet: ``path``, else ``$HBEAM_WALLET``, else ``~/.hbeam/wallet.json``.

        The default location is created on first use (a new RSA-4096 wallet, mode 0600, as
        the aos console does with its own).  An explicitly named file (``path`` or
        ``$HBEAM_WALLET``) must exist unless ``create=True``, so a mistyped name is an
        error rather than a silently new identity.

        Raises:
            WalletError: as :meth:`load`, or the file could not be created.
        """
        explicit = path is not None or bool(os.environ.get(DEFAULT_WALLET_ENV, "").strip())
        file = Path(path).expanduser() if path is not None else default_wallet_path()
        if create is None:
            create = not explicit
        if create and not file.exists():
            try:
                cls.generate().save(file)
            except WalletError as exc:
                if exc.details.get("reason") != "exists":  # another process won the race
                    raise
        return cls.load(file)


def _rsa_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPrivateKey:
    if "d" not in jwk:
        raise WalletError("JWK has no private part 'd': it is a public key, not a wallet")
    n, e, d = _jwk_int(jwk, "n"), _jwk_int(jwk, "e"), _jwk_int(jwk, "d")
    _check_rsa_exponent(e)
    if n.bit_length() < _RSA_MIN_BITS:
        raise WalletError(f"RSA key has {n.bit_length()} bits (at least {_RSA_MIN_BITS} needed)")
    try:
        if all(name in jwk for name in ("p", "q")):
            p, q = _jwk_int(jwk, "p"), _jwk_int(jwk, "q")
        else:
            p, q = rsa.rsa_recover_prime_factors(n, e, d)
        if p * q != n:
            raise WalletError("JWK fields 'p' and 'q' do not multiply to 'n'")
        dp = _jwk_int(jwk, "dp") if "dp" in jwk else rsa.rsa_crt_dmp1(d, p)
        dq = _jwk_int(jwk, "dq") if "dq" in jwk else rsa.rsa_crt_dmq1(d, q)
        qi = _jwk_int(jwk, "qi") if "qi" in jwk else rsa.rsa_crt_iqmp(p, q)
        if (e * d) % (p - 1) != 1 or (e * d) % (q - 1) != 1:
            raise WalletError("JWK field 'd' is not the private exponent of 'n'")
        if dp != d % (p - 1) or dq != d % (q - 1) or (qi * q) % p != 1:
            raise WalletError("JWK fields 'dp', 'dq' or 'qi' disagree with 'p', 'q' and 'd'")
        numbers = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n))
        # OpenSSL's full key check (primality of p and q) costs ~0.5 s for 4096 bits on every
        # load; a probe signature that must verify catches any inconsistent field instead.
        key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
        probe = key.sign(_PROBE, _PSS_SIGN, hashes.SHA512())
        key.public_key().verify(probe, _PROBE, _PSS_VERIFY, hashes.SHA512())
        return key
    except WalletError:
        raise
    except _CryptoInvalidSignature as exc:
        raise WalletError("JWK is not a consistent RSA private key (its fields disagree)") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise WalletError(f"JWK is not a consistent RSA private key: {exc}") from exc
