"""The flat wire codec between Python and hbeam's Lua half (the reference implementation).

``lua_encode_values``/``lua_encode_map`` turn Python values into the flat sequence of
scalars that ``python/hbeam/lua/convert.lua`` decodes; ``lua_decode_values`` rebuilds the
values ``convert.lua`` encoded. The format is described at the top of ``convert.lua``; the
conversion rules are those of :mod:`hbeam.lua.convert`, which delegates here (or to the
Rust twin in ``rust/src/luaflat.rs``, identical down to error messages).

Encoding builds the sequence with a handful of C-level ``list.extend`` calls per flat map,
and decoding rebuilds flat maps with one ``dict(zip(...))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hbeam._pure.key import MAX_DEPTH
from hbeam.errors import InvalidMessage

__all__ = ["lua_decode_values", "lua_encode_map", "lua_encode_values", "lua_payload_bound"]

# wire kinds (convert.lua)
FMAP, MAP, FLIST, LIST, NIL, BYTES, FPAIRS = 1, 2, 3, 4, 5, 6, 7

_SCALARS = frozenset({str, bytes, int, float, bool})
_STR = frozenset({str})
_STRINGS = frozenset({str, bytes})
_NIL = (None, NIL)
_EMPTY = (None, FMAP)  # an empty map: count 0


class _TooDeep(Exception):
    """Internal: nesting limit hit; carries the key path collected while unwinding."""

    def __init__(self) -> None:
        super().__init__()
        self.path: list[str] = []


class _Unsupported(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
        self.path: list[str] = []


def _path_text(path: list[str]) -> str:
    if len(path) > 8:
        path = [*path[:4], "…", *path[-3:]]
    return "/".join(path)


def _key(key: Any) -> str:
    if type(key) is str:
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(int(key))
    if isinstance(key, str):
        return str(key)
    if isinstance(key, (bytes, bytearray, memoryview)):
        try:
            return bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            raise _Unsupported("map key is not valid UTF-8") from None
    raise _Unsupported(f"unsupported key type {type(key).__name__}")


def _leaf(value: Any) -> Any:
    """A scalar of a subclass or buffer type, as the plain type lupa pushes."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise _Unsupported(f"unsupported value type {type(value).__name__}")


def _seq_keys(keys: list[Any]) -> bool:
    """Whether ``keys`` are exactly ``"1".."n"`` (in any order)."""
    n = len(keys)
    return set(keys) == {str(i) for i in range(1, n + 1)}


def _enc(value: Any, out: list[Any], depth: int) -> None:
    t = type(value)
    if t in _SCALARS:
        out.append(value)
        return
    if value is None:
        out += _NIL
        return
    if depth >= MAX_DEPTH:
        raise _TooDeep
    if t is dict or isinstance(value, Mapping):
        keys = list(value.keys())
        if not keys:
            out += _EMPTY
            return
        _enc_map(value, keys, list(value.values()), out, depth)
        return
    if t is list or t is tuple or isinstance(value, (list, tuple)):
        _enc_list(value, out, depth, None)
        return
    out.append(_leaf(value))


def _enc_map(
    value: Mapping[Any, Any], keys: list[Any], vals: list[Any], out: list[Any], depth: int
) -> None:
    n = len(keys)
    if not _STR.issuperset(map(type, keys)):
        keys = [_key(k) for k in keys]
    elif "1" in value and _seq_keys(keys):
        order = sorted(range(n), key=lambda i: int(keys[i]))
        _enc_list([vals[i] for i in order], out, depth, [keys[i] for i in order])
        return
    if _SCALARS.issuperset(map(type, vals)):
        out += (None, n * 8 + FMAP)
        out += keys
        out += vals
        return
    out += (None, n * 8 + MAP)
    for k, v in zip(keys, vals, strict=True):
        out.append(k)
        try:
            _enc(v, out, depth + 1)
        except (_TooDeep, _Unsupported) as exc:
            exc.path.insert(0, k)
            raise


def _enc_list(items: Sequence[Any], out: list[Any], depth: int, names: list[str] | None) -> None:
    n = len(items)
    if _SCALARS.issuperset(map(type, items)):
        out += (None, n * 8 + FLIST)
        out += items
        return
    out += (None, n * 8 + LIST)
    for i, v in enumerate(items):
        try:
            _enc(v, out, depth + 1)
        except (_TooDeep, _Unsupported) as exc:
            exc.path.insert(0, names[i] if names is not None else str(i + 1))
            raise


def lua_encode_map(value: Mapping[str, Any]) -> list[Any]:
    """The flat wire form of one mapping: :func:`lua_encode_values` of ``(value,)``, with a
    fast path for the common message shape (string keys, scalar values)."""
    keys = list(value.keys())
    vals = list(value.values())
    if (
        keys
        and _STR.issuperset(map(type, keys))
        and _SCALARS.issuperset(map(type, vals))
        and "1" not in value
    ):
        out: list[Any] = [None, len(keys) * 8 + FMAP]
        out += keys
        out += vals
        return out
    return lua_encode_values((value,))


def lua_encode_values(values: Sequence[Any]) -> list[Any]:
    """The flat wire form of ``values`` (each one top-level argument for Lua).

    Raises:
        InvalidMessage: a value nests deeper than 200 levels (or is cyclic), or holds a
            type that has no Lua form (sets, objects...).
    """
    out: list[Any] = []
    for value in values:
        try:
            _enc(value, out, 0)
        except _TooDeep as exc:
            raise InvalidMessage(
                f"cannot pass value to Lua: nesting deeper than {MAX_DEPTH} levels (or a cycle) "
                f"at key '{_path_text(exc.path)}'"
            ) from None
        except _Unsupported as exc:
            raise InvalidMessage(
                f"cannot pass value to Lua: {exc.what} at key '{_path_text(exc.path)}'"
            ) from None
    return out


# --------------------------------------------------------------------------- decoding


class _Truncated(IndexError):
    """Internal: a container runs past the end (reads of single items raise IndexError)."""


def _lua_key(key: Any) -> str:
    """A Lua number or boolean map key as text (Lua sends string keys as they are)."""
    if type(key) is str:
        return key
    if type(key) is bool:
        return "true" if key else "false"
    if type(key) is int:
        return str(key)
    if type(key) is float:  # Lua's own tostring format (integral floats are integer keys)
        return format(key, ".14g")
    raise InvalidMessage(f"cannot convert the Lua result: unsupported map key {key!r}")


def _text_keys(d: dict[Any, Any]) -> dict[str, Any]:
    return {_lua_key(k): v for k, v in d.items()}


def _bad_code(code: Any, at: int) -> InvalidMessage:
    return InvalidMessage(f"malformed value from Lua: bad table code {code!r} at position {at}")


def _dec(vals: Sequence[Any], i: int, depth: int) -> tuple[Any, int]:
    v = vals[i]
    if v is not None:
        return v, i + 1
    code = vals[i + 1]
    if type(code) is not int or code < 0:
        raise _bad_code(code, i + 1)
    kind = code & 7
    n = code >> 3
    i += 2
    if kind == FPAIRS:
        j = i + 2 * n
        if j > len(vals):
            raise _Truncated
        d = dict(zip(vals[i:j:2], vals[i + 1 : j : 2], strict=True))
        if not _STR.issuperset(map(type, d)):
            d = _text_keys(d)
        return d, j
    if kind == MAP:
        if depth >= MAX_DEPTH:
            raise _too_deep(i - 2)
        out: dict[Any, Any] = {}
        for _ in range(n):
            key = vals[i]
            v = vals[i + 1]
            if v is not None:
                out[key] = v
                i += 2
                continue
            c = vals[i + 2]
            if type(c) is int and c & 7 == FPAIRS and c >= 0:  # inline the common nested kind
                k = i + 3
                j = k + 2 * (c >> 3)
                if j > len(vals):
                    raise _Truncated
                d = dict(zip(vals[k:j:2], vals[k + 1 : j : 2], strict=True))
                out[key] = d if _STR.issuperset(map(type, d)) else _text_keys(d)
                i = j
            else:
                out[key], i = _dec(vals, i + 1, depth + 1)
        return out, i
    if kind == LIST:
        if depth >= MAX_DEPTH:
            raise _too_deep(i - 2)
        items: list[Any] = []
        append = items.append
        for _ in range(n):
            v = vals[i]
            if v is not None:
                append(v)
                i += 1
                continue
            c = vals[i + 1]
            if type(c) is int and c & 7 == FPAIRS and c >= 0:
                k = i + 2
                j = k + 2 * (c >> 3)
                if j > len(vals):
                    raise _Truncated
                d = dict(zip(vals[k:j:2], vals[k + 1 : j : 2], strict=True))
                append(d if _STR.issuperset(map(type, d)) else _text_keys(d))
                i = j
            else:
                v, i = _dec(vals, i, depth + 1)
                append(v)
        return items, i
    if kind == FLIST:
        j = i + n
        if j > len(vals):
            raise _Truncated
        return list(vals[i:j]), j
    if kind == NIL:
        return None, i
    if kind == BYTES:
        s = vals[i]
        if type(s) is not str:
            raise _bad_bytes(i)
        try:
            return s.encode("latin-1"), i + 1
        except UnicodeEncodeError:
            raise _bad_bytes(i) from None
    if kind == FMAP:
        j = i + n
        if j + n > len(vals):
            raise _Truncated
        return dict(zip(vals[i:j], vals[j : j + n], strict=True)), j + n
    raise InvalidMessage(f"malformed value from Lua: unknown kind {kind!r} at position {i - 2}")


def _too_deep(at: int) -> InvalidMessage:
    return InvalidMessage(
        f"malformed value from Lua: nesting deeper than {MAX_DEPTH} levels at position {at}"
    )


def _bad_bytes(at: int) -> InvalidMessage:
    return InvalidMessage(
        f"malformed value from Lua: BYTES needs a string of code points below 256 at position {at}"
    )


def lua_decode_values(vals: Sequence[Any], start: int = 0) -> list[Any]:
    """The Python values encoded in the flat sequence ``vals[start:]``.

    Raises:
        InvalidMessage: the sequence is not a well-formed encoding: it ends inside a value,
            a table code is not a non-negative integer, a kind is unknown, tables nest
            deeper than 200 levels, a map key is unhashable or (in a Lua-built map) not a
            string, number or boolean.
    """
    if start < 0:
        raise InvalidMessage(f"malformed value from Lua: negative start {start}")
    out: list[Any] = []
    i, end = start, len(vals)
    while i < end:
        try:
            value, i = _dec(vals, i, 0)
        except IndexError:
            raise InvalidMessage(
                f"malformed value from Lua: the sequence ends inside the value at position {i}"
            ) from None
        except TypeError:
            raise InvalidMessage(
                f"malformed value from Lua: unhashable map key in the value at position {i}"
            ) from None
        out.append(value)
    return out


def lua_payload_bound(values: Iterable[Any]) -> int:
    """An upper bound of the bytes Lua allocates for the strings among ``values``: 4 times
    the summed ``len`` of the exact ``str`` and ``bytes`` values (a character takes at
    most 4 UTF-8 bytes); other values count nothing.

    (A comprehension is cheaper here than ``sum(map(sys.getsizeof, ...))``, which looks
    up ``__sizeof__`` per object.)
    """
    return 4 * sum([len(x) for x in values if type(x) in _STRINGS])
