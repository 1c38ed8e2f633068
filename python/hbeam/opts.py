"""Node options: the defaults every resolution starts from, and how ``opts`` are read.

``opts`` is a plain mapping passed keyword-only to every hbeam call (HyperBEAM's node
message / ``Opts``).  Missing keys take the values in :data:`DEFAULTS`.  The options the
resolver itself reads:

``cache_control``
    Node-level cache directives (a list, or one string, ``"no-cache, no-store"`` style):
    ``always``, ``store``, ``no-store``, ``cache``, ``no-cache``, ``only-if-cached``.
    They take precedence over a message's own ``cache-control`` key (core.md §13.1).
    ``None`` (the default) says nothing, and hbeam's default policy applies: store and
    look up computed results (HyperBEAM's edge defaults both to off; hbeam caches by
    default because its in-memory LRU is cheap and the design asks for repeat hits).
``cache``
    The :class:`ResultCache` results are kept in; ``None`` = the module's default cache
    (one per core backend).
``store``
    A store (``hbeam.store``): 43-character ID bases are loaded from it and results are
    also looked up / written through ``hbeam.cache`` when caching is on.
``hashpath``
    ``update`` (default): map results get ``priv/hashpath``; ``reset``: their hash path is
    removed; ``ignore``: results are left as the device returned them (and not stored).
``cache_lookup_heuristics``
    ``True`` (default): plain key reads on ``message@1.0`` skip the cache (reading the
    key is cheaper than any lookup), as HyperBEAM's ``cache_lookup_hueristics`` does.
``max_resolve_depth``
    How deeply resolutions may nest (a device resolving inside a device …) before
    :class:`~hbeam.errors.RecursionLimit`; default 100.
``force_message``
    ``True``: ``resolve`` wraps literal results as ``{"ao-result": "body", "body": v}``.
``on_step``
    ``on_step(step)`` is called after every executed (or cache-served) step with a
    :class:`hbeam.ao.Step`; returning an :class:`hbeam.ao.Status` replaces the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["DEFAULTS", "INTERNAL", "get"]

DEFAULTS: Final[Mapping[str, Any]] = {
    "cache_control": None,
    "cache": None,
    "store": None,
    "hashpath": "update",
    "cache_lookup_heuristics": True,
    "max_resolve_depth": 100,
    "force_message": False,
    "on_step": None,
}
"""The value of every option the resolver reads when ``opts`` does not name it."""

INTERNAL: Final[Mapping[str, Any]] = {
    "cache_control": ["no-cache", "no-store"],
    "hashpath": "ignore",
}
"""What ``get``/``set``/``remove``/``keys`` override: they never touch the cache and add
no hash paths (HyperBEAM's ``internal_opts``)."""


def get(opts: Mapping[str, Any] | None, key: str) -> Any:
    """The value of option ``key`` in ``opts``, else its default from :data:`DEFAULTS`."""
    if opts:
        value = opts.get(key, DEFAULTS.get(key))
        return value
    return DEFAULTS.get(key)
