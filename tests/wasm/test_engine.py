"""WasmEngine / WasmInstance: calls, conversions, traps, limits, imports, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import wasmtime
from hbeam.errors import LimitExceeded, WasmError
from hbeam.wasm import UndefinedCall, WasmEngine, WasmInstance

Wat = Callable[[str], bytes]


def test_adder_export_returns_results_as_a_list(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    inst = engine.instantiate(wat("adder"), require_memory64=True)
    assert inst.call("add", 2, 40) == [42]
    assert inst.call("add32", 7, 8) == [15]
    assert inst.call("nop") == []
    assert inst.call("pair", 3) == [3, 3.0]
    assert inst.call("fac", 5.0) == [120.0]


def test_arguments_are_converted_to_the_signature(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    inst = engine.instantiate(wat("adder"))
    assert inst.call("fac", 5) == [120.0]  # int → f64
    assert inst.call("add", 2.0, "40") == [42]  # integral float, numeric string → i64
    assert inst.call("add32", 0xFFFFFFFF, 1) == [0]  # unsigned spelling of -1 wraps
    assert inst.call("add", -(1 << 63), (1 << 64) - 1) == [(1 << 63) - 1]  # i64 wraps


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((1,), "takes 2 argument"),
        ((1, 2, 3), "takes 2 argument"),
        ((1.5, 2), "not an integer"),
        (("x", 2), "string 'x'"),
        ((None, 2), "got NoneType"),
        ((True, 2), "got bool"),
        ((1 << 64, 2), "out of range"),
        ((float("nan"), 2), "not an integer"),
    ],
)
def test_wrong_arguments_are_wasm_errors(
    backend: ModuleType, engine: WasmEngine, wat: Wat, args: tuple[Any, ...], needle: str
) -> None:
    inst = engine.instantiate(wat("adder"), module_id="adder-id")
    with pytest.raises(WasmError, match=needle) as info:
        inst.call("add", *args)
    assert "'add'" in str(info.value)
    assert "adder-id" in str(info.value)


def test_missing_export_names_the_module_and_the_exports(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    inst = engine.instantiate(wat("adder"), module_id="adder-id")
    with pytest.raises(WasmError, match=r"adder-id has no export 'nope'.*add, add32"):
        inst.call("nope")
    with pytest.raises(WasmError, match="not a function named 'memory'"):
        inst.call("memory")
    assert inst.has_export("fac")
    assert not inst.has_export("memory")


def test_trap_is_a_wasm_error_and_the_instance_goes_on(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    inst = engine.instantiate(wat("trap"), module_id="trap-id")
    with pytest.raises(
        WasmError, match=r"trap-id: export 'boom' trapped: wasm trap: .*unreachable.* \(in "
    ) as info:
        inst.call("boom")
    assert not isinstance(info.value, LimitExceeded)
    assert isinstance(info.value.__cause__, wasmtime.Trap)
    with pytest.raises(WasmError, match="divide by zero"):
        inst.call("div", 1, 0)
    with pytest.raises(WasmError, match="out of bounds"):
        inst.call("oob")
    assert inst.call("div", 7, 2) == [3]
    assert inst.call("ok") == [1]


def test_infinite_loop_runs_out_of_fuel_and_next_call_works(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    inst = engine.instantiate(wat("spin"), fuel=200_000, module_id="spin-id")
    with pytest.raises(LimitExceeded, match="spin-id: export 'spin' ran out of fuel") as info:
        inst.call("spin")
    assert info.value.details["limit"] == "fuel"
    assert info.value.http_status == 422
    assert inst.call("ok") == [1]
    with pytest.raises(LimitExceeded):
        inst.call("spin")
    assert inst.call("ok") == [2]


def test_unbounded_memory_growth_hits_the_limit(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    limit = 4 * 65536
    inst = engine.instantiate(wat("grow"), memory_limit=limit, module_id="grow-id")
    with pytest.raises(LimitExceeded, match="grow-id: export 'grow_forever' trapped at the memory"):
        inst.call("grow_forever")
    assert inst.call("pages") == [4]
    assert inst.memory_size() == limit
    # the engine and other instances are unaffected
    other = engine.instantiate(wat("grow"))
    assert other.call("pages") == [1]


def test_unknown_import_is_a_recorded_stub(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    inst = engine.instantiate(wat("imports"))
    assert inst.call("call_mystery", 5) == [1]  # stub returns 0, module adds 1
    assert inst.undefined_calls == [
        UndefinedCall("env", "log", (5,)),
        UndefinedCall("env", "mystery", (5,)),
    ]
    inst.call("call_mystery", 6)
    assert [c.args for c in inst.undefined_calls] == [(6,), (6,)]  # per call


def test_provided_imports_are_called_with_the_instance(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    seen: list[int] = []

    def mystery(inst: WasmInstance, x: int) -> int:
        assert isinstance(inst, WasmInstance)
        return x * 10

    def log(inst: WasmInstance, x: int) -> None:
        seen.append(x)

    inst = engine.instantiate(
        wat("imports"), imports={("env", "mystery"): mystery, ("env", "log"): log}
    )
    assert inst.call("call_mystery", 4) == [41]
    assert seen == [4]
    assert inst.undefined_calls == []
    # a resolver function works too
    by_fn = engine.instantiate(
        wat("imports"), imports=lambda m, n, ty: mystery if n == "mystery" else None
    )
    assert by_fn.call("call_mystery", 1) == [11]
    assert [c.name for c in by_fn.undefined_calls] == ["log"]


def test_strict_imports_refuse_an_unprovided_import(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    with pytest.raises(WasmError, match=r"imp-id imports env\.mystery, which is not provided"):
        engine.instantiate(wat("imports"), strict_imports=True, module_id="imp-id")


def test_host_function_errors_become_wasm_errors(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    def broken(inst: WasmInstance, x: int) -> int:
        if x == 1:
            raise KeyError("nothing here")
        return x

    inst = engine.instantiate(wat("imports"), imports={("env", "mystery"): broken})
    with pytest.raises(WasmError, match=r"host function env\.mystery failed: KeyError") as info:
        inst.call("call_mystery", 1)
    assert isinstance(info.value.__cause__, KeyError)
    assert inst.call("call_mystery", 2) == [3]  # still usable after a host failure


@pytest.mark.parametrize(
    "data",
    [b"", b"\0asm", b"\0asm\x01\0\0\0\x01\x02", b"not wasm at all", b"(module (func $x"],
)
def test_invalid_bytes_are_wasm_errors(backend: ModuleType, data: bytes) -> None:
    engine = WasmEngine()
    with pytest.raises(WasmError, match="module bad-id: ") as info:
        engine.instantiate(data, module_id="bad-id")
    assert engine.compiled == 0
    assert "bad-id" in str(info.value)


def test_wasm32_module_refused_where_wasm64_is_required(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    assert engine.instantiate(wat("wasm32")).call("add", 1, 2) == [3]
    with pytest.raises(WasmError, match=r"w32-id has a 32-bit linear memory.*memory64"):
        engine.instantiate(wat("wasm32"), require_memory64=True, module_id="w32-id")


def test_compile_cache_in_memory_and_on_disk(backend: ModuleType, wat: Wat, tmp_path: Path) -> None:
    first = WasmEngine(cache_dir=tmp_path)
    m1 = first.compile(wat("adder"))
    assert first.compile(wat("adder")) is m1
    assert (first.compiled, first.loaded) == (1, 0)
    assert len(list(tmp_path.glob("*.cwasm"))) == 1
    # a new engine (a restart) loads the artefact instead of compiling
    second = WasmEngine(cache_dir=tmp_path)
    inst = second.instantiate(wat("adder"))
    assert (second.compiled, second.loaded) == (0, 1)
    assert inst.call("add", 1, 2) == [3]
    # a damaged artefact is recompiled, not fatal
    for path in tmp_path.glob("*.cwasm"):
        path.write_bytes(b"garbage")
    third = WasmEngine(cache_dir=tmp_path)
    assert third.instantiate(wat("adder")).call("add", 2, 2) == [4]
    assert (third.compiled, third.loaded) == (1, 0)


def test_memory_helpers(backend: ModuleType, engine: WasmEngine, wat: Wat) -> None:
    inst = engine.instantiate(wat("counter"))
    ptr = inst.write_cstring("héllo")
    assert ptr >= 4096
    assert inst.read_cstring(ptr) == "héllo".encode()
    assert inst.read(ptr, 2) == b"h\xc3"
    inst.write(ptr, b"J")
    assert inst.read_cstring(ptr) == "Jéllo".encode()
    big = "x" * 100_000  # forces the module's malloc to grow memory
    assert inst.read_cstring(inst.write_cstring(big)) == big.encode()
    size = inst.memory_size()
    with pytest.raises(WasmError, match="outside"):
        inst.read(size - 1, 2)
    with pytest.raises(WasmError, match="outside"):
        inst.write(size, b"x")
    with pytest.raises(WasmError, match="outside"):
        inst.read_cstring(size)
    inst.write(size - 3, b"abc")
    with pytest.raises(WasmError, match="no NUL terminator"):
        inst.read_cstring(size - 3)
    with pytest.raises(WasmError, match="exports no 'memory'"):
        engine.instantiate(b"(module)").memory_size()
