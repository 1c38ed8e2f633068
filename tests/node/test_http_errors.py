"""Bad input over HTTP: the right status codes, JSON error bodies, no tracebacks; a fuzz."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hbeam import device
from hbeam.node import Node
from hbeam.node.app import create_app
from hbeam.node.server import BackgroundServer


class Fragile:
    """An execution device, plus a key that always fails (a genuine device failure)."""

    def init(self, base: Any, req: Any, opts: Any) -> Any:
        return base.merge(
            {"cache": {"balances": {"a" * 43: 5, "b" * 43: 7}}, "depth": {"x": {"y": 1}}}
        )

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        return base

    def explode(self, base: Any, req: Any, opts: Any) -> Any:
        raise RuntimeError("secret internal detail /etc/passwd")


device.register("test-fragile@1.0", Fragile())

ERROR_KEYS = {"error", "message", "path", "detail"}


@pytest.fixture
def served(backend: ModuleType, tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    with Node(f"lmdb:{tmp_path / 'node'}") as node:
        pid = node.spawn({"execution-device": "test-fragile@1.0"})
        app = create_app(node, require_signed=False, max_body_bytes=10 * 1024 * 1024)
        with BackgroundServer(node, app=app) as srv, httpx.Client(base_url=srv.url) as http:
            yield http, pid


def _error(response: httpx.Response, status: int, name: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS
    if name is not None:
        assert body["error"] == name
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


def test_malformed_paths_are_400(served: tuple[httpx.Client, str]) -> None:
    http, pid = served
    assert "unbalanced parenthesis" in _error(http.get("/a/(b"), 400, "InvalidPath")["message"]
    _error(http.get("/a/b)"), 400, "InvalidPath")
    _error(http.get("/a~/b"), 400, "InvalidPath")
    _error(http.get("/" + "x" * 600), 400, "InvalidPath")
    body = _error(http.get("/a&n+integer=abc"), 400, "InvalidPath")
    assert body["path"] == "/a&n+integer=abc"
    _error(http.get("/a&n+nosuchtype=1"), 400, "InvalidPath")
    # scheduling or spawning through the path language is refused
    _error(http.get(f"/{pid}~process@1.0/schedule&Action=x/slot"), 400, "InvalidPath")
    _error(http.get(f"/{pid}~process@1.0/now/schedule"), 400, "InvalidPath")
    _error(http.get("/~process@1.0&execution-device=test-fragile@1.0/now"), 400, "InvalidPath")
    _error(http.get("/now?device=process@1.0"), 400, "InvalidPath")
    _error(http.get(f"/{pid}/now~scheduler@1.0"), 400, "InvalidPath")


def test_unknown_ids_and_keys_are_404(served: tuple[httpx.Client, str]) -> None:
    http, pid = served
    ghost = "G" * 43
    assert ghost in _error(http.get(f"/{ghost}"), 404, "NotFound")["message"]
    _error(http.get(f"/{ghost}~process@1.0/now"), 404, "NotFound")
    _error(http.post(f"/{ghost}~process@1.0/schedule", json={"Action": "x"}), 404, "NotFound")
    _error(http.get(f"/{ghost}~process@1.0/events"), 404, "NotFound")
    body = _error(http.get(f"/{pid}~process@1.0/now/cache/nope"), 404, "NotFound")
    assert "'nope'" in body["message"] and body["detail"]["key"] == "nope"
    _error(http.get(f"/{pid}~process@1.0/compute&slot=99"), 404, "NotFound")


def test_invalid_json_and_bodies(served: tuple[httpx.Client, str]) -> None:
    http, pid = served
    json_type = {"content-type": "application/json"}
    _error(http.post("/spawn", content=b"{bad", headers=json_type), 400, "InvalidMessage")
    _error(http.post("/spawn", content=b"[1, 2]", headers=json_type), 400, "InvalidMessage")
    _error(http.post(f"/{pid}~process@1.0/schedule", content=b'{"a":', headers=json_type), 400)
    _error(http.post(f"/{pid}~process@1.0/schedule", json={}), 400, "InvalidMessage")
    _error(http.post(f"/{pid}~process@1.0/now", content=b"{nope", headers=json_type), 400)
    _error(http.post("/spawn", json={"name": "no execution device"}), 500, "DeviceError")
    deep: Any = "leaf"
    for _ in range(300):
        deep = {"k": deep}
    _error(http.post(f"/{pid}~process@1.0/schedule", json={"deep": deep}), 400, "InvalidMessage")


def test_bodies_over_the_limit_are_413(served: tuple[httpx.Client, str]) -> None:
    http, pid = served
    big = b"x" * (10 * 1024 * 1024 + 1)
    body = _error(http.post("/publish", content=big), 413, "InvalidMessage")
    assert "limit" in body["message"]
    _error(http.post(f"/{pid}~process@1.0/schedule", content=big), 413)

    def chunks() -> Iterator[bytes]:  # no content-length: counted while reading
        for _ in range(11):
            yield b"y" * (1024 * 1024)

    _error(http.post("/publish", content=chunks()), 413)
    ok = http.post("/publish", content=b"z" * (10 * 1024 * 1024))
    assert ok.status_code == 200 and len(ok.json()["id"]) == 43


def test_wrong_methods_are_405(served: tuple[httpx.Client, str]) -> None:
    http, pid = served
    for method, path, allowed in [
        ("GET", "/publish", "POST"),
        ("PUT", "/spawn", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", f"/{pid}~process@1.0/now", "GET, HEAD, POST"),
        ("PATCH", f"/{pid}~process@1.0/schedule", "GET, HEAD, POST"),
        ("GET", f"/{pid}~process@1.0/push", "POST"),
        ("POST", f"/{pid}~process@1.0/events", "GET"),
    ]:
        response = http.request(method, path)
        body = _error(response, 405)
        assert response.headers["allow"] == allowed and method in body["message"]


def test_device_failures_are_500_with_device_and_key(served: tuple[httpx.Client, str]) -> None:
    http, pid = served
    body = _error(http.get(f"/{pid}~process@1.0/now/explode~test-fragile@1.0"), 500, "DeviceError")
    assert body["detail"]["device"] == "test-fragile@1.0" and body["detail"]["key"] == "explode"
    _error(http.get("/~no-such-device@9.9/x"), 500, "DeviceError")
    page = http.get(
        f"/{pid}~process@1.0/now/explode~test-fragile@1.0", headers={"accept": "text/html"}
    )
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "DeviceError" in page.text and "Traceback" not in page.text
    missing = http.get("/<script>alert(1)</script>", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "<script>alert" not in missing.text


_PIECES = [
    "now", "cache", "balances", "depth", "x", "y", "slot", "compute", "current", "keys",
    "format~json@1.0", "serialize~json@1.0", "format~hyperbuddy@1.0", "~json@1.0", "id",
    "~message@1.0", "get&key=x", "set&a=1", "compute&slot=0", "compute&slot=abc", "at-slot",
    "explode~test-fragile@1.0", "deserialize~json@1.0", "remove&item=cache", "(now/cache)",
    "~meta@1.0", "info", "PID", "PID~process@1.0", "a" * 43, "%41", "%zz", "&", "=", "+",
    "k+integer=1", "k+list=1,2", "k+map=a=1", "k+float=x", "(", ")", "~", "@", "..", ".",
    "\u00e9", "%20", "a b", "1", "-1", "priv", "priv/x", "commitments", "device",
]  # fmt: skip


def test_fuzz_2000_random_paths_never_5xx_but_device_failures(
    served: tuple[httpx.Client, str],
) -> None:
    http, pid = served
    rng = random.Random(20240607)
    seen: dict[int, int] = {}
    for _ in range(2000):
        parts = [rng.choice(_PIECES).replace("PID", pid) for _ in range(rng.randint(0, 6))]
        if rng.random() < 0.3:
            parts.insert(0, f"{pid}~process@1.0")
        path = "/" + "/".join(parts)
        if rng.random() < 0.2:
            path += "?" + rng.choice(["a=1", "n+integer=2", "x", "device=message@1.0", "%"])
        accept = rng.choice(["application/json", "*/*", "text/html"])
        response = http.get(path, headers={"accept": accept})
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert "Traceback" not in response.text, path
        if response.status_code >= 500:
            assert accept == "text/html" or response.json()["error"] in (
                "DeviceError",
                "LuaError",
                "WasmError",
            ), (path, response.text)
            assert "DeviceError" in response.text, (path, response.text)
    assert seen.get(200, 0) > 100 and seen.get(404, 0) > 100 and seen.get(400, 0) > 100
