"""Core backend selection: the only module that imports ``hbeam._native`` or ``hbeam._pure``.

``HBEAM_BACKEND=native|pure`` picks one; unset means native when it imports, else
pure with one ``RuntimeWarning``.  Everything else reaches the core as
``_core.impl.<name>`` at call time, so :func:`use` can swap backends (tests do).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Iterator
from types import ModuleType

__all__ = ["BACKENDS", "available", "impl", "load", "name", "use"]

BACKENDS = ("native", "pure")

_MODULES = {"native": "hbeam._native", "pure": "hbeam._pure"}


def load(backend: str) -> ModuleType:
    """Import and return the named backend module.

    Raises:
        ValueError: ``backend`` is not ``native`` or ``pure``.
        ImportError: the native module is not built (run ``make build``).
    """
    if backend not in _MODULES:
        raise ValueError(f"unknown hbeam backend {backend!r}; expected 'native' or 'pure'")
    try:
        return importlib.import_module(_MODULES[backend])
    except ImportError as exc:
        if backend == "native":
            raise ImportError(
                "hbeam's native core (hbeam._native) is not built: run `make build` "
                "(or set HBEAM_BACKEND=pure)"
            ) from exc
        raise


def available(backend: str) -> bool:
    """Whether ``backend`` can be imported."""
    try:
        load(backend)
    except ImportError:
        return False
    return True


def _initial() -> tuple[str, ModuleType]:
    wanted = os.environ.get("HBEAM_BACKEND", "").strip().lower()
    if wanted:
        return wanted, load(wanted)
    try:
        return "native", load("native")
    except ImportError:
        warnings.warn(
            "hbeam: native core not available, using the pure-Python backend "
            "(run `make build` for the fast one)",
            RuntimeWarning,
            stacklevel=3,
        )
        return "pure", load("pure")


name, impl = _initial()


@contextlib.contextmanager
def use(backend: str) -> Iterator[ModuleType]:
    """Temporarily make ``backend`` the active core; yields its module."""
    global name, impl
    saved = (name, impl)
    module = load(backend)
    name, impl = backend, module
    try:
        yield module
    finally:
        name, impl = saved
