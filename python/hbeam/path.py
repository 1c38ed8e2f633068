"""Paths: ``parts`` / ``to_str`` (HyperBEAM's hb_path) and the HTTP request grammar.

>>> parts("/a//b/c")
['a', 'b', 'c']
>>> to_str(["a", ["b", "//b"], "c"])
'a/b/b/c'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hbeam import _core

__all__ = ["parse_request", "parts", "to_str"]


def parts(path: Any) -> list[str]:
    """The keys a path names: ``"/a/b//c"`` → ``["a", "b", "c"]``; lists are flattened.

    Raises:
        InvalidPath: an unsupported type or a segment over ``MAX_KEY_BYTES``.
    """
    result: list[str] = _core.impl.parts(path)
    return result


def to_str(path: Any) -> str:
    """The inverse of :func:`parts`: parts joined with ``/``, empty ones dropped."""
    result: str = _core.impl.to_str(path)
    return result


def parse_request(path: str, globals: Mapping[str, Any] | None = None) -> list[Any]:
    """The messages an HTTP path stands for (HyperBEAM's ``hb_singleton:from``).

    See ``docs/core-contract.md`` for the grammar.

    >>> parse_request("/a/b&x=1")
    [{}, {'path': 'a'}, {'path': 'b', 'x': '1'}]

    Raises:
        InvalidPath: malformed path (unbalanced parentheses, bad ``+type``, empty device
            name, a segment over 512 bytes), naming where.
    """
    result: list[Any] = _core.impl.parse_request(path, globals)
    return result
