"""An aos-style Lua process on a :class:`~hbeam.lua.vm.LuaVM` (execution-http.md §4.7-4.10).

:class:`AosProcess` boots the bundled aos runtime (``aos.lua``: Handlers, Send, Spawn,
Inbox, Eval...) for one process definition, loads the process's modules into it, and
then handles AO messages one at a time::

    proc = AosProcess()
    boot = proc.boot({"id": pid, "owner": alice}, [("token.lua", TOKEN_SOURCE)])
    result = proc.handle({"id": mid, "from": alice, "owner": alice,
                          "action": "Transfer", "recipient": bob, "quantity": "10"})
    result["outbox"]   # AO messages: lower-case keys, nested tables kept as dicts

A message is an AO message as the scheduler delivers it (lower-case keys: ``id``,
``from`` (the verified sender), ``owner`` (its signer), ``target``, ``data``,
``timestamp``, ``block-height``, and any tags). Handlers see it classic-style:
``msg.Action``, ``msg.From``... (each key Title-Cased), ``msg.Tags`` (every key but the
envelope ones: Id, From, Owner, Target, Anchor, Data, Timestamp, Block-Height, Signature,
Commitments, Slot, Epoch, Nonce, Hash-Chain, Path, Module), ``msg.reply(t)``. A message is
handled only if trusted: ``from == owner``, or ``from``/``owner`` is one of the process's
authorities. ``os.time()`` is its ``timestamp`` (milliseconds, as aos) and ``math.random``
is seeded from its ``id`` and ``timestamp``, so replaying the same messages rebuilds the
same state (Lua code that acts on ``pairs`` order excepted: lupa seeds string hashing per VM).

The result of :meth:`AosProcess.handle` is ``{"outbox": [AO messages], "output": {"data":
text, "print": bool}, "spawns": [...], "error": str | None}`` (plus ``"assignments"`` when
``Assign`` was used). Outbox messages have their fields and tags as lower-case keys,
nested tables as dicts, and a ``reference`` (except ``device: patch@1.0`` messages, which
are state updates rather than messages).

Errors: a handler error is part of the result (``"error"``; state changes the handler made
before failing stay, as in aos; no messages are sent). A message that exceeds the
instruction budget or the memory cap also gives an error result, but its partial effects
are not kept: the process is marked :attr:`~AosProcess.broken` and rebuilt before its next
use by booting a fresh VM and replaying ``history()`` (the messages handled successfully so
far, supplied by the owner of the schedule). Without ``history`` a broken process raises
:class:`~hbeam.errors.LuaError` until it is booted again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hbeam.errors import InvalidMessage, LimitExceeded, LuaError
from hbeam.lua.convert import encode_map, encode_values
from hbeam.lua.vm import (
    DEFAULT_MAX_INSTRUCTIONS,
    DEFAULT_MAX_MEMORY,
    DEVICE,
    LuaVM,
    _source,
)

__all__ = ["AOS_SOURCE", "JSON_SOURCE", "TOKEN_SOURCE", "AosProcess", "parse_authorities"]

History = Callable[[], Iterable[tuple[Mapping[str, Any], Mapping[str, Any] | None]]]

AOS_SOURCE: str = _source("aos.lua")
"""The aos-compatible runtime (package data ``aos.lua``)."""
TOKEN_SOURCE: str = _source("token.lua")
"""The token blueprint (package data ``token.lua``)."""
JSON_SOURCE: str = _source("json.lua")
"""The ``json`` module aos code can ``require``."""

_EMPTY_OUTPUT = {"data": "", "print": False}
BATCH_VALUES = 60_000
"""Wire values (message contents plus one per message) one :meth:`AosProcess.handle_many`
crossing carries at most (below the VM's per-call maximum, ``CHUNK``)."""


def parse_authorities(value: Any) -> list[str]:
    """Authority addresses from a process's ``authority`` value.

    A list of addresses, or one string of addresses separated by commas, each possibly
    quoted (``'"addr1","addr2"'``).
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for item in value:
            out.extend(parse_authorities(item))
        return out
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return []
    return [part.strip().strip("\"'").strip() for part in value.split(",") if part.strip()]


def _tag_values(process: Mapping[str, Any], name: str) -> list[Any]:
    tags = process.get("tags") or process.get("Tags")
    found: list[Any] = []
    if isinstance(tags, (list, tuple)):
        for tag in tags:
            if isinstance(tag, Mapping) and str(tag.get("name", "")).lower() == name:
                found.append(tag.get("value"))
    elif isinstance(tags, Mapping):
        for key, value in tags.items():
            if str(key).lower() == name:
                found.append(value)
    return found


def _error_result(error: str) -> dict[str, Any]:
    return {"outbox": [], "output": dict(_EMPTY_OUTPUT), "spawns": [], "error": error}


def _result(values: Sequence[Any]) -> dict[str, Any]:
    """The result dict from aos.lua's (messages, spawns, output, error, assignments).

    aos.lua leaves trailing nils out, so ``values`` may be shorter.
    """
    n = len(values)
    messages = values[0] if n > 0 else None
    spawns = values[1] if n > 1 else None
    output = values[2] if n > 2 else None
    error = values[3] if n > 3 else None
    result = {
        "outbox": messages if messages is not None else [],
        "output": {"data": output, "print": True} if output is not None else dict(_EMPTY_OUTPUT),
        "spawns": spawns if spawns is not None else [],
        "error": error,
    }
    if n > 4 and values[4] is not None:
        result["assignments"] = values[4]
    return result


class AosProcess:
    """One aos process: a sandboxed Lua VM running the aos runtime and the process's modules.

    Args:
        max_instructions: instruction budget per message (and per module load).
        max_memory: memory cap of the VM, in bytes.
        history: called (lazily) to rebuild the VM after a message exceeded a limit; returns
            the ``(message, env)`` pairs handled successfully so far, in order.
        name: a label for error messages.
    """

    def __init__(
        self,
        *,
        max_instructions: int = DEFAULT_MAX_INSTRUCTIONS,
        max_memory: int = DEFAULT_MAX_MEMORY,
        history: History | None = None,
        name: str = "aos",
    ) -> None:
        self.max_instructions = max_instructions
        self.max_memory = max_memory
        self.name = name
        self._history = history
        self._lock = threading.RLock()
        self._vm: LuaVM | None = None
        self._entries: dict[str, Any] = {}
        self._handle_fn: Any = None
        self._handle_flat: Any = None
        self._process: Mapping[str, Any] | None = None
        self._modules: list[tuple[str, str | bytes]] = []
        self._last_env: Any = None
        self.broken = False
        """True after a message exceeded a limit, until the VM is rebuilt."""

    # ---------------------------------------------------------------- lifecycle

    @property
    def process_id(self) -> str:
        """The process ID (``ao.id``)."""
        return self._identity(self._require_process())[0]

    @property
    def vm(self) -> LuaVM:
        """The live VM (rebuilt first if the process is broken)."""
        with self._lock:
            self._ready()
            assert self._vm is not None
            return self._vm

    def boot(
        self, process: Mapping[str, Any], modules: Sequence[tuple[str, str | bytes]] = ()
    ) -> dict[str, Any]:
        """Start a fresh VM for ``process`` and load ``modules`` (name, Lua source) in order.

        ``process`` is the process definition message: ``id``, ``owner`` (or ``from``), an
        optional ``authority`` (list or comma-separated string), and its tags as keys (or a
        ``tags`` list of ``{name, value}``). Returns the combined result of loading the
        modules (the messages they sent, e.g. the token's initial cache patch).

        Raises:
            LuaError: aos.lua or a module failed to load (message names the module).
            LimitExceeded: loading exceeded a limit.
            InvalidMessage: the process definition has no ``id`` and no core to compute one.
        """
        with self._lock:
            self._process = process
            self._modules = [(name, source) for name, source in modules]
            return self._start()

    def close(self) -> None:
        """Drop the VM."""
        with self._lock:
            if self._vm is not None:
                self._vm.close()
            self._vm = None
            self._entries = {}

    # ---------------------------------------------------------------- messages

    def handle(
        self, msg: Mapping[str, Any], env: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Evaluate one AO message; ``{"outbox", "output", "spawns", "error"}``.

        ``env`` (optional) is merged into ``ao.env`` (Title-Case keys); it is converted
        only when a different object than last time is passed.
        """
        with self._lock:
            if self._vm is None or self.broken:
                self._ready()
            return self._handle(msg, env)

    def handle_many(self, msgs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`handle` for each of ``msgs`` in order, crossing into Lua once per batch
        of up to :data:`BATCH_VALUES` wire values; the results exactly as :meth:`handle`
        gives them.

        The list is shorter than ``msgs`` when a message failed in a way that ends a batch:
        its result is the last one, and when it hit a limit :attr:`broken` is set (as
        :meth:`handle` sets it), so the VM is rebuilt before the next message.
        """
        results: list[dict[str, Any]] = []
        with self._lock:
            if self._vm is None or self.broken:
                self._ready()
            batch: list[tuple[Mapping[str, Any], list[Any]]] = []
            size = 0
            for msg in msgs:
                try:
                    flat = encode_map(msg)
                except InvalidMessage as exc:
                    flat = None
                    error = str(exc)
                if flat is None or size + len(flat) + 1 > BATCH_VALUES:
                    if batch and not self._run_batch(batch, results):
                        return results
                    batch, size = [], 0
                if flat is None:
                    results.append(_error_result(error))
                elif len(flat) + 1 > BATCH_VALUES:
                    results.append(self._handle(msg, None))  # the ordinary path stages it
                    if self.broken:
                        return results
                else:
                    batch.append((msg, flat))
                    size += len(flat) + 1
            if batch:
                self._run_batch(batch, results)
        return results

    def _run_batch(
        self, batch: list[tuple[Mapping[str, Any], list[Any]]], results: list[dict[str, Any]]
    ) -> bool:
        """Run one batch, appending its results; False when it ended early."""
        vm = self._vm
        assert vm is not None
        try:
            done = vm.call_batch(self._handle_flat, [flat for _, flat in batch], "aos handle")
        except LuaError:
            self.broken = True  # the batch failed as a whole: the VM's state is unknown
            raise
        if done is None:  # too big to cross at once: one message at a time
            for msg, _ in batch:
                results.append(self._handle(msg, None))
                if self.broken:
                    return False
            return True
        outcomes, stop = done
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                results.append(_error_result(str(outcome)))
            else:
                results.append(_result(outcome))
        if stop is not None:
            if isinstance(stop, LimitExceeded):
                self.broken = True
            results.append(_error_result(str(stop)))
            return False
        return True

    def read(self, name: str) -> Any:
        """The converted value of the global ``name`` in the live VM (None if unset)."""
        with self._lock:
            self._ready()
            assert self._vm is not None
            values = self._vm.invoke(self._entries["peek"], name, what=f"read '{name}'")
            return values[0] if values else None

    def call(self, function: str, *args: Any) -> Any:
        """Call the global ``function`` read-only, in a fresh VM booted like this process.

        For dynamic functions such as seed 000's ``sum(base, req)``: the function sees the
        modules' definitions and the arguments, never this process's live state, and
        nothing it does is kept. Returns like :meth:`LuaVM.call`.
        """
        with self._lock:
            process = self._require_process()
            modules = list(self._modules)
        scratch = AosProcess(
            max_instructions=self.max_instructions,
            max_memory=self.max_memory,
            name=f"{self.name} (read-only)",
        )
        try:
            scratch.boot(process, modules)
            assert scratch._vm is not None
            return scratch._vm.call(function, *args)
        finally:
            scratch.close()

    # ---------------------------------------------------------------- internals

    def _require_process(self) -> Mapping[str, Any]:
        if self._process is None:
            raise LuaError(
                f"aos process '{self.name}' has not been booted", device=DEVICE, key="boot"
            )
        return self._process

    def _identity(self, process: Mapping[str, Any]) -> tuple[str, Any]:
        pid = process.get("id")
        if pid is None:
            try:
                from hbeam import _core

                pid = _core.impl.id(process)
            except Exception as exc:
                raise InvalidMessage(
                    "aos process definition has no 'id' and its ID cannot be computed"
                ) from exc
        owner = process.get("owner")
        if owner is None:
            owner = process.get("from")
        return str(pid), owner

    def _start(self) -> dict[str, Any]:
        process = self._require_process()
        if self._vm is not None:
            self._vm.close()
        self._vm = None
        self.broken = False
        self._last_env = None
        vm = LuaVM(
            max_instructions=self.max_instructions,
            max_memory=self.max_memory,
            modules={"json": JSON_SOURCE, ".json": JSON_SOURCE},
            name=self.name,
        )
        raw = vm.exec_trusted(AOS_SOURCE, "aos.lua")
        entries = raw[0]
        self._entries = {
            k: entries[k] for k in ("boot", "load", "handle", "handle_flat", "set_env", "peek")
        }
        self._handle_fn = self._entries["handle"]
        self._handle_flat = self._entries["handle_flat"]
        pid, owner = self._identity(process)
        authorities = parse_authorities(process.get("authority"))
        for value in _tag_values(process, "authority"):
            authorities.extend(parse_authorities(value))
        definition = {k: v for k, v in process.items() if not str(k).lower().startswith("priv")}
        vm.invoke(self._entries["boot"], definition, pid, owner, authorities, what="aos boot")
        outbox: list[Any] = []
        spawns: list[Any] = []
        prints: list[str] = []
        for name, source in self._modules:
            try:
                res = vm.invoke(self._entries["load"], source, name, what=f"module '{name}'")
            except (LuaError, LimitExceeded) as exc:
                vm.close()
                raise type(exc)(
                    f"aos process '{self.name}': loading module '{name}' failed: {exc}",
                    device=DEVICE,
                    key=f"module '{name}'",
                ) from exc
            r = _result(res)
            outbox.extend(r["outbox"])
            spawns.extend(r["spawns"])
            if r["output"].get("data"):
                prints.append(str(r["output"]["data"]))
        self._vm = vm
        text = "\n".join(prints)
        return {
            "outbox": outbox,
            "output": {"data": text, "print": bool(prints)},
            "spawns": spawns,
            "error": None,
        }

    def _ready(self) -> None:
        if self._vm is not None and not self.broken:
            return
        if self._vm is None and not self.broken:
            raise LuaError(
                f"aos process '{self.name}' has not been booted", device=DEVICE, key="handle"
            )
        if self._history is None:
            raise LuaError(
                f"aos process '{self.name}' exceeded a limit and must be rebuilt: "
                "boot it again and replay its messages (or pass history=)",
                device=DEVICE,
                key="handle",
            )
        self._start()
        for msg, env in self._history():
            self._handle(msg, env)
            if self.broken:
                raise LuaError(
                    f"aos process '{self.name}': replaying its history exceeded a limit",
                    device=DEVICE,
                    key="replay",
                )

    def _handle(self, msg: Mapping[str, Any], env: Mapping[str, Any] | None) -> dict[str, Any]:
        vm = self._vm
        assert vm is not None
        try:
            if env is None or env is self._last_env:
                flat, nargs = encode_map(msg), 1
            else:
                flat, nargs = encode_values((msg, env)), 2
                self._last_env = env
            raw = vm.call_flat(self._handle_flat, self._handle_fn, flat, nargs, "aos handle")
        except LimitExceeded as exc:
            self.broken = True
            return _error_result(str(exc))
        except (LuaError, InvalidMessage) as exc:
            return _error_result(str(exc))
        return _result(raw)
