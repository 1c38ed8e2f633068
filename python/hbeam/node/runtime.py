"""``hbeam.Node``: a node in-process — its store, options, scheduler and process workers.

Everything a node does is sugar over :func:`hbeam.resolve` with the node's options
(``node.opts``), and works the same over HTTP (``node.app``).  See
``docs/process-design.md`` for the design.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hbeam import _core
from hbeam._sentinels import NOT_FOUND
from hbeam.errors import AOError, DeviceError, InvalidMessage, NotFound
from hbeam.node.attest import Attestor
from hbeam.node.process import ProcessRuntime, Subscription, execution_device
from hbeam.node.scheduler import Scheduler

__all__ = ["Node", "default_node", "wasm_definition"]

_PROGRESS_AFTER_SLOTS = 2000
_KNOWN_DEFINITIONS = 65536  # decoded process definitions remembered at most


class Node:
    """An hbeam node running in this Python process.

    Args:
        store: ``"lmdb:DIR"``, ``"fs:DIR"``, ``"memory:"``, a Store, or None for a fresh
            temporary LMDB store that is deleted on :meth:`close`.
        wallet: the node's wallet (``hbeam.Wallet``), used to sign assignments once
            signatures are enabled; None = no wallet.
        snapshot_every: write the process state every this many slots (default 1000).
        durable: False skips fsync on scheduling (benchmarks only); default True.
        eager: compute newly scheduled slots in the background (default True).
        **opts: further node options (``lua_instruction_limit``, ``lua_memory_limit``,
            ``wasm_fuel``, ``wasm_memory_limit``, ``require_signed``, ``max_body_bytes``,
            ``cache_control`` …), visible to devices in ``node.opts``.
    """

    def __init__(
        self,
        store: Any = None,
        *,
        wallet: Any = None,
        snapshot_every: int = 1000,
        durable: bool = True,
        eager: bool = True,
        **opts: Any,
    ) -> None:
        from hbeam import store as _store

        self._tmpdir: str | None = None
        if store is None:
            self._tmpdir = tempfile.mkdtemp(prefix="hbeam-node-")
            store = f"lmdb:{self._tmpdir}"
        store_options = {} if durable or not isinstance(store, str) else {"durable": False}
        self.store = _store.open(store, **store_options)
        self.wallet = wallet
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be at least 1")
        self.snapshot_every = snapshot_every
        self.eager = eager
        self.cache = _core.impl.ResultCache()
        self.opts: dict[str, Any] = {
            **opts,
            "store": self.store,
            "cache": self.cache,
            "node": self,
            "wallet": wallet,
        }
        #: options for running execution devices: no result caching, no hash paths
        self.exec_opts: dict[str, Any] = {
            **self.opts,
            "cache_control": ["no-cache", "no-store"],
            "hashpath": "ignore",
        }
        self.scheduler = Scheduler(self.store, dedup_key=_dedup_key)
        self._processes: dict[str, ProcessRuntime] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hbeam-compute")
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()
        if eager:
            self.scheduler.on_commit(self._on_commit)
        #: signs each process's newest hash-chain head after commits (needs a wallet)
        self.attestor: Attestor | None = None
        if wallet is not None:
            self.attestor = Attestor(self)
            self.scheduler.on_commit(self.attestor.on_commit)
        self._app: Any = None
        # every process of this node, read from the store once, on the first outbox
        # delivery: each message of each slot asks whether its target is local, and most
        # targets (wallets) are not, so a cache of misses thrashes on a big ledger
        self._local_pids: set[str] | None = None
        self._local_lock = threading.Lock()
        #: decoded definitions by process ID (each ``schedule`` checks its process exists)
        self._definitions: dict[str, Any] = {}

    # -- resolution -------------------------------------------------------------------------

    def resolve(self, path_or_msgs: Any, /) -> Any:
        """Resolve an HTTP-style path (``"/PID~process@1.0/now/cache"``) or a message list."""
        from hbeam import ao
        from hbeam.path import parse_request

        if isinstance(path_or_msgs, str):
            return ao.resolve_many(parse_request(path_or_msgs), opts=self.opts)
        if isinstance(path_or_msgs, Mapping):
            return ao.resolve(path_or_msgs, opts=self.opts)
        return ao.resolve_many(list(path_or_msgs), opts=self.opts)

    # -- data ---------------------------------------------------------------------------------

    def publish(self, data: bytes | str, content_type: str | None = None) -> str:
        """Store ``data`` content-addressed (e.g. a Lua module or a wasm image); its ID.

        The bytes are durable when this returns.
        """
        from hbeam import cache

        if not isinstance(data, (bytes, str)):
            raise InvalidMessage(f"publish takes bytes or str, not {type(data).__name__}")
        ident = cache.write(data, opts=self.opts)
        if content_type:
            meta = _core.impl.Message({"content-type": content_type, "body-id": ident})
            self.store.write(f"meta/{ident}", _core.impl.encode(meta))
        return ident

    def content_type(self, ident: str) -> str | None:
        """The content type ``publish`` recorded for ``ident``, if any."""
        raw = self.store.read(f"meta/{ident}")
        if raw is None:
            return None
        ct = _core.impl.decode(raw).get("content-type")
        return ct if isinstance(ct, str) else None

    def read(self, ident: str) -> Any:
        """A stored message or published data by ID (``NotFound`` if absent)."""
        from hbeam import cache

        value = cache.read(ident, opts=self.opts)
        if value is NOT_FOUND:
            raise NotFound(f"nothing is stored at {ident!r}")
        return value

    # -- processes ----------------------------------------------------------------------------

    def spawn(self, definition: Mapping[str, Any]) -> str:
        """Register a process and assign its definition slot 0; returns the process ID.

        Raises:
            DeviceError: the definition names no execution device, or one that (or a
                stack member of which) is not a known device.
        """
        from hbeam import cache

        if not isinstance(definition, Mapping):
            raise InvalidMessage("a process definition is a message (a mapping)")
        impl = _core.impl
        msg = impl.Message(definition)
        extra: dict[str, Any] = {}
        if "device" not in msg:
            extra["device"] = "process@1.0"
        if "type" not in msg:
            extra["type"] = "Process"
        if "execution-stack" in msg and "device-stack" not in msg:
            extra["device-stack"] = msg["execution-stack"]  # seed 001's spelling
        if extra:
            msg = msg.merge(extra)
        _check_devices(msg)
        pid = process_id(msg)
        if "commitments" in msg:
            signed = _with_verified_sender(msg)
            msg = signed.merge({"owner": signed["from"]}).remove("from")
        if self.scheduler.current(pid) >= 0:
            return pid  # already spawned: spawning is idempotent
        stored = cache.write(msg, opts=self.opts)
        if stored != pid:  # a signed process: its ID is the signed ID, also loadable
            cache.link(stored, pid, opts=self.opts)
        self.store.write(f"processes/{pid}", impl.encode(msg))
        with self._local_lock:  # after the write: a concurrent first load lists it or waits
            if self._local_pids is not None:
                self._local_pids.add(pid)
        self.scheduler.schedule(pid, msg)
        return pid

    def spawn_lua(
        self,
        module: str | bytes,
        *,
        tags: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> str:
        """Spawn an aos process running ``module`` (an ID, or Lua source published first)."""
        if isinstance(module, bytes) or (isinstance(module, str) and not _is_id(module)):
            module = self.publish(module, "application/lua")
        definition: dict[str, Any] = {
            "device": "process@1.0",
            "execution-device": "stack@1.0",
            "device-stack": ["lua@5.3a", "patch@1.0"],
            "module": module,
            "patch-from": "/results/outbox",
            "patch-to": "/",
            "scheduler": "local",
        }
        if owner is not None:
            definition["owner"] = owner
        if tags:
            definition.update(tags)
        return self.spawn(definition)

    def spawn_wasm(
        self,
        image: str | bytes,
        *,
        tags: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> str:
        """Spawn an aos-style wasm process running ``image`` (an ID, or a module's bytes
        published first); its definition is :func:`wasm_definition`'s.

        Raises:
            InvalidMessage: ``image`` is neither bytes nor a 43-character ID.
        """
        if isinstance(image, bytes):
            image = self.publish(image, "application/wasm")
        elif not _is_id(image):
            raise InvalidMessage(
                f"spawn_wasm takes a wasm module's bytes or its published ID, not {image!r:.80}"
            )
        return self.spawn(wasm_definition(image, tags=tags, owner=owner))

    def definition(self, pid: str) -> Any:
        """The definition of process ``pid`` (``NotFound`` if unknown)."""
        impl = _core.impl
        known = self._definitions.get(pid)
        if known is not None and type(known) is impl.Message:
            return known  # a definition never changes once stored (spawn is idempotent)
        raw = self.store.read(f"processes/{pid}") if _is_id(pid) else None
        if raw is None:
            raise NotFound(f"no process {pid!r} on this node")
        definition = impl.decode(raw)
        if len(self._definitions) >= _KNOWN_DEFINITIONS:
            self._definitions.clear()
        self._definitions[pid] = definition
        return definition

    def runtime(self, pid: str) -> ProcessRuntime:
        """The live runtime of process ``pid`` (loaded on first use)."""
        with self._lock:
            rt = self._processes.get(pid)
            if rt is None:
                if self._closed:
                    raise AOError("the node is closed")
                rt = ProcessRuntime(self, pid, self.definition(pid))
                self._processes[pid] = rt
            return rt

    def schedule(self, pid: str, message: Mapping[str, Any]) -> Any:
        """Assign ``message`` the next slot of ``pid``; returns once it is durable.

        A signed message (one with ``commitments``) must verify, and its ``from`` becomes
        its verified signer whatever it said; scheduling it again returns the first
        assignment.  An unsigned message comes from trusted in-process code: its ``from``
        is taken as given.

        Raises:
            NotFound: no such process.
            InvalidSignature: a commitment does not verify.
        """
        return self.scheduler.schedule(pid, self.admit(pid, message))

    def schedule_many(self, pid: str, messages: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Assign consecutive slots to ``messages`` in one durable commit (see ``schedule``)."""
        return self.scheduler.schedule_many(pid, self._admit_many(pid, messages))

    async def schedule_async(self, pid: str, message: Mapping[str, Any]) -> Any:
        """``schedule`` for asyncio code: awaits the durable assignment without holding a
        thread, so many concurrent senders share the sequencer's commits (see
        ``Scheduler.schedule_async``). A signature is checked on the calling thread
        (``admit`` it in a worker thread and await ``scheduler.schedule_async`` to keep
        that work off the loop)."""
        return (await self.scheduler.submit(pid, [self.admit(pid, message)]))[0]

    async def schedule_many_async(
        self, pid: str, messages: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        """``schedule_many`` for asyncio code (see ``schedule_async``)."""
        return await self.scheduler.submit(pid, self._admit_many(pid, messages))

    def admit(self, pid: str, message: Mapping[str, Any]) -> Any:
        """``message`` as ``schedule`` hands it to the scheduler: ``pid`` must be a process
        of this node, and a signed message must verify (its ``from`` becomes its signer).

        Raises:
            NotFound: no such process.
            InvalidSignature: a commitment does not verify.
        """
        self.definition(pid)
        return _with_verified_sender(message)

    def _admit_many(self, pid: str, messages: Sequence[Mapping[str, Any]]) -> list[Any]:
        """``admit`` for each of ``messages`` (the process is looked up once)."""
        self.definition(pid)
        return [_with_verified_sender(m) for m in messages]

    def slot(self, pid: str) -> int:
        """The latest assigned slot of ``pid``."""
        self.definition(pid)
        return self.scheduler.current(pid)

    def compute(self, pid: str, slot: int) -> Any:
        """The state of ``pid`` after ``slot``."""
        return self.runtime(pid).compute(slot)

    def now(self, pid: str) -> Any:
        """The state of ``pid`` after its latest scheduled slot."""
        return self.runtime(pid).now()

    def subscribe(self, pid: str) -> Subscription:
        """Events for every newly computed slot of ``pid`` (close it when done)."""
        return self.runtime(pid).subscribe()

    # -- HTTP -----------------------------------------------------------------------------------

    @property
    def app(self) -> Any:
        """The node's ASGI application."""
        if self._app is None:
            from hbeam.node.app import create_app

            self._app = create_app(self)
        return self._app

    def serve(self, host: str = "127.0.0.1", port: int = 8734, **kwargs: Any) -> None:
        """Serve ``app`` over HTTP until interrupted."""
        from hbeam.node.server import serve

        serve(self, host=host, port=port, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Finish queued scheduling, stop the workers, close the store."""
        if self._closed:
            return
        self._closed = True
        self.scheduler.close()
        if self.attestor is not None:
            self.attestor.close()
        self._workers.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            runtimes = list(self._processes.values())
            self._processes.clear()
        for rt in runtimes:
            rt.close()
        self.store.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Node(store={self.store!r})"

    # -- internals -------------------------------------------------------------------------------

    def write_async(self, pairs: Sequence[tuple[str, bytes]]) -> None:
        """Write derived data (snapshots, watermarks) without waiting for the commit."""
        from hbeam.store import Write

        if not self._closed:
            self.store.commit([Write(p, d) for p, d in pairs], wait=False)

    def _on_commit(self, pid: str, slot: int) -> None:
        if self._closed:
            return
        with self._pending_lock:
            if pid in self._pending:
                return
            self._pending.add(pid)
        try:
            self._workers.submit(self._catch_up, pid)
        except RuntimeError:  # shutting down
            pass

    def _catch_up(self, pid: str) -> None:
        with self._pending_lock:
            self._pending.discard(pid)
        if self._closed:
            return
        try:
            self.runtime(pid).catch_up()
        except AOError:
            pass

    def _is_local(self, pid: str) -> bool:
        """Whether ``pid`` is a process of this node (spawned here, now or before a restart)."""
        local = self._local_pids
        if local is None:
            with self._local_lock:
                if self._local_pids is None:
                    self._local_pids = set(self.store.list("processes"))
                local = self._local_pids
        return pid in local

    def _local_target(self, message: Mapping[str, Any]) -> str | None:
        """The local process an outbox ``message`` is addressed to, or None."""
        target = message.get("target")
        if type(target) is not str:
            if not isinstance(target, str):
                return None
            target = str(target)
        if "?" in target or "&" in target:
            target = target.split("?", 1)[0].split("&", 1)[0]
        local = self._local_pids
        if local is None:
            return target if self._is_local(target) else None
        return target if target in local else None

    def _deliver(self, sender: str, slot: int, outbox: list[tuple[str, Any, str]]) -> None:
        """Push: schedule each outbox ``(key, message, target)`` on its local ``target``
        (a target that refuses it is skipped)."""
        for key, message, target in outbox:
            delivered = _core.impl.Message(message).merge(
                {
                    "from": sender,  # the verified sender: an outbox cannot forge it
                    "from-process": sender,
                    "push-ref": f"{sender}/{slot}/{key}",
                    "type": message.get("type", "Message"),
                    "data-protocol": "ao",
                    "variant": "ao.N.1",
                }
            )
            try:
                self.scheduler.schedule(target, delivered)
            except AOError:
                continue

    def _replay_progress(
        self, pid: str, start: int, target: int
    ) -> Callable[[int | None], None] | None:
        """A rich progress bar for long replays when stderr is a terminal, else None."""
        if target - start < _PROGRESS_AFTER_SLOTS or not sys.stderr.isatty():
            return None
        from rich.progress import Progress

        progress = Progress(transient=True)
        task = progress.add_task(f"replaying {pid[:8]}…", total=target - start)
        progress.start()
        last = [time.monotonic()]

        def step(slot: int | None) -> None:
            if slot is None:
                progress.stop()
            elif time.monotonic() - last[0] > 0.1:
                last[0] = time.monotonic()
                progress.update(task, completed=slot - start)

        return step


def wasm_definition(
    image: str, *, tags: Mapping[str, Any] | None = None, owner: str | None = None
) -> dict[str, Any]:
    """The definition of an aos-style wasm process running the published module ``image``:
    ``wasm-64@1.0`` behind ``wasi@1.0`` and ``json-iface@1.0`` in a two-pass
    ``stack@1.0``, with ``patch@1.0`` moving ``/results/outbox`` patches into the state
    (as a Lua process has them) — what ``POST /spawn`` takes; ``tags`` are added as is."""
    definition: dict[str, Any] = {
        "execution-device": "stack@1.0",
        "device-stack": ["wasi@1.0", "json-iface@1.0", "wasm-64@1.0", "patch@1.0", "multipass@1.0"],
        "passes": 2,
        "output-prefix": "wasm",
        "stack-keys": ["init", "compute", "snapshot", "normalize"],
        "image": image,
        "patch-from": "/results/outbox",
        "patch-to": "/",
    }
    if owner is not None:
        definition["owner"] = owner
    if tags:
        definition.update(tags)
    return definition


def process_id(definition: Mapping[str, Any]) -> str:
    """The ID of a process: its definition's (signed, when it carries commitments) ID."""
    if "commitments" in definition:
        from hbeam.commitment import signed_id

        return str(signed_id(definition))
    return str(_core.impl.id(definition))


def _with_verified_sender(message: Mapping[str, Any]) -> Any:
    """``message`` with ``from`` = its verified signer when it is signed (else as given)."""
    if not isinstance(message, Mapping) or "commitments" not in message:
        return message
    from hbeam.commitment import check

    signers = check(message)  # InvalidSignature when any commitment fails
    # a core Message (either backend) has merge and remove; any other Mapping is wrapped
    msg: Any = message if hasattr(message, "merge") else _core.impl.Message(message)
    if not signers:
        return msg.remove("from") if "from" in msg else msg
    return msg.merge({"from": signers[0]})


def _dedup_key(message: Mapping[str, Any]) -> str | None:
    ref = message.get("push-ref")
    if isinstance(ref, str):
        return "push-" + str(_core.impl.id(ref))
    if "commitments" in message:
        from hbeam.commitment import signed_id

        return str(signed_id(message))
    return None


def _check_devices(definition: Mapping[str, Any]) -> None:
    from hbeam import device

    names = [execution_device(definition)]
    if names[0].lower() == "stack@1.0":
        stack = definition.get("device-stack")
        if isinstance(stack, Mapping):
            names += [v for v in stack.values() if isinstance(v, str)]
        elif isinstance(stack, list):
            names += [v for v in stack if isinstance(v, str)]
        else:
            raise DeviceError(
                "an execution-device of stack@1.0 needs a 'device-stack' list",
                device="stack@1.0",
                key="device-stack",
            )
    for name in names:
        device.load(name)


def _is_id(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 43
        and all(c.isalnum() or c in "-_" for c in value)
        and value.isascii()
    )


_default: Node | None = None
_default_lock = threading.Lock()


def default_node() -> Node:
    """The node used when a process is resolved without one in ``opts`` (memory store)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Node("memory:")
        return _default
