"""The HTML views: escaping, ID links, collapsible maps — and the page in headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam import device
from hbeam.node import Node, html
from hbeam.node.server import BackgroundServer

ALICE = "A" * 42 + "a"
BOB = "vh-NTHVvlKZqRxc8LyyTNok65yQ55a_PJ1zWLb9G2JI"


class Balances:
    def init(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("cache", {"balances": {ALICE: "990000", BOB: "10000"}})

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        return base


device.register("test-html-balances@1.0", Balances())


def test_render_escapes_and_links(backend: ModuleType) -> None:
    msg = backend.Message(
        {
            "<script>": "<img src=x onerror=alert(1)>",
            "owner": ALICE,
            "nested": {"deeper": {"deepest": {"leaf": 1}}},
            "list": [1, "two", {"three": 3}],
            "flag": True,
            "none": None,
            "blob": b"\xff\x00\x01",
            "text": "line one\nline two",
            "priv": {"secret": "hidden"},
        }
    )
    page = html.message_page(msg, path="/x?<y>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert f'<a href="/{ALICE}" class="id">{ALICE}</a>' in page
    assert "<details open><summary>1 keys</summary>" in page  # nested maps collapse
    assert "<details><summary>1 keys</summary>" in page  # …closed past two levels
    assert '<ol class="list">' in page and "3 bytes" in page and "<pre>" in page
    assert "secret" not in page and "&lt;y&gt;" in page


def test_render_is_bounded(backend: ModuleType) -> None:
    big = {f"k{i:05}": i for i in range(html.MAX_ENTRIES + 10)}
    page = html.render(big)
    assert "… 10 more keys" in page and "k02009" not in page
    deep: Any = "leaf"
    for _ in range(html.MAX_DEPTH + 5):
        deep = {"d": deep}
    assert "nested too deeply to show" in html.render(deep)


def test_error_page_escapes(backend: ModuleType) -> None:
    page = html.error_page(
        404, {"error": "NotFound", "message": "no <b>key</b>", "detail": {"key": "<k>"}}
    )
    assert "404 · NotFound" in page and "&lt;b&gt;" in page and "&lt;k&gt;" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_balances_page_in_headless_chromium(backend: ModuleType, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (the Makefile's test set-up installs it)")
    with Node(f"lmdb:{tmp_path / 'node'}") as node, BackgroundServer(node) as srv:
        pid = node.spawn({"execution-device": "test-html-balances@1.0"})
        url = f"{srv.url}/{pid}~process@1.0/now/cache/balances/format~hyperbuddy@1.0"
        shot = tmp_path / "balances.png"
        done = subprocess.run(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=1100,600",
                f"--screenshot={shot}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    # the DOM has the balances table: each address (a link to itself) beside its balance
    assert "<table" in dom
    assert f'<th><a href="/{ALICE}" class="id">{ALICE}</a></th><td class="value">990000</td>' in dom
    assert f'<a href="/{BOB}" class="id">{BOB}</a></th><td class="value">10000</td>' in dom
    assert shot.is_file() and shot.stat().st_size > 1000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
