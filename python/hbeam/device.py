"""The device system: which device a message names and which function answers a key.

A *device* is any object whose attributes are its keys — a module, a class instance, a
``types.SimpleNamespace`` — with key ``patch-from`` served by attribute ``patch_from``
(a trailing ``_`` is also accepted, so key ``pass`` can be attribute ``pass_``).  A key
function is called as ``fn(base, req, opts)`` truncated to the arguments it takes
(1-3); ``handler`` and ``default`` functions get the key first:
``fn(key, base, req, opts)``.  For a module, only functions *defined in* that module are
keys (helpers it imports are not).

An optional ``info`` attribute — a dict, or a function ``info(base, req, opts)`` (0-3
arguments) returning one — describes the device (core.md §5.2):

``exports``      the only keys the device handles (compared case-insensitively);
``excludes``     keys it does not handle even if it has them;
``handler``      one function for every exported key (or ``{"func": f, "excludes": […]}``);
``default``      a function for keys it has no function for, or a device (name or
                 object) to delegate them to; ``default_mod`` is the same, as a device;
``volatile``     keys (or ``True`` for all) whose results vary with time or that have
                 side effects (``now``, ``slot``, ``schedule``, ``push``…): they are never
                 served from or written to the result cache, two identical calls in flight
                 are not merged, and nothing resolved from their results is cached
                 either.  ``now`` is volatile on every device.

A dict ``info`` (or a 0-argument function) is read once and cached per device; an
``info`` that takes the message is called on every lookup, since its answer may depend on
it.  Devices are found by name, case-insensitively: built-in ones (imported lazily from
``hbeam.devices``), ones added with :func:`register`, and third-party ones advertised as
entry points in group ``hbeam.devices`` (entry point name = device name).
"""

from __future__ import annotations

import importlib
import inspect
import threading
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, overload

from hbeam import _core
from hbeam._message_keys import MESSAGE_FUNCTION_KEYS as MESSAGE_FUNCTION_KEYS
from hbeam.errors import DeviceError, InvalidMessage

__all__ = [
    "BUILTIN",
    "DEFAULT_DEVICE",
    "Decision",
    "default",
    "device_name",
    "info",
    "is_direct_key_access",
    "is_exported",
    "known",
    "load",
    "lookup",
    "message_to_device",
    "message_to_fun",
    "register",
]

DEFAULT_DEVICE: Final = "message@1.0"

BUILTIN: Final[dict[str, str]] = {
    # name (lower-case) -> "module[:attribute]"; adding a built-in device is one line here.
    "message@1.0": "hbeam.devices.message",
    "patch@1.0": "hbeam.devices.patch",
    "json@1.0": "hbeam.devices.json",
    "trie@1.0": "hbeam.devices.trie",
    "process@1.0": "hbeam.devices.process",
    "scheduler@1.0": "hbeam.devices.scheduler",
    "stack@1.0": "hbeam.devices.stack",
    "multipass@1.0": "hbeam.devices.multipass",
    "lua@5.3a": "hbeam.devices.lua",
    "wasm-64@1.0": "hbeam.devices.wasm",
    "json-iface@1.0": "hbeam.devices.json_iface",
    "wasi@1.0": "hbeam.devices.wasi",
    "hyperbuddy@1.0": "hbeam.devices.hyperbuddy",
    "meta@1.0": "hbeam.devices.meta",
}
"""Built-in devices: imported on first use."""

ENTRY_POINT_GROUP: Final = "hbeam.devices"

_MAX_ARITY = 3
_lock = threading.RLock()
_registered: dict[str, Any] = {}  # explicit register() calls (win over everything)
_loaded: dict[str, Any] = {}  # built-ins / entry points already imported
_names: dict[int, tuple[Any, str]] = {}  # id(device) -> (device, name) for error messages
_entry_points: dict[str, Any] | None = None
generation = 0
"""Changes whenever :func:`register` or :func:`unregister` changes what a name loads, so
callers may memoise decisions of static-info devices by ``(generation, name, key)``."""

D = TypeVar("D")


# --- registry ------------------------------------------------------------------------


@overload
def register(name: str) -> Callable[[D], D]: ...
@overload
def register(name: str, device: D) -> D: ...
def register(name: str, device: Any = None) -> Any:
    """Make ``device`` loadable as ``name`` (e.g. ``"counter@1.0"``); also a decorator.

    A class is instantiated (with no arguments) and the instance becomes the device; the
    class itself is returned so the decorator leaves the name bound to it.  Registering a
    name again replaces the earlier device.

    Raises:
        InvalidMessage: ``name`` is not a non-empty str.
    """
    if not isinstance(name, str) or not name:
        raise InvalidMessage(f"a device name must be a non-empty str, not {name!r}")

    def apply(obj: Any) -> Any:
        dev = obj() if isinstance(obj, type) else obj
        global _default_device, plain_reads_builtin, generation
        with _lock:
            generation += 1
            _registered[name.lower()] = dev
            _names[id(dev)] = (dev, name)
            _SPECS.pop(id(dev), None)
            _default_device = None
            plain_reads_builtin = False
        return obj

    if device is None:
        return apply
    return apply(device)


def unregister(name: str) -> None:
    """Forget a device added with :func:`register` (no error if there was none)."""
    global _default_device, plain_reads_builtin, generation
    with _lock:
        generation += 1
        dev = _registered.pop(name.lower(), None)
        if dev is not None:
            _SPECS.pop(id(dev), None)
        _default_device = None
        plain_reads_builtin = False


def _entry_point_table() -> dict[str, Any]:
    global _entry_points
    if _entry_points is None:
        from importlib.metadata import entry_points

        table: dict[str, Any] = {}
        try:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                table.setdefault(ep.name.lower(), ep)
        except Exception:  # a broken distribution must not break device lookup
            table = {}
        _entry_points = table
    return _entry_points


def known() -> list[str]:
    """Every device name that :func:`load` can find (built-in, registered, entry points)."""
    names = set(BUILTIN) | set(_registered) | set(_entry_point_table())
    return sorted(names)


def load(device: Any, *, opts: Mapping[str, Any] | None = None) -> Any:
    """The device object named ``device`` (case-insensitive); a device object is returned as is.

    Raises:
        DeviceError: no device has that name, or importing it failed (the import error is
            the ``__cause__``).
    """
    if not isinstance(device, str):
        if isinstance(device, bytes):
            device = device.decode("utf-8", "replace")
        elif device is None or isinstance(device, (int, float, list, tuple, Mapping)):
            raise DeviceError(
                f"a device is named by a str such as 'message@1.0', not {device!r}",
                device=repr(device),
            )
        else:
            return device
    key = device.lower()
    dev = _registered.get(key)
    if dev is not None:
        return dev
    dev = _loaded.get(key)
    if dev is not None:
        return dev
    with _lock:
        dev = _registered.get(key) or _loaded.get(key)
        if dev is not None:
            return dev
        target = BUILTIN.get(key)
        try:
            if target is not None:
                module_name, _, attr = target.partition(":")
                obj: Any = importlib.import_module(module_name)
                if attr:
                    obj = getattr(obj, attr)
            else:
                ep = _entry_point_table().get(key)
                if ep is None:
                    raise DeviceError(
                        f"unknown device {device!r}; known devices: {', '.join(known())}",
                        device=device,
                    )
                obj = ep.load()
        except DeviceError:
            raise
        except Exception as exc:
            raise DeviceError(
                f"device {device!r} could not be loaded: {type(exc).__name__}: {exc}",
                device=device,
            ) from exc
        dev = obj() if isinstance(obj, type) else obj
        _loaded[key] = dev
        _names[id(dev)] = (dev, device)
        return dev


_default_device: Any = None
plain_reads_builtin = False
"""True once the built-in ``message@1.0`` is loaded and not replaced: the resolver may
then read plain keys of device-less messages without asking the device system."""


def default() -> Any:
    """The default device, ``message@1.0`` (what a message without ``device`` uses)."""
    global _default_device, plain_reads_builtin
    dev = _default_device
    if dev is None:
        dev = _default_device = load(DEFAULT_DEVICE)
        plain_reads_builtin = DEFAULT_DEVICE not in _registered
    return dev


def default_is_builtin() -> bool:
    """Whether ``message@1.0`` is the built-in one (not replaced with :func:`register`)."""
    return DEFAULT_DEVICE not in _registered


def device_name(device: Any) -> str:
    """A readable name for ``device``: its registered name, else module/class name."""
    entry = _names.get(id(device))
    if entry is not None and entry[0] is device:
        return entry[1]
    if isinstance(device, str):
        return device
    if isinstance(device, types.ModuleType):
        return device.__name__
    return type(device).__name__


def message_to_device(msg: Any, *, opts: Mapping[str, Any] | None = None) -> Any:
    """The device ``msg`` names in its ``device`` key (``Device`` also counts), else the default.

    Raises:
        DeviceError: the named device is unknown or cannot be loaded.
    """
    if isinstance(msg, Mapping):
        name = msg.get("device")
        if name is None:
            name = msg.get("Device")
        if name is not None:
            return load(name, opts=opts)
    return default()


# --- device specs (cached info + key lookups) -----------------------------------------


_ARITIES: dict[Any, int] = {}
_ARITY_CACHE_SIZE = 4096


def _arity(fn: Any, cap: int) -> int:
    """How many positional arguments ``fn`` takes, at most ``cap``.

    Cached per function object: a device whose info depends on the message (stack@1.0)
    is decided again on every call, and ``inspect.signature`` is slow.  Plain functions
    are keyed by identity (they hash so); other callables are measured every time.
    """
    if type(fn) is types.FunctionType:
        known = _ARITIES.get(fn)
        if known is None:
            known = _measure_arity(fn)
            if len(_ARITIES) >= _ARITY_CACHE_SIZE:
                _ARITIES.clear()
            _ARITIES[fn] = known
        return min(known, cap)
    return min(_measure_arity(fn), cap)


_UNBOUNDED = 1 << 30


def _measure_arity(fn: Any) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return _UNBOUNDED
    count = 0
    for param in sig.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return _UNBOUNDED
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _key_set(keys: Any) -> frozenset[str]:
    if keys is None:
        return frozenset()
    if isinstance(keys, (str, bytes)):
        keys = [keys]
    out: set[str] = set()
    for k in keys:
        text = _core.impl.normalize_key(k).lower()
        out.add(text)
        out.add(text.replace("_", "-"))
    return frozenset(out)


@dataclass(slots=True)
class Decision:
    """Which function answers a key: HyperBEAM's ``{Status, Dev, Fun}`` plus what the
    resolver needs to call it cheaply."""

    status: str  # "ok", or "add_key" when the key is passed first
    device: Any
    fun: Callable[..., Any]
    arity: int  # arguments fun takes, counting the key for "add_key"
    direct: bool  # message@1.0's plain read of the key itself
    volatile: bool  # the device marks this key time-varying

    def as_tuple(self) -> tuple[str, Any, Callable[..., Any]]:
        """``(status, device, fun)``."""
        return (self.status, self.device, self.fun)


@dataclass(slots=True)
class _Spec:
    device: Any
    info: dict[str, Any] | None  # static info (None when dynamic)
    dynamic: Callable[..., Any] | None  # info function that needs the message
    dynamic_arity: int = 0
    decisions: dict[str, Decision] = field(default_factory=dict)


_SPECS: dict[int, tuple[Any, _Spec]] = {}


def _spec(device: Any) -> _Spec:
    entry = _SPECS.get(id(device))
    if entry is not None and entry[0] is device:
        return entry[1]
    raw = getattr(device, "info", None)
    spec: _Spec
    if raw is None:
        spec = _Spec(device, {}, None)
    elif isinstance(raw, Mapping):
        spec = _Spec(device, dict(raw), None)
    elif callable(raw):
        arity = _arity(raw, _MAX_ARITY)
        if arity == 0:
            spec = _Spec(device, dict(_call_info(device, raw, 0, (), None)), None)
        else:
            spec = _Spec(device, None, raw, arity)
    else:
        raise DeviceError(
            f"device {device_name(device)!r} has an info that is neither a dict nor a function",
            device=device_name(device),
        )
    with _lock:
        _SPECS[id(device)] = (device, spec)
    return spec


def _call_info(device: Any, fn: Any, arity: int, args: tuple[Any, ...], key: str | None) -> Any:
    try:
        result = fn(*args[:arity])
    except Exception as exc:
        raise DeviceError(
            f"device {device_name(device)!r}: info failed: {type(exc).__name__}: {exc}",
            device=device_name(device),
            key="info",
        ) from exc
    if not isinstance(result, Mapping):
        raise DeviceError(
            f"device {device_name(device)!r}: info returned {type(result).__name__}, not a dict",
            device=device_name(device),
            key="info",
        )
    return result


def _info_of(spec: _Spec, msg: Any, req: Any, opts: Mapping[str, Any] | None) -> dict[str, Any]:
    if spec.info is not None:
        return spec.info
    assert spec.dynamic is not None
    return dict(_call_info(spec.device, spec.dynamic, spec.dynamic_arity, (msg, req, opts), None))


def info(
    device: Any, msg: Any = None, *, req: Any = None, opts: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The device's info dict (cached when it does not depend on the message).

    Raises:
        DeviceError: ``device`` names an unknown device, or its ``info`` fails.
    """
    dev = load(device, opts=opts)
    return dict(_info_of(_spec(dev), msg if msg is not None else {}, req or {}, opts))


def _exported(inf: Mapping[str, Any], key: str) -> bool:
    if key == "info":
        return True
    low = key.lower()
    excludes = inf.get("excludes")
    if excludes is not None and low in _key_set(excludes):
        return False
    exports = inf.get("exports")
    if exports is not None:
        return low in _key_set(exports)
    return True


def is_exported(msg: Any, device: Any, key: Any, *, opts: Mapping[str, Any] | None = None) -> bool:
    """Whether ``device`` handles ``key`` itself (``info`` is always exported).

    Raises:
        DeviceError: ``device`` names an unknown device, or its ``info`` fails.
    """
    dev = load(device, opts=opts)
    k = _core.impl.normalize_key(key)
    return _exported(_info_of(_spec(dev), msg, {"path": k}, opts), k)


def _attr_fn(device: Any, key: str) -> Any:
    name = key.replace("-", "_")
    if name == "info" or name.startswith("_"):
        return None
    for attr in (name, name + "_"):
        fn = getattr(device, attr, None)
        if fn is None or isinstance(fn, type) or not callable(fn):
            continue
        if isinstance(device, types.ModuleType) and (
            getattr(fn, "__module__", None) != device.__name__
        ):
            continue
        return fn
    return None


def _volatile(inf: Mapping[str, Any], key: str) -> bool:
    vol = inf.get("volatile")
    if not vol:
        return False
    if vol is True:
        return True
    return key.lower() in _key_set(vol)


def _decide(
    device: Any,
    inf: Mapping[str, Any],
    key: str,
    msg: Any,
    opts: Mapping[str, Any] | None,
    seen: tuple[int, ...],
) -> Decision:
    exported = _exported(inf, key)
    volatile = _volatile(inf, key)
    handler = inf.get("handler")
    if handler is not None and exported:
        if isinstance(handler, Mapping):
            func = handler.get("func")
            if key.lower() in _key_set(handler.get("excludes")):
                return _fallback(device, key, msg, opts, seen, volatile)
        else:
            func = handler
        if callable(func):
            return Decision("add_key", device, func, _arity(func, 4), False, volatile)
    fn = _attr_fn(device, key)
    if fn is not None and exported:
        return Decision("ok", device, fn, _arity(fn, _MAX_ARITY), False, volatile)
    dflt = inf.get("default")
    if dflt is None:
        dflt = inf.get("default_mod")
    if dflt is not None and exported:
        if callable(dflt) and not isinstance(dflt, (types.ModuleType, type)):
            direct = device is default() and key_is_plain(key)
            return Decision("add_key", device, dflt, _arity(dflt, 4), direct, volatile)
        delegate = load(dflt, opts=opts)
        if id(delegate) in seen:
            raise DeviceError(
                f"device {device_name(device)!r}: default devices delegate in a cycle "
                f"for key {key!r}",
                device=device_name(device),
                key=key,
            )
        spec = _spec(delegate)
        decision = _decide(
            delegate, _info_of(spec, msg, {"path": key}, opts), key, msg, opts, (*seen, id(device))
        )
        if volatile and not decision.volatile:
            decision = Decision(
                decision.status,
                decision.device,
                decision.fun,
                decision.arity,
                decision.direct,
                True,
            )
        return decision
    return _fallback(device, key, msg, opts, seen, volatile)


def _fallback(
    device: Any,
    key: str,
    msg: Any,
    opts: Mapping[str, Any] | None,
    seen: tuple[int, ...],
    volatile: bool,
) -> Decision:
    base_dev = default()
    if device is base_dev:
        raise DeviceError(
            f"the default device {DEFAULT_DEVICE} cannot resolve key {key!r}",
            device=DEFAULT_DEVICE,
            key=key,
        )
    decision = _lookup_on(base_dev, key, msg, opts, (*seen, id(device)))
    if volatile and not decision.volatile:
        decision = Decision(
            decision.status, decision.device, decision.fun, decision.arity, decision.direct, True
        )
    return decision


def _lookup_on(
    device: Any, key: str, msg: Any, opts: Mapping[str, Any] | None, seen: tuple[int, ...] = ()
) -> Decision:
    spec = _spec(device)
    if spec.info is not None:
        decision = spec.decisions.get(key)
        if decision is None:
            decision = _decide(device, spec.info, key, msg, opts, seen)
            if len(spec.decisions) < 4096:
                spec.decisions[key] = decision
        return decision
    return _decide(device, _info_of(spec, msg, {"path": key}, opts), key, msg, opts, seen)


def static_decision(
    name: str, key: str, msg: Any, opts: Mapping[str, Any] | None = None
) -> Decision | None:
    """``lookup(load(name), key, msg)`` when the device's info is static (then the decision
    does not depend on ``msg``, see :func:`lookup`), else None; memoised per
    :data:`generation`.

    Raises:
        DeviceError: no device has that name.
    """
    memo_key = (generation, name, key)
    decision = _STATIC.get(memo_key)
    if decision is None:
        dev = load(name, opts=opts)
        if _spec(dev).info is None:
            return None
        decision = _lookup_on(dev, key, msg, opts)
        if len(_STATIC) >= 4096:
            _STATIC.clear()
        _STATIC[memo_key] = decision
    return decision


_STATIC: dict[tuple[int, str, str], Decision] = {}


def lookup(device: Any, key: str, msg: Any, opts: Mapping[str, Any] | None = None) -> Decision:
    """How ``device`` answers normalised ``key`` on ``msg`` (cached for static infos)."""
    return _lookup_on(device, key, msg, opts)


def key_is_plain(key: str) -> bool:
    """Whether message@1.0 answers ``key`` by reading it (not one of its function keys)."""
    return key not in MESSAGE_FUNCTION_KEYS


def message_to_fun(
    msg: Any, key: Any, *, opts: Mapping[str, Any] | None = None
) -> tuple[str, Any, Callable[..., Any]]:
    """``(status, device, fun)``: the function that answers ``key`` on ``msg``.

    ``status`` is ``"ok"`` (call ``fun(base, req, opts)``) or ``"add_key"`` (call
    ``fun(key, base, req, opts)``), truncated to the arguments ``fun`` takes.  Order
    (core.md §5.3): handler → the device's own function → info ``default`` (function, or
    a device delegated to) → ``message@1.0``.

    Raises:
        DeviceError: the device is unknown or cannot be loaded.
    """
    k = _core.impl.normalize_key(key)
    return _lookup_on(message_to_device(msg, opts=opts), k, msg, opts).as_tuple()


def is_direct_key_access(base: Any, req: Any, *, opts: Mapping[str, Any] | None = None) -> bool:
    """Whether resolving ``req`` on ``base`` is a plain read of a key of ``base``.

    True when the key ends up at ``message@1.0``'s default read (not one of its function
    keys such as ``get``/``set``/``keys``/``id``), whichever device ``base`` names.

    Raises:
        DeviceError: the device is unknown or cannot be loaded.
    """
    path = req.get("path") if isinstance(req, Mapping) else req
    if path is None:
        return False
    parts = _core.impl.parts(path)
    if not parts:
        return False
    return _lookup_on(message_to_device(base, opts=opts), parts[0], base, opts).direct
