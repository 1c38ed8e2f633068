"""Type aliases shared across hbeam."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias, Union

Leaf: TypeAlias = str | bytes | int | float | bool | None
Value: TypeAlias = Union[Leaf, "list[Value]", "Mapping[str, Value]"]
Opts: TypeAlias = Mapping[str, Any]
Path: TypeAlias = Union[str, bytes, int, "list[Any]", "tuple[Any, ...]"]

__all__ = ["Leaf", "Opts", "Path", "Value"]
