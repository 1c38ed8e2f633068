"""``process@1.0``: an AO process — its scheduler, its execution device, its states.

A thin device: every key delegates to the :class:`~hbeam.node.process.ProcessRuntime` of
the node in ``opts["node"]`` (a default in-memory node when there is none), which owns the
durable schedule and the live state (``docs/process-design.md``).

Keys: ``schedule`` (the request's ``body``, or the request itself without transport keys,
gets the next slot; returns the assignment), ``slot`` (``{process, current}``),
``compute`` (the state after ``slot``; without one, the latest), ``now`` (the state after
the latest scheduled slot).  Every other key is a plain read of the message.  ``now``,
``compute``, ``slot`` and ``schedule`` are volatile: never served from a cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hbeam import _core
from hbeam.errors import InvalidMessage
from hbeam.node.scheduler import TRANSPORT_KEYS

info = {
    "exports": ["schedule", "slot", "compute", "now"],
    "volatile": ["schedule", "slot", "compute", "now"],
    "default": "message@1.0",
}


def _node(opts: Mapping[str, Any] | None) -> Any:
    node = (opts or {}).get("node")
    if node is None:
        from hbeam.node.runtime import default_node

        node = default_node()
    return node


def pid_of(base: Mapping[str, Any]) -> str:
    """The process ID a process message (a definition, or a state holding ``process``) names."""
    from hbeam.node.runtime import process_id

    inner = base.get("process")
    definition = inner if isinstance(inner, Mapping) else base
    return process_id(definition)


def _ensure_known(node: Any, base: Mapping[str, Any]) -> str:
    pid = pid_of(base)
    if node.store.read(f"processes/{pid}") is None:
        inner = base.get("process")
        node.spawn(inner if isinstance(inner, Mapping) else base)
    return pid


def schedule(base: Any, req: Any, opts: Any) -> Any:
    node = _node(opts)
    pid = _ensure_known(node, base)
    body = req.get("body")
    if not isinstance(body, Mapping):
        body = {k: v for k, v in req.items() if k not in TRANSPORT_KEYS and k != "body"}
        if body.get("path") is not None:
            del body["path"]
    if not body:
        raise InvalidMessage(f"nothing to schedule on {pid}: the request carries no message")
    return node.schedule(pid, body)


def slot(base: Any, req: Any, opts: Any) -> Any:
    node = _node(opts)
    pid = _ensure_known(node, base)
    return _core.impl.Message({"process": pid, "current": node.slot(pid)})


def compute(base: Any, req: Any, opts: Any) -> Any:
    node = _node(opts)
    pid = _ensure_known(node, base)
    target = req.get("slot")
    if target is None:
        return node.now(pid)
    try:
        number = int(target)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(f"slot must be an integer, not {target!r}") from exc
    return node.compute(pid, number)


def now(base: Any, req: Any, opts: Any) -> Any:
    node = _node(opts)
    return node.now(_ensure_known(node, base))
