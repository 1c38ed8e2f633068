"""``hyperbuddy@1.0`` — HTML views for browsers (HyperBEAM's viewer device, hbeam's pages).

Keys:

``format``     the base as an HTML page (``{"content-type": "text/html…", "body": …}``):
               nested maps as collapsible tables, 43-character IDs as links; the base's
               ``device`` and private keys are left out.  [SEED≠HB] HyperBEAM's ``format``
               returns indented plain text; seed 000 expects a page to look at.
``dashboard``  the node's front page (``GET /`` redirects here): its info and processes.
``index``      the same page.

Any other key is not found (HyperBEAM's viewer answers 404 for unknown files).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hbeam import _core
from hbeam.node import html

__all__ = ["dashboard", "format", "index", "info"]

HTML_TYPE = "text/html; charset=utf-8"
_MAX_LISTED = 500

info = {"exports": ["format", "dashboard", "index"], "volatile": ["dashboard", "index"]}


def _page(body: str) -> Any:
    return _core.impl.Message({"content-type": HTML_TYPE, "body": body})


def format(base: Any) -> Any:
    """The base as an HTML page."""
    shown = base
    if isinstance(base, Mapping) and "device" in base:
        shown = {k: v for k, v in base.items() if k != "device"}
    return _page(html.message_page(shown, title="Message"))


def dashboard(base: Any, req: Any, opts: Any) -> Any:
    """The node's front page: what :func:`hbeam.devices.meta.info` says, and its processes."""
    from hbeam.devices import meta

    node = (opts or {}).get("node")
    details = meta.node_info(node)
    processes: list[tuple[str, int]] = []
    if node is not None:
        for pid in node.store.list("processes")[:_MAX_LISTED]:
            processes.append((pid, node.scheduler.current(pid)))
    return _page(html.dashboard(details, processes))


def index(base: Any, req: Any, opts: Any) -> Any:
    """The same page as :func:`dashboard`."""
    return dashboard(base, req, opts)
