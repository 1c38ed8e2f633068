"""HyperBEAM's singleton HTTP path grammar (``hb_singleton:from``): :func:`parse_request`.

The grammar is specified exactly in ``docs/core-contract.md`` ("The HTTP path language");
``rust/src/request.rs`` is the native twin and must agree with this module down to the
text of every :class:`~hbeam.errors.InvalidPath` message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hbeam.errors import InvalidPath

__all__ = ["MAX_INT_DIGITS", "MAX_NESTING", "MAX_SEGMENT_BYTES", "parse_request"]

MAX_SEGMENT_BYTES = 512
# Sub-paths (`(…)` segments, `+resolve` values) may nest this deep; a bound keeps the
# recursion finite on hostile input (a query can nest `?k+resolve=…?k+resolve=…` cheaply).
MAX_NESTING = 32
# Below Python's smallest settable int_max_str_digits (640), so int() never refuses.
MAX_INT_DIGITS = 600
_SHOW_CHARS = 100

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_TYPES = frozenset({"integer", "float", "binary", "atom", "list", "map", "resolve"})
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_ALPHA = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TOKEN_START = _ALPHA | {"*"}
_TOKEN_CHARS = _ALPHA | _DIGITS | frozenset("!#$%&'*+-.^_`|~:/")
_KEY_CHARS = _ALPHA | _DIGITS | frozenset("_-.*")
_OWS = frozenset(" \t")
_INTEGER = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SCOPED = re.compile(r"([0-9]+)\.(.+)", re.DOTALL)

Item = Any  # str | dict | tuple ("as", dev, str | dict) | tuple ("resolve", list)


class _Fail(Exception):
    """Internal: a parse failure; ``detail`` says what and where (no path prefix)."""

    def __init__(self, detail: str, context: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context  # the outermost sub-path it happened in, if any

    def message(self) -> str:
        return f"{self.detail} ({self.context})" if self.context else self.detail


class _SfError(Exception):
    """Internal: structured-field syntax error at char offset ``pos``."""

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.pos = pos


def parse_request(path: str, globals: Mapping[str, Any] | None = None) -> list[Any]:
    """Parse an HTTP request path into ``[base, step1, step2, …]`` (core contract).

    ``globals`` are the singleton's other keys; query keys are applied over them and the
    result is merged into the implicit base, plain segments and ``~dev`` casts.

    Raises:
        InvalidPath: the path (or ``globals``) is malformed; the message says where.
    """
    if not isinstance(path, str):
        raise InvalidPath(f"request path must be a str, not {type(path).__name__}")
    if not path.isascii():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPath(
                "request path is not valid Unicode: it contains a lone surrogate"
            ) from None
    base_globals = _read_globals(globals)
    try:
        return _parse(path, base_globals, 0)
    except _Fail as exc:
        raise InvalidPath(f"bad request path '{_show(path)}': {exc.message()}") from None


def _read_globals(globals: Mapping[str, Any] | None) -> dict[str, Any]:
    if globals is None:
        return {}
    if not isinstance(globals, Mapping):
        raise InvalidPath(f"globals must be a mapping, not {type(globals).__name__}")
    out: dict[str, Any] = {}
    for key, value in globals.items():
        if not isinstance(key, str):
            raise InvalidPath(f"globals key {key!r} must be a str, not {type(key).__name__}")
        if not key.isascii():
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidPath(f"globals key {key!r} is not valid Unicode") from None
        out[key] = value
    return out


def _show(text: str) -> str:
    """``text`` for an error message, shortened past 100 chars."""
    if len(text) <= _SHOW_CHARS:
        return text
    return text[: _SHOW_CHARS - 3] + "..."


def _parse(path: str, globals: dict[str, Any], depth: int) -> list[Item]:
    if depth > MAX_NESTING:
        raise _Fail(f"sub-paths nested deeper than {MAX_NESTING} levels")
    path_part, has_query, query = path.partition("?")
    if has_query:
        globals = dict(globals)
        _parse_query(query, globals, depth)
    scoped: list[tuple[str, int, str, Any]] = []
    for key in globals:
        if key[:1] in _DIGITS:
            match = _SCOPED.fullmatch(key)
            if match is not None:
                digits = match.group(1)
                index = int(digits) if len(digits) <= 18 else -1
                scoped.append((key, index, match.group(2), globals[key]))
    if scoped:
        globals = dict(globals)
        for key, _, _, _ in scoped:
            del globals[key]

    items: list[Item] = []
    for number, segment in enumerate(_split_path(path_part), 1):
        size = len(segment) if segment.isascii() else len(segment.encode("utf-8"))
        if size > MAX_SEGMENT_BYTES:
            raise _Fail(f"segment {number} is {size} bytes (limit {MAX_SEGMENT_BYTES})")
        item, is_base = _segment(segment, number, globals, depth)
        if number == 1 and not is_base:
            items.append(dict(globals))
        items.append(item)
    if not items:
        items.append(dict(globals))

    for key, index, name, value in scoped:
        target = items[index] if 0 <= index < len(items) else None
        if isinstance(target, dict):
            target[name] = value
        elif isinstance(target, tuple) and target[0] == "as" and isinstance(target[2], dict):
            target[2][name] = value
        else:
            raise _Fail(f"scoped key '{_show(key)}' names no path segment")
    return items


def _parse_query(query: str, globals: dict[str, Any], depth: int) -> None:
    where = "in the query"
    for raw in query.split("&"):
        if not raw:
            continue
        raw_key, has_value, raw_value = raw.partition("=")
        key = _percent_decode(raw_key.replace("+", " "), where)
        value: str | bool = (
            _percent_decode(raw_value.replace("+", " "), where) if has_value else True
        )
        if not key:
            raise _Fail(f"empty key in '{_show(raw)}' {where}")
        name, typed = _typed(key, value, where, depth)
        globals[name] = typed


def _split_path(path: str) -> list[str]:
    """Non-empty ``/``-separated segments outside parentheses; checks the balance."""
    if "(" not in path and ")" not in path:
        return [s for s in path.split("/") if s]
    segments: list[str] = []
    depth = 0
    opened = 0
    start = 0
    for index, char in enumerate(path):
        if char == "(":
            if depth == 0:
                opened = index
            depth += 1
        elif char == ")":
            if depth == 0:
                raise _Fail(f"unbalanced parenthesis at {index}")
            depth -= 1
        elif char == "/" and depth == 0:
            if index > start:
                segments.append(path[start:index])
            start = index + 1
    if depth:
        raise _Fail(f"unbalanced parenthesis at {opened}")
    if len(path) > start:
        segments.append(path[start:])
    return segments


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` outside parentheses (``text`` is balanced)."""
    if "(" not in text:
        return text.split(sep)
    parts: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _wholly_parenthesised(segment: str) -> bool:
    if segment[0] != "(" or segment[-1] != ")":
        return False
    depth = 0
    for index, char in enumerate(segment):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index == len(segment) - 1
    return False


def _is_id(text: str) -> bool:
    return len(text) == 43 and _ID_CHARS.issuperset(text)


def _segment(segment: str, number: int, globals: dict[str, Any], depth: int) -> tuple[Item, bool]:
    """One path segment as ``(item, is_base)``."""
    first = number == 1
    where = f"in segment {number}"
    if _wholly_parenthesised(segment):
        try:
            inner = _parse(segment[1:-1], {}, depth + 1)
        except _Fail as exc:
            raise _Fail(exc.detail, f"in the sub-path of segment {number}") from None
        return ("resolve", inner), False

    head, *raw_params = _split_top(segment, "&")
    head = _percent_decode(head, where)
    params: dict[str, Any] = {}
    for raw in raw_params:
        if not raw:
            continue
        raw_key, has_value, raw_value = raw.partition("=")
        key = _percent_decode(raw_key, where)
        value: str | bool = _percent_decode(raw_value, where) if has_value else True
        if not key:
            raise _Fail(f"empty key in '{_show(raw)}' {where}")
        name, typed = _typed(key, value, where, depth)
        params[name] = typed

    if _is_id(head):
        if first:
            if params:
                raise _Fail("parameters on an ID segment")
            return head, True
        return {"path": head, **params}, False
    if "~" in head:
        key, dev = head.split("~", 1)
        if not dev:
            raise _Fail(f"empty device name {where}")
        if "~" in dev:
            raise _Fail(f"device name '{_show(dev)}' contains '~' {where}")
        if first and _is_id(key):
            if params:
                raise _Fail("parameters on an ID segment")
            return ("as", dev, key), True
        if not key:
            if first:
                return {**globals, "device": dev, **params}, True
            return ("as", dev, {**globals, **params}), False
        return ("as", dev, {"path": key, **params}), False
    return {**globals, "path": head, **params}, False


def _percent_decode(text: str, where: str) -> str:
    """``%XX`` escapes decoded (the result must be UTF-8); nothing else changes."""
    if "%" not in text:
        return text
    pieces = text.split("%")
    out = bytearray(pieces[0].encode("utf-8"))
    for piece in pieces[1:]:
        pair = piece[:2]
        if len(pair) != 2 or not _HEX.issuperset(pair):
            raise _Fail(f"bad percent-escape '%{pair}' {where}")
        out.append(int(pair, 16))
        out += piece[2:].encode("utf-8")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise _Fail(f"percent-decoded text is not UTF-8 {where}") from None


def _typed(key: str, value: str | bool, where: str, depth: int) -> tuple[str, Any]:
    """``key`` split into ``name+type`` (or ``name type``) and ``value`` cast to it."""
    plus = key.find("+")
    space = key.find(" ")
    cut = space if plus < 0 or (0 <= space < plus) else plus
    if cut < 0:
        return key, value
    name, kind = key[:cut], key[cut + 1 :]
    if not name:
        raise _Fail(f"empty key name in typed key '{_show(key)}' {where}")
    if kind not in _TYPES:
        raise _Fail(f"unknown type '{_show(kind)}' in key '{_show(key)}' {where}")
    if not isinstance(value, str):
        raise _Fail(f"typed key '{_show(key)}' has no value {where}")
    bad = f"bad {kind} value '{_show(value)}' for key '{_show(name)}' {where}"
    if kind == "binary":
        return name, value
    if kind == "atom":
        return name, True if value == "true" else False if value == "false" else value
    if kind == "integer":
        digits = len(value) - value.startswith("-")
        if digits > MAX_INT_DIGITS or _INTEGER.fullmatch(value) is None:
            raise _Fail(bad)
        return name, int(value)
    if kind == "float":
        if _FLOAT.fullmatch(value) is None:
            raise _Fail(bad)
        number = float(value)
        if number in (float("inf"), float("-inf")):
            raise _Fail(bad)
        return name, number
    if kind == "resolve":
        try:
            return name, ("resolve", _parse(value, {}, depth + 1))
        except _Fail as exc:
            raise _Fail(exc.detail, f"in the value of '{_show(key)}' {where}") from None
    try:
        return name, _sf_list(value) if kind == "list" else _sf_dict(value)
    except _SfError as exc:
        raise _Fail(f"{bad} (at {exc.pos})") from None


# --- RFC 8941 structured fields (the subset the contract names) -----------------------


def _skip_ows(text: str, index: int) -> int:
    while index < len(text) and text[index] in _OWS:
        index += 1
    return index


def _sf_list(text: str) -> list[Any]:
    out: list[Any] = []
    index = _skip_ows(text, 0)
    if index == len(text):
        return out
    while True:
        item, index = _sf_item(text, index)
        out.append(item)
        index = _skip_ows(text, index)
        if index == len(text):
            return out
        if text[index] != ",":
            raise _SfError(index)
        index = _skip_ows(text, index + 1)
        if index == len(text):
            raise _SfError(index)


def _sf_dict(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    index = _skip_ows(text, 0)
    if index == len(text):
        return out
    while True:
        end = index
        while end < len(text) and text[end] in _KEY_CHARS:
            end += 1
        if end == index:
            raise _SfError(index)
        key = text[index:end]
        item: Any = True
        if end < len(text) and text[end] == "=":
            item, end = _sf_item(text, end + 1)
        out[key] = item
        index = _skip_ows(text, end)
        if index == len(text):
            return out
        if text[index] != ",":
            raise _SfError(index)
        index = _skip_ows(text, index + 1)
        if index == len(text):
            raise _SfError(index)


def _sf_item(text: str, index: int) -> tuple[Any, int]:
    """One bare item at ``index``: ``(value, index after it)``."""
    if index >= len(text):
        raise _SfError(index)
    char = text[index]
    if char == '"':
        chars: list[str] = []
        pos = index + 1
        while pos < len(text):
            char = text[pos]
            if char == "\\":
                escaped = text[pos + 1 : pos + 2]
                if escaped not in ('"', "\\"):
                    raise _SfError(pos)
                chars.append(escaped)
                pos += 2
            elif char == '"':
                return "".join(chars), pos + 1
            else:
                chars.append(char)
                pos += 1
        raise _SfError(pos)
    if char == "-" or char in _DIGITS:
        start = index
        if char == "-":
            index += 1
        end = index
        while end < len(text) and text[end] in _DIGITS:
            end += 1
        whole = end - index
        if whole == 0:
            raise _SfError(start)
        if end < len(text) and text[end] == ".":
            stop = end + 1
            while stop < len(text) and text[stop] in _DIGITS:
                stop += 1
            fraction = stop - end - 1
            if whole > 12 or not 1 <= fraction <= 3:
                raise _SfError(start)
            return float(text[start:stop]), stop
        if whole > 15:
            raise _SfError(start)
        return int(text[start:end]), end
    if char == "?":
        flag = text[index + 1 : index + 2]
        if flag == "1":
            return True, index + 2
        if flag == "0":
            return False, index + 2
        raise _SfError(index)
    if char in _TOKEN_START:
        end = index + 1
        while end < len(text) and text[end] in _TOKEN_CHARS:
            end += 1
        return text[index:end], end
    raise _SfError(index)
