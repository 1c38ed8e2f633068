"""Canonical encoding, IDs and hash paths: :func:`encode`, :func:`decode`, :func:`id`,
:func:`hashpath` (``hashpath-alg`` ``blake3-chain``).

Twin of ``rust/src/hashpath.rs``; both must produce identical bytes.  The encoding::

    None  'n'            bool 't' | 'f'
    int   'i' u32be(len) ascii-decimal      ("-12", "0"; canonical: no '+', no leading 0, no "-0")
    float 'd' f64be      (-0.0 written as 0.0; every NaN as 0x7ff8000000000000)
    str   's' u32be(len) utf8               bytes 'b' u32be(len) raw
    list  'l' u32be(count) value*
    map   'm' u32be(count) (u32be(keylen) key-utf8 value)*   keys ascending by UTF-8 bytes

Private keys are skipped at every level.  :func:`decode` accepts exactly what
:func:`encode` produces; anything else raises ``InvalidMessage("malformed encoding at
byte N")`` where N is the offset of the field that is wrong: a tag, a length, a
payload (truncated, bad UTF-8, bad integer text, ``-0.0`` or a non-canonical NaN), a
key's bytes (empty, private, over ``MAX_KEY_BYTES``, not strictly ascending), a
container nested past ``MAX_DEPTH`` (its tag), or the first trailing byte.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Mapping
from typing import Any

from blake3 import blake3

from hbeam._pure.key import MAX_DEPTH, MAX_KEY_BYTES, describe, int_text, is_private, parse_int
from hbeam._pure.message import Message, _new, to_stored
from hbeam._pure.path import parts
from hbeam._pure.pmap import PMap
from hbeam.errors import InvalidMessage

__all__ = ["HASHPATH_ALG", "b64", "decode", "encode", "hashpath", "id"]

HASHPATH_ALG = "blake3-chain"

_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")
_MAX_U32 = 0xFFFFFFFF
_SMALL_INT = 1 << 62
_NAN = bytes.fromhex("7ff8000000000000")
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64(digest: bytes) -> str:
    """base64url without padding (32 bytes → 43 characters)."""
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _is_b64_id(text: str) -> bool:
    return len(text) == 43 and all(c in _ID_CHARS for c in text)


def _unb64(text: str) -> bytes:
    """The bytes of a 43-character base64url ID (unused low bits of the last one ignored)."""
    return binascii.a2b_base64(text.replace("-", "+").replace("_", "/") + "=")


def _blake3(data: bytes) -> str:
    return b64(blake3(data).digest())


# ---------------------------------------------------------------------------- encode


def _len(n: int) -> bytes:
    if n > _MAX_U32:
        raise InvalidMessage(f"cannot encode: length {n} exceeds {_MAX_U32}")
    return _U32.pack(n)


def _encode(value: Any, out: bytearray, skip: str | None) -> None:
    """Append the encoding of a stored value; ``skip`` is a top-level key to leave out."""
    cls = value.__class__
    if cls is Message:
        items = [
            (k, v)
            for k, v in value._map.items()
            if not ((k[0] == "p" or k[0] == "P") and is_private(k)) and k != skip
        ]
        out += b"m"
        out += _len(len(items))
        pack = _U32.pack
        for k, v in items:
            data = k.encode("utf-8")
            out += pack(len(data))
            out += data
            vcls = v.__class__
            if vcls is int and -_SMALL_INT < v < _SMALL_INT:
                data = b"%d" % v
                out += b"i"
                out += pack(len(data))
                out += data
            elif vcls is str:
                data = v.encode("utf-8")
                out += b"s"
                out += _len(len(data))
                out += data
            else:
                _encode(v, out, None)
    elif cls is str:
        data = value.encode("utf-8")
        out += b"s"
        out += _len(len(data))
        out += data
    elif cls is bytes:
        out += b"b"
        out += _len(len(value))
        out += value
    elif cls is bool:
        out += b"t" if value else b"f"
    elif cls is int:
        data = int_text(value).encode("ascii")
        out += b"i"
        out += _len(len(data))
        out += data
    elif cls is float:
        out += b"d"
        if math.isnan(value):
            out += _NAN
        else:
            out += _F64.pack(value if value != 0.0 else 0.0)
    elif cls is tuple:
        out += b"l"
        out += _len(len(value))
        for v in value:
            _encode(v, out, None)
    else:  # None: nothing else is ever stored
        out += b"n"


def encode(value: Any) -> bytes:
    """The canonical, typed, decodable encoding of ``value`` (private keys skipped).

    Raises:
        InvalidMessage: ``value`` holds an unsupported type or nests too deep.
    """
    out = bytearray()
    _encode(to_stored(value), out, None)
    return bytes(out)


# ---------------------------------------------------------------------------- decode


def _bad(pos: int) -> InvalidMessage:
    return InvalidMessage(f"malformed encoding at byte {pos}")


def _canonical_int(text: bytes) -> bool:
    digits = text[1:] if text[:1] == b"-" else text
    if not digits or not digits.isdigit() or not digits.isascii():
        return False
    if digits[:1] == b"0":
        return digits == b"0" and text == b"0"
    return True


class _Reader:
    __slots__ = ("data", "end")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.end = len(data)

    def u32(self, pos: int) -> int:
        if pos + 4 > self.end:
            raise _bad(pos)
        n: int = _U32.unpack_from(self.data, pos)[0]
        return n

    def take(self, pos: int, n: int) -> bytes:
        if pos + n > self.end:
            raise _bad(pos)
        return self.data[pos : pos + n]

    def text(self, pos: int, n: int) -> str:
        try:
            return self.take(pos, n).decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(pos) from None

    def value(self, pos: int, level: int) -> tuple[Any, int, int]:
        """``(stored, next_pos, height)`` of the value whose tag is at ``pos``."""
        if pos >= self.end:
            raise _bad(pos)
        tag = self.data[pos]
        p = pos + 1
        if tag == 0x6E:  # n
            return None, p, 0
        if tag == 0x74:  # t
            return True, p, 0
        if tag == 0x66:  # f
            return False, p, 0
        if tag == 0x69:  # i
            n = self.u32(p)
            text = self.take(p + 4, n)
            if not _canonical_int(text):
                raise _bad(p + 4)
            number = parse_int(text.decode("ascii").lstrip("-"))
            return (-number if text[:1] == b"-" else number), p + 4 + n, 0
        if tag == 0x64:  # d
            raw = self.take(p, 8)
            real: float = _F64.unpack(raw)[0]
            if (math.isnan(real) and raw != _NAN) or (real == 0.0 and raw[0] != 0):
                raise _bad(p)
            return real, p + 8, 0
        if tag == 0x73:  # s
            n = self.u32(p)
            return self.text(p + 4, n), p + 4 + n, 0
        if tag == 0x62:  # b
            n = self.u32(p)
            return self.take(p + 4, n), p + 4 + n, 0
        if tag == 0x6C:  # l
            if level > MAX_DEPTH:
                raise _bad(pos)
            count = self.u32(p)
            p += 4
            items = []
            height = 0
            for _ in range(count):
                item, p, h = self.value(p, level + 1)
                items.append(item)
                height = max(height, h)
            return tuple(items), p, height + 1
        if tag == 0x6D:  # m
            if level > MAX_DEPTH:
                raise _bad(pos)
            count = self.u32(p)
            p += 4
            keys: list[str] = []
            vals: list[Any] = []
            height = 0
            for _ in range(count):
                n = self.u32(p)
                key = self.text(p + 4, n)
                if (
                    not key
                    or n > MAX_KEY_BYTES
                    or is_private(key)
                    or (keys and key.encode("utf-8") <= keys[-1].encode("utf-8"))
                ):
                    raise _bad(p + 4)
                val, p, h = self.value(p + 4 + n, level + 1)
                keys.append(key)
                vals.append(val)
                height = max(height, h)
            return _new(PMap.from_sorted(keys, vals), height + 1), p, height + 1
        raise _bad(pos)


def decode(data: bytes) -> Any:
    """The value :func:`encode` wrote (maps as ``Message``, lists as ``list``).

    Raises:
        InvalidMessage: ``data`` is not bytes, malformed, or has trailing bytes.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise InvalidMessage(f"decode expects bytes, got {type(data).__name__}")
    reader = _Reader(bytes(data))
    value, end, _ = reader.value(0, 1)
    if end != len(data):
        raise _bad(end)
    if value.__class__ is tuple:
        return _thaw(value)
    return value


def _thaw(value: tuple[Any, ...]) -> list[Any]:
    return [_thaw(v) if v.__class__ is tuple else v for v in value]


# ------------------------------------------------------------------------ id, hashpath


def _message_id(msg: Message) -> str:
    cached = msg._id
    if cached is None:
        out = bytearray()
        _encode(msg, out, "commitments")
        cached = msg._id = _blake3(bytes(out))
    return cached


def id(value: Any) -> str:
    """The 43-character base64url blake3 ID of ``value``.

    A Mapping: of its encoding without the top-level ``commitments`` (the unsigned ID);
    a list: of its numbered message; ``str``/``bytes``: of the raw bytes (content
    address); other leaves: of their encoding.

    Raises:
        InvalidMessage: ``value`` holds an unsupported type or nests too deep.
    """
    if value.__class__ is Message:
        return _message_id(value)
    if isinstance(value, str):
        stored = to_stored(value)
        return _blake3(str.__str__(stored).encode("utf-8"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _blake3(bytes(value))
    if isinstance(value, (list, tuple)):
        found = {str(i): v for i, v in enumerate(value, 1)}
        return _message_id(Message(found))
    stored = to_stored(value)
    if stored.__class__ is Message:
        return _message_id(stored)
    out = bytearray()
    _encode(stored, out, None)
    return _blake3(bytes(out))


def _as_message(value: Any) -> Message:
    msg = value if value.__class__ is Message else to_stored(value)
    result: Message = msg
    return result


def _base_hashpath(base: Any) -> str:
    if isinstance(base, str):
        text: str = to_stored(base)  # refuses lone surrogates
        return text
    if isinstance(base, Mapping):
        msg = _as_message(base)
        priv = msg._map.get("priv")
        if priv.__class__ is Message:
            recorded = priv._map.get("hashpath")
            if recorded.__class__ is str:
                result: str = recorded
                return result
        return _message_id(msg)
    raise InvalidMessage(
        f"hashpath expects a Mapping or str, got {type(base).__name__}: {describe(base)}"
    )


def _component(req: Any) -> str:
    if isinstance(req, str):
        ps = parts(req)
        return ps[0] if ps else "/"
    if isinstance(req, Mapping):
        msg = _as_message(req)
        path = msg._map.get("path", None)
        if "path" in msg._map and all(k in ("path", "hashpath") or is_private(k) for k in msg._map):
            ps = parts(path)
            return ps[0] if ps else "/"
        return _message_id(msg)
    raise InvalidMessage(
        f"hashpath request must be a Mapping or str, got {type(req).__name__}: {describe(req)}"
    )


def hashpath(base: Any, req: Any = None) -> str:
    """A hash path: of a result (one argument), or of resolving ``req`` on ``base``.

    One argument: ``base["priv"]["hashpath"]`` when it is a str, else ``id(base)``; a str
    is returned as is.  Two: ``<43 chars>/<component>`` where the 43 chars chain the
    previous hash path with blake3 (``hashpath-alg`` ``blake3-chain``) and the component
    is the request's first path part (a path-only request) or its ID.

    Raises:
        InvalidMessage: an unsupported ``hashpath-alg``, a malformed previous hash path,
            or an unsupported type.
    """
    prev = _base_hashpath(base)
    if req is None:
        return prev
    if isinstance(base, Mapping):
        alg = _as_message(base)._map.get("hashpath-alg", HASHPATH_ALG)
        if alg.__class__ is not str or alg != HASHPATH_ALG:
            shown = f"'{alg}'" if alg.__class__ is str else describe(alg)
            raise InvalidMessage(f"unsupported hashpath-alg {shown}")
    component = _component(req)
    if "/" not in prev:
        return prev + "/" + component
    p1, p2 = prev.split("/", 1)
    if not _is_b64_id(p1):
        raise InvalidMessage(f"hash path '{p1[:100]}' does not start with a 43-character ID")
    left = _unb64(p1)
    right = _unb64(p2) if _is_b64_id(p2) else p2.encode("utf-8")
    return _blake3(left + right) + "/" + component
