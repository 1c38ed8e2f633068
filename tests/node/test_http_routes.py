"""Quick unit tests of the HTTP layer through httpx's ASGITransport (no socket)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hbeam.errors import InvalidMessage, InvalidPath, NotFound
from hbeam.node import Node, codec
from hbeam.node.app import create_app, guard
from hbeam.path import parse_request


@pytest.mark.parametrize(
    ("accept", "codec_name", "expected"),
    [
        (None, None, "default"),
        ("*/*", None, "default"),
        ("application/json", None, "json"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, "html"),
        ("application/json;q=0.5, text/html", None, "html"),
        ("application/vnd.api+json", None, "json"),
        ("text/html", "json@1.0", "json"),
        (None, "hyperbuddy@1.0", "html"),
        ("application/json", "httpsig@1.0", "default"),
    ],
)
def test_choose_format(
    backend: ModuleType, accept: str | None, codec_name: str | None, expected: str
) -> None:
    assert codec.choose_format(accept, codec_name) == expected


def test_decode_body(backend: ModuleType) -> None:
    assert codec.decode_body(b"", "application/json") == {}
    assert codec.decode_body(b'{"a": 1, "b": [1, 2]}', "application/json") == {"a": 1, "b": [1, 2]}
    assert codec.decode_body(b'{"a": 1}', None) == {"a": 1}
    assert codec.decode_body(b"[1]", "application/json") == {"body": [1]}
    assert codec.decode_body(b"a=1&b=x+y", "application/x-www-form-urlencoded") == {
        "a": "1",
        "b": "x y",
    }
    assert codec.decode_body(b"hello", "text/plain") == {"body": "hello"}
    assert codec.decode_body(b"\xff\xfe", "application/octet-stream") == {"body": b"\xff\xfe"}
    with pytest.raises(InvalidMessage, match="not valid JSON"):
        codec.decode_body(b"{", "application/json")
    with pytest.raises(InvalidMessage, match="empty key"):
        codec.decode_body(b'{"": 1}', "application/json")


def test_request_globals_drop_unsigned_headers(backend: ModuleType) -> None:
    headers = [("Accept", "a"), ("X-Tag", "1"), ("x-tag", "2"), ("Content-Length", "3")]
    assert codec.request_globals("get", headers, {"k": "v", "path": "/no"}) == {
        "accept": "a",
        "x-tag": "1, 2",
        "method": "GET",
        "k": "v",
    }
    signed = codec.request_globals("post", headers, {}, covered=frozenset({"x-tag"}))
    assert signed == {"x-tag": "1, 2", "method": "POST"}


def test_encode_result(backend: ModuleType) -> None:
    msg = backend.Message({"n": 1, "s": "text", "big": {"x": 1}, "device": "d@1.0"})
    as_json = codec.encode_result(msg, "json")
    assert as_json.body == b'{"big":{"x":1},"n":1,"s":"text"}'
    default = codec.encode_result(msg, "default")
    assert default.headers["n"] == "1" and default.headers["s"] == "text"
    assert default.headers["ao-types"] == 'n="integer"' and "device" not in default.headers
    assert codec.encode_result(7, "default").body == b"7"
    rendered = codec.encode_result({"content-type": "text/x", "body": "raw", "status": 201}, "json")
    assert (rendered.status, rendered.body, rendered.media_type) == (201, b"raw", "text/x")
    page = codec.encode_result(msg, "html")
    assert page.media_type.startswith("text/html") and b"<table" in page.body
    status, body = codec.error_body(RuntimeError("secret"), "/p")
    assert status == 500 and "secret" not in str(body)


def test_guard(backend: ModuleType) -> None:
    pid = "P" * 43
    known = {pid}

    def check(path: str) -> None:
        guard(parse_request(path, {"accept": "x"}), known.__contains__)

    check(f"/{pid}~process@1.0/now/cache")
    check(f"/{pid}/now")
    check("/~meta@1.0/info")
    for bad in (
        f"/{pid}~process@1.0/schedule",
        f"/{pid}/x/(a/push)",
        "/~process@1.0/now",
        f"/{pid}/x/now~process@1.0",
        "/~scheduler@1.0/slot",
        "/a&b+resolve=~process@1.0/x",
    ):
        with pytest.raises(InvalidPath):
            check(bad)
    with pytest.raises(NotFound):
        check("/" + "Q" * 43 + "~process@1.0/now")


def test_routes_over_asgi_transport(backend: ModuleType, tmp_path: Path) -> None:
    async def run(app: Any) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
            r = await http.get("/healthz")
            assert r.json() == {"status": "ok"} and r.headers["access-control-allow-origin"] == "*"
            r = await http.get("/~meta@1.0/info", headers={"accept": "application/json"})
            assert r.json()["require-signed"] is False
            r = await http.post("/spawn", json={"execution-device": "no-such@1.0"})
            assert r.status_code == 500 and r.json()["detail"]["device"] == "no-such@1.0"
            r = await http.get("/~hyperbuddy@1.0/dashboard")
            assert r.status_code == 200 and "No processes yet" in r.text
            r = await http.get("/~hyperbuddy@1.0/nothing")
            assert r.status_code == 404

    with Node(f"lmdb:{tmp_path / 'node'}", require_signed=False) as node:
        asyncio.run(run(create_app(node)))
