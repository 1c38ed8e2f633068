"""Commitments: signatures on messages, shaped as HyperBEAM's ``httpsig@1.0`` commitments.

A signed message carries, under its ``commitments`` key, one entry per signature, keyed by
the **commitment ID** (base64url of the SHA-256 of the raw signature bytes, 43 chars)::

    {"commitment-device": "httpsig@1.0", "type": "rsa-pss-sha512", "alg": "rsa-pss-sha512",
     "keyid": "publickey:<base64 RSA modulus>", "committer": "<43-char address>",
     "committed": ["Action", "Quantity", "Recipient", "body", ...],
     "signature": "<base64url>",
     "tag": "<hash path>"  (only when the message had priv/hashpath)}

**The signature base** (what is signed) follows RFC 9421 §2.5 the way HyperBEAM builds it
for messages: one line ``"<name>": <value>`` per committed key, in the ``committed`` order
(sorted by component name when hbeam commits, as HyperBEAM orders its encoded keys), then
a newline and ``"@signature-params": (<names>);alg="…";keyid="…"[;tag="…"]``, the
parameters sorted by name, serialised with ``http_sfv``.  Per key:

* ``<name>`` is the key percent-escaped as HyperBEAM's ``hb_escape`` does (``a-z 0-9 . - _
  / ? & +`` kept, every other UTF-8 byte ``%xx`` in lower-case hex; so ``Action`` →
  ``%41ction``).  In the parameter list (only there) the names ``method path query
  authority scheme target-uri request-target query-param`` get an ``@`` prefix, as
  HyperBEAM's ``add_derived_specifiers`` does.
* key ``body`` with a ``str``/``bytes`` value is replaced by ``content-digest`` with value
  ``sha-256=:<base64 sha-256 of the body bytes>:`` (RFC 9530), as HyperBEAM does; a ``str``
  body is hashed as UTF-8, so ``"abc"`` and ``b"abc"`` sign identically.
* a ``str`` of printable ASCII (0x20-0x7E) that neither starts with ``:`` nor starts or ends
  with a space is written as is (identical to HyperBEAM for such values);
* **every other value** (``int``, ``float``, ``bool``, ``None``, ``bytes``, lists, nested
  messages, other text) is written as an RFC 8941 byte sequence ``:<base64>:`` of hbeam's
  canonical typed encoding (``_core.impl.encode``, the bytes hbeam's IDs hash).  Raw text
  never starts with ``:``, so the two forms cannot be confused and the base is injective.

**Compatibility with HyperBEAM.**  Commitment structure, keyid form, address, RSA-PSS
parameters, commitment ID, key escaping, the ``@signature-params`` line and the ``body`` →
``content-digest`` rule are HyperBEAM's, so for a message whose committed values are all
plain ASCII text (the common aos case: ``Action``, ``Recipient``, ``Quantity`` …) the
signature base should be the one HyperBEAM computes, so HyperBEAM can verify the signature
(worked out from HyperBEAM's source; not yet checked against a running node).  Values
of other types differ: HyperBEAM writes them as TABM text plus an ``ao-types`` key and moves
nested messages into a multipart body, hbeam writes the canonical encoding.  IDs differ
always: hbeam's unsigned ID is blake3 over its canonical encoding (HyperBEAM's is an
HMAC-SHA256 commitment over the httpsig base), hbeam adds no HMAC commitment, so a signed ID
here is the accumulation of the signature commitments only.  Byte-identical IDs would need
the full TABM/httpsig conversion (ao-types, multipart bodies, links) and the HMAC
commitment.  Messages signed by HyperBEAM carry such an ``hmac-sha256`` commitment, which
hbeam does not verify, so :func:`verify` is false for them today.

Only signatures by ``publickey:`` keys with type ``rsa-pss-sha512`` or ``ed25519`` verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from http_sfv.item import InnerList, Item

from hbeam import _core
from hbeam.errors import InvalidMessage, InvalidSignature, WalletError
from hbeam.wallet import ALGORITHMS, PublicKey, Wallet, b64url_decode, b64url_encode

__all__ = [
    "COMMITMENTS",
    "COMMITMENT_DEVICE",
    "accumulate_ids",
    "check",
    "commit",
    "commitment_id",
    "committed_keys",
    "committers",
    "content_digest",
    "escape_key",
    "signature_base",
    "signed_id",
    "unsigned_id",
    "verify",
    "with_only_committed",
]

COMMITMENT_DEVICE: Final = "httpsig@1.0"
"""The ``commitment-device`` of every commitment hbeam makes or verifies."""
COMMITMENTS: Final = "commitments"
"""The message key holding the commitments."""

_DERIVED: Final = frozenset(
    {
        "method",
        "target-uri",
        "authority",
        "scheme",
        "request-target",
        "path",
        "query",
        "query-param",
    }
)
_KEEP: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789.-_/?&+")
_ID_MODULUS: Final = 1 << 256


class _Problem(Exception):
    """Internal: why one commitment does not verify (becomes ``InvalidSignature``)."""


def escape_key(key: str) -> str:
    """A key as a lower-case header-safe component name (HyperBEAM's ``hb_escape`` rules).

    >>> escape_key("Action")
    '%41ction'
    >>> escape_key("content-type")
    'content-type'
    """
    return "".join(chr(b) if b in _KEEP else f"%{b:02x}" for b in key.encode("utf-8"))


def content_digest(body: str | bytes) -> str:
    """RFC 9530 ``Content-Digest`` value of ``body``: ``sha-256=:<base64>:``."""
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return "sha-256=" + str(Item(hashlib.sha256(data).digest()))


def commitment_id(signature: bytes) -> str:
    """The ID of a commitment: base64url (no padding) of SHA-256 of the raw signature."""
    return b64url_encode(hashlib.sha256(signature).digest())


def accumulate_ids(ids: Iterable[str]) -> str:
    """HyperBEAM's ``accumulate``: the sum of 32-byte IDs mod 2²⁵⁶, as a 43-char ID.

    Order-independent; one ID accumulates to itself.

    Raises:
        InvalidMessage: an ID is not 43 characters of base64url (32 bytes).
    """
    total = 0
    for one in ids:
        total = (total + int.from_bytes(_native_id(one), "big")) % _ID_MODULUS
    return b64url_encode(total.to_bytes(32, "big"))


def _native_id(one: str) -> bytes:
    raw: bytes | None = None
    if isinstance(one, str) and len(one) == 43:
        try:
            raw = b64url_decode(one)
        except ValueError:
            raw = None
    if raw is None or len(raw) != 32:
        raise InvalidMessage(f"commitment ID {one!r} is not a 43-character base64url ID")
    return raw


def unsigned_id(msg: Mapping[str, Any]) -> str:
    """The message's ID ignoring its commitments (``_core.impl.id``: blake3, canonical)."""
    result: str = _core.impl.id(msg)
    return result


def _is_plain(text: str) -> bool:
    if not text:
        return True
    if text[0] in " :" or text[-1] == " ":
        return False
    # for ASCII text, isprintable() is exactly 0x20-0x7E
    return text.isascii() and text.isprintable()


def _component_name(key: str) -> str:
    """The name a key signs under (sort key of ``committed``; ``body`` → content-digest)."""
    return "content-digest" if key == "body" else escape_key(key)


def _value_text(value: Any) -> str:
    if isinstance(value, str) and _is_plain(value):
        return value
    encoded: bytes = _core.impl.encode(value)
    return str(Item(encoded))


def _components(msg: Mapping[str, Any], committed: Sequence[str]) -> list[tuple[str, str]]:
    """``(component name, value text)`` per committed key; raises ``_Problem``."""
    lines: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key in committed:
        if not isinstance(key, str):
            raise _Problem(f"committed key {key!r} is not a string")
        if key == COMMITMENTS or _core.impl.is_private(key):
            raise _Problem(f"key {key!r} cannot be committed (private or reserved)")
        if key not in msg:
            raise _Problem(f"committed key {key!r} is missing from the message")
        value = msg[key]
        if key == "body" and isinstance(value, (str, bytes)):
            name, text = "content-digest", content_digest(value)
        else:
            name, text = escape_key(key), _value_text(value)
        if name in seen:
            raise _Problem(f"key {key!r} and another committed key both sign as component {name!r}")
        seen.add(name)
        lines.append((name, text))
    return lines


def _params_line(names: Sequence[str], alg: str, keyid: str, tag: str | None) -> str:
    inner = InnerList()
    for name in names:
        inner.append(Item("@" + name if name in _DERIVED else name))
    params: dict[str, str] = {"alg": alg, "keyid": keyid}
    if tag is not None:
        params["tag"] = tag
    for param in sorted(params):
        inner.params[param] = params[param]
    try:
        return str(inner)
    except ValueError as exc:
        raise _Problem(f"signature parameters are not header-safe text: {exc}") from exc


def _base(
    msg: Mapping[str, Any], committed: Sequence[str], alg: str, keyid: str, tag: str | None
) -> bytes:
    lines = _components(msg, committed)
    body = "\n".join(f'"{name}": {text}' for name, text in lines)
    params = _params_line([name for name, _ in lines], alg, keyid, tag)
    # HyperBEAM always puts the newline before @signature-params, even with no components.
    return f'{body}\n"@signature-params": {params}'.encode("ascii")


def signature_base(msg: Mapping[str, Any], commitment: Mapping[str, Any]) -> bytes:
    """The bytes a commitment's signature covers (see the module docs for the format).

    Raises:
        InvalidSignature: the commitment or message cannot produce a base (a committed key
            is missing, a field is malformed).
    """
    try:
        committed, alg, keyid, tag = _commitment_fields(commitment)
        return _base(msg, committed, alg, keyid, tag)
    except _Problem as exc:
        raise InvalidSignature(str(exc)) from exc


def _as_message(msg: Mapping[str, Any]) -> Any:
    if not isinstance(msg, Mapping):
        raise InvalidMessage(f"expected a message (a Mapping), got {type(msg).__name__}")
    if callable(getattr(msg, "set", None)) and callable(getattr(msg, "remove", None)):
        return msg
    return _core.impl.Message(msg)


def _commitments_of(msg: Mapping[str, Any]) -> Mapping[str, Any]:
    comms = msg.get(COMMITMENTS)
    if comms is None:
        return {}
    if not isinstance(comms, Mapping):
        raise InvalidMessage(
            f"key 'commitments' must be a message of commitments, got {type(comms).__name__}"
        )
    return comms


def commit(
    msg: Mapping[str, Any], wallet: Wallet, *, committed: Iterable[str] | None = None
) -> Any:
    """The message with ``wallet``'s signature added under ``commitments``.

    Args:
        msg: the message (any Mapping; a plain dict becomes a Message).
        wallet: the signer.
        committed: keys to sign; default every public key except ``commitments``.  They are
            deduplicated and sorted by component name (the escaped key, ``body`` as
            ``content-digest``), which is the order HyperBEAM lists them in.

    Returns:
        A Message equal to ``msg`` plus ``commitments/<commitment ID>``.  Existing
        commitments are kept (a second signer adds a second commitment).

    Raises:
        InvalidMessage: a requested key is missing, private or ``commitments``; or ``body``
            and ``content-digest`` are both committed (they would sign as one component).
    """
    if not isinstance(wallet, Wallet):
        raise InvalidMessage(f"commit needs an hbeam.Wallet, got {type(wallet).__name__}")
    message = _as_message(msg)
    _commitments_of(message)  # validates the shape before signing
    if committed is None:
        keys = [k for k in message.keys() if k != COMMITMENTS and not _core.impl.is_private(k)]
    else:
        if isinstance(committed, (str, bytes)):
            raise InvalidMessage("committed must be a list of keys, not a single string")
        keys = [_core.impl.normalize_key(k) for k in committed]
    keys = sorted(set(keys), key=_component_name)
    hashpath = message.get_path(["priv", "hashpath"], None)
    tag = hashpath if isinstance(hashpath, str) and _is_plain(hashpath) else None
    try:
        base = _base(message, keys, wallet.alg, wallet.keyid, tag)
    except _Problem as exc:
        raise InvalidMessage(f"cannot commit: {exc}") from exc
    signature = wallet.sign(base)
    commitment: dict[str, Any] = {
        "commitment-device": COMMITMENT_DEVICE,
        "type": wallet.alg,
        "alg": wallet.alg,
        "keyid": wallet.keyid,
        "committer": wallet.address,
        "committed": keys,
        "signature": b64url_encode(signature),
    }
    if tag is not None:
        commitment["tag"] = tag
    return message.set([COMMITMENTS, commitment_id(signature)], commitment)


def _commitment_fields(
    commitment: Mapping[str, Any],
) -> tuple[list[str], str, str, str | None]:
    """``(committed, alg, keyid, tag)`` of a commitment; raises ``_Problem``."""
    if not isinstance(commitment, Mapping):
        raise _Problem(f"it is a {type(commitment).__name__}, not a message")
    device = commitment.get("commitment-device")
    if device != COMMITMENT_DEVICE:
        raise _Problem(f"its commitment-device is {device!r}; hbeam verifies only httpsig@1.0")
    alg = commitment.get("type")
    if alg not in ALGORITHMS:
        raise _Problem(f"its type {alg!r} is not supported (expected one of {sorted(ALGORITHMS)})")
    if "alg" in commitment and commitment["alg"] != alg:
        raise _Problem(f"its alg {commitment['alg']!r} contradicts its type {alg!r}")
    keyid = commitment.get("keyid")
    if not isinstance(keyid, str):
        raise _Problem("it has no keyid")
    committed = commitment.get("committed")
    if not isinstance(committed, (list, tuple)) or not all(isinstance(k, str) for k in committed):
        raise _Problem("its committed field is not a list of keys")
    if len(set(committed)) != len(committed):
        raise _Problem("its committed field lists a key twice")
    tag = commitment.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise _Problem("its tag is not text")
    return list(committed), str(alg), keyid, tag


def _verify_one(msg: Mapping[str, Any], cid: Any, commitment: Any) -> str:
    """The committer address of one valid commitment; raises ``_Problem``."""
    committed, alg, keyid, tag = _commitment_fields(commitment)
    try:
        public = PublicKey.from_keyid(keyid, alg)
    except WalletError as exc:
        raise _Problem(f"its keyid is unusable: {exc.message}") from exc
    committer = commitment.get("committer")
    if committer is not None and committer != public.address:
        raise _Problem(
            f"its committer {committer!r} is not the owner of its keyid ({public.address})"
        )
    encoded = commitment.get("signature")
    if not isinstance(encoded, str):
        raise _Problem("it has no signature")
    try:
        signature = b64url_decode(encoded)
    except ValueError as exc:
        raise _Problem("its signature is not base64url") from exc
    if cid != commitment_id(signature):
        raise _Problem("its ID is not the SHA-256 of its signature")
    base = _base(msg, committed, alg, keyid, tag)
    if not public.verify(base, signature):
        raise _Problem(
            "the signature does not match the message "
            "(a committed key, the signature or a signed parameter was altered)"
        )
    return public.address


def _results(msg: Mapping[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """``(commitment ID, committer or None, problem or None)`` in commitment-ID order."""
    out: list[tuple[str, str | None, str | None]] = []
    for cid, commitment in _commitments_of(msg).items():
        try:
            out.append((cid, _verify_one(msg, cid, commitment), None))
        except _Problem as exc:
            out.append((cid, None, str(exc)))
    return out


def check(msg: Mapping[str, Any]) -> list[str]:
    """Verify every commitment; return the committers' addresses (``[]`` if unsigned).

    The addresses are in commitment-ID order, each once.

    Raises:
        InvalidMessage: ``msg`` is not a message, or ``commitments`` is not a message.
        InvalidSignature: a commitment does not verify; the message names it and why.
    """
    if not isinstance(msg, Mapping):
        raise InvalidMessage(f"expected a message (a Mapping), got {type(msg).__name__}")
    addresses: list[str] = []
    for cid, committer, problem in _results(msg):
        if problem is not None or committer is None:
            raise InvalidSignature(f"commitment {cid} does not verify: {problem}", commitment=cid)
        if committer not in addresses:
            addresses.append(committer)
    return addresses


def verify(msg: Mapping[str, Any]) -> bool:
    """True when ``msg`` has at least one commitment and every commitment verifies.

    Tampering with any committed key, a signature, a keyid, a committer or a commitment
    ID makes it false.  Keys *not* listed in ``committed`` are not covered; use
    :func:`with_only_committed` to drop them.  Never raises.
    """
    if not isinstance(msg, Mapping):
        return False
    try:
        results = _results(msg)
    except InvalidMessage:
        return False
    return bool(results) and all(problem is None for _, _, problem in results)


def committers(msg: Mapping[str, Any]) -> list[str]:
    """Addresses of the signers whose commitments verify (invalid ones are left out).

    In commitment-ID order, each address once; ``[]`` for an unsigned message.

    Raises:
        InvalidMessage: ``msg`` is not a message, or ``commitments`` is not a message.
    """
    if not isinstance(msg, Mapping):
        raise InvalidMessage(f"expected a message (a Mapping), got {type(msg).__name__}")
    out: list[str] = []
    for _, committer, problem in _results(msg):
        if problem is None and committer is not None and committer not in out:
            out.append(committer)
    return out


def committed_keys(msg: Mapping[str, Any]) -> list[str]:
    """Keys covered by at least one valid commitment, sorted (UTF-8 byte order).

    Raises:
        InvalidMessage: ``msg`` is not a message, or ``commitments`` is not a message.
    """
    if not isinstance(msg, Mapping):
        raise InvalidMessage(f"expected a message (a Mapping), got {type(msg).__name__}")
    comms = _commitments_of(msg)
    keys: set[str] = set()
    for cid, _, problem in _results(msg):
        if problem is None:
            keys.update(comms[cid]["committed"])
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def with_only_committed(msg: Mapping[str, Any]) -> Any:
    """The message reduced to its committed keys and ``commitments`` (HyperBEAM's rule for
    signed requests: unsigned keys are dropped).  An unsigned message is returned as is.

    Raises:
        InvalidSignature: a commitment does not verify.
    """
    message = _as_message(msg)
    if not check(message):
        return message
    keep = set(committed_keys(message)) | {COMMITMENTS}
    drop = [k for k in message.keys() if k not in keep]
    return message.remove(drop) if drop else message


def signed_id(msg: Mapping[str, Any]) -> str:
    """The message's ID including its commitments.

    Unsigned: :func:`unsigned_id`.  Signed: HyperBEAM's ``accumulate`` of the commitment
    IDs (their sum mod 2²⁵⁶), so it does not depend on the order signatures were added,
    and one commitment's ID is the message's signed ID.  The commitments are not verified
    here: call :func:`check` first when it matters.

    Raises:
        InvalidMessage: ``commitments`` is malformed or a key in it is not a 43-char ID.
    """
    if not isinstance(msg, Mapping):
        raise InvalidMessage(f"expected a message (a Mapping), got {type(msg).__name__}")
    comms = _commitments_of(msg)
    if not comms:
        return unsigned_id(msg)
    return accumulate_ids(comms.keys())
