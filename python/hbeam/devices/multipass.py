"""``multipass@1.0``: make a stack run ``passes`` times (execution-http.md §2).

For every key but ``keys`` and ``set``: status ``pass`` while ``pass < passes``
(``passes`` defaults to 1), else the message unchanged.  Placed last in a
``stack@1.0`` it restarts the stack until the last pass.
"""

from __future__ import annotations

from typing import Any


def _handle(key: str, base: Any, req: Any, opts: Any) -> Any:
    from hbeam import ao

    try:
        current = int(base.get("pass", 1))
        passes = int(base.get("passes", 1))
    except (TypeError, ValueError):
        current, passes = 1, 1
    if current < passes:
        return ao.Status("pass", base)
    return base


info = {"handler": _handle, "excludes": ["keys", "set"]}
