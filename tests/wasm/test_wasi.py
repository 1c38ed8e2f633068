"""The deterministic WASI preview1 / emscripten host."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from hbeam.errors import WasmError
from hbeam.wasm import WasiHost, WasmEngine
from hbeam.wasm.wasi import CLOCK_TIME

Wat = Callable[[str], bytes]


def test_fd_write_collects_stdout(backend: ModuleType, engine: WasmEngine, wat: Wat) -> None:
    host = WasiHost()
    inst = engine.instantiate(wat("wasi"), imports=host.resolve, strict_imports=True)
    assert inst.call("hello") == [12]
    assert inst.call("hello") == [12]
    assert host.take_stdout() == b"hello, wasi\n" * 2
    assert host.take_stdout() == b""


def test_clock_and_random_are_deterministic(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    a = engine.instantiate(wat("wasi"), imports=WasiHost().resolve)
    b = engine.instantiate(wat("wasi"), imports=WasiHost().resolve)
    assert a.call("now") == b.call("now") == [CLOCK_TIME]
    r = a.call("rand")
    assert r == a.call("rand") == b.call("rand")
    assert r != [0]
    c = engine.instantiate(wat("wasi"), imports=WasiHost(seed=b"other").resolve)
    assert c.call("rand") != r


def test_proc_exit_ends_the_call(backend: ModuleType, engine: WasmEngine, wat: Wat) -> None:
    inst = engine.instantiate(wat("wasi"), imports=WasiHost().resolve, module_id="w")
    with pytest.raises(WasmError, match=r"proc_exit\(3\)") as info:
        inst.call("quit", 3)
    assert info.value.details["exit_code"] == 3
    assert inst.call("now") == [CLOCK_TIME]


def test_emscripten_env_subset(backend: ModuleType, engine: WasmEngine) -> None:
    src = b"""(module
      (import "env" "emscripten_resize_heap" (func $resize (param i64) (result i32)))
      (import "env" "emscripten_memcpy_js" (func $memcpy (param i64 i64 i64)))
      (import "env" "emscripten_date_now" (func $now (result f64)))
      (import "env" "__assert_fail" (func $assert (param i64 i64 i32 i64)))
      (import "env" "invoke_ii" (func $invoke_ii (param i32 i32) (result i32)))
      (memory (export "memory") i64 1)
      (table (export "__indirect_function_table") 2 funcref)
      (elem (i32.const 1) $double)
      (data (i64.const 0) "abc\\00x.c\\00")
      (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
      (func (export "resize") (param i64) (result i32) (call $resize (local.get 0)))
      (func (export "copy") (result i32)
        (call $memcpy (i64.const 100) (i64.const 0) (i64.const 3))
        (i32.load8_u (i64.const 102)))
      (func (export "now") (result f64) (call $now))
      (func (export "fail") (call $assert (i64.const 0) (i64.const 4) (i32.const 7) (i64.const 0)))
      (func (export "invoke") (param i32) (result i32)
        (call $invoke_ii (i32.const 1) (local.get 0))))"""
    host = WasiHost()
    inst = engine.instantiate(src, imports=host.resolve, strict_imports=True, memory_limit=3 << 16)
    assert inst.call("resize", 2 << 16) == [1]
    assert inst.memory_size() == 2 << 16
    assert inst.call("resize", 8 << 16) == [0]  # past the memory limit
    assert inst.call("copy") == [ord("c")]
    assert inst.call("now") == [float(CLOCK_TIME)]
    assert inst.call("invoke", 21) == [42]
    with pytest.raises(WasmError, match=r"assertion failed: abc \(x\.c:7, abc\)"):
        inst.call("fail")
