"""HTML views of messages for browsers: collapsible tables, IDs as links, error pages.

Everything that reaches a page goes through :func:`html.escape` (keys, values, paths,
error texts), so a message cannot inject markup.  Pages are self-contained (inline CSS, no
JavaScript: nested maps collapse with ``<details>``), and bounded: past
:data:`MAX_ENTRIES` entries per map or :data:`MAX_DEPTH` levels a note says what was left
out, so a huge state never produces an unbounded page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "dashboard",
    "error_page",
    "message_page",
    "page",
    "render",
]

MAX_DEPTH: Final = 40
"""Nesting levels rendered before a map is summarised."""
MAX_ENTRIES: Final = 2000
"""Entries of one map or list rendered before the rest is summarised."""
_MAX_TEXT: Final = 20_000
_OPEN_LEVELS: Final = 2  # nested maps this deep start expanded

_ID = re.compile(r"[A-Za-z0-9_-]{43}\Z")

_CSS: Final = """
:root { color-scheme: light dark; --fg: #1d2330; --bg: #fbfbfd; --mute: #6b7280;
  --line: #d9dce3; --key: #3a4a8c; --num: #0b7a53; --accent: #6c4ad0; --err: #b42318; }
@media (prefers-color-scheme: dark) { :root { --fg: #e5e7eb; --bg: #14161c; --mute: #9ca3af;
  --line: #2e323c; --key: #a5b4fc; --num: #6ee7b7; --accent: #c4b5fd; --err: #fca5a5; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
header { padding: .7rem 1.2rem; border-bottom: 1px solid var(--line); display: flex;
  gap: 1rem; align-items: baseline; flex-wrap: wrap; }
header .brand { font-weight: 700; color: var(--accent); text-decoration: none; }
header .path { font-family: ui-monospace, monospace; word-break: break-all; color: var(--mute); }
main { padding: 1rem 1.2rem 2rem; }
h1 { font-size: 1.15rem; margin: 0 0 .8rem; }
h2 { font-size: 1rem; margin: 1.4rem 0 .5rem; }
table.msg { border-collapse: collapse; margin: .2rem 0; min-width: 16rem; }
table.msg th, table.msg td { border: 1px solid var(--line); padding: .25rem .55rem;
  vertical-align: top; text-align: left; }
table.msg th { font-weight: 600; color: var(--key); font-family: ui-monospace, monospace;
  white-space: nowrap; }
td.value { font-family: ui-monospace, monospace; word-break: break-all; }
.num { color: var(--num); }
.lit { color: var(--accent); }
.mute { color: var(--mute); font-style: italic; }
details > summary { cursor: pointer; color: var(--mute); }
pre { margin: 0; white-space: pre-wrap; }
ol.list { margin: 0; padding-left: 1.6rem; }
.error { border-left: 4px solid var(--err); padding: .4rem .9rem; }
.error h1 { color: var(--err); }
a { color: var(--accent); }
"""


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _link(ident: str) -> str:
    return f'<a href="/{_esc(ident)}" class="id">{_esc(ident)}</a>'


def _text(value: str) -> str:
    if _ID.match(value):
        return _link(value)
    shown = value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT]
    more = (
        f' <span class="mute">… {len(value) - _MAX_TEXT:,} more characters</span>'
        if len(value) > _MAX_TEXT
        else ""
    )
    if "\n" in shown:
        return f"<pre>{_esc(shown)}</pre>{more}"
    return _esc(shown) + more


def _bytes(value: bytes) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        preview = value[:64].hex(" ")
        suffix = " …" if len(value) > 64 else ""
        return (
            f'<span class="mute">{len(value):,} bytes</span> <code>{_esc(preview)}{suffix}</code>'
        )
    return _text(text)


def _public_items(msg: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in msg.items() if not str(k).lower().startswith("priv")]


def _map(msg: Mapping[str, Any], depth: int) -> str:
    items = _public_items(msg)
    if not items:
        return '<span class="mute">(empty message)</span>'
    if depth >= MAX_DEPTH:
        return f'<span class="mute">({len(items)} keys, nested too deeply to show)</span>'
    rows = []
    for key, value in items[:MAX_ENTRIES]:
        key_html = _link(key) if _ID.match(key) else _esc(key)
        rows.append(
            f'<tr><th>{key_html}</th><td class="value">{_value(value, depth + 1)}</td></tr>'
        )
    if len(items) > MAX_ENTRIES:
        rows.append(
            f'<tr><td colspan="2" class="mute">… {len(items) - MAX_ENTRIES:,} more keys</td></tr>'
        )
    return '<table class="msg">' + "".join(rows) + "</table>"


def _list(values: list[Any], depth: int) -> str:
    if not values:
        return '<span class="mute">(empty list)</span>'
    if depth >= MAX_DEPTH:
        return f'<span class="mute">({len(values)} items, nested too deeply to show)</span>'
    items = "".join(f"<li>{_value(v, depth + 1)}</li>" for v in values[:MAX_ENTRIES])
    more = (
        f'<li class="mute">… {len(values) - MAX_ENTRIES:,} more items</li>'
        if len(values) > MAX_ENTRIES
        else ""
    )
    return f'<ol class="list">{items}{more}</ol>'


def _value(value: Any, depth: int) -> str:
    if isinstance(value, Mapping):
        inner = _map(value, depth)
        if depth == 0 or not value:
            return inner
        count = len(_public_items(value))
        opened = " open" if depth <= _OPEN_LEVELS else ""
        return f"<details{opened}><summary>{count} keys</summary>{inner}</details>"
    if isinstance(value, (list, tuple)):
        inner = _list(list(value), depth)
        if depth == 0 or not value:
            return inner
        opened = " open" if depth <= _OPEN_LEVELS else ""
        return f"<details{opened}><summary>{len(value)} items</summary>{inner}</details>"
    if isinstance(value, bool):
        return f'<span class="lit">{"true" if value else "false"}</span>'
    if value is None:
        return '<span class="lit">null</span>'
    if isinstance(value, (int, float)):
        return f'<span class="num">{_esc(value)}</span>'
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes(bytes(value))
    return _esc(repr(value))


def render(value: Any) -> str:
    """An HTML fragment showing ``value``: maps as tables (nested ones collapsible), lists
    as numbered lists, 43-character IDs as links to ``/<ID>``; private keys are left out."""
    return _value(value, 0)


def page(title: str, body_html: str, *, path: str | None = None) -> str:
    """A complete HTML document around an already-escaped ``body_html`` fragment."""
    crumb = f'<span class="path">{_esc(path)}</span>' if path else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        '<header><a class="brand" href="/~hyperbuddy@1.0/dashboard">hbeam</a>'
        f"{crumb}</header><main>{body_html}</main></body></html>\n"
    )


def message_page(value: Any, *, path: str | None = None, title: str | None = None) -> str:
    """A page showing one message (or any value) as :func:`render` draws it."""
    heading = title or ("Message" if isinstance(value, Mapping) else "Value")
    return page(
        f"{heading} · hbeam",
        f"<h1>{_esc(heading)}</h1>{render(value)}",
        path=path,
    )


def error_page(status: int, error: Mapping[str, Any], *, path: str | None = None) -> str:
    """A readable page for an error body ``{"error", "message", "path", "detail"}``."""
    name = str(error.get("error", "Error"))
    message = str(error.get("message", ""))
    detail = error.get("detail")
    extra = ""
    if isinstance(detail, Mapping) and detail:
        extra = "<h2>Detail</h2>" + render(detail)
    body = f'<div class="error"><h1>{status} · {_esc(name)}</h1><p>{_esc(message)}</p></div>{extra}'
    return page(f"{status} {name} · hbeam", body, path=path)


def dashboard(info: Mapping[str, Any], processes: Iterable[tuple[str, int]]) -> str:
    """The node's front page: its info and its processes with links to their views."""
    rows = []
    for pid, slot in processes:
        p = _esc(pid)
        rows.append(
            f'<tr><th><a href="/{p}~process@1.0/now">{p}</a></th>'
            f'<td class="value"><span class="num">{slot}</span></td>'
            f'<td class="value"><a href="/{p}~process@1.0/now/cache/balances">balances</a> · '
            f'<a href="/{p}~process@1.0/slot">slot</a> · '
            f'<a href="/{p}~process@1.0/events">events</a></td></tr>'
        )
    table = (
        '<table class="msg"><tr><th>process</th><th>slot</th><th>views</th></tr>'
        + "".join(rows)
        + "</table>"
        if rows
        else '<p class="mute">No processes yet: POST a definition to /spawn.</p>'
    )
    body = "<h1>hbeam node</h1><h2>Processes</h2>" + table + "<h2>Node</h2>" + render(info)
    return page("hbeam node", body, path="/")
