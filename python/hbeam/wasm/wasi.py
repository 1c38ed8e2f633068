"""The deterministic host an aos-style module imports: WASI preview1 subset + emscripten ``env``.

Nothing here touches the real clock, filesystem, network or entropy, so the same
messages always give the same memory: ``clock_time_get`` returns a constant,
``random_get`` fills with a fixed keyed stream, stdout/stderr are collected in memory,
stdin reads from a fixed buffer, there are no preopened directories, and
``proc_exit`` / ``abort`` end the call with a :class:`~hbeam.errors.WasmError`.
Pointers and ``size_t`` are 64-bit when the module's memory is (emscripten's
MEMORY64 ABI, as HyperBEAM's wasi@1.0 reads 16-byte iovecs), else 32-bit.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wasmtime

from hbeam.errors import WasmError

if TYPE_CHECKING:
    from hbeam.wasm.engine import HostFunc, WasmInstance

__all__ = ["CLOCK_TIME", "WASI_MODULE", "WasiHost"]

WASI_MODULE = "wasi_snapshot_preview1"
#: What ``clock_time_get`` reports (nanoseconds), as HyperBEAM's wasi@1.0 does.
CLOCK_TIME = 1

# WASI errno values used below.
_ESUCCESS = 0
_EBADF = 8
_EINVAL = 28
_ENOENT = 44
_ENOSYS = 52
_ESPIPE = 70

_Fn = Callable[..., Any]


class WasiHost:
    """The host functions of one instance and what they collected.

    Args:
        stdin: bytes ``fd_read`` on fd 0 returns.
        seed: key of the deterministic ``random_get`` stream.
        env_overrides: extra ``(module, name) -> fn(instance, *args)`` host functions
            that win over the built-in ones.
    """

    def __init__(
        self,
        *,
        stdin: bytes = b"",
        seed: bytes = b"hbeam-wasi",
        env_overrides: dict[tuple[str, str], HostFunc] | None = None,
    ) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._stdin = stdin
        self._stdin_pos = 0
        self._seed = seed
        self._overrides = dict(env_overrides or {})
        self._table: dict[tuple[str, str], _Fn] = {}
        for name in dir(self):
            if name.startswith("wasi_"):
                self._table[(WASI_MODULE, name[5:])] = getattr(self, name)
            elif name.startswith("env_"):
                self._table[("env", name[4:])] = getattr(self, name)

    def resolve(self, module: str, name: str, ty: Any) -> HostFunc | None:
        """The host function for an import, or None (then the engine stubs it)."""
        fn = self._overrides.get((module, name)) or self._table.get((module, name))
        if fn is None and module == "env" and name.startswith("invoke_"):
            return self.env_invoke
        return fn

    def take_stdout(self) -> bytes:
        """Everything written to stdout since the last call, clearing it."""
        out = bytes(self.stdout)
        self.stdout.clear()
        return out

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def _ptr_size(inst: WasmInstance) -> int:
        return 8 if inst.memory.type(inst.store).is_64 else 4

    def _put_size(self, inst: WasmInstance, ptr: int, value: int) -> None:
        fmt = "<Q" if self._ptr_size(inst) == 8 else "<I"
        inst.write(ptr, struct.pack(fmt, value))

    def _iovecs(self, inst: WasmInstance, iovs: int, count: int) -> list[tuple[int, int]]:
        width = self._ptr_size(inst)
        fmt = "<QQ" if width == 8 else "<II"
        raw = inst.read(iovs, count * 2 * width)
        return [struct.unpack_from(fmt, raw, i * 2 * width) for i in range(count)]

    # -- WASI preview1 -------------------------------------------------------

    def wasi_fd_write(self, inst: WasmInstance, fd: int, iovs: int, count: int, out: int) -> int:
        """Collect writes to stdout (1) and stderr (2)."""
        if fd not in (1, 2):
            return _EBADF
        total = 0
        sink = self.stdout if fd == 1 else self.stderr
        for ptr, length in self._iovecs(inst, iovs, count):
            sink += inst.read(ptr, length)
            total += length
        self._put_size(inst, out, total)
        return _ESUCCESS

    def wasi_fd_read(self, inst: WasmInstance, fd: int, iovs: int, count: int, out: int) -> int:
        """Read from the fixed stdin buffer (fd 0)."""
        if fd != 0:
            return _EBADF
        total = 0
        for ptr, length in self._iovecs(inst, iovs, count):
            chunk = self._stdin[self._stdin_pos : self._stdin_pos + length]
            inst.write(ptr, chunk)
            self._stdin_pos += len(chunk)
            total += len(chunk)
            if len(chunk) < length:
                break
        self._put_size(inst, out, total)
        return _ESUCCESS

    def wasi_fd_close(self, inst: WasmInstance, fd: int) -> int:
        """Closing is a no-op."""
        return _ESUCCESS

    def wasi_fd_seek(self, inst: WasmInstance, fd: int, offset: int, whence: int, out: int) -> int:
        """The standard streams are not seekable."""
        return _ESPIPE

    def wasi_fd_fdstat_get(self, inst: WasmInstance, fd: int, out: int) -> int:
        """Report fds 0-2 as character devices."""
        if fd not in (0, 1, 2):
            return _EBADF
        # fdstat: filetype u8 (2 = character device), flags u16, two u64 rights
        inst.write(out, struct.pack("<BxHxxxxQQ", 2, 0, 0, 0))
        return _ESUCCESS

    def wasi_fd_prestat_get(self, inst: WasmInstance, fd: int, out: int) -> int:
        """No preopened directories."""
        return _EBADF

    def wasi_fd_prestat_dir_name(self, inst: WasmInstance, fd: int, path: int, n: int) -> int:
        """No preopened directories."""
        return _EBADF

    def wasi_path_open(self, inst: WasmInstance, *args: int) -> int:
        """No filesystem."""
        return _ENOENT

    def wasi_clock_time_get(self, inst: WasmInstance, clock: int, precision: int, out: int) -> int:
        """A constant time: deterministic execution has no clock."""
        inst.write(out, struct.pack("<Q", CLOCK_TIME))
        return _ESUCCESS

    def wasi_clock_res_get(self, inst: WasmInstance, clock: int, out: int) -> int:
        """A resolution of 1 ns."""
        inst.write(out, struct.pack("<Q", 1))
        return _ESUCCESS

    def wasi_random_get(self, inst: WasmInstance, buf: int, length: int) -> int:
        """Fill ``buf`` from a stream keyed by the seed and the length (same every call)."""
        if length < 0:
            return _EINVAL
        out = bytearray()
        counter = 0
        while len(out) < length:
            out += hashlib.sha256(self._seed + struct.pack("<QQ", length, counter)).digest()
            counter += 1
        inst.write(buf, bytes(out[:length]))
        return _ESUCCESS

    def wasi_environ_sizes_get(self, inst: WasmInstance, count: int, size: int) -> int:
        """No environment."""
        self._put_size(inst, count, 0)
        self._put_size(inst, size, 0)
        return _ESUCCESS

    def wasi_environ_get(self, inst: WasmInstance, environ: int, buf: int) -> int:
        """No environment."""
        return _ESUCCESS

    def wasi_args_sizes_get(self, inst: WasmInstance, count: int, size: int) -> int:
        """No arguments."""
        self._put_size(inst, count, 0)
        self._put_size(inst, size, 0)
        return _ESUCCESS

    def wasi_args_get(self, inst: WasmInstance, argv: int, buf: int) -> int:
        """No arguments."""
        return _ESUCCESS

    def wasi_sched_yield(self, inst: WasmInstance) -> int:
        """Nothing to yield to."""
        return _ESUCCESS

    def wasi_poll_oneoff(self, inst: WasmInstance, *args: int) -> int:
        """No event sources."""
        return _ENOSYS

    def wasi_proc_exit(self, inst: WasmInstance, code: int) -> None:
        """End the call with an error carrying the exit code."""
        raise WasmError(f"module {inst.module_id} called proc_exit({code})", exit_code=code)

    # -- emscripten `env` ----------------------------------------------------

    def env_emscripten_resize_heap(self, inst: WasmInstance, requested: int) -> int:
        """Grow memory to ``requested`` bytes within the instance's limit: 1 ok, 0 refused."""
        current = inst.memory_size()
        if requested <= current:
            return 1
        pages = -(-(requested - current) // 65536)
        try:
            inst.memory.grow(inst.store, pages)
        except wasmtime.WasmtimeError:  # refused past the store's memory limit
            return 0
        return 1

    def env_emscripten_memcpy_big(self, inst: WasmInstance, dest: int, src: int, n: int) -> int:
        """memcpy for large blocks (older emscripten)."""
        inst.write(dest, inst.read(src, n))
        return dest

    def env_emscripten_memcpy_js(self, inst: WasmInstance, dest: int, src: int, n: int) -> None:
        """memcpy for large blocks (newer emscripten)."""
        inst.write(dest, inst.read(src, n))

    def env_emscripten_notify_memory_growth(self, inst: WasmInstance, index: int) -> None:
        """Nothing caches the memory buffer here."""

    def env_emscripten_date_now(self, inst: WasmInstance) -> float:
        """A constant time in ms (deterministic)."""
        return float(CLOCK_TIME)

    def env_emscripten_get_now(self, inst: WasmInstance) -> float:
        """A constant monotonic time in ms (deterministic)."""
        return float(CLOCK_TIME)

    def env__emscripten_get_now(self, inst: WasmInstance) -> float:
        """A constant monotonic time in ms (deterministic)."""
        return float(CLOCK_TIME)

    def env__tzset_js(self, inst: WasmInstance, *args: int) -> None:
        """UTC, no daylight saving: leave the zeroed outputs."""

    def env__localtime_js(self, inst: WasmInstance, *args: int) -> None:
        """Leave the ``struct tm`` as the caller zeroed it (the epoch)."""

    def env__gmtime_js(self, inst: WasmInstance, *args: int) -> None:
        """Leave the ``struct tm`` as the caller zeroed it (the epoch)."""

    def env__abort_js(self, inst: WasmInstance) -> None:
        """abort(): end the call."""
        raise WasmError(f"module {inst.module_id} called abort()")

    def env_abort(self, inst: WasmInstance, *args: int) -> None:
        """abort(): end the call."""
        raise WasmError(f"module {inst.module_id} called abort()")

    def env___assert_fail(
        self, inst: WasmInstance, cond: int, file: int, line: int, fn: int
    ) -> None:
        """A failed C assert: end the call with its text."""

        def text(ptr: int) -> str:
            try:
                return inst.read_cstring(ptr, max_len=4096).decode("utf-8", "replace")
            except WasmError:
                return "?"

        raise WasmError(
            f"module {inst.module_id}: assertion failed: {text(cond)} "
            f"({text(file)}:{line}, {text(fn)})"
        )

    def env__emscripten_throw_longjmp(self, inst: WasmInstance) -> None:
        """JS-based longjmp is not available: end the call."""
        raise WasmError(f"module {inst.module_id}: longjmp via the host is not supported")

    def env_invoke(self, inst: WasmInstance, index: int, *args: Any) -> Any:
        """``invoke_*``: call the function at ``index`` of the indirect function table."""
        table = inst.function_table()
        fn = table.get(inst.store, index)
        if fn is None:
            raise WasmError(f"module {inst.module_id}: invoke of null table entry {index}")
        return fn(inst.store, *args)
