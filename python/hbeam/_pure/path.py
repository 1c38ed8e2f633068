"""Paths: :func:`parts` and :func:`to_str` (HyperBEAM's ``hb_path:term_to_path_parts``).

Twin of ``rust/src/path.rs``.  Error texts (all :class:`~hbeam.errors.InvalidPath`):

* ``unsupported path type float: 1.5``
* ``path is not valid UTF-8: b'\\xff'`` (bytes, or a ``str`` with lone surrogates)
* ``segment 3 is 10485760 bytes (limit 65536)`` (segments of the result, from 1)
* ``path nesting deeper than 200 levels`` (lists inside lists)
"""

from __future__ import annotations

from typing import Any

from hbeam._pure.key import MAX_DEPTH, MAX_KEY_BYTES, describe, int_text, utf8_len
from hbeam.errors import InvalidPath

__all__ = ["parts", "to_str"]

# Below this many characters a segment cannot exceed MAX_KEY_BYTES (4 bytes a character).
_SAFE_CHARS = MAX_KEY_BYTES // 4


def _split(text: str, original: Any, out: list[str]) -> None:
    if utf8_len(text) < 0:
        raise InvalidPath(f"path is not valid UTF-8: {describe(original)}")
    ascii_only = text.isascii()
    for segment in text.split("/"):
        if not segment:
            continue
        if len(segment) > _SAFE_CHARS:
            n = len(segment) if ascii_only else len(segment.encode("utf-8"))
            if n > MAX_KEY_BYTES:
                raise InvalidPath(f"segment {len(out) + 1} is {n} bytes (limit {MAX_KEY_BYTES})")
        out.append(segment)


def _collect(path: Any, out: list[str], depth: int) -> None:
    if isinstance(path, str):
        _split(path if type(path) is str else str.__str__(path), path, out)
    elif isinstance(path, bytes):
        try:
            text = bytes(path).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPath(f"path is not valid UTF-8: {describe(path)}") from exc
        _split(text, path, out)
    elif isinstance(path, bool):
        out.append("true" if path else "false")
    elif isinstance(path, int):
        out.append(int_text(int.__int__(path)))
    elif isinstance(path, (list, tuple)):
        if depth > MAX_DEPTH:
            raise InvalidPath(f"path nesting deeper than {MAX_DEPTH} levels")
        for item in path:
            _collect(item, out, depth + 1)
    else:
        raise InvalidPath(f"unsupported path type {type(path).__name__}: {describe(path)}")


def parts(path: Any) -> list[str]:
    """The keys a path names: split on ``/``, empty segments dropped, lists flattened.

    ``..`` and ``.`` are ordinary keys; case is kept.

    >>> parts("/a//b/")
    ['a', 'b']
    >>> parts([["/a", ["b", "//b"]], "c"])
    ['a', 'b', 'b', 'c']
    >>> parts(5)
    ['5']

    Raises:
        InvalidPath: an unsupported type, invalid UTF-8, or a segment over
            ``MAX_KEY_BYTES``.
    """
    if type(path) is str and path.isascii() and len(path) <= _SAFE_CHARS:
        return [segment for segment in path.split("/") if segment]
    out: list[str] = []
    _collect(path, out, 1)
    return out


def to_str(path: Any) -> str:
    """``"/".join(parts(path))``: ``["a", ["b", "//b"], "c"]`` → ``"a/b/b/c"``.

    Raises:
        InvalidPath: as :func:`parts`.
    """
    return "/".join(parts(path))
