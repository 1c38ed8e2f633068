"""``stack@1.0``: run a request through a list of devices (execution-http.md §2).

``device-stack`` (also accepted: seed 001's ``execution-stack``) is a list, a numbered
message, or a message of named devices.  Every key except ``set``, ``keys`` and
``prefetch`` is routed through the stack (only the ``stack-keys`` when the message lists
them; others are plain reads).  :func:`prefetch` is a host hint, not a key: the process
runtime passes the assignments it is about to compute to the devices that take them.
Modes (request ``mode`` wins over base ``mode``):

``Fold`` (default)
    Devices run in order, each on the previous one's result, with ``device``,
    ``device-key`` (1-based index) and, when given, ``input-prefixes/<k>`` /
    ``output-prefixes/<k>`` set for it.  ``ok`` with a message continues; ``ok`` with
    anything else is returned as is; ``not_found`` (the device lacks the key) skips the
    device; ``skip`` ends the pass; ``pass`` restarts from the first device with
    ``pass`` + 1 (at most ``max-passes``, default 100); other statuses end the fold with
    that status.  The result gets its ``device``, prefixes and ``pass`` restored.
``Map``
    Each device runs on the original message; the result maps ``device-key`` to each
    device's result (failed devices are left out).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from hbeam import _core, ao
from hbeam import device as _device
from hbeam._sentinels import NOT_FOUND, UNSET
from hbeam.errors import AOError, DeviceError, InvalidMessage

_UNROUTED = ("set", "keys", "prefetch")
_RESTORE = ("device", "input-prefix", "output-prefix")
_MAX_PASSES = 100
_ABSENT: Any = object()


def info(base: Any = None, req: Any = None, opts: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {"handler": router, "excludes": list(_UNROUTED)}
    keys = base.get("stack-keys") if isinstance(base, Mapping) else None
    if isinstance(keys, list):
        result["exports"] = [str(k) for k in keys]
    elif isinstance(keys, Mapping):
        result["exports"] = [str(v) for v in keys.values()]
    return result


def prefetch(base: Any, assignments: Sequence[Any], opts: Any = None) -> None:
    """Host hint from the process runtime (not a key): the slots of ``assignments`` are
    about to be computed in order on ``base``; passed on to every device of the stack
    that takes it (``lua@5.3a`` runs them in batches)."""
    for dev_key, dev in devices_of(base):
        try:
            module = _device.load(dev, opts=opts)
        except AOError:
            continue
        hint = getattr(module, "prefetch", None)
        if callable(hint) and module is not sys.modules[__name__]:
            hint(base.merge({"device": dev, "device-key": dev_key}), assignments, opts)


def devices_of(base: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(device-key, device)`` pairs of the stack, in order."""
    stack = base.get("device-stack", base.get("execution-stack"))
    if isinstance(stack, list):
        return [(str(i + 1), d) for i, d in enumerate(stack)]
    if isinstance(stack, Mapping):
        keys = list(stack.keys())
        if keys and all(k.isdigit() for k in keys):
            keys.sort(key=int)
        return [(k, stack[k]) for k in keys]
    raise DeviceError(
        "stack@1.0 needs a 'device-stack' (a list of devices)",
        device="stack@1.0",
        key="device-stack",
    )


def _prefixed(msg: Any, name: str, key: str) -> Any:
    table = msg.get(f"{name}es") if isinstance(msg, Mapping) else None  # input-prefixes
    if table is None:
        return None
    if isinstance(table, Mapping) and key in table:
        return table[key]
    if isinstance(table, list) and key.isdigit() and 0 < int(key) <= len(table):
        return table[int(key) - 1]
    return None


def _updates(base: Any, stack: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The keys each device of the fold runs with (the same on every pass)."""
    previous = base.get("device")
    prefixed = base.get("input-prefixes") is not None or base.get("output-prefixes") is not None
    updates: list[dict[str, Any]] = []
    for dev_key, dev in stack:
        update: dict[str, Any] = {"device": dev, "device-key": dev_key, "previous-device": previous}
        if prefixed:
            for name in ("input-prefix", "output-prefix"):
                prefix = _prefixed(base, name, dev_key)
                if prefix is not None:
                    update[name] = prefix
        updates.append(update)
    return updates


def router(key: str, base: Any, req: Any, opts: Any) -> Any:
    impl = _core.impl
    request = (req if hasattr(req, "set") else impl.Message(req or {})).set("path", key)
    mode = str(request.get("mode") or base.get("mode") or "Fold").lower()
    stack = devices_of(base)
    if mode == "map":
        results: dict[str, Any] = {}
        for dev_key, dev in stack:
            status, value = ao.resolve_key(
                base.merge({"device": dev, "device-key": dev_key}), key, request, opts=opts
            )
            if status == "ok":
                results[dev_key] = value
        return impl.Message(results)
    if mode != "fold":
        raise InvalidMessage(f"stack@1.0 mode must be Fold or Map, not {mode!r}")
    return _fold(key, base, request, opts, _updates(base, stack), None)


def _fold(
    key: str,
    base: Any,
    request: Any,
    opts: Any,
    updates: list[dict[str, Any]],
    steps: list[Any] | None,
    start: tuple[int, Any] | None = None,
) -> Any:
    """The Fold of ``key`` over the devices (``updates``), each resolved with
    ``ao.resolve_key`` or, where ``steps`` has one, with its compiled step. ``start``:
    ``(index, msg)`` when the devices before ``index`` have run already (by their lanes,
    see :func:`_fold_lanes`) on a ``base`` without ``pass``, ``msg`` being the last result."""
    impl = _core.impl
    original = {k: base.get(k) for k in _RESTORE}
    old_pass = base.get("pass", _ABSENT)
    had_pass = old_pass is not _ABSENT
    max_passes = int(base.get("max-passes", _MAX_PASSES))
    if start is None:
        msg = base if had_pass else base.set("pass", 1)
        index = 0
    else:
        index, msg = start
    while index < len(updates):
        step = steps[index] if steps is not None else None
        probe = msg.merge(updates[index])
        if step is not None:
            status, value = step(probe, request)
        else:
            status, value = ao.resolve_key(probe, key, request, opts=opts)
        if status == "ok":
            if type(value) is not impl.Message:
                if not isinstance(value, Mapping):
                    return value
                value = value if hasattr(value, "merge") else impl.Message(value)
            msg = value
            index += 1
        elif status == "not_found" or (status == "error" and value is NOT_FOUND):
            index += 1  # the device does not implement this key
        elif status == "skip":
            if isinstance(value, Mapping):
                msg = value if hasattr(value, "merge") else impl.Message(value)
            break
        elif status == "pass":
            if isinstance(value, Mapping):
                msg = value if hasattr(value, "merge") else impl.Message(value)
            passes = int(msg.get("pass", 1)) + 1
            if passes > max_passes:
                raise DeviceError(
                    f"stack@1.0: more than {max_passes} passes", device="stack@1.0", key=key
                )
            msg = msg.set("pass", passes)
            index = 0
        else:
            return ao.Status(status, value)
    return msg.merge(_restore(original, old_pass))


def _restore(original: dict[str, Any], old_pass: Any) -> dict[str, Any]:
    """What a Fold's result gets back: the keys it had (``_RESTORE``, ``pass``) and none
    of the keys the Fold set for its devices."""
    restore: dict[str, Any] = {k: v for k, v in original.items() if v is not None}
    restore["pass"] = UNSET if old_pass is _ABSENT else old_pass
    restore["device-key"] = UNSET
    restore["previous-device"] = UNSET
    return restore


def _fold_lanes(
    key: str,
    base: Any,
    request: Any,
    opts: Any,
    updates: list[dict[str, Any]],
    steps: list[Any],
    lanes: list[ao.Lane],
    first: dict[str, Any],
) -> Any:
    """:func:`_fold` when every device has a lane (:func:`ao.step_lane`): the same merges
    and results, without each step's guard and status handling. Where a lane declines,
    the ordinary Fold goes on from that device; a base with ``pass``, ``max-passes`` or a
    request with ``cache-control`` takes the ordinary Fold from the start. ``first`` is
    ``{"pass": 1, **updates[0]}`` (the ordinary Fold sets ``pass`` then merges
    ``updates[0]``: one merge here)."""
    if (
        base.get("pass", _ABSENT) is not _ABSENT
        or base.get("max-passes") is not None
        or request.get("cache-control") is not None
    ):
        return _fold(key, base, request, opts, updates, steps)
    msg = base
    for index, lane in enumerate(lanes):
        probe = base.merge(first) if index == 0 else msg.merge(updates[index])
        value = lane(probe, request)
        if value is None:
            if index == 0:
                return _fold(key, base, request, opts, updates, steps)
            return _fold(key, base, request, opts, updates, steps, (index, msg))
        msg = value
    return msg.merge(_restore({k: base.get(k) for k in _RESTORE}, _ABSENT))


def _config(msg: Any) -> tuple[Any, ...]:
    get = msg.get
    return (
        get("device"),
        get("device-stack"),
        get("execution-stack"),
        get("input-prefixes"),
        get("output-prefixes"),
        get("mode"),
        get("stack-keys"),
    )


def plan(base: Any, key: str, opts: Any = None) -> Any:
    """Host hook for :func:`hbeam.ao.key_step` (not a key): the router for ``key`` on
    messages configured like ``base``, compiled — the devices, their keys and a compiled
    step per device (see ``key_step``) fixed once. A message configured differently, or
    a request with a ``mode``, goes through :func:`router`. None for a Map stack or one
    with ``stack-keys`` (the router then runs as it is)."""
    mode = base.get("mode")
    if key in _UNROUTED or base.get("stack-keys") is not None:
        return None
    if mode is not None and str(mode).lower() != "fold":
        return None
    try:
        stack = devices_of(base)
    except AOError:
        return None
    config = _config(base)
    updates = _updates(base, stack)
    steps = [ao.key_step(base.merge(update), key, opts=opts) for update in updates]
    M = _core.impl.Message
    found = [ao.step_lane(step) if step is not None else None for step in steps]
    lanes = [lane for lane in found if lane is not None]
    if updates and len(lanes) == len(updates):
        first = {"pass": 1, **updates[0]}
        ready = [step for step in steps if step is not None]

        def fold_lanes(msg: Any, req: Any) -> Any:
            if _config(msg) != config or req.get("mode") is not None:
                return router(key, msg, req, opts)
            if type(req) is not M or req.get("path") != key:
                req = (req if hasattr(req, "set") else M(req or {})).set("path", key)
            if type(msg) is not M or type(req) is not M:  # lanes take core Messages
                return _fold(key, msg, req, opts, updates, ready)
            return _fold_lanes(key, msg, req, opts, updates, ready, lanes, first)

        return fold_lanes

    def fold(msg: Any, req: Any) -> Any:
        if _config(msg) != config or req.get("mode") is not None:
            return router(key, msg, req, opts)
        if type(req) is not M or req.get("path") != key:
            req = (req if hasattr(req, "set") else M(req or {})).set("path", key)
        return _fold(key, msg, req, opts, updates, steps)

    return fold
