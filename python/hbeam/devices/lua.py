"""``lua@5.3a`` — Lua 5.3 processes (aos-compatible) and read-only dynamic Lua functions.

Two roles (execution-http.md §4, docs/process-design.md "Lua processes"):

**Execution device** (``execution-device: lua@5.3a``, or first in a ``stack@1.0`` before
``patch@1.0`` as :meth:`hbeam.Node.spawn_lua` sets up):

* ``init`` boots an :class:`hbeam.lua.AosProcess` for the process with the code named by
  ``module`` (§4.1: an ID in the store, a list of them, or a message with ``body``/``data``)
  and keeps it in the process runtime (``runtime.live["lua"]``), never in the message.
  What the modules send while loading (the token blueprint's initial cache patch) is the
  slot-0 result; since ``stack@1.0`` runs ``init`` — not ``compute`` — on ``patch@1.0``,
  ``init`` lets a ``patch@1.0`` later in the process's stack move those patches itself.
* ``compute`` turns the assignment's ``body`` into an aos message (lower-case keys;
  ``from`` and ``owner`` = the sender the node verified or, for a message another process
  sent, that process; ``id``, ``timestamp``, ``block-height`` from the assignment), calls
  the aos ``handle`` and sets ``results``: ``outbox`` (a numbered map ``"1".."n"`` of AO
  messages), ``output``, ``spawns`` (numbered map) and ``error`` (a handler's error text).
* A message that exceeds the instruction budget or the memory cap (node options
  ``lua_instruction_limit`` / ``lua_memory_limit``) raises
  :class:`~hbeam.errors.LimitExceeded`: the runtime records the slot as an error, the
  message's partial effects are dropped (the VM is rebuilt by replaying the messages
  handled so far) and the process goes on.
* ``normalize`` makes sure the live VM matches the state (rebuilding it by replay when
  missing); ``snapshot`` contributes nothing: a Lua VM cannot be serialised, so after a
  restart the runtime replays the process from slot 0 (deterministic: ``os.time`` and
  ``math.random`` come from the assignment).

**Dynamic functions**: any other key (not ``keys``/``set``/``encode``/``decode``, not a key
the message has) calls the Lua function of that name read-only — in a fresh environment
of a pooled sandboxed VM, loaded with the ``module`` of the base (else of the request,
[SEED≠HB], so ``/~lua@5.3a&module=ID/sum`` and ``/~lua@5.3a/sum&module=ID`` both work).
The function gets ``(base, req, {})`` where base is the message at that point of the path
without ``device``, ``module``, the request's global keys (any key the request carries
with the same value) and private keys (§4.10); ``function`` / ``parameters`` in the request
or base choose another function name / argument list as in HyperBEAM. The result is the
response (a table becomes a message); returning ``"error", x`` raises ``LuaError``.
Nothing is scheduled or stored.

Errors: a module ID that is not stored → :class:`~hbeam.errors.NotFound` naming the ID; an
undefined function → ``NotFound``; Lua errors → :class:`~hbeam.errors.LuaError`; limits →
:class:`~hbeam.errors.LimitExceeded`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from hbeam import _core
from hbeam._sentinels import NOT_FOUND
from hbeam.errors import (
    AOError,
    DeviceError,
    InvalidMessage,
    LimitExceeded,
    LuaError,
    NotFound,
)

if TYPE_CHECKING:
    from hbeam.lua import AosProcess, LuaVM
    from hbeam.node.process import ProcessRuntime

__all__ = ["LiveLua", "compute", "info", "init", "normalize", "snapshot"]

DEVICE: Final = "lua@5.3a"
LIVE_KEY: Final = "lua"
LUA_TYPES: Final = frozenset({"application/lua", "text/x-lua", "text/lua", "application/x-lua"})
HOOKS: Final = ("init", "compute", "normalize", "snapshot")
EXCLUDED: Final = ("keys", "set", "encode", "decode", "prefetch", "lane")
STRIPPED: Final = frozenset({"device", "module"})
_log = logging.getLogger(__name__)
AHEAD_BATCH = 64  # messages per batch the prefetch worker applies at a time
WORKER_IDLE = 2.0  # seconds a prefetch worker thread waits for work before it ends
_SOURCE_CACHE_SIZE = 256
_POOL_SIZE = 4
_FACTORIES_PER_VM = 64

Module = tuple[str, str, str | bytes]  # (cache key, chunk name, source)


# -- modules --------------------------------------------------------------------------------

_sources: OrderedDict[str, tuple[str, str | bytes]] = OrderedDict()
_sources_lock = threading.Lock()


def _is_id(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 43
        and value.isascii()
        and all(c.isalnum() or c in "-_" for c in value)
    )


def _read_id(ident: str, opts: Mapping[str, Any] | None) -> list[Module]:
    with _sources_lock:
        hit = _sources.get(ident)
        if hit is not None:
            _sources.move_to_end(ident)
            return [(ident, hit[0], hit[1])]
    from hbeam import cache

    try:
        value = cache.read(ident, opts=opts or {})
    except AOError as exc:
        raise NotFound(
            f"Lua module '{ident}' not found: the store cannot be read ({exc})", key="module"
        ) from exc
    if value is NOT_FOUND:
        raise NotFound(f"Lua module '{ident}' not found.", key="module", module=ident)
    if isinstance(value, Mapping):
        return _modules_of(value, opts, ident)
    if not isinstance(value, (str, bytes)):
        raise InvalidMessage(f"Lua module '{ident}' is a {type(value).__name__}, not Lua code")
    with _sources_lock:
        _sources[ident] = (ident, value)
        while len(_sources) > _SOURCE_CACHE_SIZE:
            _sources.popitem(last=False)
    return [(ident, ident, value)]


def _modules_of(spec: Any, opts: Mapping[str, Any] | None, name: str | None = None) -> list[Module]:
    if isinstance(spec, bytes) and len(spec) == 43:
        spec = spec.decode("ascii", "replace")
    if isinstance(spec, str):
        if not _is_id(spec):
            raise InvalidMessage(
                f"lua@5.3a: module {spec[:60]!r} is not a 43-character ID of published Lua code"
            )
        return _read_id(spec, opts)
    if isinstance(spec, Mapping):
        ctype = spec.get("content-type", spec.get("Content-Type"))
        if isinstance(ctype, str) and ctype.split(";")[0].strip().lower() in LUA_TYPES:
            code = spec.get("body", spec.get("data"))
            if not isinstance(code, (str, bytes)):
                raise NotFound(
                    f"Lua module '{name or spec.get('name', '?')}' not loadable: it has "
                    "no 'body' or 'data' with the code",
                    key="module",
                )
            label = spec.get("name") or spec.get("id") or name
            if not isinstance(label, str):
                label = str(_core.impl.id(code))
            return [(f"{label}#{_core.impl.id(code)}", label, code)]
        keys = [k for k in spec if not _core.impl.is_private(str(k))]
        if keys and all(str(k).isdigit() for k in keys):
            keys.sort(key=lambda k: int(k))
        out: list[Module] = []
        for k in keys:
            out.extend(_modules_of(spec[k], opts, str(k)))
        return out
    if isinstance(spec, (list, tuple)):
        found: list[Module] = []
        for item in spec:
            found.extend(_modules_of(item, opts))
        return found
    raise InvalidMessage(
        f"lua@5.3a: 'module' must be an ID, a list of IDs or a Lua message, not "
        f"{type(spec).__name__}"
    )


def _load_modules(
    spec: Any, opts: Mapping[str, Any] | None = None
) -> list[tuple[str, str | bytes]]:
    """The ``(name, source)`` Lua modules a ``module`` value names, in load order (§4.1).

    Raises:
        NotFound: an ID is not in the store, or a Lua message holds no code.
        InvalidMessage: ``spec`` is none of an ID, a list, a message.
    """
    if spec is None or spec is NOT_FOUND:
        raise NotFound("lua@5.3a: no-modules-found (the message has no 'module')", key="module")
    mods = _modules_of(spec, opts)
    if not mods:
        raise NotFound("lua@5.3a: no-modules-found ('module' is empty)", key="module")
    return [(name, source) for _, name, source in mods]


def _limits(opts: Mapping[str, Any] | None) -> dict[str, int]:
    from hbeam.lua import DEFAULT_MAX_INSTRUCTIONS, DEFAULT_MAX_MEMORY

    o = opts or {}
    return {
        "max_instructions": int(o.get("lua_instruction_limit") or DEFAULT_MAX_INSTRUCTIONS),
        "max_memory": int(o.get("lua_memory_limit") or DEFAULT_MAX_MEMORY),
    }


# -- the execution device ---------------------------------------------------------------------


def _aos_message(req: Mapping[str, Any]) -> dict[str, Any]:
    """The aos message for an assignment: its body with lower-case keys, plus envelope."""
    body: Any = req.get("body")
    msg: dict[str, Any] = {}
    body_is_map = type(body) is _core.impl.Message or isinstance(body, Mapping)
    if body_is_map:
        # a core Message's to_dict is one call (its items view iterates entry by entry)
        items = body.to_dict().items() if type(body) is _core.impl.Message else body.items()
        for k, v in items:
            low = k.lower()
            if low == "commitments" or low.startswith("priv"):
                continue
            msg[low] = v
        if "data" not in msg and "body" in msg:
            inner = msg.pop("body")
            if isinstance(inner, (str, bytes)):
                msg["data"] = inner
            else:
                msg["body"] = inner
    sender = msg.get("from")
    if sender is None:
        sender = msg.get("from-process")
    if sender is None:
        msg.pop("from", None)
        msg.pop("owner", None)
    else:
        # the verified sender is also the signer as aos sees it: a message cannot claim
        # another owner (aos trusts From == Owner)
        msg["from"] = msg["owner"] = sender
    ident = req.get("message")
    if ident is None and body_is_map:
        ident = str(_core.impl.id(body))
    msg["id"] = ident
    stamp = req.get("timestamp")
    if stamp is not None:
        msg["timestamp"] = stamp
    height = req.get("block-height")
    if height is not None:
        msg["block-height"] = height
    return msg


def _numbered(items: Sequence[Any]) -> dict[str, Any]:
    return {str(i): item for i, item in enumerate(items, 1)}


def _results(raw: Mapping[str, Any]) -> Any:
    out: dict[str, Any] = {
        "outbox": _numbered(raw.get("outbox") or ()),
        "output": raw.get("output") or {"data": "", "print": False},
    }
    spawns = raw.get("spawns")
    if spawns:
        out["spawns"] = _numbered(spawns)
    error = raw.get("error")
    if error is not None:
        out["error"] = error
    return _core.impl.Message(out)


def _converted(
    msgs: Sequence[Any], convert: Callable[[Any], Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], bool]:
    """``convert`` of each of ``msgs`` up to the first it fails on; whether all converted."""
    out: list[Mapping[str, Any]] = []
    for msg in msgs:
        try:
            out.append(convert(msg))
        except Exception:  # that slot is computed (and fails) the ordinary way
            return out, False
    return out, True


class LiveLua:
    """The live side of one Lua process: its :class:`AosProcess` and where it is.

    ``at`` is the last slot applied to the VM; ``taken`` the last slot whose result the
    process has (``compute`` took it); ``failed`` the slots whose messages exceeded a
    limit (left out of the replay that rebuilds the VM after such a failure); ``ahead``
    the results of slots applied by :meth:`prefetch` and not taken yet (slots
    ``taken + 1 … at``).

    :meth:`prefetch` applies the slots ahead on a worker thread, a batch at a time, while
    the process computes the slots already applied (lupa releases the GIL while Lua
    runs). Everything else that uses the VM waits for the worker first.
    """

    def __init__(
        self,
        node: Any,
        pid: str,
        definition: Mapping[str, Any],
        modules: list[tuple[str, str | bytes]],
        limits: Mapping[str, int],
    ) -> None:
        from hbeam.lua import AosProcess

        self.node = node
        self.pid = pid
        self.at = -1
        self.taken = -1
        self.failed: set[int] = set()
        self.ahead: dict[int, dict[str, Any] | LimitExceeded] = {}
        self._cv = threading.Condition()
        # one worker thread serves every run of slots applied ahead (a thread started per
        # run waits for the GIL to say it started: ~1 ms beside busy threads); it ends
        # after WORKER_IDLE seconds without work and starts again on the next run
        self._thread: threading.Thread | None = None
        self._job: tuple[int, list[Any], Callable[[Any], Mapping[str, Any]] | None] | None = None
        self._running = False  # a run is queued or being applied
        self._cancel = False
        self._closed = False
        process = {k: v for k, v in definition.items() if not _core.impl.is_private(k)}
        process["id"] = pid
        self.process = process
        self.modules = modules
        self.proc: AosProcess = AosProcess(history=self._history, name=f"process {pid}", **limits)

    def boot(self) -> dict[str, Any]:
        """Start the VM and load the modules; the messages they sent."""
        self.settle()
        result = self.proc.boot(self.process, self.modules)
        self.at = self.taken = 0
        self.failed = set()
        self.ahead = {}
        return result

    @property
    def busy(self) -> bool:
        """Whether results are ahead or on their way."""
        return bool(self.ahead) or self._running

    @property
    def working(self) -> bool:
        """Whether the worker thread is applying slots ahead (results on their way)."""
        return self._running

    def prefetch(
        self,
        first: int,
        msgs: Sequence[Any],
        convert: Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> None:
        """Start applying the messages of slots ``first``… on a worker thread, in batches
        (:meth:`AosProcess.handle_many`), keeping their results for :meth:`take`; the
        worker stops early where a message ends a batch. ``convert`` (if given) makes each
        of ``msgs`` the message the VM handles, on the worker, a batch at a time (the
        first results are ready sooner); the worker stops before a message it cannot
        convert. Only when nothing is ahead and the VM is at ``first - 1``."""
        with self._cv:
            if self._running or self.ahead or self.at != first - 1 or not msgs:
                return
            if self.taken != self.at or self._closed:
                return
            self._cancel = False
            self._running = True
            self._job = (first, list(msgs), convert)
            if self._thread is not None:
                self._cv.notify_all()
                return
            thread = threading.Thread(
                target=self._serve, name=f"hbeam-lua-{self.pid[:8]}", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:  # no thread to be had: the slots run one by one instead
                self._running, self._job = False, None
                return
            self._thread = thread

    def _serve(self) -> None:
        """The worker thread: runs each queued job; ends when idle or closed."""
        while True:
            with self._cv:
                if self._job is None and not self._closed:
                    self._cv.wait(WORKER_IDLE)
                job, self._job = self._job, None
                if job is None:
                    self._thread = None
                    return
            self._run_ahead(*job)

    def _run_ahead(
        self, first: int, msgs: list[Any], convert: Callable[[Any], Mapping[str, Any]] | None
    ) -> None:
        slot = first
        try:
            start, size = 0, min(8, AHEAD_BATCH)
            while start < len(msgs):
                if self._cancel:
                    break
                # small batches first, so the process has slots to fold at once
                chunk = msgs[start : start + size]
                start += size
                size = min(size * 2, AHEAD_BATCH)
                if convert is not None:
                    chunk, complete = _converted(chunk, convert)
                    if not complete:
                        start = len(msgs)  # the slot-by-slot path meets the bad one
                    if not chunk:
                        break
                try:
                    results = self.proc.handle_many(chunk)
                except LuaError:
                    break  # the VM is marked broken: the slot-by-slot path rebuilds it
                with self._cv:
                    for i, result in enumerate(results):
                        self.at = slot
                        if self.proc.broken and i == len(results) - 1:
                            self.failed.add(slot)
                            self.ahead[slot] = LimitExceeded(
                                f"lua@5.3a: process {self.pid}, slot {slot}: {result.get('error')}",
                                device=DEVICE,
                                key="compute",
                                slot=slot,
                            )
                        else:
                            self.ahead[slot] = result
                        slot += 1
                    self._cv.notify_all()
                if len(results) < len(chunk):
                    break
        except Exception:  # never leave the process waiting; the VM's state is unknown
            _log.exception("lua@5.3a: applying slots ahead failed for %s", self.pid)
            self.proc.broken = True
        finally:
            with self._cv:
                self._running = False
                self._cv.notify_all()

    def settle(self) -> None:
        """Wait until the worker (if any) is done; the VM is then free."""
        with self._cv:
            while self._running:
                self._cv.wait()

    def take(self, slot: int) -> dict[str, Any] | None:
        """The result of ``slot`` applied ahead, when it is the next one (None if not: the
        caller applies it itself); raises LimitExceeded for a slot that ran out of a
        limit. Waits for the worker to reach ``slot``."""
        with self._cv:
            if self.taken != slot - 1:
                return None
            while slot not in self.ahead and self._running:
                self._cv.wait()
            result = self.ahead.pop(slot, None)
            if result is None:
                return None
            self.taken = slot
        if isinstance(result, LimitExceeded):
            raise result
        return result

    def handle(self, slot: int, msg: Mapping[str, Any]) -> dict[str, Any]:
        """Apply slot ``slot``; raises LimitExceeded when it ran out of a limit."""
        self.settle()
        result = self.proc.handle(msg)
        self.at = self.taken = slot
        if self.proc.broken:
            self.failed.add(slot)
            raise LimitExceeded(
                f"lua@5.3a: process {self.pid}, slot {slot}: {result.get('error')}",
                device=DEVICE,
                key="compute",
                slot=slot,
            )
        return result

    def catch_up(self, target: int) -> None:
        """Apply the stored assignments after ``at`` up to ``target`` (replay)."""
        scheduler = self.node.scheduler
        for slot in range(self.at + 1, target + 1):
            assignment = scheduler.assignment(self.pid, slot)
            if assignment is NOT_FOUND:
                raise NotFound(f"lua@5.3a: slot {slot} of process {self.pid} is not scheduled")
            try:
                self.handle(slot, _aos_message(assignment))
            except LimitExceeded:
                pass  # that slot is an error result, as it was the first time

    def _history(self) -> Iterator[tuple[Mapping[str, Any], None]]:
        scheduler = self.node.scheduler
        for slot in range(1, self.at + 1):
            if slot in self.failed:
                continue
            assignment = scheduler.assignment(self.pid, slot)
            if assignment is not NOT_FOUND:
                yield _aos_message(assignment), None

    def snapshot(self) -> bytes | None:
        """None: a Lua VM cannot be serialised; restarts rebuild it by replay."""
        return None

    def close(self) -> None:
        self._cancel = True
        self.settle()
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self.proc.close()


def _runtime(base: Mapping[str, Any], opts: Mapping[str, Any] | None) -> ProcessRuntime:
    rt = (opts or {}).get("runtime")
    if rt is not None:
        return rt  # type: ignore[no-any-return]
    node = (opts or {}).get("node")
    if node is None:
        raise DeviceError(
            "lua@5.3a as an execution device runs inside a node's process runtime "
            "(opts['node']); resolve the process through hbeam.Node",
            device=DEVICE,
            key="compute",
        )
    from hbeam.devices.process import pid_of

    return node.runtime(pid_of(base))  # type: ignore[no-any-return]


def _definition(base: Mapping[str, Any], rt: ProcessRuntime) -> Mapping[str, Any]:
    process = base.get("process")
    if isinstance(process, Mapping):
        return process
    return rt.definition  # type: ignore[no-any-return]


def _start(
    base: Mapping[str, Any], rt: ProcessRuntime, opts: Any
) -> tuple[LiveLua, dict[str, Any]]:
    definition = _definition(base, rt)
    spec = base.get("module")
    if spec is None:
        spec = definition.get("module")
    modules = _load_modules(spec, opts)
    live = LiveLua(rt.node, rt.pid, definition, modules, _limits(opts))
    boot = live.boot()
    old = rt.live.get(LIVE_KEY)
    rt.live[LIVE_KEY] = live
    if old is not None and old is not live:
        old.close()
    return live, boot


def _live_at(base: Mapping[str, Any], rt: ProcessRuntime, slot: int, opts: Any) -> LiveLua:
    """The live VM with every slot before ``slot`` applied (rebuilt by replay if needed)."""
    live = rt.live.get(LIVE_KEY)
    if isinstance(live, LiveLua):
        if live.taken == slot - 1 and live.busy:
            return live  # compute takes the results applied ahead, in order
        live.settle()
        if live.ahead and live.taken != slot - 1:
            live, _ = _start(base, rt, opts)  # out of order: start over
    if not isinstance(live, LiveLua) or live.at > slot - 1:
        live, _ = _start(base, rt, opts)
    if live.at < slot - 1:
        live.catch_up(slot - 1)
    return live


def _patch_later_in_stack(base: Mapping[str, Any]) -> bool:
    stack = base.get("device-stack")
    if isinstance(stack, Mapping):
        names = [stack[k] for k in sorted(stack, key=lambda k: (len(k), k))]
    elif isinstance(stack, list):
        names = stack
    else:
        return False
    me = base.get("device-key")
    try:
        start = int(me) if me is not None else 1
    except (TypeError, ValueError):
        start = 1
    return any(isinstance(n, str) and n.lower() == "patch@1.0" for n in names[start:])


def init(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Boot the process's aos VM; the state with the modules' load-time ``results``."""
    rt = _runtime(base, opts)
    _, boot = _start(base, rt, opts)
    state = base.set("results", _results(boot))
    if boot.get("outbox") and _patch_later_in_stack(base):
        from hbeam import ao

        status, value = ao.resolve_status(
            state.set("device", "patch@1.0"), {"path": "compute"}, opts=opts
        )
        if status == "ok" and isinstance(value, Mapping):
            patched = value if hasattr(value, "set") else _core.impl.Message(value)
            state = patched.set("device", base.get("device", DEVICE))
    return state


def compute(base: Any, req: Any, opts: Any = None) -> Any:
    """Handle the assignment's message; the state with ``results`` set.

    Raises:
        LimitExceeded: the message ran out of instructions or memory (recorded by the
            runtime as that slot's error; the VM is rebuilt for the next one).
    """
    rt = _runtime(base, opts)
    slot_value = req.get("slot")
    try:
        slot = int(slot_value)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(
            f"lua@5.3a compute: the assignment has no slot ({slot_value!r})"
        ) from exc
    live = rt.live.get(LIVE_KEY)
    raw = live.take(slot) if isinstance(live, LiveLua) else None
    if raw is None:
        live = _live_at(base, rt, slot, opts)
        raw = live.handle(slot, _aos_message(req))
    return base.set("results", _results(raw))


def lane(base: Any, key: str, opts: Any = None) -> Any:
    """Host hook for :func:`hbeam.ao.step_lane` (not a key): for ``compute``,
    ``f(msg, req)`` giving what :func:`compute` gives when the live VM has the slot's
    result ready (applied ahead by :func:`prefetch`) — the message with ``results`` set —
    and None, taking nothing, otherwise (``compute`` then runs as usual)."""
    rt = (opts or {}).get("runtime") if key == "compute" else None
    if rt is None:
        return None

    def compute_ahead(msg: Any, req: Any) -> Any:
        live = rt.live.get(LIVE_KEY)
        slot = req.get("slot")
        if type(live) is not LiveLua or type(slot) is not int:
            return None
        raw = live.take(slot)
        if raw is None:
            return None
        return msg.set("results", _results(raw))

    return compute_ahead


def prefetch(base: Any, assignments: Sequence[Any], opts: Any = None) -> None:
    """Host hint from the process runtime: the assignments of the slots after the state
    ``base`` are about to be computed in order. Applies them to the live VM in batches
    (one crossing into Lua per batch); ``compute`` then takes each slot's result. Does
    nothing unless the live VM is exactly at ``base``'s slot."""
    rt = _runtime(base, opts)
    live = rt.live.get(LIVE_KEY)
    if not isinstance(live, LiveLua) or not assignments:
        return
    try:
        first = int(assignments[0].get("slot"))
    except (TypeError, ValueError):
        return
    if live.taken != first - 1 or base.get("at-slot") != first - 1:
        return
    live.prefetch(first, assignments, _aos_message)


def normalize(base: Any, req: Any = None, opts: Any = None) -> Any:
    """Make sure the live VM is at the state's ``at-slot`` (replaying if needed); the base."""
    rt = _runtime(base, opts)
    at = base.get("at-slot", -1)
    try:
        target = int(at)
    except (TypeError, ValueError):
        target = -1
    if target >= 0:
        _live_at(base, rt, target + 1, opts)
    return base


def snapshot(base: Any = None, req: Any = None, opts: Any = None) -> Any:
    """Nothing (``not_found``): Lua VMs are rebuilt by replay, never serialised."""
    return NOT_FOUND


# -- dynamic functions ------------------------------------------------------------------------

# Runs once per pooled VM (trusted): compiles modules into factories that run the module
# body with a given _ENV, and calls a function in a fresh environment per call, so a call
# sees only the modules' definitions and its arguments, and leaves nothing behind.
_RUNNER: Final = r"""
local api = ...
local G = _G
local next, type, setmetatable, load, error, rawget =
  next, type, setmetatable, load, error, rawget
local LIBS = { "string", "table", "math", "utf8", "coroutine", "os" }
local factories = {}
getmetatable("").__metatable = false -- user code cannot reach the shared string table

local function fresh_env()
  local env = {}
  for i = 1, #LIBS do
    local name = LIBS[i]
    local copy = {}
    for k, v in next, G[name] do
      copy[k] = v
    end
    env[name] = copy
  end
  env._G = env
  return setmetatable(env, { __index = G })
end

local runner = {}

function runner.compile(key, source, name)
  local f, err = load("return function(_ENV, ...) " .. source .. "\nend", "=" .. name, "t")
  if not f then
    error(err, 0)
  end
  factories[key] = f()
  return true
end

function runner.forget()
  factories = {}
  return true
end

function runner.call(keys, fname, ...)
  local env = fresh_env()
  for i = 1, #keys do
    factories[keys[i]](env)
  end
  local fn = rawget(env, fname)
  if type(fn) ~= "function" then
    return false
  end
  return true, fn(...)
end

return runner
"""


class _DynamicVM:
    """A pooled sandboxed VM that runs dynamic functions in fresh environments."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        from hbeam.lua import LuaVM
        from hbeam.lua.aos import JSON_SOURCE

        self.vm: LuaVM = LuaVM(
            modules={"json": JSON_SOURCE}, name="lua@5.3a dynamic function", **limits
        )
        (runner,) = self.vm.exec_trusted(_RUNNER, "hbeam/dynamic")
        self.compile_fn = runner["compile"]
        self.call_fn = runner["call"]
        self.forget_fn = runner["forget"]
        self.compiled: set[str] = set()

    def call(self, modules: list[Module], fname: str, args: Sequence[Any]) -> list[Any]:
        if len(self.compiled) + len(modules) > _FACTORIES_PER_VM:
            self.vm.invoke(self.forget_fn, what="reset")
            self.compiled.clear()
        for key, name, source in modules:
            if key not in self.compiled:
                self.vm.invoke(self.compile_fn, key, source, name, what=f"module '{name}'")
                self.compiled.add(key)
        keys = [key for key, _, _ in modules]
        return self.vm.invoke(self.call_fn, keys, fname, *args, what=f"function '{fname}'")

    def close(self) -> None:
        self.vm.close()


_pools: dict[tuple[int, int], list[_DynamicVM]] = {}
_pool_lock = threading.Lock()


def _take(limits: Mapping[str, int]) -> _DynamicVM:
    key = (limits["max_instructions"], limits["max_memory"])
    with _pool_lock:
        pool = _pools.get(key)
        if pool:
            return pool.pop()
    return _DynamicVM(limits)


def _give(limits: Mapping[str, int], vm: _DynamicVM) -> None:
    key = (limits["max_instructions"], limits["max_memory"])
    with _pool_lock:
        pool = _pools.setdefault(key, [])
        if len(pool) < _POOL_SIZE:
            pool.append(vm)
            return
    vm.close()


def _public(msg: Mapping[str, Any], drop: Any = ()) -> dict[str, Any]:
    is_private = _core.impl.is_private
    return {k: v for k, v in msg.items() if k not in drop and not is_private(k)}


def _call_args(base: Any, req: Mapping[str, Any]) -> list[Any]:
    params = req.get("parameters")
    if params is None:
        params = base.get("parameters")
    if isinstance(params, (list, tuple)):
        return list(params)
    if isinstance(params, Mapping) and all(str(k).isdigit() for k in params):
        return [params[k] for k in sorted(params, key=int)]
    globals_ = {k for k, v in base.items() if k in req and k != "path" and req.get(k) == v}
    visible = _public(base, STRIPPED | globals_)
    return [visible, _public(req), {}]


def _dynamic(key: str, base: Any, req: Any = None, opts: Any = None) -> Any:
    """A plain read when the message has ``key``; else the Lua function ``key`` (read-only)."""
    from hbeam.devices.message import read

    req = req if isinstance(req, Mapping) else {}
    if key not in ("function", "parameters"):
        value = read(base, key)
        if value is not NOT_FOUND:
            return value
    fname = req.get("function")
    if not isinstance(fname, str):
        fname = base.get("function") if isinstance(base.get("function"), str) else key
    spec = base.get("module")
    if spec is None:
        spec = req.get("module")
    if spec is None:
        raise NotFound(
            f"lua@5.3a: no-modules-found: cannot call '{fname}' without a 'module' "
            "(on the message or the request)",
            key=key,
        )
    modules = _modules_of(spec, opts)
    limits = _limits(opts)
    args = _call_args(base, req)
    vm = _take(limits)
    try:
        results = vm.call(modules, fname, args)
    except (LuaError, LimitExceeded, InvalidMessage):
        vm.close()  # a VM that failed is not reused
        raise
    except Exception as exc:
        vm.close()
        raise LuaError(
            f"lua@5.3a: calling '{fname}' failed: {exc}", device=DEVICE, key=key
        ) from exc
    _give(limits, vm)
    if not results or results[0] is not True:
        names = ", ".join(name for _, name, _ in modules)
        raise NotFound(f"lua@5.3a: the module(s) {names} define no function '{fname}'", key=key)
    values = results[1:]
    if len(values) >= 2 and isinstance(values[0], str) and values[0] in ("ok", "error"):
        if values[0] == "error":
            raise LuaError(
                f"lua@5.3a: function '{fname}' returned an error: {values[1]!r}",
                device=DEVICE,
                key=key,
                lua_value=values[1],
            )
        values = values[1:]
    if not values or values[0] is None:
        return _core.impl.Message()
    value = values[0]
    if isinstance(value, (dict, list)):
        return _core.impl.normalize_keys(value) if isinstance(value, dict) else value
    return value


info: Final[dict[str, Any]] = {
    "default": _dynamic,
    "excludes": list(EXCLUDED),
    "volatile": list(HOOKS),
}
