"""One AO process on a node: its live state, its compute worker, snapshots and subscribers.

A :class:`ProcessRuntime` folds the process's assignments (from the node's
:class:`~hbeam.node.scheduler.Scheduler`) through its execution device, one slot at a
time under a lock, so concurrent ``now``/``compute`` calls see a consistent state:

* slot 0 is the process definition itself and runs the execution device's ``init``;
* slot N > 0 resolves ``compute`` with the assignment as the request on the state whose
  ``device`` is the execution device; the result (a message) becomes the state, with
  ``device: process@1.0`` and ``at-slot: N``;
* an execution-device failure at slot N is recorded (``computed/<pid>/<N>/error``, visible
  through :meth:`compute`) and the state stays as it was — the process is not wedged
  (HyperBEAM retries such a slot forever; hbeam moves on and says so);
* every ``snapshot_every`` slots the state is written to the store, with the snapshot of
  every live execution object (a wasm instance's memory) — unless one of them cannot be
  serialised (a Lua VM), in which case a restart rebuilds it by deterministic replay;
* after each slot, outbox messages addressed to local processes are scheduled on them
  (push), exactly once: each carries a ``push-ref`` the scheduler deduplicates on.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from hbeam import _core, ao
from hbeam import device as _device
from hbeam._gil import hand_over
from hbeam._sentinels import UNSET
from hbeam.errors import AOError, DeviceError, NotFound

if TYPE_CHECKING:
    from hbeam.node.runtime import Node

__all__ = ["LiveObject", "ProcessRuntime", "Subscription"]

_STATE_LRU = 256
_READ_AHEAD = 2048  # assignments read (and prefetched) at once while catching up
_YIELD_EVERY = 16  # slots between two GIL hand-overs while catching up
_log = logging.getLogger(__name__)


class LiveObject(Protocol):
    """A non-message piece of execution state (a Lua VM, a wasm instance).

    ``snapshot()`` returns bytes, or None when it cannot be serialised (the runtime then
    replays from slot 0 after a restart instead of snapshotting).
    """

    def snapshot(self) -> bytes | None: ...


class Subscription:
    """Events ``{"process": pid, "slot": n}`` for each newly computed slot; iterable."""

    def __init__(self, runtime: ProcessRuntime) -> None:
        self._runtime = runtime
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.closed = False

    def put(self, event: dict[str, Any] | None) -> None:
        self._queue.put(event)

    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event; None when closed; raises ``queue.Empty`` on timeout."""
        if self.closed:
            return None
        event = self._queue.get(timeout=timeout)
        if event is None:
            self.closed = True
        return event

    def close(self) -> None:
        if not self.closed:
            self._runtime._unsubscribe(self)
            self._queue.put(None)

    def __iter__(self) -> Any:
        while True:
            event = self.get()
            if event is None:
                return
            yield event

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def execution_device(definition: Mapping[str, Any]) -> str:
    """The execution device a process definition names (``DeviceError`` if none)."""
    dev = definition.get("execution-device")
    if not isinstance(dev, str) or not dev:
        raise DeviceError(
            "a process definition needs an 'execution-device' "
            "(e.g. 'lua@5.3a' or 'stack@1.0' with a 'device-stack')",
            device="process@1.0",
            key="execution-device",
        )
    return dev


class ProcessRuntime:
    """The live side of one process; created and owned by a :class:`Node`."""

    def __init__(self, node: Node, pid: str, definition: Any) -> None:
        self.node = node
        self.pid = pid
        self.definition = definition
        self.exec_device = execution_device(definition)
        #: live execution objects by name (``"lua"``, ``"wasm"`` …), owned by devices
        self.live: dict[str, Any] = {}
        #: snapshot blobs of live objects restored at start (devices read them in init)
        self.restored: dict[str, bytes] = {}
        self._lock = threading.RLock()
        self._state: Any = None
        self._at = -1
        self._states: collections.OrderedDict[int, Any] = collections.OrderedDict()
        self._subscribers: list[Subscription] = []
        self._sub_lock = threading.Lock()
        self._pushed = -1
        self._loaded = False
        # the compiled compute step, kept from run to run while no device is (un)registered
        # (a step answers any message exactly: see ao.key_step)
        self._step: tuple[int, ao.KeyStep] | None = None
        self.replayed = 0  # slots recomputed while catching up after a (re)start
        #: options execution devices run with; ``runtime`` tells a device whose live
        #: objects to use (a scratch runtime recomputing old slots has its own)
        self.exec_opts: dict[str, Any] = {**node.exec_opts, "runtime": self}

    # -- state ----------------------------------------------------------------------------

    @property
    def at_slot(self) -> int:
        """The last computed slot (-1: nothing computed yet)."""
        return self._at

    def now(self) -> Any:
        """The state after the latest scheduled slot."""
        return self.compute(self.node.scheduler.current(self.pid))

    def compute(self, slot: int) -> Any:
        """The state after ``slot`` (computing up to it if needed).

        Raises:
            NotFound: ``slot`` is not scheduled yet (or negative).
            AOError: the execution device failed on ``slot`` (the recorded error).
        """
        slot = int(slot)
        if slot < 0:
            raise NotFound(f"process {self.pid} has no slot {slot}")
        with self._lock:
            self._ensure_loaded()
            if slot > self._at:
                self._advance(slot)
            error = self._error(slot)
            if error is not None:
                raise error
            if slot == self._at:
                return self._state
            cached = self._states.get(slot)
            if cached is not None:
                return cached
        return self._recompute(slot)

    def catch_up(self) -> None:
        """Compute every scheduled slot (the eager background worker calls this)."""
        target = self.node.scheduler.current(self.pid)
        if target > self._at:
            try:
                self.compute(target)
            except AOError:
                pass  # recorded per slot; a later now/compute reports it

    # -- subscribers ------------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        with self._sub_lock:
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._sub_lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def close(self) -> None:
        with self._sub_lock:
            subs, self._subscribers = self._subscribers, []
        for sub in subs:
            sub.put(None)
        for obj in self.live.values():
            closer = getattr(obj, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception:  # closing must go on
                    pass

    # -- internals --------------------------------------------------------------------------

    def _store_read(self, path: str) -> bytes | None:
        result: bytes | None = self.node.store.read(path)
        return result

    def _ensure_loaded(self) -> None:
        """On first use: restore the newest snapshot, if any (then replay what follows)."""
        if self._loaded:
            return
        self._loaded = True
        raw = self._store_read(f"scheduler/{self.pid}/pushed")
        self._pushed = int(raw) if raw is not None else -1
        snaps = [int(s) for s in self.node.store.list(f"snapshots/{self.pid}") if s.isdigit()]
        current = self.node.scheduler.current(self.pid)
        for slot in sorted(snaps, reverse=True):
            if slot > current:
                continue
            blob = self._store_read(f"snapshots/{self.pid}/{slot}/state")
            if blob is None:
                continue
            state = _core.impl.decode(blob)
            restored: dict[str, bytes] = {}
            for name in self.node.store.list(f"snapshots/{self.pid}/{slot}/live"):
                data = self._store_read(f"snapshots/{self.pid}/{slot}/live/{name}")
                if data is not None:
                    restored[name] = data
            self.restored = restored
            self._state = state
            self._at = slot
            self._remember(slot, state)
            return

    def _advance(self, target: int) -> None:
        scheduler = self.node.scheduler
        progress = self.node._replay_progress(self.pid, self._at, target)
        try:
            while self._at < target:
                first = self._at + 1
                assignments = scheduler.assignments(
                    self.pid, first, min(target, first + _READ_AHEAD - 1)
                )
                if not assignments:
                    raise NotFound(
                        f"slot {first} of process {self.pid} is not scheduled yet "
                        f"(latest: {scheduler.current(self.pid)})"
                    )
                step: ao.KeyStep | None = None
                for i, assignment in enumerate(assignments):
                    slot = first + i
                    if slot > 0 and i + 1 < len(assignments) and (i == 0 or slot == 1):
                        state = self._state.merge({"results": UNSET, "device": self.exec_device})
                        self._prefetch(state, assignments[i:])
                        step = self._compile(state)
                    self._apply(slot, assignment, step)
                    if step is not None and slot % _YIELD_EVERY == 0 and self._working():
                        # hand the GIL over now and then: a prefetch worker whose Lua
                        # batch finished would otherwise wait for the interpreter's
                        # switch interval (5 ms) before it can start the next one
                        # (~11 µs a hand-over: only while one is at work)
                        hand_over()
                    if progress is not None:
                        progress(slot)
        finally:
            if progress is not None:
                progress(None)

    def _working(self) -> bool:
        """Whether a live object has a worker thread at work (``working``: a Lua VM
        applying slots ahead), which may be waiting for the GIL."""
        return any(getattr(obj, "working", False) for obj in self.live.values())

    def _compile(self, state: Any) -> ao.KeyStep | None:
        """The compiled ``compute`` step for the slots after ``state`` (the state as
        ``compute`` sees it; see :func:`ao.key_step`): the last run's while the device
        registry is unchanged."""
        kept = self._step
        if kept is not None and kept[0] == _device.generation:
            return kept[1]
        generation = _device.generation
        try:
            step = ao.key_step(state, "compute", opts=self.exec_opts)
        except AOError:
            return None
        if step is not None:  # (None may hold for this state only: asked again next run)
            self._step = (generation, step)
        return step

    def _prefetch(self, state: Any, assignments: list[Any]) -> None:
        """Tell the execution device which slots come next (its optional ``prefetch`` hint:
        ``lua@5.3a`` applies them to its VM in batches). A hint only: each slot is still
        computed by resolving ``compute``, so nothing depends on it succeeding."""
        if self.exec_opts.get("on_step") is not None:
            return
        try:
            hint = getattr(_device.load(self.exec_device, opts=self.exec_opts), "prefetch", None)
            if callable(hint):
                hint(state, assignments, self.exec_opts)
        except Exception:  # a failed hint costs speed, never a slot
            _log.debug("prefetch on %s failed", self.pid, exc_info=True)

    def _apply(self, slot: int, assignment: Any, step: ao.KeyStep | None = None) -> None:
        impl = _core.impl
        opts = self.exec_opts
        replaying = slot <= self._pushed
        if slot == 0:
            state = impl.Message(self.definition).merge(
                {"process": self.definition, "at-slot": -1, "device": self.exec_device}
            )
            key, req = "init", {"path": "init"}
        else:
            state = self._state.merge({"results": UNSET, "device": self.exec_device})
            key, req = "compute", assignment
            if "path" not in req:
                req = req.set("path", "compute")
            elif req["path"] != "compute":
                req = req.set("path", "compute")
        try:
            if step is not None and slot > 0:
                status, value = step(state, req)
            else:
                status, value = ao.resolve_key(state, key, req, opts=opts)
        except AOError as exc:
            status, value = "error", exc
        except Exception as exc:  # a device bug must not wedge the process
            status, value = (
                "error",
                DeviceError(
                    f"{self.exec_device} failed on slot {slot}: {exc}",
                    device=self.exec_device,
                    key=key,
                ),
            )
            value.__cause__ = exc
        if status == "ok" and (type(value) is impl.Message or isinstance(value, Mapping)):
            if type(value) is not impl.Message and not hasattr(value, "merge"):
                value = impl.Message(value)
            new_state = value.merge(
                {"device": "process@1.0", "at-slot": slot, "initialized": "true"}
            )
        else:
            self._record_error(slot, key, status, value)
            base = self._state if self._state is not None else impl.Message(self.definition)
            new_state = base.merge({"device": "process@1.0", "at-slot": slot})
        self._state = new_state
        self._at = slot
        self._remember(slot, new_state)
        self.replayed += 1
        if slot > 0 and slot % self.node.snapshot_every == 0:
            self._snapshot(slot, new_state)
        if not replaying:
            self._push(slot, new_state)
        self._notify(slot)

    def _record_error(self, slot: int, key: str, status: str, value: Any) -> None:
        if isinstance(value, AOError):
            message = str(value)
            kind = type(value).__name__
        else:
            message = f"{self.exec_device} returned status {status!r} on {key}: {value!r}"
            kind = "DeviceError"
        record = _core.impl.Message({"error": kind, "message": message, "slot": slot})
        self.node.store.write(f"computed/{self.pid}/{slot}/error", _core.impl.encode(record))

    def _error(self, slot: int) -> AOError | None:
        raw = self._store_read(f"computed/{self.pid}/{slot}/error")
        if raw is None:
            return None
        record = _core.impl.decode(raw)
        return DeviceError(
            f"slot {slot} of process {self.pid} failed: {record['message']}",
            device=self.exec_device,
            key="compute",
            slot=slot,
        )

    def _remember(self, slot: int, state: Any) -> None:
        states = self._states
        if slot in states:
            states.move_to_end(slot)
        states[slot] = state
        while len(states) > _STATE_LRU:
            states.popitem(last=False)

    def _snapshot(self, slot: int, state: Any) -> None:
        blobs: dict[str, bytes] = {}
        for name, obj in self.live.items():
            snap = getattr(obj, "snapshot", None)
            data = snap() if callable(snap) else None
            if data is None:
                return  # something cannot be serialised: restarts replay instead
            blobs[name] = data
        writes = [(f"snapshots/{self.pid}/{slot}/state", _core.impl.encode(state))]
        writes += [(f"snapshots/{self.pid}/{slot}/live/{n}", b) for n, b in blobs.items()]
        self.node.write_async(writes)

    def _recompute(self, slot: int) -> Any:
        """The state after an old slot no longer in memory: replay it in a scratch runtime."""
        scratch = ProcessRuntime(self.node, self.pid, self.definition)
        scratch._pushed = 1 << 62  # never push while recomputing history
        scratch._loaded = True
        with scratch._lock:
            snaps = [int(s) for s in self.node.store.list(f"snapshots/{self.pid}") if s.isdigit()]
            usable = [s for s in snaps if s <= slot]
            if usable and not self.live:
                best = max(usable)
                blob = self._store_read(f"snapshots/{self.pid}/{best}/state")
                if blob is not None:
                    scratch._state = _core.impl.decode(blob)
                    scratch._at = best
            scratch._advance(slot)
            state = scratch._state
        scratch.close()
        return state

    def _push(self, slot: int, state: Any) -> None:
        """Schedule outbox messages addressed to local processes on them (exactly once)."""
        outbox = _outbox(state, self.node._local_target)
        if outbox:
            self.node._deliver(self.pid, slot, outbox)
        self._pushed = slot
        if outbox:
            # the watermark only has to cover slots that pushed something: a replay after
            # a restart re-pushes the slots after it, which the scheduler deduplicates by
            # push-ref (and slots that sent nothing local push nothing again)
            self.node.write_async([(f"scheduler/{self.pid}/pushed", str(slot).encode())])

    def _notify(self, slot: int) -> None:
        if not self._subscribers:  # (a racing subscribe only waits for the next slot)
            return
        event = {"process": self.pid, "slot": slot}
        with self._sub_lock:
            subs = list(self._subscribers)
        for sub in subs:
            sub.put(event)


def _numbered_triple(entry: tuple[str, Any, str]) -> tuple[int, str]:
    return (len(entry[0]), entry[0])


def _outbox(
    state: Any, local_target: Callable[[Mapping[str, Any]], str | None]
) -> list[tuple[str, Any, str]]:
    """``(key, message, target)`` of each ``results/outbox`` message (a numbered map or a
    list), in order, that ``local_target`` addresses to a local process ``target``."""
    M = _core.impl.Message  # (type checks first: an ABC isinstance check costs far more)
    if type(state) is not M and not isinstance(state, Mapping):
        return []
    results = state.get("results")
    if results is None or (type(results) is not M and not isinstance(results, Mapping)):
        return []
    outbox = results.get("outbox")
    if outbox is None:
        return []
    found: list[tuple[str, Any, str]] = []
    if type(outbox) is M or isinstance(outbox, Mapping):
        get = outbox.get  # keys then gets: a core Message's items view is slower
        for key in outbox:
            message = get(key)
            if type(message) is M or isinstance(message, Mapping):
                target = local_target(message)
                if target is not None:
                    found.append((key, message, target))
        if len(found) > 1:
            found.sort(key=_numbered_triple)
    elif isinstance(outbox, list):
        for i, message in enumerate(outbox):
            target = local_target(message) if isinstance(message, Mapping) else None
            if target is not None:
                found.append((str(i + 1), message, target))
    return found


ProgressFn = Callable[[int | None], None]
