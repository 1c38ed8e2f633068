"""Durable, gapless slot assignment for every process of a node, with group commit.

One sequencer thread owns the slot counters. ``schedule`` enqueues a request and waits;
the sequencer takes *everything* queued (from any number of threads and processes),
assigns consecutive slots, writes all the assignments in one durable store commit
(``write_many``) and only then releases the waiters. So:

* an acknowledged assignment is in a synced commit (a SIGKILL cannot lose it);
* slots are consumed only by a successful commit, so they are gapless and unique whatever
  fails — a failed commit fails every waiter in it with ``StoreError``, and a request that
  fails on its own (a malformed message) leaves nothing in the commit it was part of;
* callers that arrive while a commit is in flight share the next one (group commit), so
  64 concurrent schedulers run far above the store's synced-commit rate;
* a caller is a thread (``schedule``, blocked on one lock) or a coroutine
  (``schedule_async``, an ``asyncio.Future`` settled with one wake-up of its loop per
  commit): coroutines wait without a thread each, so many concurrent senders cost no
  thread switches.

Store layout: ``assignments/<pid>/<slot>`` → the encoded assignment,
``scheduler/<pid>/current`` → the last slot (decimal), ``scheduler/<pid>/chain`` → the
hash chain after it, ``dedup/<pid>/<message id>`` → the slot of a signed message (replay
protection: scheduling it again returns the first assignment).
"""

from __future__ import annotations

import _thread
import asyncio
import binascii
import itertools
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hbeam import _core
from hbeam._gil import hand_over
from hbeam._sentinels import NOT_FOUND
from hbeam.errors import AOError, InvalidMessage, StoreError

__all__ = ["TRANSPORT_KEYS", "Scheduler", "StoreLike"]

TRANSPORT_KEYS = frozenset(
    {
        "path",
        "method",
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "content-length",
        "content-type",
        "connection",
        "codec-device",
        "accept-codec",
        "signature",
        "signature-input",
        "content-digest",
    }
)
"""Keys the transport (HTTP) adds to a message; never part of what is scheduled."""


class StoreLike(Protocol):
    """What the scheduler needs from a store."""

    def read(self, path: str) -> bytes | None: ...

    def read_many(self, paths: Sequence[str]) -> list[bytes | None]: ...

    def write_many(self, items: Sequence[tuple[str, bytes]]) -> None: ...


class _Request:
    """Messages to assign for one caller, and how that caller learns the outcome.

    A thread caller blocks on a held lock that the sequencer releases once the outcome is
    set (one futex, where a ``concurrent.futures.Future`` takes a condition, a waiter lock
    and a notify per caller); a coroutine caller gets an ``asyncio.Future`` of its loop,
    settled from there (see ``_settle``).
    """

    __slots__ = ("_error", "_lock", "_value", "future", "messages", "pid")

    def __init__(
        self, pid: str, messages: list[Any], future: asyncio.Future[list[Any]] | None = None
    ) -> None:
        self.pid = pid
        self.messages = messages
        self.future = future
        self._value: list[Any] = []
        self._error: BaseException | None = None
        if future is None:
            self._lock = _thread.allocate_lock()
            self._lock.acquire()

    def settle(self, value: list[Any], error: BaseException | None) -> None:
        """Hand a thread caller its outcome (coroutine callers are settled per loop)."""
        self._value, self._error = value, error
        self._lock.release()

    def wait(self) -> list[Any]:
        """Block until the sequencer settles this request; its assignments or its error."""
        self._lock.acquire()
        if self._error is not None:
            raise self._error
        return self._value


def _settle(
    outcomes: list[tuple[asyncio.Future[list[Any]], list[Any], BaseException | None]],
) -> None:
    """Settle coroutine callers, on their loop (a cancelled caller's slot stays assigned)."""
    for future, value, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


@dataclass
class _Cursor:
    current: int
    chain: bytes


_STOP = object()
_READ_GROUP = 64  # assignments read in one store transaction
# committed assignments kept in memory (all processes together): a process computing the
# slots just scheduled takes them from here instead of reading and decoding them again
_RECENT = 4096


_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


_PADDING = (b"", b"===", b"==", b"=")  # by length % 4


def _unb64(text: str) -> bytes:
    data = text.encode("ascii").translate(_TO_STANDARD)
    return binascii.a2b_base64(data + _PADDING[len(data) & 3])


def chain_step(previous: bytes, message_id: str) -> tuple[bytes, str]:
    """The hash chain after ``message_id``: blake3(previous chain ‖ raw message ID) — the
    core's ``id`` of those bytes, raw.

    Returns the raw 32 bytes and their base64url form (an assignment's ``hash-chain``).
    """
    text = _core.impl.id(previous + _unb64(message_id))
    return _unb64(text), text


class Scheduler:
    """Assigns slots 0, 1, 2, … per process; every returned assignment is durable.

    Args:
        store: where assignments go; must offer ``read`` and an atomic, synced
            ``write_many``.
        clock: seconds since the epoch (tests may pin it).
        dedup_key: given a message, the ID under which a repeat is recognised, or None for
            messages that may be scheduled any number of times (default: signed messages,
            i.e. those carrying ``commitments``, by their ID).
    """

    def __init__(
        self,
        store: StoreLike,
        *,
        clock: Callable[[], float] = time.time,
        dedup_key: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._dedup_key = dedup_key or _signed_message_id
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cursors: dict[str, _Cursor] = {}
        self._closed = False
        # held while checking _closed and queueing, so nothing is queued after _STOP
        self._gate = threading.Lock()
        self._listeners: list[Callable[[str, int], None]] = []
        # (pid, slot) -> (assignment, size of its encoding), oldest first; written by the
        # sequencer after its commit, read without a lock (one dict get at a time)
        self._recent: dict[tuple[str, int], tuple[Any, int]] = {}
        self._thread = threading.Thread(target=self._run, name="hbeam-scheduler", daemon=True)
        self._thread.start()

    # -- public -------------------------------------------------------------------------

    def schedule(self, pid: str, message: Mapping[str, Any]) -> Any:
        """Assign the next slot of ``pid`` to ``message``; returns the durable assignment."""
        return self.schedule_many(pid, [message])[0]

    def schedule_many(self, pid: str, messages: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Assign consecutive slots to ``messages`` in one durable commit."""
        if not messages:
            self._check_open()
            return []
        request = _Request(pid, [_clean(m) for m in messages])
        self._enqueue(request)
        return request.wait()

    async def schedule_async(self, pid: str, message: Mapping[str, Any]) -> Any:
        """``schedule`` for a coroutine: awaits the durable assignment without a thread.

        Cancelling the awaiting task does not unschedule the message: once queued it is
        assigned, like a thread caller's that stops waiting.
        """
        return (await self.submit(pid, [message]))[0]

    async def schedule_many_async(
        self, pid: str, messages: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        """``schedule_many`` for a coroutine (see ``schedule_async``)."""
        return await self.submit(pid, messages)

    def submit(self, pid: str, messages: Sequence[Mapping[str, Any]]) -> asyncio.Future[list[Any]]:
        """Queue ``messages`` for ``pid`` from the running loop's thread; a future of the
        loop that the sequencer settles with their durable assignments (or the error).

        Raises:
            AOError: no event loop is running in this thread (threads call
                ``schedule_many``), or the scheduler is closed.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise AOError(
                "submit needs a running event loop: from a thread, call schedule_many"
            ) from None
        future: asyncio.Future[list[Any]] = loop.create_future()
        if not messages:
            self._check_open()
            future.set_result([])
            return future
        self._enqueue(_Request(pid, [_clean(m) for m in messages], future))
        return future

    def current(self, pid: str) -> int:
        """The last assigned slot of ``pid`` (-1 when nothing is assigned)."""
        cursor = self._cursors.get(pid)
        if cursor is not None:
            return cursor.current
        raw = self._store.read(f"scheduler/{pid}/current")
        return -1 if raw is None else int(raw)

    def assignment(self, pid: str, slot: int, *, from_store: bool = False) -> Any:
        """The assignment of ``slot`` (a Message), or ``NOT_FOUND``. ``from_store``: as
        the store holds it now, never the copy kept from its commit (for audits)."""
        if not from_store:
            hit = self._recent.get((pid, int(slot)))
            if hit is not None:
                return hit[0]
        raw = self._store.read(f"assignments/{pid}/{int(slot)}")
        if raw is None:
            return NOT_FOUND
        return _core.impl.decode(raw)

    def assignments(
        self, pid: str, first: int, last: int, *, max_bytes: int = 64 * 1024 * 1024
    ) -> list[Any]:
        """The assignments of slots ``first..last``, read 64 to a transaction, stopping
        before the first slot that is not stored and once their encodings pass
        ``max_bytes`` (at least one is returned when slot ``first`` is stored)."""
        decode = _core.impl.decode
        out: list[Any] = []
        size = 0
        first, last = int(first), int(last)
        recent = self._recent
        while first <= last:  # the ones just committed, as they were committed
            hit = recent.get((pid, first))
            if hit is None:
                break
            if out and size + hit[1] > max_bytes:
                return out
            size += hit[1]
            out.append(hit[0])
            first += 1
        for start in range(first, last + 1, _READ_GROUP):
            end = min(last, start + _READ_GROUP - 1)
            raws = self._store.read_many(
                [f"assignments/{pid}/{slot}" for slot in range(start, end + 1)]
            )
            for raw in raws:
                if raw is None or (out and size + len(raw) > max_bytes):
                    return out
                size += len(raw)
                out.append(decode(raw))
        return out

    def on_commit(self, listener: Callable[[str, int], None]) -> None:
        """Call ``listener(pid, last_slot)`` after every commit (from the sequencer thread)."""
        self._listeners.append(listener)

    def close(self) -> None:
        """Finish what is queued, then stop the sequencer thread."""
        with self._gate:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout=30)

    # -- sequencer ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise AOError("the scheduler is closed")

    def _enqueue(self, request: _Request) -> None:
        with self._gate:
            self._check_open()
            self._queue.put(request)

    def _keep(self, done: list[tuple[tuple[str, int], tuple[Any, int]]]) -> None:
        """Remember assignments just committed, dropping the oldest past ``_RECENT``."""
        recent = self._recent
        recent.update(done)
        excess = len(recent) - _RECENT
        if excess > 0:
            for key in list(itertools.islice(recent, excess)):
                del recent[key]

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            # hand the GIL over once: callers just released by the last commit can queue
            # their next message now, into this commit (a larger group, fewer fsyncs)
            hand_over()
            batch = [first]
            stop = False
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    @staticmethod
    def _answer(
        batch: list[_Request], results: list[list[Any]], failed: dict[int, BaseException]
    ) -> None:
        """Release every caller of a commit: threads one by one, coroutines with one
        wake-up of each loop."""
        loops: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for index, request in enumerate(batch):
            error = failed.get(index)
            future = request.future
            if future is None:
                request.settle(results[index], error)
            else:
                loops.setdefault(future.get_loop(), []).append((future, results[index], error))
        for loop, outcomes in loops.items():
            try:
                loop.call_soon_threadsafe(_settle, outcomes)
            except RuntimeError:  # its loop is closed: nobody is left to tell
                pass

    def _assign_unkeyed(
        self,
        batch: list[_Request],
        now_ms: int,
        now_s: int,
        writes: list[tuple[str, bytes]],
        done: list[tuple[tuple[str, int], tuple[Any, int]]],
        pending: dict[str, _Cursor],
        results: list[list[Any]],
    ) -> set[int]:
        """Assign, per process, all the requests of a commit whose messages carry no dedup
        key with one ``assign_many`` call (64 one-message requests cost as much as one
        64-message request); the indices of the requests assigned.

        A process with a keyed message, a failing key or a message ``assign_many`` refuses
        is left to the request-by-request path, which decides which request fails.
        """
        dedup_key = self._dedup_key
        groups: dict[str, list[int]] = {}
        refused: set[str] = set()
        for index, request in enumerate(batch):
            pid = request.pid
            if pid in refused:
                continue
            try:
                keyed = any(dedup_key(m) is not None for m in request.messages)
            except Exception:
                keyed = True
            if keyed:
                refused.add(pid)
                groups.pop(pid, None)
            else:
                groups.setdefault(pid, []).append(index)
        assigned: set[int] = set()
        for pid, indices in groups.items():
            base = self._cursor(pid)
            messages = [m for i in indices for m in batch[i].messages]
            try:
                assignments, encodings, chain = _core.impl.assign_many(
                    pid, messages, base.current + 1, base.chain, now_ms, 0, now_s
                )
            except Exception:
                continue
            first = base.current + 1
            prefix = f"assignments/{pid}/"
            slots = range(first, first + len(messages))
            writes.extend(zip([prefix + str(slot) for slot in slots], encodings, strict=True))
            done.extend(
                ((pid, slot), (a, len(e)))
                for slot, a, e in zip(slots, assignments, encodings, strict=True)
            )
            pending[pid] = _Cursor(first + len(messages) - 1, chain)
            offset = 0
            for i in indices:
                count = len(batch[i].messages)
                results[i] = assignments[offset : offset + count]
                offset += count
            assigned.update(indices)
        return assigned

    def _cursor(self, pid: str) -> _Cursor:
        cursor = self._cursors.get(pid)
        if cursor is None:
            raw = self._store.read(f"scheduler/{pid}/current")
            chain = self._store.read(f"scheduler/{pid}/chain")
            cursor = _Cursor(-1 if raw is None else int(raw), chain or b"")
            self._cursors[pid] = cursor
        return cursor

    def _commit(self, batch: list[_Request]) -> None:
        assign_many = _core.impl.assign_many
        dedup_key = self._dedup_key
        writes: list[tuple[str, bytes]] = []
        results: list[list[Any]] = [[] for _ in batch]
        # tentative cursors: applied only if the commit succeeds
        pending: dict[str, _Cursor] = {}
        seen: dict[tuple[str, str], Any] = {}
        failed: dict[int, BaseException] = {}
        done: list[tuple[tuple[str, int], tuple[Any, int]]] = []  # for self._recent
        now_ms = int(self._clock() * 1000)
        now_s = now_ms // 1000
        assigned = self._assign_unkeyed(batch, now_ms, now_s, writes, done, pending, results)
        for index, request in enumerate(batch):
            if index in assigned:
                continue
            pid = request.pid
            # a request that fails leaves nothing behind: not its writes, not its dedup
            # records (its slots go to the next request)
            mark, done_mark = len(writes), len(done)
            recorded: list[tuple[str, str]] = []
            try:
                base = pending.get(pid) or self._cursor(pid)
                messages = request.messages
                # which messages take a slot: fresh[i] gets slot base.current + 1 + i
                fresh: list[Any] = []
                keys: list[str | None] = []
                repeats: dict[int, Any] = {}  # position → an earlier assignment (or fresh index)
                failure: Exception | None = None
                for position, message in enumerate(messages):
                    try:
                        key = dedup_key(message)
                        if key is not None:
                            previous = seen.get((pid, key))
                            if previous is None:
                                raw = self._store.read(f"dedup/{pid}/{key}")
                                if raw is not None:
                                    previous = self.assignment(pid, int(raw))
                            if previous is not None and previous is not NOT_FOUND:
                                repeats[position] = previous
                                continue
                            # a repeat later in this request gets this message's assignment
                            seen[(pid, key)] = len(fresh)
                            recorded.append((pid, key))
                    except Exception as exc:
                        # the messages before it are still assigned first, so that the
                        # request fails with the error the first bad message raises
                        failure = exc
                        break
                    fresh.append(message)
                    keys.append(key)
                assignments, encodings, chain = assign_many(
                    pid, fresh, base.current + 1, base.chain, now_ms, 0, now_s
                )
                if failure is not None:
                    raise failure
                first = base.current + 1
                prefix = f"assignments/{pid}/"
                if not repeats and not recorded:  # the common case: all new, none keyed
                    writes.extend(
                        zip(
                            [prefix + str(first + i) for i in range(len(fresh))],
                            encodings,
                            strict=True,
                        )
                    )
                    out: list[Any] = assignments
                    done.extend(
                        ((pid, first + i), (assignments[i], len(encodings[i])))
                        for i in range(len(fresh))
                    )
                else:
                    out = []
                    i = 0
                    for position in range(len(messages)):
                        previous = repeats.get(position)
                        if previous is not None:
                            out.append(assignments[previous] if type(previous) is int else previous)
                            continue
                        assignment = assignments[i]
                        writes.append((prefix + str(first + i), encodings[i]))
                        done.append(((pid, first + i), (assignment, len(encodings[i]))))
                        key = keys[i]
                        if key is not None:
                            writes.append((f"dedup/{pid}/{key}", str(first + i).encode()))
                            seen[(pid, key)] = assignment
                        out.append(assignment)
                        i += 1
                pending[pid] = _Cursor(base.current + len(fresh), chain)
                results[index] = out
            except Exception as exc:  # a malformed message must not kill the sequencer
                del writes[mark:]
                del done[done_mark:]
                for unseen in recorded:
                    seen.pop(unseen, None)
                failed[index] = (
                    exc
                    if isinstance(exc, AOError)
                    else InvalidMessage(f"cannot schedule on {pid}: {exc}")
                )
        for pid, cursor in pending.items():
            writes.append((f"scheduler/{pid}/current", str(cursor.current).encode()))
            writes.append((f"scheduler/{pid}/chain", cursor.chain))
        try:
            if writes:
                self._store.write_many(writes)
        except BaseException as exc:
            error = exc if isinstance(exc, AOError) else StoreError(f"scheduling failed: {exc}")
            self._answer(batch, [[] for _ in batch], dict.fromkeys(range(len(batch)), error))
            return
        self._cursors.update(pending)
        self._keep(done)
        self._answer(batch, results, failed)
        for pid, cursor in pending.items():
            for listener in self._listeners:
                try:
                    listener(pid, cursor.current)
                except Exception:  # a listener must not break scheduling
                    pass


def _clean(message: Mapping[str, Any]) -> Any:
    """The message as it is scheduled: a core Message without transport keys."""
    if type(message) is dict and TRANSPORT_KEYS.isdisjoint(message):
        # the common case, checked in C: text keys stay as they are when normalised, so
        # none of them can become a transport key (join fails on any other key)
        try:
            "".join(message)
        except TypeError:
            pass
        else:
            return _core.impl.Message(message)
    if not isinstance(message, Mapping):
        raise InvalidMessage(
            f"can only schedule a message (a mapping), not {type(message).__name__}"
        )
    msg = message if hasattr(message, "remove") else _core.impl.Message(message)
    drop = [k for k in msg if k in TRANSPORT_KEYS]
    return msg.remove(drop) if drop else msg


def _signed_message_id(message: Mapping[str, Any]) -> str | None:
    """The ID a signed message is recognised by; None for unsigned messages."""
    if "commitments" not in message:
        return None
    from hbeam.commitment import signed_id

    return str(signed_id(message))
