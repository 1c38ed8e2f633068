"""wasm-64: call overhead vs bare wasmtime-py (target <= 1.5x), json-iface msgs/s, compile cache."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from hbeam.wasm import WasmEngine, call_handle, env_json, message_json

MODULES = Path(__file__).parent.parent / "tests" / "wasm" / "modules"


def _wat(name: str) -> bytes:
    return (MODULES / f"{name}.wat").read_bytes()


@pytest.mark.parametrize("impl", ["hbeam", "baseline"])
def test_call_overhead_trivial_export(benchmark: Any, impl: str) -> None:
    """One call of ``add(i64, i64)``: WasmInstance.call vs the export called directly."""
    benchmark.group = "wasm call: add(i64, i64)"
    benchmark.extra_info["impl"] = impl
    if impl == "hbeam":
        inst = WasmEngine().instantiate(_wat("adder"))
        result = benchmark(inst.call, "add", 2, 40)
        benchmark.extra_info["correct"] = result == [42]
    else:
        config = wasmtime.Config()
        config.wasm_memory64 = True
        config.wasm_exceptions = True
        config.consume_fuel = True  # same engine configuration as hbeam's
        engine = wasmtime.Engine(config)
        store = wasmtime.Store(engine)
        store.set_fuel(10_000_000_000)
        instance = wasmtime.Instance(
            store, wasmtime.Module(engine, bytes(wasmtime.wat2wasm(_wat("adder").decode()))), []
        )
        add = instance.exports(store)["add"]
        result = benchmark(add, store, 2, 40)
        benchmark.extra_info["correct"] = result == 42


def test_json_iface_counter_messages(benchmark: Any) -> None:
    """One aos-style message through the counter module (write JSON, handle, read JSON)."""
    benchmark.group = "wasm json-iface: counter message"
    benchmark.extra_info["impl"] = "hbeam"
    inst = WasmEngine().instantiate(_wat("counter"), require_memory64=True)
    env = env_json({"type": "Process", "image": "IMG"}, id="PROC")
    msg = message_json({"action": "Count", "quantity": "1"}, image="IMG", id="MSG")
    result = benchmark(call_handle, inst, msg, env, process_id="PROC", image="IMG")
    benchmark.extra_info["correct"] = result.ok and result.data.startswith("count=")


@pytest.mark.parametrize("impl", ["first-compile", "disk-cache", "memory-cache"])
def test_compile_cache(benchmark: Any, impl: str) -> None:
    """Instantiating the counter module: compiling vs loading a cached artefact."""
    benchmark.group = "wasm instantiate: counter module"
    benchmark.extra_info["impl"] = impl
    data = _wat("counter")
    with tempfile.TemporaryDirectory() as tmp:
        WasmEngine(cache_dir=tmp).compile(data)  # warm the disk cache
        shared = WasmEngine()
        shared.compile(data)

        def run() -> Any:
            if impl == "first-compile":
                engine = WasmEngine()
            elif impl == "disk-cache":
                engine = WasmEngine(cache_dir=tmp)
            else:
                engine = shared
            return engine.instantiate(data)

        inst = benchmark(run)
        benchmark.extra_info["correct"] = inst.memory_size() == 65536
