"""Keys: :func:`normalize_key`, :func:`normalize_keys`, :func:`is_private`, and the core limits.

Twin of ``rust/src/key.rs``.  Error texts are part of the contract (both backends
raise the same class with the same message), so they are spelled out here once:

* ``unsupported key type float: 1.5`` (type name, then :func:`describe` of the key)
* ``key is not valid UTF-8: b'\\xff'`` (bytes that do not decode, or a ``str`` holding
  lone surrogates, which no UTF-8 text can carry)
* ``key is 70000 bytes (limit 65536)``
* ``key nesting deeper than 200 levels`` (lists inside list keys)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hbeam.errors import InvalidMessage

__all__ = [
    "MAX_DEPTH",
    "MAX_KEY_BYTES",
    "describe",
    "int_text",
    "is_private",
    "normalize_key",
    "normalize_keys",
    "parse_int",
    "utf8_len",
]

MAX_DEPTH = 200
"""Deepest nesting of maps/lists in a value (a message is level 1)."""
MAX_KEY_BYTES = 65536
"""Longest key or path segment, in UTF-8 bytes."""

_DESCRIBE_CHARS = 100


def describe(obj: Any) -> str:
    """``repr(obj)`` cut to 100 characters (then ``...``), for error messages; never raises."""
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__} object>"
    if len(text) > _DESCRIBE_CHARS:
        text = text[:_DESCRIBE_CHARS] + "..."
    return text


# Python refuses int <-> str conversions past sys.get_int_max_str_digits() (at least 640
# digits); below these sizes the builtins are safe, above them we split the number.
_SAFE_BITS = 1900
_SAFE_DIGITS = 560


def int_text(n: int) -> str:
    """Decimal text of any ``int`` (``-12``), however large."""
    if n.bit_length() <= _SAFE_BITS:
        return int.__repr__(n)
    if n < 0:
        return "-" + int_text(-n)
    half = (n.bit_length() * 30103 // 100000) // 2
    scale: int = 10**half
    high, low = divmod(n, scale)
    return int_text(high) + int_text(low).rjust(half, "0")


def parse_int(digits: str) -> int:
    """The ``int`` of ASCII decimal ``digits`` (no sign, no spaces), however long."""
    if len(digits) <= _SAFE_DIGITS:
        return int(digits)
    half = len(digits) // 2
    scale: int = 10**half
    return parse_int(digits[:-half]) * scale + parse_int(digits[-half:])


def utf8_len(text: str) -> int:
    """The UTF-8 length of ``text``, or ``-1`` when it holds lone surrogates (not encodable)."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return -1


def _check_str(text: str, original: Any) -> str:
    n = utf8_len(text)
    if n < 0:
        raise InvalidMessage(f"key is not valid UTF-8: {describe(original)}")
    if n > MAX_KEY_BYTES:
        raise InvalidMessage(f"key is {n} bytes (limit {MAX_KEY_BYTES})")
    return text


def _part(key: Any, depth: int) -> str:
    """One key (or list element) as text, without the length check."""
    if isinstance(key, str):
        if utf8_len(key) < 0:
            raise InvalidMessage(f"key is not valid UTF-8: {describe(key)}")
        return key if type(key) is str else str.__str__(key)
    if isinstance(key, bytes):
        try:
            return bytes(key).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessage(f"key is not valid UTF-8: {describe(key)}") from exc
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return int_text(int.__int__(key))
    if isinstance(key, (list, tuple)):
        if depth > MAX_DEPTH:
            raise InvalidMessage(f"key nesting deeper than {MAX_DEPTH} levels")
        return "/".join([_part(item, depth + 1) for item in key])
    raise InvalidMessage(f"unsupported key type {type(key).__name__}: {describe(key)}")


def normalize_key(key: Any) -> str:
    """A key in its normalised form (``42`` → ``"42"``, ``["a", b"b", 1]`` → ``"a/b/1"``).

    ``str`` is kept as is (case included), ``bytes`` decoded as UTF-8, ``bool`` →
    ``"true"``/``"false"``, ``int`` → decimal text, a list/tuple → its elements
    normalised and joined with ``/`` (no splitting, no dropping).

    >>> normalize_key(["a", b"b", 1])
    'a/b/1'

    Raises:
        InvalidMessage: an unsupported type, invalid UTF-8, or a key over
            ``MAX_KEY_BYTES``.
    """
    if type(key) is str and key.isascii():
        if len(key) > MAX_KEY_BYTES:
            raise InvalidMessage(f"key is {len(key)} bytes (limit {MAX_KEY_BYTES})")
        return key
    return _check_str(_part(key, 1), key)


def is_private(key: str) -> bool:
    """Whether ``key`` is private: it starts with ``priv`` in any ASCII case."""
    head = key[:4]
    return head.isascii() and head.lower() == "priv"


def normalize_keys(value: Any) -> Any:
    """A list/tuple → ``Message({"1": v1, …})``; a Mapping → ``Message(value)``; else as is."""
    from hbeam._pure.message import Message

    if isinstance(value, Message):
        return value
    if isinstance(value, (list, tuple)):
        return Message({str(i): v for i, v in enumerate(value, 1)})
    if isinstance(value, Mapping):
        return Message(value)
    return value
