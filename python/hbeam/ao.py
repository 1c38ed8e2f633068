"""The AO-Core resolver: ``resolve``, ``resolve_many``, ``get``, ``set``, ``remove``, ``keys``.

Resolving a request against a base message runs HyperBEAM's stages (core.md §4.2) once
per path segment, each result becoming the next base:

1. normalisation — a list base becomes a numbered message, a non-map request
   ``{"path": …}``; ``("as", dev, X)``, ``("resolve", list)``, 43-character ID bases and
   ``("resolve", list)`` values inside requests are expanded;
2. cache lookup — by the step's hash path, in ``opts["cache"]`` (else this module's
   default :class:`ResultCache`) and, when ``opts["store"]`` is set, the store;
3. validation — only messages can be resolved (a literal base is ``not_found``);
4. the persistent resolver — identical resolutions in flight at once are computed once
   and the others wait for that result; a resolution that re-enters itself raises
   :class:`~hbeam.errors.RecursionLimit`, as does nesting deeper than
   ``opts["max_resolve_depth"]`` (default 100);
5. device lookup (:mod:`hbeam.device`); 6. execution; 7. the ``on_step`` hook;
8. sub-resolution of a ``("resolve", list)`` result; 9. hash-path linking
   (``priv/hashpath`` on map results); 10. result caching; 11. notifying waiters;
12./13. the next segment.

Plain reads of a key that ``message@1.0`` answers (the common case) skip stages 2, 4
and 10: reading the key is cheaper than any cache (HyperBEAM's lookup heuristic).

Cache policy (core.md §13): directives come from ``opts["cache_control"]`` (the node has
the last word), then the base's (for lookup) or the result's (for storing)
``cache-control`` key, then the request's.  With none, hbeam stores and looks up computed
results.  ``no-cache`` / ``no-store`` / ``only-if-cached`` (a miss raises
:class:`~hbeam.errors.CacheMiss` without computing) / ``always``.  Keys that vary with
time — ``now``, and any key a device lists in its info ``volatile`` — are never served
from or written to the cache, and neither is anything resolved from their results
(those carry ``priv/ao-volatile``).  ``get``/``set``/``remove``/``keys`` never touch the
cache and add no hash paths.

Devices report outcomes by returning a value (status ``ok``), returning
:data:`~hbeam.NOT_FOUND` (``not_found``), returning a :class:`Status` for any other
status (``error``, ``skip``, ``pass``, …), or raising.  :func:`resolve` raises for
anything but ``ok``; :func:`resolve_status` returns ``(status, value)``.
"""

from __future__ import annotations

import builtins
import threading
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from hbeam import _core
from hbeam import device as _device
from hbeam._sentinels import NOT_FOUND, UNDEFINED, UNSET
from hbeam.errors import (
    AOError,
    CacheMiss,
    DeviceError,
    InvalidMessage,
    InvalidPath,
    NotFound,
    RecursionLimit,
)

__all__ = [
    "VOLATILE_KEYS",
    "Status",
    "Step",
    "default_cache",
    "force_message",
    "get",
    "get_first",
    "keys",
    "remove",
    "resolve",
    "resolve_many",
    "resolve_status",
    "set",
]

VOLATILE_KEYS: Final = frozenset({"now"})
"""Keys whose results vary with time on every device (devices add more via info)."""

_NOARG: Any = object()
_MISS: Any = object()
_ID_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_VOLATILE_MARK: Final = "ao-volatile"
_SHOW_KEYS = 20


@dataclass(frozen=True, slots=True)
class Status:
    """A device outcome other than plain success: ``Status("error", value)``,
    ``Status("skip", msg)``, ``Status("pass", msg)``…  ``Status("ok", v)`` is ``v``."""

    status: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Step:
    """What ``opts["on_step"]`` is told after each step."""

    base: Any
    req: Mapping[str, Any]
    key: str
    device: str
    status: str
    value: Any
    cached: bool


# --- per-call context -----------------------------------------------------------------


def _directives(value: Any) -> tuple[bool | None, bool | None, bool]:
    """``(store, lookup, only_if_cached)`` from cache-control directives (None = unsaid)."""
    if value is None or value is False:
        return (None, None, False)
    items: Iterable[Any]
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple, frozenset)) or (
        isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping))
    ):
        items = value
    else:
        items = [value]
    store: bool | None = None
    lookup: bool | None = None
    only = False
    for raw in items:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        if not isinstance(raw, str):
            continue
        d = raw.strip().lower().replace("_", "-")
        if d == "always":
            store, lookup = True, True
        elif d == "no-store":
            store = False
        elif d == "store":
            store = True
        elif d == "no-cache":
            lookup = False
        elif d == "cache":
            lookup = True
        elif d == "only-if-cached":
            only = True
    return (store, lookup, only)


_parsed_cc: dict[Any, tuple[bool | None, bool | None, bool]] = {}


def _cached_directives(value: Any) -> tuple[bool | None, bool | None, bool]:
    if value is None:
        return (None, None, False)
    key = value if type(value) is str else tuple(value) if type(value) is list else None
    if key is None:
        return _directives(value)
    try:
        hit = _parsed_cc.get(key)
    except TypeError:  # an unhashable item: parse it every time
        return _directives(value)
    if hit is None:
        hit = _directives(value)
        if len(_parsed_cc) < 1024:
            _parsed_cc[key] = hit
    return hit


def _msg_directives(msg: Any) -> tuple[bool | None, bool | None, bool] | None:
    if msg is None:
        return None
    value = msg.get("cache-control")
    if value is None:
        return None
    return _cached_directives(value)


_default_caches: dict[str, Any] = {}
_default_caches_lock = threading.Lock()


def default_cache() -> Any:
    """The module's result cache for the active core backend (used when ``opts`` has none)."""
    name = _core.name
    cache = _default_caches.get(name)
    if cache is None:
        with _default_caches_lock:
            cache = _default_caches.get(name)
            if cache is None:
                cache = _core.impl.ResultCache()
                _default_caches[name] = cache
    return cache


class _Ctx:
    """Options of one top-level call, read once."""

    __slots__ = (
        "M",
        "cache",
        "fail",
        "force",
        "hashpath",
        "heuristics",
        "internal",
        "max_depth",
        "node_lookup",
        "node_only",
        "node_store",
        "on_step",
        "opts",
        "store",
    )

    opts: Mapping[str, Any]
    M: Any
    internal: bool
    fail: tuple[str, Any] | None
    on_step: Callable[[Step], Any] | None
    max_depth: int
    store: Any
    heuristics: bool
    force: bool
    node_store: bool | None
    node_lookup: bool | None
    node_only: bool
    hashpath: str
    cache: Any

    def __init__(self, opts: Mapping[str, Any] | None, internal: bool = False) -> None:
        if not opts and opts is not None and not isinstance(opts, Mapping):
            raise InvalidMessage(f"opts must be a mapping, not {type(opts).__name__}")
        if not opts:
            # the common case: no options at all
            self.opts = _EMPTY
            self.M = _core.impl.Message
            self.internal = internal
            self.fail = None
            self.on_step = None
            self.max_depth = 100
            self.store = None
            self.heuristics = True
            self.force = False
            if internal:
                self.node_store, self.node_lookup, self.node_only = False, False, False
                self.hashpath = "ignore"
                self.cache = None
            else:
                self.node_store, self.node_lookup, self.node_only = None, None, False
                self.hashpath = "update"
                self.cache = default_cache()
            return
        o: Mapping[str, Any] = opts
        if type(o) is not dict and not isinstance(o, Mapping):
            raise InvalidMessage(f"opts must be a mapping, not {type(o).__name__}")
        self.opts = o
        self.M = _core.impl.Message
        self.internal = internal
        self.fail = None
        self.on_step = o.get("on_step")
        self.max_depth = int(o.get("max_resolve_depth", 100))
        self.store = o.get("store")
        if internal:
            self.node_store, self.node_lookup, self.node_only = False, False, False
            self.hashpath = "ignore"
            self.heuristics = True
            self.force = False
            self.cache = None
            return
        self.node_store, self.node_lookup, self.node_only = _cached_directives(
            o.get("cache_control")
        )
        self.hashpath = o.get("hashpath", "update")
        if self.hashpath not in ("update", "reset", "ignore"):
            raise InvalidMessage(
                f"opts['hashpath'] must be 'update', 'reset' or 'ignore', not {self.hashpath!r}"
            )
        if self.hashpath == "ignore":
            self.node_store = False
        self.heuristics = bool(o.get("cache_lookup_heuristics", True))
        self.force = bool(o.get("force_message", False))
        cache = o.get("cache")
        self.cache = cache if cache is not None else default_cache()


_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


class _Local(threading.local):
    depth = 0


_local = _Local()


# --- the persistent resolver: in-flight de-duplication ---------------------------------


class _Flight:
    __slots__ = ("done", "error", "outcome", "owner", "waiters")

    def __init__(self, owner: int) -> None:
        self.owner = owner
        self.done = threading.Event()
        self.outcome: tuple[str, Any] | None = None
        self.error: BaseException | None = None
        self.waiters = 0


_flights: dict[str, _Flight] = {}
_waiting: dict[int, str] = {}  # thread ident -> hash path it waits for
_flights_lock = threading.Lock()


def _join_or_lead(hp: str, key: str) -> _Flight | None:
    """None: this thread now leads ``hp``.  A flight: wait for its owner's outcome."""
    me = threading.get_ident()
    with _flights_lock:
        flight = _flights.get(hp)
        if flight is None:
            _flights[hp] = _Flight(me)
            return None
        owner = flight.owner
        seen: builtins.set[int] = builtins.set()
        while True:
            if owner == me:
                raise RecursionLimit(
                    f"resolving key {key!r} re-enters itself (an identical resolution is "
                    f"already running in this chain; hash path {hp}): refusing infinite "
                    "recursion",
                    key=key,
                    hashpath=hp,
                )
            awaited = _waiting.get(owner)
            if awaited is None or owner in seen:
                break
            seen.add(owner)
            other = _flights.get(awaited)
            if other is None:
                break
            owner = other.owner
        flight.waiters += 1
        _waiting[me] = hp
    return flight


def _wait(flight: _Flight) -> tuple[str, Any]:
    me = threading.get_ident()
    try:
        flight.done.wait()
    finally:
        with _flights_lock:
            _waiting.pop(me, None)
    if flight.error is not None:
        raise flight.error
    assert flight.outcome is not None
    return flight.outcome


def _finish(hp: str, outcome: tuple[str, Any] | None, error: BaseException | None) -> None:
    with _flights_lock:
        flight = _flights.pop(hp, None)
    if flight is not None:
        flight.outcome = outcome
        flight.error = error
        flight.done.set()


# --- helpers -------------------------------------------------------------------------


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 43 and _ID_CHARS.issuperset(value)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"a {type(value).__name__} ({text})"


def _show_keys(msg: Any) -> str:
    if not isinstance(msg, Mapping):
        return "[]"
    pk = getattr(msg, "public_keys", None)
    ks = pk() if pk is not None else [k for k in msg if not _core.impl.is_private(k)]
    shown = ", ".join(repr(k) for k in ks[:_SHOW_KEYS])
    if len(ks) > _SHOW_KEYS:
        shown += f", ... ({len(ks) - _SHOW_KEYS} more)"
    return f"[{shown}]"


def _not_found(key: str, base: Any) -> NotFound:
    if isinstance(base, Mapping):
        dev = base.get("device")
        where = f" (device {dev})" if isinstance(dev, str) else ""
        return NotFound(
            f"key {key!r} not found in message{where} with keys {_show_keys(base)}",
            key=key,
        )
    return NotFound(
        f"cannot resolve key {key!r} on {_describe(base)}: only messages have keys",
        key=key,
    )


def _status_error(status: str, value: Any, key: str, base: Any) -> AOError:
    if value is NOT_FOUND:
        return _not_found(key, base)
    if isinstance(value, AOError):
        return value
    dev = base.get("device", _device.DEFAULT_DEVICE) if isinstance(base, Mapping) else None
    details: dict[str, Any] = {"status": status, "key": key, "device": dev}
    if isinstance(value, Mapping):
        if "status" in value:
            details["status_code"] = value.get("status")
        if "body" in value:
            details["body"] = value.get("body")
    err = AOError(
        f"resolving key {key!r} on device {dev!r} ended with status {status!r}: {_describe(value)}",
        **details,
    )
    err.value = value  # type: ignore[attr-defined]
    return err


def _sanitize(value: Any, depth: int = 0) -> Any:
    """``value`` with the sentinels (not message values) replaced by marker maps."""
    if value is UNSET or value is UNDEFINED or value is NOT_FOUND:
        return {"ao-sentinel": repr(value)}
    if depth > 256:
        return value
    if isinstance(value, Mapping):
        return {k: _sanitize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitize(v, depth + 1) for v in value]
    return value


def _hashpath(base: Any, req: Any) -> str:
    """``hashpath(base, req)``; a request holding ``UNSET``/``UNDEFINED`` hashes them as
    markers (the core encodes only message values)."""
    try:
        result: str = _core.impl.hashpath(base, req)
    except InvalidMessage:
        if not isinstance(req, Mapping):
            raise
        result = _core.impl.hashpath(base, _sanitize(req))
    return result


def _as_message(value: Mapping[str, Any], ctx: _Ctx) -> Any:
    return value if type(value) is ctx.M else ctx.M(value)


def _tainted(msg: Any) -> bool:
    priv = msg.get("priv")
    if priv is None:
        return False
    if type(priv) is _core.impl.Message or isinstance(priv, Mapping):
        return bool(priv.get(_VOLATILE_MARK))
    return False


def _link(value: Any, hp: str | None, volatile: bool, ctx: _Ctx) -> Any:
    """Stage 9: a map result with its hash path (and volatile mark) per ``hashpath``."""
    mode = ctx.hashpath
    if mode == "ignore" and not volatile:
        return value
    msg = _as_message(value, ctx)
    if volatile and _tainted(msg):
        volatile = False  # already marked
    if mode == "update" and hp is not None:
        if volatile:
            return msg.merge({"priv": {"hashpath": hp, _VOLATILE_MARK: True}})
        return msg.set("priv/hashpath", hp)
    if mode == "reset":
        priv = msg.get("priv")
        if isinstance(priv, Mapping) and "hashpath" in priv:
            msg = msg.remove("priv/hashpath")
    if volatile:
        msg = msg.set(f"priv/{_VOLATILE_MARK}", True)
    return msg


class _Lazy:
    """A map read by plain key reads whose hash path is not computed yet.

    A chain of plain reads (``a/b/c/d``) needs the intermediate hash paths only if a
    result leaves the chain or feeds a computed step; until then only the keys are kept,
    and :func:`_materialise` folds them (string hash paths, no intermediate messages).
    """

    __slots__ = ("anchor", "steps", "value")

    def __init__(self, value: Any, anchor: Any, steps: list[Any]) -> None:
        self.value = value
        self.anchor = anchor
        self.steps = steps


def _materialise(cur: Any, ctx: _Ctx) -> Any:
    if type(cur) is not _Lazy:
        return cur
    anchor = cur.anchor
    hp = _hashpath(anchor, cur.steps[0])
    for step in cur.steps[1:]:
        hp = _hashpath(hp, step)
    return _link(cur.value, hp, _tainted(anchor), ctx)


def _plain(cur: Any) -> Any:
    return cur.value if type(cur) is _Lazy else cur


def _resolve_values(req: Mapping[str, Any], ctx: _Ctx) -> Mapping[str, Any]:
    """``("resolve", list)`` values of a plain request dict replaced by their results."""
    if type(req) is ctx.M:
        return req
    out: dict[str, Any] | None = None
    for k, v in req.items():
        if type(v) is tuple and len(v) == 2 and v[0] == "resolve":
            if out is None:
                out = dict(req)
            out[k] = _ok(_run(list(v[1]), ctx), "a '+resolve' value")
    return req if out is None else out


def _ok(outcome: tuple[str, Any], what: str) -> Any:
    status, value = outcome
    if status != "ok":
        if isinstance(value, AOError):
            raise value
        if value is NOT_FOUND:
            raise NotFound(f"{what} could not be resolved: not found")
        raise AOError(f"{what} ended with status {status!r}: {_describe(value)}", status=status)
    return value


# --- normalisation of bases and requests ------------------------------------------------


def _load_id(ident: str, ctx: _Ctx) -> Any:
    if ctx.store is None:
        raise NotFound(
            f"message {ident!r} not found: resolving an ID needs a store (opts['store'])",
            key=ident,
        )
    from hbeam import cache as _cache  # the store layer loads only when a store is in use

    value = _cache.read(ident, opts=ctx.opts)
    if value is NOT_FOUND:
        raise NotFound(f"message {ident!r} not found in the store", key=ident)
    if isinstance(value, Mapping) and ctx.hashpath == "update":
        msg = _as_message(value, ctx)
        priv = msg.get("priv")
        if not (isinstance(priv, Mapping) and "hashpath" in priv):
            msg = msg.set("priv/hashpath", ident)
        return msg
    return value


def _cast(msg: Any, dev: Any, params: Mapping[str, Any], ctx: _Ctx) -> Any:
    """``msg`` with its device set to ``dev`` and ``params`` merged in (executes nothing)."""
    base: Any = _base(msg, ctx)
    if not isinstance(base, Mapping):
        raise InvalidMessage(f"cannot cast {_describe(base)} to device {dev!r}: not a message")
    changes: dict[str, Any] = {**params, "device": dev}
    if base.get("device") == dev and not params:
        return base
    out: Any = _as_message(base, ctx).merge(changes)
    if ctx.hashpath == "update":
        # fold the cast into the hash path so the same message under two devices never
        # shares cache entries
        out = out.set("priv/hashpath", _hashpath(base, changes))
    return out


def _base(item: Any, ctx: _Ctx) -> Any:
    """Stage 1 for a base: the value resolution starts from."""
    t = type(item)
    if t is ctx.M:
        return item
    if t is _Lazy:
        return _materialise(item, ctx)
    if isinstance(item, Mapping):
        return ctx.M(_resolve_values(item, ctx))
    if t is str:
        return _load_id(item, ctx) if _is_id(item) else item
    if t is list:
        return _core.impl.normalize_keys(item)
    if t is tuple and item:
        if item[0] == "as" and len(item) == 3:
            inner = item[2]
            if isinstance(inner, Mapping) and "path" in inner:
                rest = {k: v for k, v in inner.items() if k != "path"}
                base = _cast(rest, item[1], {}, ctx)
                return _ok(_apply(base, {"path": inner["path"]}, ctx), "an 'as' base")
            return _cast(inner, item[1], {}, ctx)
        if item[0] == "resolve" and len(item) == 2:
            return _ok(_run(list(item[1]), ctx), "a '(…)' sub-path")
        return _core.impl.normalize_keys(list(item))
    return item


def _run(items: list[Any], ctx: _Ctx) -> tuple[str, Any]:
    """``resolve_many`` on already-listed items: ``(status, value)``."""
    if not items:
        raise InvalidMessage("Attempted to resolve an empty message sequence.")
    cur = _base(items[0], ctx)
    for item in items[1:]:
        status, cur = _apply(cur, item, ctx)
        if status != "ok":
            return status, cur
    return "ok", _materialise(cur, ctx)


def _apply(cur: Any, item: Any, ctx: _Ctx) -> tuple[str, Any]:
    """Resolve one request item (every segment of its path) on ``cur``."""
    t = type(item)
    if t is str:
        req: Mapping[str, Any] | None = None
        path: Any = item
    elif isinstance(item, Mapping):
        req = _resolve_values(item, ctx)
        path = req.get("path")
        if path is None:
            raise InvalidPath(f"request has no 'path' (keys {_show_keys(req)}): nothing to resolve")
    elif t is tuple and item and item[0] == "as" and len(item) == 3:
        inner = item[2]
        if isinstance(inner, str):
            inner = {"path": inner}
        if not isinstance(inner, Mapping):
            raise InvalidMessage(f"bad ('as', device, message) request: {_describe(inner)}")
        inner = _resolve_values(inner, ctx)
        if "path" not in inner:
            return "ok", _cast(cur, item[1], inner, ctx)
        return _apply(_cast(cur, item[1], {}, ctx), inner, ctx)
    elif t is tuple and item and item[0] == "resolve" and len(item) == 2:
        status, value = _run(list(item[1]), ctx)
        if status != "ok":
            return status, value
        if isinstance(value, (str, Mapping)):
            return _apply(cur, value, ctx)
        raise InvalidMessage(
            f"a '(…)' request resolved to {_describe(value)}; expected a path or a message"
        )
    elif isinstance(item, (list, int, tuple, bytes)):
        req, path = None, item
    else:
        raise InvalidMessage(f"cannot use {_describe(item)} as a request")
    if type(path) is str and path and "/" not in path and len(path) < 1024:
        segs = [path]
    else:
        if path == "" or path == b"":
            raise InvalidPath("request path is empty: nothing to resolve")
        segs = _core.impl.parts(path)
    if req is not None and len(segs) == 1 and req.get("path") == segs[0]:
        status, value = _step(cur, segs[0], req, ctx)
        if status != "ok":
            ctx.fail = (segs[0], _plain(cur))
        return status, value
    for seg in segs:
        step_req = None if req is None else {**req, "path": seg}
        status, value = _step(cur, seg, step_req, ctx)
        if status != "ok":
            ctx.fail = (seg, _plain(cur))
            return status, value
        cur = value
    return "ok", cur


# --- one step --------------------------------------------------------------------------


_read: Callable[[Any, str], Any] | None = None


def _reader() -> Callable[[Any, str], Any]:
    global _read
    if _read is None:
        from hbeam.devices.message import read

        _read = read
    return _read


def _step(base: Any, key: str, req: Mapping[str, Any] | None, ctx: _Ctx) -> tuple[str, Any]:
    """Resolve one key (``req`` None = a request that is only this path) on ``base``."""
    # 1. normalisation of the base
    t = type(base)
    lazy = None
    if t is _Lazy:
        lazy = base
        base = base.value
        t = type(base)
    if t is not ctx.M:
        if isinstance(base, Mapping):
            base = ctx.M(base)
        elif t is list or t is tuple:
            base = _core.impl.normalize_keys(list(base))
        else:
            # 3. validation: a literal has no keys
            return "error", NOT_FOUND
    # 5. device lookup
    name = base.get("device")
    dev = _device.default() if name is None else _device.load(name, opts=ctx.opts)
    decision = _device.lookup(dev, key, base, ctx.opts)
    if decision.direct and ctx.heuristics:
        # message@1.0's plain read: no device call, no cache (HyperBEAM's heuristic)
        value = (_read or _reader())(base, key)
        if value is NOT_FOUND:
            status = "error"
        else:
            status = "ok"
            if ctx.hashpath != "ignore" and isinstance(value, Mapping):
                # 9. hash-path linking, deferred while the chain only reads keys
                step = key if req is None else req
                if lazy is not None:
                    value = _Lazy(value, lazy.anchor, [*lazy.steps, step])
                else:
                    value = _Lazy(value, base, [step])
                if ctx.on_step is not None:
                    value = _materialise(value, ctx)
        if ctx.on_step is not None:
            return _hook(ctx, base, key, req, dev, status, value, False)
        return status, value
    if lazy is not None:
        base = _materialise(lazy, ctx)
        if type(base) is not ctx.M:
            base = ctx.M(base)
    return _computed(base, key, req, dev, decision, ctx)


def _computed(
    base: Any,
    key: str,
    req: Mapping[str, Any] | None,
    dev: Any,
    decision: _device.Decision,
    ctx: _Ctx,
) -> tuple[str, Any]:
    volatile = decision.volatile or key in VOLATILE_KEYS or _tainted(base)
    # 2. cache lookup
    lookup = store = only = False
    hp: str | None = None
    if ctx.cache is not None and not ctx.internal:
        bdir = _msg_directives(base)
        rdir = _msg_directives(req)
        lookup_v = ctx.node_lookup
        if lookup_v is None and bdir is not None:
            lookup_v = bdir[1]
        if lookup_v is None and rdir is not None:
            lookup_v = rdir[1]
        only = ctx.node_only or bool(bdir and bdir[2]) or bool(rdir and rdir[2])
        lookup = (lookup_v is not False or only) and not volatile
        store_v = ctx.node_store
        if store_v is None and rdir is not None:
            store_v = rdir[0]
        store = store_v is not False and not volatile
        if only and volatile:
            raise CacheMiss(
                f"key {key!r} varies with time and is never cached, but the request is "
                "only-if-cached",
                key=key,
                **{"cache-status": "miss"},
            )
        if lookup or store:
            hp = _hashpath(base, key if req is None else req)
        if lookup:
            assert hp is not None
            hit = ctx.cache.get(hp, _MISS)
            if hit is _MISS and ctx.store is not None:
                from hbeam import cache as _cache

                hit = _cache.read_result(hp, opts=ctx.opts)
                if hit is NOT_FOUND:
                    hit = _MISS
                else:
                    ctx.cache.put(hp, hit)
            if hit is not _MISS:
                if ctx.on_step is not None:
                    return _hook(ctx, base, key, req, dev, "ok", hit, True)
                return "ok", hit
            if only:
                raise CacheMiss(
                    f"key {key!r} is not cached (hash path {hp}) and the request is only-if-cached",
                    key=key,
                    hashpath=hp,
                    **{"cache-status": "miss"},
                )
    # 4. persistent resolver
    lead = False
    if lookup:
        assert hp is not None
        flight = _join_or_lead(hp, key)
        if flight is not None:
            return _wait(flight)
        lead = True
    depth = _local.depth
    if depth >= ctx.max_depth:
        if lead:
            assert hp is not None
            _finish(hp, None, None)
        raise _too_deep(key, ctx.max_depth, depth)
    _local.depth = depth + 1
    outcome: tuple[str, Any] | None = None
    error: BaseException | None = None
    try:
        full_req: Mapping[str, Any] = {"path": key} if req is None else req
        # 6. execution
        status, value = _execute(decision, key, base, full_req, ctx)
        # 7. step hook
        if ctx.on_step is not None:
            status, value = _hook(ctx, base, key, full_req, dev, status, value, False)
        # 8. sub-resolution
        if status == "ok" and _is_subresolution(value):
            status, value = _run(list(value[1]), ctx)
        if status != "ok":
            outcome = (status, _without_hashpath(value, ctx))
            return outcome
        # 9. hash-path linking
        if isinstance(value, Mapping):
            if hp is None and ctx.hashpath == "update":
                hp = _hashpath(base, full_req)
            value = _link(value, hp, volatile, ctx)
            if store:
                res_dir = _msg_directives(value)
                if ctx.node_store is None and res_dir is not None and res_dir[0] is False:
                    store = False
        # 10. result caching
        if store and hp is not None and ctx.cache is not None:
            ctx.cache.put(hp, value)
            if ctx.store is not None:
                from hbeam import cache as _cache

                _cache.write_result(hp, value, opts=ctx.opts)
        outcome = ("ok", value)
        return outcome
    except BaseException as exc:
        error = exc
        raise
    finally:
        _local.depth = depth
        # 11. notify waiters
        if lead:
            assert hp is not None
            _finish(hp, outcome, error)


def _too_deep(key: str, max_depth: int, depth: int) -> RecursionLimit:
    return RecursionLimit(
        f"resolving key {key!r} nests deeper than {max_depth} resolutions "
        "(opts['max_resolve_depth']); a device probably resolves itself forever",
        key=key,
        depth=depth,
    )


def _is_subresolution(value: Any) -> bool:
    """Stage 8: a device asked for ``("resolve", [messages…])`` to be resolved."""
    return type(value) is tuple and len(value) == 2 and value[0] == "resolve"


def _without_hashpath(value: Any, ctx: _Ctx) -> Any:
    """A non-ok outcome's message without a hash path (it links to nothing)."""
    if isinstance(value, Mapping) and not isinstance(value, AOError):
        priv = value.get("priv")
        if isinstance(priv, Mapping) and "hashpath" in priv:
            return _as_message(value, ctx).remove("priv/hashpath")
    return value


def _execute(
    decision: _device.Decision,
    key: str,
    base: Any,
    req: Mapping[str, Any],
    ctx: _Ctx,
) -> tuple[str, Any]:
    """Stage 6: call the device function; returns ``(status, value)``."""
    fn = decision.fun
    try:
        if decision.status == "add_key":
            result = fn(*(key, base, req, ctx.opts)[: decision.arity])
        else:
            result = fn(*(base, req, ctx.opts)[: decision.arity])
    except AOError:
        raise
    except Exception as exc:
        raise _device_failure(decision, key, exc) from exc
    return _outcome(result)


def _device_failure(decision: _device.Decision, key: str, exc: Exception) -> AOError:
    """The error a device function's non-AO exception becomes (raised ``from`` it)."""
    if isinstance(exc, RecursionError):
        return RecursionLimit(
            f"resolving key {key!r} exhausted Python's stack (nested too deeply)", key=key
        )
    name = _device.device_name(decision.device)
    return DeviceError(
        f"device {name!r} failed resolving key {key!r}: {type(exc).__name__}: {exc}",
        device=name,
        key=key,
    )


def _outcome(result: Any) -> tuple[str, Any]:
    """``(status, value)`` for what a device function returned."""
    if type(result) is Status:
        return result.status, result.value
    if result is NOT_FOUND:
        return "error", NOT_FOUND
    if isinstance(result, AOError):
        return "error", result
    return "ok", result


def _device_call(decision: _device.Decision, key: str, ctx: _Ctx) -> Callable[[Any, Any], Any]:
    """``call(msg, req)``: the device function called as :func:`_execute` calls it, with
    the arguments' shape fixed once (for steps that call it slot after slot)."""
    fn, arity, opts = decision.fun, decision.arity, ctx.opts
    if decision.status == "add_key":
        return lambda msg, req: fn(*(key, msg, req, opts)[:arity])
    if arity == 3:
        return lambda msg, req: fn(msg, req, opts)
    if arity == 2:
        return fn
    return lambda msg, req: fn(*(msg, req, opts)[:arity])


def _hook(
    ctx: _Ctx,
    base: Any,
    key: str,
    req: Mapping[str, Any] | None,
    dev: Any,
    status: str,
    value: Any,
    cached: bool,
) -> tuple[str, Any]:
    assert ctx.on_step is not None
    step = Step(
        base,
        req if req is not None else {"path": key},
        key,
        _device.device_name(dev),
        status,
        value,
        cached,
    )
    try:
        replaced = ctx.on_step(step)
    except AOError:
        raise
    except Exception as exc:
        raise AOError(
            f"opts['on_step'] failed on key {key!r}: {type(exc).__name__}: {exc}", key=key
        ) from exc
    if type(replaced) is Status:
        return replaced.status, replaced.value
    return status, value


# --- public API ------------------------------------------------------------------------


def _items_for(base: Any, req: Any, ctx: _Ctx) -> list[Any]:
    if req is _NOARG:
        msg = base
        if isinstance(msg, str):
            return list(_core.impl.parse_request(msg))
        if isinstance(msg, Mapping):
            path = msg.get("path")
            if path is None:
                raise InvalidPath("Attempted to resolve a message without a path.")
            rest = {k: v for k, v in msg.items() if k != "path"}
            if isinstance(path, str):
                return list(_core.impl.parse_request(path, rest))
            return [rest, {"path": path}]
        if isinstance(msg, list):
            return list(msg)
        if isinstance(msg, tuple):
            return [msg]
        raise InvalidMessage(f"cannot resolve {_describe(msg)}: expected a message or a path")
    if type(req) is str:
        return [base, req]
    if isinstance(req, Mapping) or (type(req) is tuple and req and req[0] in ("as", "resolve")):
        return [base, req]
    if req is None:
        raise InvalidPath("request path is missing (None)")
    return [base, req]


def _finish_public(outcome: tuple[str, Any], ctx: _Ctx) -> Any:
    status, value = outcome
    if status != "ok":
        key, where = ctx.fail if ctx.fail is not None else ("?", None)
        raise _status_error(status, value, key, where)
    if ctx.force:
        return force_message(value)
    return value


def _guard(fn: Callable[[], Any], what: str) -> Any:
    try:
        return fn()
    except RecursionError as exc:
        raise RecursionLimit(f"{what}: nested too deeply for Python's stack") from exc


_FN_KEYS: Final = _device.MESSAGE_FUNCTION_KEYS


def _fast_walk(base: Any, path: str, M: Any) -> tuple[bool, Any, list[str]]:
    """The plain-read walk of ``path`` over messages without devices: ``(done, value,
    segments)``; ``done`` is False whenever anything needs the full resolver (a device, a
    function key, a private or missing key, a list, a long or empty path).

    Only valid while ``device.plain_reads_builtin`` holds."""
    if len(path) > 1024 or not path.isascii():
        return False, None, []
    segs = path.split("/")
    cur = base
    done = False
    for seg in segs:
        if not seg:
            continue
        if (
            type(cur) is not M
            or cur.get("device") is not None
            or seg in _FN_KEYS
            or (seg[0] in "pP" and seg[:4].lower() == "priv")
        ):
            return False, None, segs
        cur = cur.get(seg, _MISS)
        if cur is _MISS:
            return False, None, segs
        done = True
    return done, cur, segs


def _fast_resolve(base: Any, path: str, M: Any) -> Any:
    """:func:`resolve` of plain reads on device-less messages, or ``_MISS``."""
    if "/" not in path:
        # one key: the most common request of all
        if (
            not path
            or base.get("device") is not None
            or path in _FN_KEYS
            or (path[0] in "pP" and path[:4].lower() == "priv")
            or len(path) > 1024
        ):
            return _MISS
        value = base.get(path, _MISS)
        if value is _MISS or type(value) is not M:
            return value
        steps = [path]
    else:
        done, value, segs = _fast_walk(base, path, M)
        if not done:
            return _MISS
        if type(value) is not M:
            return value
        steps = [s for s in segs if s]
    hp = _hashpath(base, steps[0])
    for step in steps[1:]:
        hp = _hashpath(hp, step)
    if _tainted(base):
        return value.merge({"priv": {"hashpath": hp, _VOLATILE_MARK: True}})
    return value.set("priv/hashpath", hp)


def resolve(base: Any, req: Any = _NOARG, /, *, opts: Mapping[str, Any] | None = None) -> Any:
    """Resolve ``req`` against ``base`` and return the result (HyperBEAM's ``resolve/3``).

    ``resolve(base, req)``: ``req`` is a message (its ``path`` names the keys to resolve,
    segment by segment; its other keys are copied to every step) or a path (``"a/b"``,
    ``["a", "b"]``).  ``resolve(msg)``: a message carrying its own ``path`` (an HTTP-style
    path; the message's other keys are global to every step), or a path string such as
    ``"/ID~process@1.0/now"``.

    >>> resolve({"outer": {"inner": "v"}}, "/outer/inner")
    'v'

    Raises:
        NotFound: a key is missing (the message names the key and the keys there are).
        DeviceError: a device is unknown, cannot be loaded, or raised.
        InvalidPath: no path, or a malformed one.
        CacheMiss: ``only-if-cached`` and the result is not cached.
        RecursionLimit: the resolution re-enters itself or nests too deeply.
        AOError: a device returned a non-ok status (``.value`` carries what it returned).
    """
    if not opts and type(req) is str and _device.plain_reads_builtin:
        M = _core.impl.Message
        if type(base) is M:
            value = _fast_resolve(base, req, M)
            if value is not _MISS:
                return value
    ctx = _Ctx(opts)
    try:
        return _finish_public(_run(_items_for(base, req, ctx), ctx), ctx)
    except RecursionError as exc:
        raise RecursionLimit("resolve: nested too deeply for Python's stack") from exc


def resolve_status(
    base: Any, req: Any = _NOARG, /, *, opts: Mapping[str, Any] | None = None
) -> tuple[str, Any]:
    """Like :func:`resolve`, but a device's non-ok outcome is returned, not raised.

    Returns ``("ok", value)``, ``("error", NOT_FOUND)`` for a missing key, or whatever
    ``(status, value)`` a device returned (``("pass", msg)``, ``("skip", msg)``…).
    Exceptions (device failures, bad input) still raise.
    """
    ctx = _Ctx(opts)
    status, value = _guard(lambda: _run(_items_for(base, req, ctx), ctx), "resolve")
    if status == "ok" and ctx.force:
        value = force_message(value)
    return status, value


def resolve_key(
    base: Any, key: str, req: Mapping[str, Any], /, *, opts: Mapping[str, Any] | None = None
) -> tuple[str, Any]:
    """``resolve_status(base, req)`` for a request whose ``path`` is the single key ``key``.

    The same outcome, without parsing the request: when ``base`` and ``req`` are core
    Messages and ``key`` is one plain segment, the key is resolved as one resolver step
    (device lookup, cache rules, hooks, hash-path linking all apply). Devices that call
    other devices per message (``stack@1.0``, the process runtime) use it.
    """
    M = _core.impl.Message
    if (
        type(base) is not M
        or type(req) is not M
        or type(key) is not str
        or not key
        or "/" in key
        or len(key) >= 1024
        or req.get("path") != key
    ):
        return resolve_status(base, req, opts=opts)
    ctx = _Ctx(opts)

    def run() -> tuple[str, Any]:
        status, value = _step(base, key, req, ctx)
        if status != "ok":
            return status, value
        return status, _materialise(value, ctx)

    status, value = _guard(run, "resolve")
    if status == "ok" and ctx.force:
        value = force_message(value)
    return status, value


KeyStep = Callable[[Any, Mapping[str, Any]], tuple[str, Any]]
"""``step(base, req) -> (status, value)``: what :func:`resolve_key` gives for one key."""


def key_step(base: Any, key: str, *, opts: Mapping[str, Any] | None = None) -> KeyStep | None:
    """A step function resolving ``key`` on messages like ``base``, for callers that
    resolve the same key slot after slot (the process runtime, ``stack@1.0``).

    ``step(msg, req)`` returns exactly ``resolve_key(msg, key, req, opts=opts)``. It is
    compiled once: when the resolver would add nothing to the device call — no step
    hook, no result cache (``cache_control`` no-cache and no-store, or a volatile key),
    hash paths ignored, a device whose info does not depend on the message — the step
    calls the device function the resolver would choose directly and marks volatile
    results as the resolver does. A device may compile its own function for the key: a
    module attribute ``plan(base, key, opts)`` (a host hook, not a key) returning
    ``f(msg, req)`` that returns what the device function would, or None to decline
    (the step then calls the device function itself); ``stack@1.0`` compiles its fold
    and ``patch@1.0`` its move this way. A device whose info depends on the message may
    have a plan too, which then checks each message against ``base`` (no step when it
    declines). A
    message with another ``device`` or a ``cache-control`` key, a request for another
    path, or any call after a device was (un)registered takes the full resolver.

    None when the conditions do not hold (resolve normally then).
    """
    M = _core.impl.Message
    if type(base) is not M or type(key) is not str or not key or "/" in key:
        return None
    generation = _device.generation
    ctx = _Ctx(opts)
    name = base.get("device")
    if (
        ctx.on_step is not None
        or ctx.hashpath != "ignore"
        or ctx.force
        or ctx.node_only
        or (name is not None and type(name) is not str)
        or base.get("cache-control") is not None
    ):
        return None
    try:
        dev = _device.default() if name is None else _device.load(name, opts=ctx.opts)
        decision = (
            _device.static_decision(name, key, base, ctx.opts)
            if name is not None
            else _device.lookup(dev, key, base, ctx.opts)
        )
        static = decision is not None
        if decision is None and callable(getattr(dev, "plan", None)):
            # message-dependent info: the device's plan checks messages against base
            decision = _device.lookup(dev, key, base, ctx.opts)
    except AOError:
        return None
    if decision is None or decision.direct or decision.status not in ("ok", "add_key"):
        return None
    volatile_key = decision.volatile or key in VOLATILE_KEYS
    uncached = (
        ctx.cache is None or ctx.internal or (ctx.node_lookup is False and ctx.node_store is False)
    )
    if not (volatile_key or uncached):
        return None
    plan = getattr(decision.device, "plan", None)
    inner: Callable[[Any, Mapping[str, Any]], Any] | None = None
    if callable(plan) and not isinstance(decision.device, type):
        inner = plan(base, key, ctx.opts)
        if inner is None and not static:
            return None  # only the plan could check a message-dependent decision
    if inner is not None:
        # the device's compiled function, called as its plain function would be
        decision = _device.Decision("ok", decision.device, inner, 2, False, decision.volatile)
    lane_hook = getattr(decision.device, "lane", None)
    lane = (
        lane_hook(base, key, ctx.opts)
        if callable(lane_hook) and not isinstance(decision.device, type)
        else None
    )
    max_depth = ctx.max_depth
    local = _local
    call = _device_call(decision, key, ctx)

    def step(msg: Any, req: Mapping[str, Any]) -> tuple[str, Any]:
        if (
            type(msg) is not M
            or type(req) is not M
            or msg.get("device") != name
            or req.get("path") != key
            or msg.get("cache-control") is not None
            or req.get("cache-control") is not None
            or _device.generation != generation
        ):
            return resolve_key(msg, key, req, opts=opts)
        depth = local.depth
        if depth >= max_depth:
            raise _too_deep(key, max_depth, depth)
        local.depth = depth + 1
        value: Any
        try:
            try:
                result = call(msg, req)
            except AOError:
                raise
            except Exception as exc:
                raise _device_failure(decision, key, exc) from exc
            if type(result) is M:
                status, value = "ok", result
            else:
                status, value = _outcome(result)
                if status == "ok" and type(value) is tuple and _is_subresolution(value):
                    status, value = _guard(lambda: _run(list(value[1]), ctx), "resolve")
        finally:
            local.depth = depth
        if status != "ok":
            return status, _without_hashpath(value, ctx)
        if (volatile_key or _tainted(msg)) and (type(value) is M or isinstance(value, Mapping)):
            # hash paths are ignored here: _link only marks an unmarked result volatile
            if type(value) is not M or not _tainted(value):
                value = _link(value, None, True, ctx)
        return "ok", value

    if lane is not None:

        def fast(msg: Any, req: Any) -> Any:
            if msg.get("cache-control") is not None or _device.generation != generation:
                return None
            depth = local.depth
            if depth >= max_depth:
                return None  # the step raises the error
            local.depth = depth + 1
            try:
                value = lane(msg, req)
            except AOError:
                raise
            except Exception as exc:
                raise _device_failure(decision, key, exc) from exc
            finally:
                local.depth = depth
            if value is None:
                return None
            if (volatile_key or _tainted(msg)) and not _tainted(value):
                value = _link(value, None, True, ctx)
            return value

        step.lane = fast  # type: ignore[attr-defined]
    return step


Lane = Callable[[Any, Any], Any]
"""``lane(msg, req) -> Message | None``: see :func:`step_lane`."""


def step_lane(step: KeyStep) -> Lane | None:
    """The lane of a compiled step, when its device has one: ``lane(msg, req)`` returns
    the Message ``step(msg, req)`` would return with status ``ok`` — or None, having done
    nothing, when the device's lane declines (the caller then calls ``step``).

    A device offers a lane with a module attribute ``lane(base, key, opts)`` (a host hook,
    not a key) returning ``f(msg, req)``: for a message configured like ``base``, the
    device function's result when it is a Message and can be had cheaply (results a
    device has ready, a plain move), else None with no side effect. The lane skips the
    step's guard, so the caller guarantees what the guard checks on every call: ``msg``
    and ``req`` are core Messages, ``msg``'s ``device`` is the step's and ``req``'s
    ``path`` its key, and ``req`` has no ``cache-control`` (the lane itself checks
    ``msg``'s ``cache-control``, the device registry and the depth limit, and marks the
    result volatile as the step does). ``stack@1.0``'s compiled Fold runs its devices'
    lanes this way.
    """
    lane = getattr(step, "lane", None)
    return lane if callable(lane) else None


def _ordered(msgs: Mapping[str, Any]) -> list[Any]:
    if not msgs:
        return []
    items: list[Any] = []
    for i in range(1, len(msgs) + 1):
        value = msgs.get(str(i), _MISS)
        if value is _MISS:
            public = [k for k in msgs if not _core.impl.is_private(k)]
            if len(public) == i - 1:
                break
            raise InvalidMessage(
                f"resolve_many needs a list or a message numbered '1'..'N'; key '{i}' is "
                f"missing among {_show_keys(msgs)}"
            )
        items.append(value)
    return items


def resolve_many(msgs: Any, *, opts: Mapping[str, Any] | None = None) -> Any:
    """Resolve a sequence: each request against the previous result (the first is the base).

    ``msgs`` is a list, or a message numbered ``"1"``…``"N"``.  A lone 43-character ID is
    read from the store.  Items may be ``("as", device, msg)`` and ``("resolve", list)``
    forms as :func:`hbeam.path.parse_request` produces.

    Raises:
        InvalidMessage: an empty sequence, or a message that is not numbered 1..N.
        NotFound, DeviceError, CacheMiss, RecursionLimit, AOError: as :func:`resolve`.
    """
    ctx = _Ctx(opts)
    if isinstance(msgs, Mapping):
        items = _ordered(msgs)
    elif isinstance(msgs, tuple) and msgs and msgs[0] in ("as", "resolve"):
        items = [msgs]
    elif isinstance(msgs, (list, tuple)):
        items = list(msgs)
    else:
        raise InvalidMessage(f"resolve_many needs a list of messages, not {_describe(msgs)}")
    return _guard(lambda: _finish_public(_run(items, ctx), ctx), "resolve_many")


def force_message(value: Any, *, opts: Mapping[str, Any] | None = None) -> Any:
    """``value`` as a message: maps as they are, lists numbered, literals wrapped as
    ``{"ao-result": "body", "body": value}``."""
    M = _core.impl.Message
    if isinstance(value, Mapping):
        return value if type(value) is M else M(value)
    if isinstance(value, (list, tuple)):
        return _core.impl.normalize_keys(list(value))
    return M({"ao-result": "body", "body": value})


def get(
    path: Any,
    msg: Any,
    default: Any = NOT_FOUND,
    *,
    opts: Mapping[str, Any] | None = None,
) -> Any:
    """The value at ``path`` (a key or ``/``-path) of ``msg``, through devices, else ``default``.

    Never touches the result cache.  ``msg`` may be ``("as", device, msg)`` to read it as
    if its device were ``device``.

    Raises:
        DeviceError: a device is unknown, cannot be loaded, or raised.
        InvalidPath: ``path`` is not a path.
    """
    if type(path) is str and _device.plain_reads_builtin and (not opts or "on_step" not in opts):
        M = _core.impl.Message
        if type(msg) is M:
            done, value, _ = _fast_walk(msg, path, M)
            if done:
                return value
    ctx = _Ctx(opts, internal=True)

    def run() -> Any:
        base = msg
        if type(base) is tuple and len(base) == 3 and base[0] == "as":
            base = _cast(base[2], base[1], {}, ctx)
        elif isinstance(base, str) and _is_id(base):
            base = _load_id(base, ctx)
        if type(path) is str and path and "/" not in path:
            segs = [path]
        else:
            segs = _core.impl.parts(path)
        cur = base
        for seg in segs:
            status, cur = _step(cur, seg, None, ctx)
            if status != "ok":
                return default
        return cur

    try:
        return _guard(run, "get")
    except NotFound:
        return default


def get_first(
    pairs: Iterable[tuple[Any, Any]],
    default: Any = NOT_FOUND,
    *,
    opts: Mapping[str, Any] | None = None,
) -> Any:
    """The first ``get(path, msg)`` of ``[(msg, path), …]`` that is found, else ``default``.

    Only ``NOT_FOUND`` is skipped; falsy values (``0``, ``""``, ``False``) count as found.
    """
    for msg, path in pairs:
        value = get(path, msg, NOT_FOUND, opts=opts)
        if value is not NOT_FOUND:
            return value
    return default


def _internal_key(base: Any, key: str, req: Mapping[str, Any], ctx: _Ctx) -> Any:
    status, value = _step(base, key, req, ctx)
    if status != "ok":
        raise _status_error(status, value, key, base)
    return value


def _settable(msg: Any, ctx: _Ctx) -> Any:
    if type(msg) is ctx.M:
        return msg
    if isinstance(msg, Mapping):
        return ctx.M(msg)
    if isinstance(msg, (list, tuple)):
        return _core.impl.normalize_keys(list(msg))
    if msg is None:
        return ctx.M()
    raise InvalidMessage(f"cannot set keys on {_describe(msg)}: not a message")


def _set_updates(base: Any, updates: Mapping[str, Any], ctx: _Ctx) -> Any:
    """``set(base, updates)``: one call of the base device's ``set``, except that ``path``
    goes to ``set_path`` and ``/`` keys crossing a device's level or a list are set one
    by one through each level (HyperBEAM's deep set)."""
    norm: dict[str, Any] = {}
    path_value: Any = _MISS
    deep: list[tuple[list[str], Any]] = []
    for k, v in updates.items():
        nk = k if type(k) is str else _core.impl.normalize_key(k)
        if "/" in nk:
            segs = _core.impl.parts(nk)
            if len(segs) > 1 and not _plain_along(base, segs):
                deep.append((segs, v))
                continue
            if not segs:
                if isinstance(v, Mapping):
                    deep.append((segs, v))
                continue
            nk = "/".join(segs)
        if nk == "path":
            path_value = v
        elif nk not in ("hashpath", "priv"):
            norm[nk] = v
    if path_value is not _MISS and path_value is not UNDEFINED:
        base = _internal_key(base, "set_path", {"path": "set_path", "value": path_value}, ctx)
    if norm:
        base = _internal_key(base, "set", {**norm, "path": "set"}, ctx)
    for segs, v in deep:
        base = _set_updates(base, v, ctx) if not segs else _set_path(base, segs, v, ctx)
    return base


def _plain_along(base: Any, segs: list[str]) -> bool:
    """Whether every level holding ``segs`` is an existing or new plain message set by
    ``message@1.0`` (so one core merge does it)."""
    uses_message_set = _message_device().uses_message_set
    cur = base
    for seg in segs[:-1]:
        if not uses_message_set(cur):
            return False
        cur = cur.get(seg)
        if cur is None:
            return True
        if not isinstance(cur, Mapping):
            return not isinstance(cur, list)
    result: bool = uses_message_set(cur)
    return result


def _set_path(base: Any, segs: list[str], value: Any, ctx: _Ctx) -> Any:
    """HyperBEAM's deep set: each level set through its own device."""
    if len(segs) == 1 or _plain_along(base, segs):
        return _set_updates(base, {"/".join(segs): value}, ctx)
    head = segs[0]
    status, sub = _step(base, head, None, ctx)
    if status == "ok" and isinstance(sub, (Mapping, list)):
        inner = _set_path(_settable(sub, ctx), segs[1:], value, ctx)
    else:
        inner = _set_path(ctx.M(), segs[1:], value, ctx)
    return _internal_key(base, "set", {head: inner, "set-mode": "explicit", "path": "set"}, ctx)


def _message_device() -> Any:
    return _device.default()


def set(
    msg: Any,
    key: Any,
    value: Any = _NOARG,
    /,
    *,
    opts: Mapping[str, Any] | None = None,
) -> Any:
    """A new message with ``key`` set to ``value`` — or, with two arguments, every key of
    the ``key`` mapping set — through each level's device.

    Maps deep-merge into maps; other values replace; :data:`~hbeam.UNSET` removes;
    :data:`~hbeam.UNDEFINED` is ignored.  A ``/`` path creates missing levels; a level
    whose device has its own ``set`` (e.g. ``trie@1.0``) is set through it.  Key ``"/"``
    merges a map into the root.  Never touches the cache; adds no hash path.

    Raises:
        InvalidMessage: ``msg`` is not a message, or a value cannot be stored.
        DeviceError: a device is unknown or failed.
    """
    ctx = _Ctx(opts, internal=True)

    def run() -> Any:
        base = _settable(msg, ctx)
        if value is _NOARG:
            if not isinstance(key, Mapping):
                raise InvalidMessage(
                    f"set(msg, updates) needs a mapping of updates, not {_describe(key)}"
                )
            return _set_updates(base, key, ctx)
        segs = _core.impl.parts(key)
        if not segs:
            if isinstance(value, Mapping):
                return _set_updates(base, value, ctx)
            return value
        return _set_path(base, segs, value, ctx)

    return _guard(run, "set")


def remove(msg: Any, key: Any, *, opts: Mapping[str, Any] | None = None) -> Any:
    """A new message without ``key`` (a list: several keys; a ``/`` path: a nested key).

    Missing keys are ignored.  Never touches the cache.

    Raises:
        InvalidMessage: ``msg`` is not a message.
        DeviceError: a device is unknown or failed.
    """
    ctx = _Ctx(opts, internal=True)

    def run() -> Any:
        base = _settable(msg, ctx)
        items = list(key) if isinstance(key, (list, tuple)) else [key]
        top: list[str] = []
        nested: list[str] = []
        for item in items:
            segs = _core.impl.parts(item)
            if len(segs) == 1:
                top.append(segs[0])
            elif segs:
                nested.append("/".join(segs))
        if top:
            base = _internal_key(base, "remove", {"path": "remove", "items": top}, ctx)
        for k in nested:
            base = _set_updates(base, {k: UNSET}, ctx)
        return base

    return _guard(run, "remove")


def keys(msg: Any, *, opts: Mapping[str, Any] | None = None) -> list[str]:
    """The message's public keys, as its device lists them (private ``priv*`` keys hidden).

    Raises:
        DeviceError: a device is unknown or failed.
    """
    ctx = _Ctx(opts, internal=True)

    def run() -> list[str]:
        base = _settable(msg, ctx)
        listed = _internal_key(base, "keys", {"path": "keys"}, ctx)
        if isinstance(listed, Mapping):
            listed = list(listed.values())
        out: list[str] = []
        is_private = _core.impl.is_private
        normalize = _core.impl.normalize_key
        for k in listed:
            nk = k if type(k) is str else normalize(k)
            if not is_private(nk):
                out.append(nk)
        return out

    result: list[str] = _guard(run, "keys")
    return result
