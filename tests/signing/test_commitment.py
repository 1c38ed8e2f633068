"""Commitments on messages: sign, verify, tamper, committers, signed IDs."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pytest
from hbeam import commitment as C
from hbeam.errors import InvalidMessage, InvalidSignature
from hbeam.wallet import Wallet, b64url_decode

TRANSFER: dict[str, Any] = {
    "Action": "Transfer",
    "Recipient": "x" * 43,
    "Quantity": "100",
    "count": 3,
    "ratio": 0.5,
    "flag": True,
    "none": None,
    "raw": b"\x00\xff",
    "tags": ["a", 1, {"k": "v"}],
    "nested": {"deep": {"x": "y"}, "n": 1},
    "body": "hello body",
    "path": "/schedule",
    "weird": " spaced ",
    "colon": ":abc:",
    "text": "héllo",
}


def _only(msg: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    (cid, commitment), *rest = msg["commitments"].items()
    assert not rest
    return cid, commitment


def _flip(text: str) -> str:
    """The base64url text with its first character changed."""
    return ("B" if text[0] != "B" else "C") + text[1:]


def _tampered_values(value: Any) -> list[Any]:
    """Different values of several types (incl. the same text as bytes, for non-body)."""
    out: list[Any] = ["other", 4, b"other", None, ["x"], {"x": 1}]
    if isinstance(value, str):
        out.append(value + "!")
        out.append(value.encode())
    if isinstance(value, bool):
        out.append(not value)
        out.append(int(value))
    elif isinstance(value, int):
        out.append(value + 1)
        out.append(float(value))
    return [v for v in out if not (type(v) is type(value) and v == value)]


def test_commit_shape(backend: ModuleType, wallet_a: Wallet) -> None:
    msg = backend.Message(TRANSFER)
    signed = C.commit(msg, wallet_a)
    assert isinstance(signed, Mapping) and hasattr(signed, "remove")
    cid, c = _only(signed)
    assert c["commitment-device"] == "httpsig@1.0"
    assert c["type"] == c["alg"] == "rsa-pss-sha512"
    assert c["keyid"] == wallet_a.keyid and c["keyid"].startswith("publickey:")
    assert c["committer"] == wallet_a.address
    assert c["committed"] == sorted(TRANSFER, key=C._component_name)
    assert c["committed"][:3] == ["Action", "Quantity", "Recipient"]  # %41…, %51…, %52…
    signature = b64url_decode(c["signature"])
    assert len(signature) == 512
    assert cid == base64.urlsafe_b64encode(hashlib.sha256(signature).digest()).rstrip(b"=").decode()
    assert "tag" not in c
    # the message itself is unchanged apart from `commitments`, and so is its unsigned ID
    assert signed.remove("commitments") == msg
    assert C.unsigned_id(signed) == backend.id(msg) == C.unsigned_id(TRANSFER)


def test_round_trip(backend: ModuleType, wallet_a: Wallet, wallet_ed: Wallet) -> None:
    for wallet in (wallet_a, wallet_ed):
        signed = C.commit(TRANSFER, wallet)
        assert C.verify(signed)
        assert C.check(signed) == [wallet.address]
        assert C.committers(signed) == [wallet.address]
        assert C.committed_keys(signed) == sorted(TRANSFER, key=lambda k: k.encode())
        assert set(_only(signed)[1]["committed"]) == set(TRANSFER)
        # a plain-dict copy of the signed message verifies too
        assert C.verify(signed.to_dict())


def test_unsigned_message(backend: ModuleType) -> None:
    msg = backend.Message({"a": "b"})
    assert not C.verify(msg)
    assert C.check(msg) == []
    assert C.committers(msg) == []
    assert C.committed_keys(msg) == []
    assert C.signed_id(msg) == backend.id(msg)
    assert C.with_only_committed(msg) == msg
    assert not C.verify(backend.Message({"a": "b", "commitments": {}}))


def test_tampering_with_any_committed_key_fails(backend: ModuleType, wallet_a: Wallet) -> None:
    signed = C.commit(TRANSFER, wallet_a)
    for key, value in TRANSFER.items():
        for other in _tampered_values(value):
            if key == "body" and other == value.encode():
                continue  # a body is signed by its bytes (see test_body_str_and_bytes_sign_alike)
            bad = signed.set(key, other)
            assert not C.verify(bad), (key, other)
            assert C.committers(bad) == [], (key, other)
            with pytest.raises(InvalidSignature, match="does not verify"):
                C.check(bad)
        removed = signed.remove(key)
        assert not C.verify(removed), key
        with pytest.raises(InvalidSignature, match=f"{key!r} is missing"):
            C.check(removed)


def test_tampering_inside_nested_values_fails(backend: ModuleType, wallet_ed: Wallet) -> None:
    signed = C.commit(TRANSFER, wallet_ed)
    assert not C.verify(signed.set("nested/deep/x", "z"))
    assert not C.verify(signed.set("nested/extra", 1))
    assert not C.verify(signed.set("tags", ["a", 1, {"k": "w"}]))
    # private keys are never part of a message's content, nested or not
    assert C.verify(signed.set("nested/priv-note", "ignored"))


def test_body_str_and_bytes_sign_alike(backend: ModuleType, wallet_ed: Wallet) -> None:
    signed = C.commit({"body": "abc", "x": "1"}, wallet_ed)
    assert C.verify(signed.set("body", b"abc"))  # same bytes on the wire
    assert not C.verify(signed.set("body", "abd"))
    assert not C.verify(signed.set("body", {"abc": "x"}))
    # for any other key the type is signed
    other = C.commit({"data": "abc"}, wallet_ed)
    assert not C.verify(other.set("data", b"abc"))


def test_uncommitted_keys_are_not_covered(backend: ModuleType, wallet_a: Wallet) -> None:
    signed = C.commit(TRANSFER, wallet_a, committed=["Action", "Quantity"])
    _, c = _only(signed)
    assert c["committed"] == ["Action", "Quantity"]
    extra = signed.set("From", "someone-else").set("Recipient", "changed")
    assert C.verify(extra)  # only Action and Quantity are covered
    assert C.committed_keys(extra) == ["Action", "Quantity"]
    reduced = C.with_only_committed(extra)
    assert sorted(reduced.keys()) == ["Action", "Quantity", "commitments"]
    assert C.verify(reduced)
    assert not C.verify(signed.set("Quantity", "1"))


def test_commit_argument_errors(backend: ModuleType, wallet_ed: Wallet) -> None:
    with pytest.raises(InvalidMessage, match="'missing' is missing"):
        C.commit({"a": "1"}, wallet_ed, committed=["missing"])
    with pytest.raises(InvalidMessage, match="private or reserved"):
        C.commit({"a": "1", "priv": {"x": 1}}, wallet_ed, committed=["priv"])
    with pytest.raises(InvalidMessage, match="private or reserved"):
        C.commit({"a": "1"}, wallet_ed, committed=["commitments"])
    with pytest.raises(InvalidMessage, match="content-digest"):
        C.commit({"body": "x", "content-digest": "sha-256=:AA==:"}, wallet_ed)
    with pytest.raises(InvalidMessage, match="list of keys"):
        C.commit({"a": "1"}, wallet_ed, committed="a")
    with pytest.raises(InvalidMessage, match="Wallet"):
        C.commit({"a": "1"}, "not a wallet")  # type: ignore[arg-type]
    with pytest.raises(InvalidMessage, match="commitments"):
        C.commit({"a": "1", "commitments": "x"}, wallet_ed)
    with pytest.raises(InvalidMessage, match="Mapping"):
        C.commit(["a"], wallet_ed)  # type: ignore[arg-type]


def test_private_keys_are_not_committed(backend: ModuleType, wallet_ed: Wallet) -> None:
    msg = backend.Message({"a": "1", "priv": {"hashpath": "h" * 43 + "/a"}, "private": "p"})
    signed = C.commit(msg, wallet_ed)
    _, c = _only(signed)
    assert c["committed"] == ["a"]
    # like HyperBEAM, a hash path in priv becomes the signed `tag` parameter
    assert c["tag"] == "h" * 43 + "/a"
    assert C.verify(signed)
    forged_tag = signed.set(["commitments", _only(signed)[0], "tag"], "other")
    assert not C.verify(forged_tag)


def test_signature_base_format(backend: ModuleType, wallet_a: Wallet) -> None:
    """Plain-text values are written as HyperBEAM writes them; others as typed bytes."""
    msg = {"Action": "Eval", "path": "/x", "body": "hi", "n": 5, "colon": ":a:", "co": "c"}
    signed = C.commit(msg, wallet_a)
    _, c = _only(signed)
    base = C.signature_base(signed, c).decode()
    n_text = base64.b64encode(backend.encode(5)).decode()
    colon_text = base64.b64encode(backend.encode(":a:")).decode()
    digest = base64.b64encode(hashlib.sha256(b"hi").digest()).decode()
    assert base == (
        '"%41ction": Eval\n'
        '"co": c\n'
        f'"colon": :{colon_text}:\n'
        f'"content-digest": sha-256=:{digest}:\n'
        f'"n": :{n_text}:\n'
        '"path": /x\n'
        '"@signature-params": ("%41ction" "co" "colon" "content-digest" "n" "@path")'
        f';alg="rsa-pss-sha512";keyid="{wallet_a.keyid}"'
    )
    assert wallet_a.verify(base.encode(), b64url_decode(c["signature"]))


def test_forged_from_is_not_a_committer(
    backend: ModuleType, wallet_a: Wallet, wallet_b: Wallet
) -> None:
    """A message signed by A that claims `From: B` is committed by A, and only A."""
    signed = C.commit({"Action": "Transfer", "From": wallet_b.address}, wallet_a)
    assert C.verify(signed)
    assert C.committers(signed) == [wallet_a.address]
    assert wallet_b.address not in C.committers(signed)


def test_forging_the_commitment_fails(
    backend: ModuleType, wallet_a: Wallet, wallet_b: Wallet
) -> None:
    signed = C.commit(TRANSFER, wallet_a)
    cid, c = _only(signed)

    def with_field(field: str, value: Any) -> Any:
        return signed.set(["commitments", cid, field], value)

    cases = {
        "committer": (with_field("committer", wallet_b.address), "not the owner of its keyid"),
        "keyid": (with_field("keyid", wallet_b.keyid), "not the owner of its keyid"),
        "keyid+committer": (
            with_field("keyid", wallet_b.keyid).set(
                ["commitments", cid, "committer"], wallet_b.address
            ),
            "does not match the message",
        ),
        "signature": (with_field("signature", _flip(c["signature"])), "SHA-256 of its signature"),
        "committed": (with_field("committed", ["Action"]), "does not match the message"),
        "type": (with_field("type", "hmac-sha256"), "not supported"),
        "alg": (with_field("alg", "ed25519"), "contradicts"),
        "device": (with_field("commitment-device", "ans104@1.0"), "httpsig@1.0"),
        "keyid scheme": (with_field("keyid", "constant:ao"), "keyid is unusable"),
        "no signature": (signed.remove(f"commitments/{cid}/signature"), "no signature"),
        "not a map": (signed.set(["commitments", cid], "x"), "not a message"),
    }
    for name, (bad, reason) in cases.items():
        assert not C.verify(bad), name
        assert C.committers(bad) == [], name
        with pytest.raises(InvalidSignature, match=reason):
            C.check(bad)


def test_signature_moved_to_another_id_fails(backend: ModuleType, wallet_a: Wallet) -> None:
    signed = C.commit(TRANSFER, wallet_a)
    cid, c = _only(signed)
    other_id = C.accumulate_ids([cid, cid])
    moved = signed.set("commitments", {other_id: c})
    assert not C.verify(moved)
    with pytest.raises(InvalidSignature, match="SHA-256 of its signature"):
        C.check(moved)


def test_recomputed_signature_by_another_wallet(
    backend: ModuleType, wallet_a: Wallet, wallet_b: Wallet
) -> None:
    """Replacing A's signature with B's (same content, B's keyid) yields committer B."""
    signed_a = C.commit(TRANSFER, wallet_a)
    resigned = C.commit(signed_a.remove("commitments"), wallet_b)
    assert C.committers(resigned) == [wallet_b.address]


def test_two_commitments(backend: ModuleType, wallet_a: Wallet, wallet_ed: Wallet) -> None:
    msg = backend.Message({"Action": "Vote", "n": 1})
    ab = C.commit(C.commit(msg, wallet_a), wallet_ed)
    assert C.verify(ab)
    ids = sorted(ab["commitments"].keys())
    assert len(ids) == 2
    assert sorted(C.committers(ab)) == sorted([wallet_a.address, wallet_ed.address])
    assert set(C.check(ab)) == {wallet_a.address, wallet_ed.address}
    # the signed ID is the sum of the commitment IDs mod 2^256: order-independent
    total = sum(int.from_bytes(b64url_decode(i), "big") for i in ids) % (1 << 256)
    expected = base64.urlsafe_b64encode(total.to_bytes(32, "big")).rstrip(b"=").decode()
    assert C.signed_id(ab) == expected
    comms = ab["commitments"]
    reversed_order = msg.set("commitments", {i: comms[i] for i in reversed(ids)})
    assert C.signed_id(reversed_order) == C.signed_id(ab)
    assert C.verify(reversed_order)
    # each commitment alone: the signed ID is that commitment's ID
    for one in ids:
        alone = msg.set("commitments", {one: comms[one]})
        assert C.verify(alone)
        assert C.signed_id(alone) == one
    assert C.signed_id(ab) not in ids
    assert C.signed_id(ab) != C.unsigned_id(ab)
    # a bad second commitment makes the message fail, but the good signer still counts
    bad = ab.set(["commitments", ids[0], "committed"], ["n"])
    assert not C.verify(bad)
    assert len(C.committers(bad)) == 1
    with pytest.raises(InvalidSignature, match=ids[0]):
        C.check(bad)


def test_signed_ids_differ_per_signature(backend: ModuleType, wallet_ed: Wallet) -> None:
    """Two signatures over equal content have different signed IDs only if they differ."""
    one = C.commit({"a": "1"}, wallet_ed)
    two = C.commit({"a": "1"}, wallet_ed)  # Ed25519 is deterministic
    assert C.signed_id(one) == C.signed_id(two)
    assert C.signed_id(C.commit({"a": "2"}, wallet_ed)) != C.signed_id(one)


def test_malformed_commitments_container(backend: ModuleType) -> None:
    bad = backend.Message({"a": "1", "commitments": "nope"})
    assert not C.verify(bad)
    with pytest.raises(InvalidMessage, match="commitments"):
        C.check(bad)
    with pytest.raises(InvalidMessage, match="commitments"):
        C.signed_id(bad)
    with pytest.raises(InvalidMessage, match="43-character"):
        C.signed_id(backend.Message({"a": "1", "commitments": {"short": {}}}))
    assert not C.verify("not a message")  # type: ignore[arg-type]


def test_accumulate_ids() -> None:
    zero = "A" * 43
    assert C.accumulate_ids([]) == zero
    one = base64.urlsafe_b64encode((1).to_bytes(32, "big")).rstrip(b"=").decode()
    top = base64.urlsafe_b64encode(((1 << 256) - 1).to_bytes(32, "big")).rstrip(b"=").decode()
    assert C.accumulate_ids([one, top]) == zero  # wraps mod 2^256
    assert C.accumulate_ids([one]) == one


def test_escape_key() -> None:
    assert C.escape_key("Action") == "%41ction"
    assert C.escape_key("a-b_c.d/e?f&g+h") == "a-b_c.d/e?f&g+h"
    assert C.escape_key('a b"é') == "a%20b%22%c3%a9"
    assert C.content_digest(b'{"hello": "world"}') == (
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )
