"""RFC 9421 request signatures: the RFC's own vector, round trips and every tampering."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from hbeam import httpsig as H
from hbeam.commitment import commitment_id
from hbeam.errors import AOError, InvalidMessage, InvalidSignature
from hbeam.wallet import Wallet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# RFC 9421 Appendix B.1.4 (Ed25519 test key) and B.2.6 (signing a request with it).
RFC_ED25519_PEM = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""
RFC_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Digest": "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIi"
    "Yllu7BNNyealdVLvRwEmTHWXvJwew==:",
    "Content-Length": "18",
}
RFC_B26_BASE = (
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    '"@method": POST\n'
    '"@path": /foo\n'
    '"@authority": example.com\n'
    '"content-type": application/json\n'
    '"content-length": 18\n'
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
    '"content-length");created=1618884473;keyid="test-key-ed25519"'
)
RFC_B26_SIGNATURE = (
    "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
)

BODY = b'{"Action": "Transfer", "Quantity": "100"}'
HEADERS = {"Content-Type": "application/json", "Action": "Transfer", "Recipient": "r" * 43}
URL = "http://127.0.0.1:8734/PID~process@1.0/schedule?slot+integer=3"
TARGET = "/PID~process@1.0/schedule?slot+integer=3"


def test_rfc9421_b26_vector() -> None:
    key = serialization.load_pem_private_key(RFC_ED25519_PEM, password=None)
    wallet = Wallet(key)  # type: ignore[arg-type]
    base = H.signature_base(
        "POST",
        "/foo?param=Value&Pet=dog",
        RFC_HEADERS,
        ["date", "@method", "@path", "@authority", "content-type", "content-length"],
        {"created": 1618884473, "keyid": "test-key-ed25519"},
    )
    assert base.decode() == RFC_B26_BASE
    signature = wallet.sign(base)
    assert base64.b64encode(signature).decode() == RFC_B26_SIGNATURE
    assert wallet.verify(base, base64.b64decode(RFC_B26_SIGNATURE))


def test_derived_components() -> None:
    fields: dict[str, str] = {"Host": "Example.COM"}
    params: dict[str, str | int] = {}
    comps = ["@method", "@path", "@query", "@request-target", "@authority"]
    text = H.signature_base("get", "/a/b?x=1&y", fields, comps, params).decode()
    assert text.splitlines()[:5] == [
        '"@method": GET',
        '"@path": /a/b',
        '"@query": ?x=1&y',
        '"@request-target": /a/b?x=1&y',
        '"@authority": example.com',
    ]
    base = H.signature_base("GET", "https://h:8/?", {}, ["@path", "@query", "@authority"], {})
    assert base.decode().splitlines()[:3] == ['"@path": /', '"@query": ?', '"@authority": h:8']
    base = H.signature_base("GET", "", {}, ["@path", "@query"], {})
    assert base.decode().splitlines()[:2] == ['"@path": /', '"@query": ?']
    with pytest.raises(InvalidSignature, match="not supported"):
        H.signature_base("GET", "/", {}, ["@target-uri"], {})
    with pytest.raises(InvalidSignature, match="missing"):
        H.signature_base("GET", "/", {}, ["x-absent"], {})
    with pytest.raises(InvalidSignature, match="twice"):
        H.signature_base("GET", "/", {}, ["@path", "@path"], {})
    # repeated fields are joined with ", " and trimmed (RFC 9421 §2.1)
    base = H.signature_base("GET", "/", [("X-A", " 1 "), ("x-a", "2")], ["x-a"], {})
    assert base.decode().splitlines()[0] == '"x-a": 1, 2'


@pytest.fixture(params=["wallet_a", "wallet_ed"])
def signer(request: pytest.FixtureRequest) -> Wallet:
    wallet: Wallet = request.getfixturevalue(request.param)
    return wallet


def test_round_trip(signer: Wallet) -> None:
    signed = H.sign_request("POST", URL, HEADERS, BODY, signer)
    assert {"content-digest", "signature-input", "signature"} <= set(signed)
    assert signed["action"] == "Transfer"
    digest = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert signed["content-digest"] == f"sha-256=:{digest}:"
    assert H.verify_request("POST", TARGET, signed, BODY) == signer.address
    details = H.verify_request_details("POST", TARGET, signed, BODY)
    (sig,) = details.signatures
    assert sig.alg == signer.alg and sig.keyid == signer.keyid
    assert sig.covered[:3] == ("@method", "@path", "@query")
    assert details.covered == {"action", "recipient", "content-type", "content-digest"}
    assert sig.label == "comm-" + sig.commitment_id.lower()
    assert details.signers == (signer.address,)
    assert isinstance(sig.created, int) and abs(sig.created - time.time()) < 120
    # the absolute URL verifies the same way as the bare target
    assert H.verify_request("POST", URL, signed, BODY) == signer.address
    assert H.verify_request("POST", TARGET.encode(), list(signed.items()), BODY) == signer.address


def test_str_body_and_no_body(wallet_ed: Wallet) -> None:
    signed = H.sign_request("POST", "/x", {}, "héllo", wallet_ed)
    assert H.verify_request("POST", "/x", signed, "héllo".encode()) == wallet_ed.address
    get = H.sign_request("GET", "/now", None, None, wallet_ed)
    assert "content-digest" not in get
    assert H.verify_request("GET", "/now", get, None) == wallet_ed.address
    assert H.verify_request("GET", "/now", get, b"") == wallet_ed.address
    with pytest.raises(InvalidSignature, match="does not cover the body"):
        H.verify_request("GET", "/now", get, b"smuggled")


def _fails(match: str, method: str, target: str, headers: Any, body: bytes | None) -> None:
    with pytest.raises(InvalidSignature, match=match) as info:
        H.verify_request(method, target, headers, body)
    assert isinstance(info.value, AOError)
    assert info.value.http_status == 400


def test_tampering_fails(signer: Wallet) -> None:
    signed = H.sign_request("POST", URL, HEADERS, BODY, signer)
    bad_sig = "bad signature"
    _fails("bad content-digest", "POST", TARGET, signed, BODY + b" ")
    _fails("bad content-digest", "POST", TARGET, signed, None)
    _fails(bad_sig, "POST", TARGET.replace("PID", "PIE"), signed, BODY)
    _fails(bad_sig, "POST", TARGET.replace("=3", "=4"), signed, BODY)
    _fails(bad_sig, "POST", TARGET + "&From=me", signed, BODY)
    _fails(bad_sig, "PUT", TARGET, signed, BODY)
    _fails(bad_sig, "POST", TARGET, {**signed, "action": "Mint"}, BODY)
    _fails(bad_sig, "POST", TARGET, [*signed.items(), ("action", "Mint")], BODY)
    _fails("'recipient' is missing", "POST", TARGET, _without(signed, "recipient"), BODY)
    # a body swapped together with a matching digest still fails: the digest is signed
    new_digest = H.sign_request("POST", URL, {}, b"other", signer)["content-digest"]
    _fails(bad_sig, "POST", TARGET, {**signed, "content-digest": new_digest}, b"other")
    # signature bytes altered
    label, _, value = signed["signature"].partition("=")
    raw = bytearray(base64.b64decode(value.strip(":")))
    raw[10] ^= 1
    flipped = f"{label}=:{base64.b64encode(bytes(raw)).decode()}:"
    _fails(bad_sig, "POST", TARGET, {**signed, "signature": flipped}, BODY)


def test_uncovered_headers_are_reported_not_trusted(wallet_ed: Wallet) -> None:
    signed = H.sign_request("POST", URL, HEADERS, BODY, wallet_ed)
    extra = {**signed, "from": "someone", "host": "127.0.0.1:8734", "content-length": "41"}
    details = H.verify_request_details("POST", TARGET, extra, BODY)
    assert "from" not in details.covered and "host" not in details.covered
    assert details.signer == wallet_ed.address


def test_query_cannot_be_added_to_a_query_less_request(wallet_ed: Wallet) -> None:
    signed = H.sign_request("GET", "/PID/now", {}, None, wallet_ed)
    assert H.verify_request("GET", "/PID/now", signed, None) == wallet_ed.address
    _fails("bad signature", "GET", "/PID/now?From=me", signed, None)


def test_other_wallets_key_fails(wallet_a: Wallet, wallet_b: Wallet) -> None:
    signed = H.sign_request("POST", URL, HEADERS, BODY, wallet_a)
    forged = signed["signature-input"].replace(wallet_a.keyid, wallet_b.keyid)
    _fails("bad signature", "POST", TARGET, {**signed, "signature-input": forged}, BODY)


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


def _input_with(signed: dict[str, str], old: str, new: str) -> dict[str, str]:
    assert old in signed["signature-input"]
    return {**signed, "signature-input": signed["signature-input"].replace(old, new)}


def test_malformed_and_incomplete_signatures(wallet_ed: Wallet) -> None:
    signed = H.sign_request("POST", URL, HEADERS, BODY, wallet_ed)
    _fails("not signed", "POST", TARGET, _without(signed, "signature-input"), BODY)
    _fails("no signature", "POST", TARGET, _without(signed, "signature"), BODY)
    _fails("not a structured-field", "POST", TARGET, {**signed, "signature-input": "(("}, BODY)
    _fails("not a structured-field", "POST", TARGET, {**signed, "signature": "x=="}, BODY)
    _fails(
        "unknown alg 'hs2019'",
        "POST",
        TARGET,
        _input_with(signed, 'alg="ed25519"', 'alg="hs2019"'),
        BODY,
    )
    _fails("no alg", "POST", TARGET, _input_with(signed, 'alg="ed25519";', ""), BODY)
    _fails("no keyid", "POST", TARGET, _input_with(signed, f';keyid="{wallet_ed.keyid}"', ""), BODY)
    _fails("unusable keyid", "POST", TARGET, _input_with(signed, wallet_ed.keyid, "secret:x"), BODY)
    _fails("required component @query", "POST", TARGET, _input_with(signed, ' "@query"', ""), BODY)
    _fails(
        "required component @method", "POST", TARGET, _input_with(signed, '"@method" ', ""), BODY
    )
    _fails(
        "does not cover the body",
        "POST",
        TARGET,
        _input_with(signed, ' "content-digest"', ""),
        BODY,
    )
    label = signed["signature"].split("=")[0]
    _fails(
        "has no signature-input entry",
        "POST",
        TARGET,
        {**signed, "signature": signed["signature"] + ", other=:AAAA:"},
        BODY,
    )
    _fails(
        "missing",
        "POST",
        TARGET,
        {**signed, "signature-input": signed["signature-input"] + ', other=("@method")'},
        BODY,
    )
    _fails("byte sequence", "POST", TARGET, {**signed, "signature": f'{label}="text"'}, BODY)
    _fails(
        "not a component list", "POST", TARGET, {**signed, "signature-input": f"{label}=1"}, BODY
    )


def test_time_limits(wallet_ed: Wallet) -> None:
    now = 1_700_000_000
    signed = H.sign_request("GET", "/x", {}, None, wallet_ed, created=now, expires=now + 60)
    assert H.verify_request("GET", "/x", signed, None, now=now + 10) == wallet_ed.address
    with pytest.raises(InvalidSignature, match="expired"):
        H.verify_request("GET", "/x", signed, None, now=now + 61)
    with pytest.raises(InvalidSignature, match="too old"):
        H.verify_request("GET", "/x", signed, None, now=now + 30, max_age=10)
    with pytest.raises(InvalidSignature, match="in the future"):
        H.verify_request("GET", "/x", signed, None, now=now - 3600)
    undated = H.sign_request("GET", "/x", {}, None, wallet_ed, created=False)
    assert "created" not in undated["signature-input"]
    assert H.verify_request("GET", "/x", undated, None) == wallet_ed.address
    with pytest.raises(InvalidSignature, match="no created time"):
        H.verify_request("GET", "/x", undated, None, max_age=10)


def test_two_signatures(wallet_a: Wallet, wallet_ed: Wallet) -> None:
    first = H.sign_request("POST", URL, HEADERS, BODY, wallet_a)
    both = H.sign_request("POST", URL, first, BODY, wallet_ed)
    details = H.verify_request_details("POST", TARGET, both, BODY)
    assert details.signers == (wallet_a.address, wallet_ed.address)
    assert details.signer == wallet_a.address
    ids = [s.commitment_id for s in details.signatures]
    assert len(set(ids)) == 2
    assert details.commitment_id == ids[0]
    # the first signature does not cover the second's headers, and survives it
    assert H.verify_request("POST", TARGET, first, BODY) == wallet_a.address


def test_sign_request_errors(wallet_ed: Wallet) -> None:
    with pytest.raises(InvalidMessage, match="content-digest header does not match"):
        H.sign_request("POST", "/x", {"Content-Digest": "sha-256=:AAAA:"}, b"body", wallet_ed)
    with pytest.raises(InvalidMessage, match="cannot sign"):
        H.sign_request("POST", "/x", {"X-Bad": "a\nb"}, None, wallet_ed)
    with pytest.raises(InvalidMessage, match="cannot sign"):
        H.sign_request("POST", "/x", {"X-Bad": "é"}, None, wallet_ed)
    with pytest.raises(InvalidMessage, match="bytes or str"):
        H.sign_request("POST", "/x", {}, 5, wallet_ed)  # type: ignore[arg-type]
    with pytest.raises(InvalidMessage, match="Wallet"):
        H.sign_request("POST", "/x", {}, None, None)  # type: ignore[arg-type]
    ok = H.sign_request(
        "POST",
        "/x",
        {"Content-Digest": H.sign_request("POST", "/x", {}, b"b", wallet_ed)["content-digest"]},
        b"b",
        wallet_ed,
    )
    assert H.verify_request("POST", "/x", ok, b"b") == wallet_ed.address
    assert H.is_signed(ok) and not H.is_signed({"a": "b"})


# --- over a real socket: httpx client → uvicorn/Starlette node ---------------------------


async def _verify_endpoint(request: Request) -> JSONResponse:
    target = request.scope["raw_path"]
    if request.scope["query_string"]:
        target += b"?" + request.scope["query_string"]
    body = await request.body()
    try:
        details = H.verify_request_details(request.method, target, request.headers, body)
    except InvalidSignature as exc:
        return JSONResponse(exc.to_json(), status_code=exc.http_status)
    return JSONResponse({"signer": details.signer, "covered": sorted(details.covered)})


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/{rest:path}", _verify_endpoint, methods=["GET", "POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.parametrize(
    "path",
    [
        "/PID~process@1.0/schedule",
        "/~meta@1.0/info?x=1&y+integer=2",
        "/a b/(c/d)&k=v w?q=é",
        "/",
    ],
)
def test_over_http(node_url: str, wallet_ed: Wallet, path: str) -> None:
    url = node_url + path
    with httpx.Client() as client:
        headers = H.sign_request("POST", url, HEADERS, BODY, wallet_ed)
        answer = client.post(url, headers=headers, content=BODY)
        assert answer.status_code == 200, answer.text
        assert answer.json()["signer"] == wallet_ed.address
        assert "action" in answer.json()["covered"]
        assert "user-agent" not in answer.json()["covered"]
        tampered = client.post(url, headers=headers, content=BODY + b"!")
        assert tampered.status_code == 400
        assert tampered.json()["error"] == "InvalidSignature"
        assert "content-digest" in tampered.json()["message"]
        forged = client.post(url, headers={**headers, "action": "Mint"}, content=BODY)
        assert forged.status_code == 400
        assert "does not verify" in forged.json()["message"]


def test_commitment_id_matches_signature(wallet_ed: Wallet) -> None:
    signed = H.sign_request("GET", "/x", {}, None, wallet_ed)
    raw = base64.b64decode(signed["signature"].split("=:", 1)[1].rstrip(":"))
    assert H.verify_request_details("GET", "/x", signed, None).commitment_id == commitment_id(raw)
