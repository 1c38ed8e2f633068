"""RFC 9421 HTTP message signatures for hbeam requests: pure functions for client and node.

The client calls :func:`sign_request` just before sending (httpx), the node calls
:func:`verify_request` (or :func:`verify_request_details`) on what it received (Starlette);
neither touches the network.

What a signature covers (:func:`sign_request`): ``@method``, ``@path``, ``@query`` (always,
so a query cannot be added to a request signed without one; an empty query signs as
``?``), every header the caller passed except transport ones (``host``,
``content-length``, hop-by-hop fields, existing ``signature``/``signature-input``), and
``content-digest`` (RFC 9530, ``sha-256``) whenever there is a body.  Parameters: ``alg``
(``rsa-pss-sha512`` for RSA wallets, ``ed25519``), ``created`` (Unix time), optional
``expires``, and ``keyid`` = ``publickey:<base64 public key>``: the key travels with the
request, and the signer's address is the SHA-256 of it, so no key registry is needed.  The
label is HyperBEAM's, ``comm-<lower-cased commitment ID>``.  Header names are lower-cased.

What :func:`verify_request` insists on: every signature in ``signature-input`` has a
``signature`` and verifies; each covers ``@method``, ``@path`` and ``@query``; a non-empty
body is covered through ``content-digest`` and matches it; ``alg`` is supported and
``keyid`` is a ``publickey:`` key; ``expires`` (if any) has not passed; with ``max_age``,
``created`` is recent.  Headers not covered by a signature are reported in
:attr:`VerifiedRequest.covered`, so the node can drop them as HyperBEAM drops unsigned keys.

Why not the ``http-message-signatures`` package: its model is a ``requests``/``httpx2``/
``aiohttp`` message object plus resolver classes, while node and client here need a pure
function of (method, target, headers, body); it would bring a second structured-field
library (``http-sf``) beside the ``http_sfv`` hbeam already uses; and message commitments
(:mod:`hbeam.commitment`) need HyperBEAM's own base rules anyway.  The RFC parts needed are
small: derived components, field canonicalisation and ``@signature-params``, built here on
``http_sfv`` (all structured-field parsing and serialising) and ``cryptography`` (all
crypto, via :class:`hbeam.Wallet`).  The RFC 9421 test vector B.2.6 is in the tests.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item

from hbeam.commitment import commitment_id, content_digest
from hbeam.errors import InvalidMessage, InvalidSignature, WalletError
from hbeam.wallet import ALGORITHMS, PublicKey, Wallet

__all__ = [
    "REQUIRED_COMPONENTS",
    "HeadersLike",
    "RequestSignature",
    "VerifiedRequest",
    "is_signed",
    "sign_request",
    "signature_base",
    "verify_request",
    "verify_request_details",
]

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]
"""A header mapping, or (name, value) pairs (repeated names allowed)."""

REQUIRED_COMPONENTS: Final = ("@method", "@path", "@query")
"""Derived components every verified signature must cover."""

_SIGNATURE: Final = "signature"
_SIGNATURE_INPUT: Final = "signature-input"
_CONTENT_DIGEST: Final = "content-digest"
# Fields a client library or proxy may add or rewrite in transit; never signed by default.
_UNSIGNED_FIELDS: Final = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        _SIGNATURE,
        _SIGNATURE_INPUT,
    }
)
_DIGESTS: Final = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
_CLOCK_SKEW: Final = 60


@dataclass(frozen=True)
class RequestSignature:
    """One verified signature of a request."""

    label: str
    signer: str
    """The signer's 43-character address."""
    keyid: str
    alg: str
    commitment_id: str
    """SHA-256 of the signature, base64url: the ID HyperBEAM gives this commitment."""
    covered: tuple[str, ...]
    """Covered component names, in signed order (``@method``, …, header names)."""
    created: int | None


@dataclass(frozen=True)
class VerifiedRequest:
    """The outcome of :func:`verify_request_details`: every signature verified."""

    signatures: tuple[RequestSignature, ...]

    @property
    def signer(self) -> str:
        """Address of the first signature's signer (the request's sender)."""
        return self.signatures[0].signer

    @property
    def signers(self) -> tuple[str, ...]:
        """Every signer's address, in signature order, each once."""
        return tuple(dict.fromkeys(s.signer for s in self.signatures))

    @property
    def commitment_id(self) -> str:
        """The first signature's commitment ID (use it to recognise a replayed request)."""
        return self.signatures[0].commitment_id

    @property
    def covered(self) -> frozenset[str]:
        """Header names (lower case) covered by at least one signature."""
        return frozenset(c for s in self.signatures for c in s.covered if not c.startswith("@"))


# --- helpers ----------------------------------------------------------------------------


def _field_lines(headers: HeadersLike) -> dict[str, list[str]]:
    """Lower-cased name → values in order, from any header container."""
    multi = getattr(headers, "multi_items", None)
    if callable(multi):
        pairs: Iterable[Any] = multi()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    out: dict[str, list[str]] = {}
    for pair in pairs:
        name, value = pair
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidMessage(f"header {name!r} is not text")
        out.setdefault(name.lower(), []).append(value)
    return out


def _field_value(name: str, values: Sequence[str]) -> str:
    """RFC 9421 §2.1: each line's surrounding whitespace trimmed, lines joined by ``, ``."""
    for value in values:
        if any(ch in "\r\n\0" for ch in value) or not value.isascii():
            raise InvalidSignature(f"header {name!r} holds characters a signature cannot cover")
    return ", ".join(v.strip(" \t") for v in values)


def _split_target(target: str | bytes) -> tuple[str, str, str]:
    """``(authority, path, query)`` of a request target or absolute URL (no decoding)."""
    if isinstance(target, bytes):
        try:
            target = target.decode("ascii")
        except UnicodeDecodeError as exc:
            raise InvalidSignature("request target is not ASCII") from exc
    authority = ""
    if target.startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        slash = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        authority, target = rest[:slash].lower(), rest[slash:]
    path, sep, query = target.partition("?")
    if not path:
        path = "/"
    if not path.isascii() or not query.isascii():
        raise InvalidSignature("request target is not ASCII (percent-encode it)")
    return authority, path, "?" + query if sep else "?"


def _component_value(
    name: str,
    method: str,
    target: tuple[str, str, str],
    fields: Mapping[str, list[str]],
) -> str:
    authority, path, query = target
    if name == "@method":
        return method.upper()
    if name == "@path":
        return path
    if name == "@query":
        return query
    if name == "@request-target":
        return path + (query if query != "?" else "")
    if name == "@authority":
        host = fields.get("host")
        value = _field_value("host", host) if host else authority
        if not value:
            raise InvalidSignature("covered component '@authority' has no host to sign")
        return value.lower()
    if name.startswith("@"):
        raise InvalidSignature(f"derived component {name!r} is not supported")
    if name not in fields:
        raise InvalidSignature(f"covered component {name!r} is missing from the request")
    return _field_value(name, fields[name])


def _signature_params(components: Sequence[str], params: Mapping[str, str | int]) -> InnerList:
    inner = InnerList()
    for name in components:
        inner.append(Item(name))
    for key, value in params.items():
        inner.params[key] = value
    return inner


def _base(
    method: str,
    target: tuple[str, str, str],
    fields: Mapping[str, list[str]],
    inner: InnerList,
) -> bytes:
    lines: list[str] = []
    seen: set[str] = set()
    for item in inner:
        if not isinstance(item, Item) or not isinstance(item.value, str) or item.params:
            raise InvalidSignature(
                f"component {item!s} is not supported (only plain names, no parameters)"
            )
        name = item.value
        if name != name.lower():
            raise InvalidSignature(f"component name {name!r} is not lower case")
        if name in seen:
            raise InvalidSignature(f"component {name!r} is covered twice")
        seen.add(name)
        lines.append(f'"{name}": {_component_value(name, method, target, fields)}')
    try:
        params = str(inner)
    except ValueError as exc:
        raise InvalidSignature(f"signature parameters cannot be serialised: {exc}") from exc
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode("ascii")


def signature_base(
    method: str,
    target: str | bytes,
    headers: HeadersLike,
    components: Sequence[str],
    params: Mapping[str, str | int],
) -> bytes:
    """The RFC 9421 signature base of a request (§2.5), for the given covered components.

    ``target`` is the request target as sent (``/path?query``, percent-encoded) or an
    absolute URL; ``params`` are the signature parameters in the order to serialise
    (``created``, ``keyid`` …).  Supported derived components: ``@method``, ``@path``,
    ``@query``, ``@authority``, ``@request-target``.

    Raises:
        InvalidSignature: a component is missing, unsupported or malformed.
    """
    inner = _signature_params(list(components), params)
    return _base(method, _split_target(target), _field_lines(headers), inner)


def _normalise_target(url: str | bytes) -> str:
    """The target exactly as httpx will send it (percent-encoding applied)."""
    try:
        parsed = httpx.URL(url.decode("ascii") if isinstance(url, bytes) else url)
    except (httpx.InvalidURL, UnicodeDecodeError, TypeError) as exc:
        raise InvalidMessage(f"cannot sign a request to {url!r}: {exc}") from exc
    target = parsed.raw_path.decode("ascii")
    if parsed.is_absolute_url:
        return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}{target}"
    return target


def _body_bytes(body: str | bytes | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise InvalidMessage(f"request body must be bytes or str, got {type(body).__name__}")


# --- signing ----------------------------------------------------------------------------


def sign_request(
    method: str,
    url: str | bytes,
    headers: HeadersLike | None,
    body: str | bytes | None,
    wallet: Wallet,
    *,
    created: int | Literal[False] | None = None,
    expires: int | None = None,
    label: str | None = None,
) -> dict[str, str]:
    """The request's headers plus ``content-digest``, ``signature-input`` and ``signature``.

    Args:
        method: the HTTP method.
        url: absolute URL or ``/path?query``; signed as httpx will send it.
        headers: the headers to send (all are covered, except transport ones: see the
            module docs).  Existing ``signature``/``signature-input`` entries are kept and
            the new signature is added beside them.
        body: the exact body bytes to send (``str`` is sent as UTF-8), or ``None``.
        wallet: the signer.
        created: signing time (Unix seconds); ``None`` = now; ``False`` = omit.
        expires: optional Unix time after which verifiers refuse the signature.
        label: signature label; default ``comm-<lower-cased commitment ID>``.

    Returns:
        A new ``dict`` with lower-cased header names, ready for ``httpx`` (pass the same
        ``body`` as ``content=``).

    Raises:
        InvalidMessage: a header value cannot be signed (non-ASCII, CR/LF), a given
            ``content-digest`` does not match the body, or the URL is malformed.
    """
    if not isinstance(wallet, Wallet):
        raise InvalidMessage(f"sign_request needs an hbeam.Wallet, got {type(wallet).__name__}")
    target = _normalise_target(url)
    fields = _field_lines(headers or {})
    data = _body_bytes(body)
    if data:
        digest = content_digest(data)
        given = fields.get(_CONTENT_DIGEST)
        if given is None:
            fields[_CONTENT_DIGEST] = [digest]
        elif not _digest_matches(", ".join(given), data):
            raise InvalidMessage("the content-digest header does not match the body")
    names = sorted(n for n in fields if n not in _UNSIGNED_FIELDS)
    params: dict[str, str | int] = {"alg": wallet.alg}
    if created is None:
        params["created"] = int(time.time())
    elif created is not False:
        params["created"] = int(created)
    if expires is not None:
        params["expires"] = int(expires)
    params["keyid"] = wallet.keyid
    inner = _signature_params([*REQUIRED_COMPONENTS, *names], params)
    try:
        base = _base(method, _split_target(target), fields, inner)
    except InvalidSignature as exc:
        raise InvalidMessage(f"cannot sign the request: {exc}") from exc
    signature = wallet.sign(base)
    name = label or "comm-" + commitment_id(signature).lower()
    sig_inputs = _parse_dictionary(fields.pop(_SIGNATURE_INPUT, []), _SIGNATURE_INPUT)
    sigs = _parse_dictionary(fields.pop(_SIGNATURE, []), _SIGNATURE)
    sig_inputs[name] = inner
    sigs[name] = Item(signature)
    out = {n: ", ".join(v) for n, v in fields.items()}
    out[_SIGNATURE_INPUT] = str(sig_inputs)
    out[_SIGNATURE] = str(sigs)
    return out


def _parse_dictionary(values: Sequence[str], name: str) -> Dictionary:
    parsed = Dictionary()
    if not values:
        return parsed
    try:
        parsed.parse(", ".join(values).encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidSignature(f"the {name} header is not a structured-field dictionary") from exc
    return parsed


def _digest_matches(header: str, data: bytes) -> bool:
    parsed = Dictionary()
    try:
        parsed.parse(header.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False
    known = [(alg, member) for alg, member in parsed.items() if alg in _DIGESTS]
    if not known:
        return False
    for alg, member in known:
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            return False
        if member.value != _DIGESTS[alg](data).digest():
            return False
    return True


# --- verification -----------------------------------------------------------------------


def is_signed(headers: HeadersLike) -> bool:
    """Whether the request carries a ``signature-input`` header (signed or claiming to be)."""
    return _SIGNATURE_INPUT in _field_lines(headers)


def verify_request_details(
    method: str,
    target: str | bytes,
    headers: HeadersLike,
    body: str | bytes | None,
    *,
    max_age: float | None = None,
    now: float | None = None,
) -> VerifiedRequest:
    """Verify every signature of a received request; see the module docs for the rules.

    Args:
        method: the HTTP method received.
        target: the raw request target (``/path?query`` exactly as received, e.g. ASGI
            ``raw_path`` plus ``?`` and ``query_string``; not percent-decoded), or the
            absolute URL.
        headers: the received headers (mapping or pairs; names in any case).
        body: the received body bytes.
        max_age: refuse signatures whose ``created`` is older than this many seconds
            (or missing); ``None`` = no age limit.
        now: the current Unix time (default ``time.time()``).

    Raises:
        InvalidSignature: unsigned, malformed, unknown ``alg`` or keyid, a required
            component not covered, a bad content digest, expired, or a signature that does
            not verify.  The message names the signature label and the problem.
    """
    fields = _field_lines(headers)
    if _SIGNATURE_INPUT not in fields:
        raise InvalidSignature("the request is not signed (no signature-input header)")
    if _SIGNATURE not in fields:
        raise InvalidSignature("the request has a signature-input header but no signature")
    inputs = _parse_dictionary(fields[_SIGNATURE_INPUT], _SIGNATURE_INPUT)
    sigs = _parse_dictionary(fields[_SIGNATURE], _SIGNATURE)
    if not inputs:
        raise InvalidSignature("the signature-input header is empty")
    for label in sigs:
        if label not in inputs:
            raise InvalidSignature(f"signature {label!r} has no signature-input entry")
    data = _body_bytes(body)
    split = _split_target(target)
    clock = time.time() if now is None else now
    results = [
        _verify_one(
            label, inputs[label], sigs.get(label), method, split, fields, data, max_age, clock
        )
        for label in inputs
    ]
    return VerifiedRequest(tuple(results))


def verify_request(
    method: str,
    target: str | bytes,
    headers: HeadersLike,
    body: str | bytes | None,
    *,
    max_age: float | None = None,
    now: float | None = None,
) -> str:
    """The verified signer's address (the first signature's), or ``InvalidSignature``.

    Same rules and arguments as :func:`verify_request_details`.
    """
    return verify_request_details(method, target, headers, body, max_age=max_age, now=now).signer


def _verify_one(
    label: str,
    inner: Any,
    sig_item: Any,
    method: str,
    target: tuple[str, str, str],
    fields: Mapping[str, list[str]],
    data: bytes,
    max_age: float | None,
    now: float,
) -> RequestSignature:
    where = f"signature {label!r}"
    if sig_item is None:
        raise InvalidSignature(f"{where} is declared in signature-input but missing")
    if not isinstance(inner, InnerList):
        raise InvalidSignature(f"{where}: its signature-input entry is not a component list")
    if not isinstance(sig_item, Item) or not isinstance(sig_item.value, bytes):
        raise InvalidSignature(f"{where}: the signature is not a byte sequence")
    covered = tuple(str(item.value) for item in inner)
    for required in REQUIRED_COMPONENTS:
        if required not in covered:
            raise InvalidSignature(f"{where} does not cover the required component {required}")
    if data and _CONTENT_DIGEST not in covered:
        raise InvalidSignature(f"{where} does not cover the body (no content-digest component)")
    if _CONTENT_DIGEST in covered:
        given = fields.get(_CONTENT_DIGEST)
        if given is None:
            raise InvalidSignature(f"{where} covers content-digest but the header is missing")
        if not _digest_matches(", ".join(given), data):
            raise InvalidSignature(f"{where}: bad content-digest (the body was altered)")
    params = inner.params
    alg = params.get("alg")
    if alg is None:
        raise InvalidSignature(f"{where} has no alg parameter")
    if alg not in ALGORITHMS:
        raise InvalidSignature(
            f"{where} uses unknown alg {alg!r} (expected one of {sorted(ALGORITHMS)})"
        )
    keyid = params.get("keyid")
    if not isinstance(keyid, str):
        raise InvalidSignature(f"{where} has no keyid parameter")
    try:
        public = PublicKey.from_keyid(keyid, alg)
    except WalletError as exc:
        raise InvalidSignature(f"{where}: unusable keyid: {exc.message}") from exc
    created = params.get("created")
    if created is not None and (not isinstance(created, int) or isinstance(created, bool)):
        raise InvalidSignature(f"{where}: created is not an integer")
    expires = params.get("expires")
    if expires is not None:
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise InvalidSignature(f"{where}: expires is not an integer")
        if now > expires:
            raise InvalidSignature(f"{where} expired at {expires}")
    if max_age is not None:
        if created is None:
            raise InvalidSignature(f"{where} has no created time and a maximum age is required")
        if now - created > max_age:
            raise InvalidSignature(f"{where} is too old (created {created}, limit {max_age}s)")
    if created is not None and created > now + _CLOCK_SKEW:
        raise InvalidSignature(f"{where} was created in the future ({created})")
    try:
        base = _base(method, target, fields, inner)
    except InvalidSignature as exc:
        raise InvalidSignature(f"{where}: {exc.message}") from exc
    if not public.verify(base, sig_item.value):
        raise InvalidSignature(
            f"{where} does not verify (bad signature: a covered component was altered)"
        )
    return RequestSignature(
        label=label,
        signer=public.address,
        keyid=keyid,
        alg=alg,
        commitment_id=commitment_id(sig_item.value),
        covered=covered,
        created=created,
    )
