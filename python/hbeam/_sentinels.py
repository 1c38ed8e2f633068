"""Singleton sentinels shared by both core backends: ``NOT_FOUND``, ``UNSET``, ``UNDEFINED``.

The native module imports these objects from here, so identity checks (``is``)
work whichever backend produced a value.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

__all__ = ["NOT_FOUND", "UNDEFINED", "UNSET", "Sentinel"]


class Sentinel:
    """A named singleton; falsy, picklable by name, never equal to anything else."""

    __slots__ = ("_name",)
    _name: str
    _registry: ClassVar[dict[str, Sentinel]] = {}

    def __new__(cls, name: str) -> Sentinel:
        existing = cls._registry.get(name)
        if existing is not None:
            return existing
        obj = super().__new__(cls)
        obj._name = name
        cls._registry[name] = obj
        return obj

    def __repr__(self) -> str:
        return self._name

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> tuple[Any, ...]:
        return (Sentinel, (self._name,))

    def __copy__(self) -> Sentinel:
        return self

    def __deepcopy__(self, memo: Any) -> Sentinel:
        return self


NOT_FOUND: Final = Sentinel("NOT_FOUND")
"""Returned by ``get`` for a missing key (HyperBEAM's ``not_found``)."""
UNSET: Final = Sentinel("UNSET")
"""As a value in ``set``/``merge``: delete that key (HyperBEAM's ``unset``)."""
UNDEFINED: Final = Sentinel("UNDEFINED")
"""As a value in ``set``/``merge``: leave that key as it is (HyperBEAM's ``undefined``)."""
