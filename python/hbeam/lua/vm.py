"""A sandboxed Lua 5.3 VM (real Lua through lupa) with per-call and per-VM limits.

:class:`LuaVM` owns one ``lupa.lua53.LuaRuntime``. The sandbox is always on: no ``io``,
no process-touching ``os`` functions (``os.time``/``os.clock``/``os.date`` are
deterministic replacements driven by the host's clock), no ``debug``, no ``package``,
``require`` serves only modules registered with the VM, ``load`` accepts text chunks
only, ``dofile``/``loadfile``/``string.dump`` are gone, ``collectgarbage`` allows only
``collect``/``count``/``step``/``isrunning``, ``__gc`` metamethods are refused (finalisers
run with hooks off), and ``math.random`` is a deterministic generator the host seeds.

Limits:

* an instruction budget per call (a count hook installed from the trusted side on the
  running thread and on every coroutine; user ``pcall``/``xpcall``/``coroutine.resume``
  re-raise it), default 50 M;
* a memory cap per VM (lupa's allocator), default 256 MiB. ``string.rep`` asking for more
  than the cap fails at once as a memory error instead of Lua's "too large" error.

Exceeding either raises :class:`~hbeam.errors.LimitExceeded` (``details["limit"]`` is
``"instructions"`` or ``"memory"``); a Lua runtime error raises
:class:`~hbeam.errors.LuaError` carrying the Lua message (``details["lua_message"]``) and
traceback (``details["traceback"]``); a value that cannot cross (a function, nesting past
200 levels) raises :class:`~hbeam.errors.InvalidMessage`. After any of them the VM REMAINS
USABLE: Lua unwinds cleanly (memory is collected after a memory error). Globals keep
whatever the failed call changed before it stopped; a caller that needs all-or-nothing
semantics (an aos process) rebuilds its VM, see :mod:`hbeam.lua.aos`.

Memory errors cannot abort the process: lupa pushes arguments outside Lua's protected
mode, so every call first checks that its arguments fit below the cap with 1 MiB to spare.

Known limit of the instruction hook: a single C library call is not interrupted, so a Lua
pattern with heavy backtracking over a long subject (``string.find``/``match``/``gsub``)
runs to completion however long it takes.

Lupa 5.3 seeds string hashing per VM, so ``pairs`` order differs between VMs; results are
converted into order-free dicts, but Lua code that acts on ``pairs`` order is not
replay-deterministic.

Thread-safety: a VM is used by one thread at a time; a lock inside serialises callers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import lupa.lua53 as lupa

from hbeam import _core
from hbeam.errors import DeviceError, InvalidMessage, LimitExceeded, LuaError
from hbeam.lua.convert import MAX_DEPTH, decode_values, encode_map, encode_values

__all__ = [
    "DEFAULT_MAX_INSTRUCTIONS",
    "DEFAULT_MAX_MEMORY",
    "DEVICE",
    "LuaVM",
]

DEVICE = "lua@5.3a"
DEFAULT_MAX_INSTRUCTIONS = 50_000_000
DEFAULT_MAX_MEMORY = 256 * 1024 * 1024

HOOK_STEP = 10_000  # instructions between two hook calls (the budget's granularity)
CHUNK = 100_000  # values per lupa call in either direction (Lua's C stack holds ~1 M)
RELEASE_ABOVE = 65_536  # results longer than this many values free Lua's codec buffer
HEADROOM = 1024 * 1024  # free memory kept for the host's own pushes (OOM there aborts)


def _lua_source(name: str) -> str:
    return resources.files("hbeam.lua").joinpath(name).read_text(encoding="utf-8")


_SOURCES: dict[str, str] = {}


def _source(name: str) -> str:
    text = _SOURCES.get(name)
    if text is None:
        text = _SOURCES[name] = _lua_source(name)
    return text


def _no_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError(f"Python attribute access is not available in the hbeam sandbox: {name}")


def _payload_bound(flat: Sequence[Any]) -> int:
    """An upper bound of the bytes Lua allocates for the strings in ``flat``.

    (A str takes at most 4 UTF-8 bytes per character; the core counts them natively.)
    """
    bound: int = _core.impl.lua_payload_bound(flat)
    return bound


def _payload_bytes(flat: Sequence[Any]) -> int:
    """Exact bytes Lua allocates for the strings in ``flat``."""
    total = 0
    for x in flat:
        if type(x) is str:
            total += len(x.encode("utf-8", "surrogatepass"))
        elif type(x) is bytes:
            total += len(x)
    return total


def _clean_traceback(tb: str) -> str:
    lines = [
        line
        for line in tb.splitlines()
        if "hbeam/sandbox" not in line
        and "raw_xpcall" not in line
        and "(...tail calls...)" not in line
    ]
    return "\n".join(line.strip() for line in lines)


class LuaVM:
    """One sandboxed Lua 5.3 state with an instruction budget per call and a memory cap.

    Args:
        max_instructions: Lua VM instructions one call may execute (granularity 10,000).
        max_memory: bytes the Lua state may hold in total.
        modules: Lua modules ``require`` may load: name → source text.
        name: a label for error messages.
    """

    def __init__(
        self,
        *,
        max_instructions: int = DEFAULT_MAX_INSTRUCTIONS,
        max_memory: int = DEFAULT_MAX_MEMORY,
        modules: Mapping[str, str | bytes] | None = None,
        name: str = "lua",
    ) -> None:
        if max_instructions <= 0 or max_memory <= HEADROOM:
            raise DeviceError(
                f"LuaVM limits must be positive (max_memory above {HEADROOM} bytes): "
                f"max_instructions={max_instructions}, max_memory={max_memory}",
                device=DEVICE,
                key="limits",
            )
        self.name = name
        self.max_instructions = int(max_instructions)
        self.max_memory = int(max_memory)
        self._lock = threading.RLock()
        self._closed = False
        try:
            self._rt = lupa.LuaRuntime(
                encoding="utf-8",
                register_eval=False,
                register_builtins=False,
                unpack_returned_tuples=True,
                attribute_filter=_no_attributes,
                overflow_handler=float,
                max_memory=self.max_memory,
            )
            codec = self._rt.execute(
                _source("convert.lua"), MAX_DEPTH, name="=hbeam/convert", mode="t"
            )
            host = self._rt.execute(
                _source("sandbox.lua"),
                HOOK_STEP,
                MAX_DEPTH,
                CHUNK,
                codec,
                name="=hbeam/sandbox",
                mode="t",
            )
        except lupa.LuaError as exc:  # only a broken installation gets here
            raise LuaError(f"cannot start the Lua sandbox: {exc}", device=DEVICE) from exc
        self._run_fn = host["run"]
        self._run_raw_fn = host["run_raw"]
        self._run_flat_fn = host["run_flat"]
        self._run_batch_fn = host["run_batch"]
        self._call_fn = host["call"]
        self._exec_fn = host["exec"]
        self._fetch_fn = host["fetch"]
        self._refetch_fn = host["refetch_safe"]
        self._stage_fn = host["stage"]
        self._release_fn = host["release"]
        self._register_fn = host["register_module"]
        self._output_fn = host["take_output"]
        self._clock_fn = host["set_clock"]
        host["configure"](self.max_instructions, self.max_memory)
        for module_name, source in (modules or {}).items():
            self.register_module(module_name, source)

    # ------------------------------------------------------------------ public API

    @property
    def memory_used(self) -> int:
        """Bytes the Lua state holds now (beyond lupa's own baseline); 0 once closed."""
        if self._closed:
            return 0
        used: int = self._rt.get_memory_used() or 0
        return used

    def register_module(self, name: str, source: str | bytes) -> None:
        """Make ``require(name)`` load ``source`` (text only) in this VM."""
        with self._lock:
            self._check_open()
            self._register_fn(name, source)

    def execute(self, source: str | bytes, *args: Any, name: str = "chunk") -> list[Any]:
        """Run the text chunk ``source`` in the global environment; its converted results.

        ``args`` are passed to the chunk as ``...``.

        Raises:
            LuaError: a syntax or runtime error (message and traceback attached).
            LimitExceeded: the instruction budget or the memory cap was exceeded.
            InvalidMessage: an argument or result cannot be converted.
        """
        with self._lock:
            self._check_open()
            return self._invoke(self._exec_fn, (source, name, "encode"), args, f"chunk '{name}'")

    def load(self, source: str | bytes, *, name: str = "chunk") -> None:
        """Run the text chunk ``source`` in the global environment, ignoring its results.

        How a module is loaded: whatever it returns (a table of functions, say) stays in Lua.

        Raises:
            LuaError: a syntax or runtime error (message and traceback attached).
            LimitExceeded: the instruction budget or the memory cap was exceeded.
        """
        with self._lock:
            self._check_open()
            self._invoke(self._exec_fn, (source, name, "discard"), (), f"module '{name}'")

    def call(self, function: str, *args: Any) -> Any:
        """Call the global Lua function ``function`` with converted ``args``.

        Returns None for no result, the value for one, a tuple for several.

        Raises:
            LuaError: the function is not defined or raised an error.
            LimitExceeded: the instruction budget or the memory cap was exceeded.
            InvalidMessage: an argument or result cannot be converted.
        """
        results = self.call_all(function, *args)
        if not results:
            return None
        if len(results) == 1:
            return results[0]
        return tuple(results)

    def call_all(self, function: str, *args: Any) -> list[Any]:
        """Like :meth:`call`, but always the list of all results."""
        with self._lock:
            self._check_open()
            return self._invoke(self._call_fn, (function,), args, f"function '{function}'")

    def set_clock(self, timestamp_ms: int, seed: str | None = None) -> None:
        """Set what ``os.time()`` returns (milliseconds) and seed ``math.random`` from ``seed``."""
        with self._lock:
            self._check_open()
            self._clock_fn(int(timestamp_ms), seed)

    def take_output(self) -> str:
        """Text printed (``print``) since the last call of this method, lines joined by newline."""
        with self._lock:
            self._check_open()
            text: str = self._output_fn()
            return text

    def collect(self) -> None:
        """Run a full garbage collection."""
        with self._lock:
            self._check_open()
            self._rt.gccollect()

    def close(self) -> None:
        """Drop the Lua state; later calls raise :class:`LuaError`."""
        with self._lock:
            self._closed = True
            for attr in list(vars(self)):
                if attr.endswith("_fn"):
                    setattr(self, attr, None)
            self._rt = None

    def __enter__(self) -> LuaVM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ runtime plumbing

    def exec_trusted(self, source: str, name: str, *args: Any) -> tuple[Any, ...]:
        """Run a trusted runtime chunk (e.g. aos.lua); its raw Lua results.

        The chunk receives the runtime API table (clock, seeding, sticky pcall) as its
        first argument, then ``args``; it runs under the same limits as user code.
        """
        with self._lock:
            self._check_open()
            raw = self._invoke(self._exec_fn, (source, name, "trusted"), args, f"runtime '{name}'")
            return tuple(raw)

    def invoke(self, function: Any, *args: Any, what: str = "call") -> list[Any]:
        """Call a Lua function value held by the host; the list of converted results."""
        with self._lock:
            self._check_open()
            return self._invoke(self._run_fn, (function,), args, what)

    def invoke_flat(
        self, function: Any, fallback: Any, *args: Any, what: str = "call"
    ) -> list[Any]:
        """Call a trusted Lua function value as ``function(nflat, ...)`` with the flat wire
        values of ``args`` undecoded (it decodes them itself); the converted results.

        Arguments too long for one call go to ``fallback(*args)`` (decoded) instead.
        """
        flat = encode_map(args[0]) if len(args) == 1 else encode_values(args)
        return self.call_flat(function, fallback, flat, len(args), what)

    def call_flat(
        self, function: Any, fallback: Any, flat: list[Any], nargs: int, what: str
    ) -> list[Any]:
        """:meth:`invoke_flat` for arguments already in wire form (the message hot path)."""
        with self._lock:
            if self._closed:
                self._check_open()
            n = len(flat)
            if n > CHUNK:
                return self._call(self._run_fn, (fallback, nargs), flat, what)
            used = self._rt.get_memory_used() or 0
            if used + HEADROOM + _payload_bound(flat) > self.max_memory:
                self._ensure_room(flat, (), what)
            try:
                res = self._run_flat_fn(function, n, *flat)
                if res[0] is True and 0 <= res[1] <= CHUNK:
                    return decode_values(res, 2)
                return self._results(res, what)
            except UnicodeDecodeError:
                return self._results(self._refetch_fn(), what)
            except lupa.LuaMemoryError as exc:
                self._rt.gccollect()
                raise self._memory_error(what) from exc
            except lupa.LuaError as exc:
                raise LuaError(f"{what}: Lua failed: {exc}", device=DEVICE, key=what) from exc

    def call_batch(
        self, function: Any, flats: Sequence[list[Any]], what: str
    ) -> tuple[list[list[Any] | Exception], Exception | None] | None:
        """Call a trusted Lua function value once per argument list of ``flats`` (each the
        flat wire values of one argument, as :meth:`call_flat` passes them), each call
        with the whole instruction budget, in ONE crossing into Lua.

        Returns ``(outcomes, stop)``: per call made, its converted results or the
        :class:`InvalidMessage` its results raised on conversion; ``stop`` is the error of
        the call that ended the batch early (a limit, a Lua error), which has no outcome,
        or None when every call was made. The caller keeps ``flats`` short enough
        (``sum(len) + len(flats) <= CHUNK``).

        None when the arguments do not fit below the memory cap together (nothing ran:
        the caller makes the calls one by one instead).

        Raises:
            LuaError: the batch as a whole failed in the host (nothing is known to have
                run or not: the caller must rebuild the VM).
        """
        with self._lock:
            self._check_open()
            flat: list[Any] = [len(f) for f in flats]
            for f in flats:
                flat.extend(f)
            if len(flat) > CHUNK:
                raise InvalidMessage(
                    f"{what}: a batch of {len(flats)} calls holds {len(flat)} values; "
                    f"at most {CHUNK} cross at once"
                )
            try:
                self._ensure_room(flat, (), what)
            except LimitExceeded:
                return None
            try:
                res = self._run_batch_fn(function, len(flats), len(flat), *flat)
                values = self._results(res, what)
            except lupa.LuaMemoryError as exc:
                self._rt.gccollect()
                raise LuaError(
                    f"{what}: the batch ran out of memory outside Lua's protected mode",
                    device=DEVICE,
                    key=what,
                ) from exc
            except (lupa.LuaError, UnicodeDecodeError) as exc:
                raise LuaError(f"{what}: Lua failed: {exc}", device=DEVICE, key=what) from exc
        outcomes: list[list[Any] | Exception] = []
        i, end = 0, len(values)
        while i < end:
            head = values[i]
            if head == "stop":
                kind, message, tb = values[i + 1 : i + 4]
                return outcomes, self._failure((False, kind, message, tb), what)
            if head == -1:
                outcomes.append(self._failure((False, "convert", values[i + 1], ""), what))
                i += 2
                continue
            outcomes.append(values[i + 1 : i + 1 + head])
            i += 1 + head
        return outcomes, None

    def invoke_raw(self, function: Any, *args: Any, what: str = "call") -> tuple[Any, ...]:
        """Call a Lua function value held by the host; its raw Lua results."""
        with self._lock:
            self._check_open()
            return tuple(self._invoke(self._run_raw_fn, (function,), args, what))

    def _check_open(self) -> None:
        if self._closed:
            raise LuaError(f"Lua VM '{self.name}' is closed", device=DEVICE)

    def _ensure_room(self, flat: Sequence[Any], prefix: tuple[Any, ...], what: str) -> None:
        """Refuse a call whose arguments would not fit below the memory cap.

        lupa pushes arguments outside Lua's protected mode, where an allocation failure
        aborts the process; so the room is checked here, with HEADROOM to spare.
        """
        used = self._rt.get_memory_used() or 0
        room = self.max_memory - HEADROOM - used
        if _payload_bound(flat) + _payload_bound(prefix) <= room:
            return
        need = _payload_bytes(flat) + _payload_bytes(prefix)
        if need <= room:
            return
        self._rt.gccollect()
        used = self._rt.get_memory_used() or 0
        if used + need + HEADROOM > self.max_memory:
            raise LimitExceeded(
                f"{what}: Lua memory limit of {self.max_memory} bytes reached "
                f"({used} in use, {need} more needed for the arguments)",
                device=DEVICE,
                key=what,
                limit="memory",
                max_memory=self.max_memory,
            )

    def _invoke(
        self, entry: Any, prefix: tuple[Any, ...], args: Sequence[Any], what: str
    ) -> list[Any]:
        return self._call(entry, (*prefix, len(args)), encode_values(args), what)

    def _call(self, entry: Any, prefix: tuple[Any, ...], flat: list[Any], what: str) -> list[Any]:
        self._ensure_room(flat, prefix, what)
        try:
            if len(flat) <= CHUNK:
                res = entry(*prefix, len(flat), *flat)
            else:
                for offset in range(0, len(flat), CHUNK):
                    piece = flat[offset : offset + CHUNK]
                    self._stage_fn(offset, len(piece), *piece)
                res = entry(*prefix, -1)
            return self._results(res, what)
        except UnicodeDecodeError:
            return self._results(self._refetch_fn(), what)
        except lupa.LuaMemoryError as exc:
            self._rt.gccollect()
            raise self._memory_error(what) from exc
        except lupa.LuaError as exc:
            raise LuaError(f"{what}: Lua failed: {exc}", device=DEVICE, key=what) from exc

    def _results(self, res: Any, what: str) -> list[Any]:
        if res[0] is not True:
            raise self._failure(res, what)
        n = res[1]
        if n == -1:
            return list(res[2:])
        if n <= CHUNK:
            values: Sequence[Any] = res
        else:
            parts: list[Any] = list(res)
            for i in range(CHUNK + 1, n + 1, CHUNK):
                piece = self._fetch_fn(i, min(i + CHUNK - 1, n))
                parts.extend(piece if isinstance(piece, tuple) else (piece,))
            values = parts
        try:
            return decode_values(values, 2)
        finally:
            # small results stay in Lua's reused buffer (no extra round trip to free them)
            if n > RELEASE_ABOVE:
                self._release_fn()

    def _memory_error(self, what: str) -> LimitExceeded:
        return LimitExceeded(
            f"{what}: Lua memory limit of {self.max_memory} bytes exceeded",
            device=DEVICE,
            key=what,
            limit="memory",
            max_memory=self.max_memory,
        )

    def _failure(self, res: Any, what: str) -> Exception:
        kind, message, tb = res[1], res[2], res[3] if len(res) > 3 else ""
        if kind == "instructions":
            return LimitExceeded(
                f"{what}: Lua instruction limit of {self.max_instructions} exceeded",
                device=DEVICE,
                key=what,
                limit="instructions",
                max_instructions=self.max_instructions,
            )
        if kind == "memory":
            self._rt.gccollect()
            return self._memory_error(what)
        if kind == "convert":
            text = str(message).removeprefix("\0hbeam-convert:")
            return InvalidMessage(f"{what}: cannot convert the Lua result: {text}")
        if kind == "syntax":
            return LuaError(
                f"{what}: Lua syntax error: {message}",
                device=DEVICE,
                key=what,
                lua_message=message,
            )
        return LuaError(
            f"{what}: {message}",
            device=DEVICE,
            key=what,
            lua_message=message,
            traceback=_clean_traceback(tb or ""),
        )
