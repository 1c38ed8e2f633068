"""Legacy exception handling: translated to exnref at load, run by wasmtime, same results.

``modules/legacy_eh.wat`` uses try / catch / catch_all / rethrow / delegate; each export's
expected value below follows from the legacy semantics (see the comments there).
wasmtime itself refuses the untranslated module.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import wasmtime
from hbeam import _core
from hbeam.errors import WasmError
from hbeam.wasm import WasmEngine

Wat = Callable[[str], bytes]

CASES: dict[str, dict[int, int]] = {
    "catch1": {0: -1, 5: 105},
    "multi": {0: 1, 1: 17, 2: 27, 3: 99, 9: 99},
    "rethrow": {5: 1005},
    "rethrow_outer": {5: 5},
    "rethrow_shadow": {5: 5},
    "rethrow_e2": {5: 14},
    "delegate_outer": {5: 305},
    "delegate_middle": {5: 205},
    "delegate_caller": {0: 1, 5: 405},
    "delegate_from_handler": {5: 505},
    "delegate_block": {5: 605},
    "delegate_chain": {5: 705},
    "multivalue": {0: 3, 5: 15},
    "br_out": {3: 77, 0: 900},
    "retry": {5: 5, 1: 1},
    "throw_in_handler": {5: 60},
    "catchless": {7: 7},
}


def _binary(wat: Wat) -> bytes:
    return bytes(wasmtime.wat2wasm(wat("legacy_eh").decode()))


def test_wasmtime_refuses_the_untranslated_module(backend: ModuleType, wat: Wat) -> None:
    config = wasmtime.Config()
    config.wasm_exceptions = True
    with pytest.raises(wasmtime.WasmtimeError, match="legacy_exceptions feature required"):
        wasmtime.Module(wasmtime.Engine(config), _binary(wat))


def test_translated_module_runs_with_legacy_semantics(backend: ModuleType, wat: Wat) -> None:
    engine = WasmEngine()
    if _core.name == "pure":
        with pytest.raises(WasmError, match="needs the native core"):
            engine.instantiate(_binary(wat), module_id="legacy")
        return
    inst = engine.instantiate(_binary(wat), module_id="legacy")
    got = {name: {arg: inst.call(name, arg)[0] for arg in cases} for name, cases in CASES.items()}
    assert got == CASES
    with pytest.raises(WasmError, match="legacy: export 'uncaught' trapped: thrown Wasm exception"):
        inst.call("uncaught", 3)


def test_translation_contract(backend: ModuleType, wat: Wat) -> None:
    plain = bytes(wasmtime.wat2wasm(wat("counter").decode()))
    # no legacy instructions: byte-identical on both backends
    assert backend.wasm_translate_legacy_eh(plain) == plain
    if _core.name == "pure":
        return
    out = backend.wasm_translate_legacy_eh(_binary(wat))
    assert out != _binary(wat)
    assert backend.wasm_translate_legacy_eh(out) == out  # idempotent: nothing left to do
    with pytest.raises(WasmError, match="invalid wasm module"):
        backend.wasm_translate_legacy_eh(b"\0asm\x01\0\0\0\x0a\x05\x01\x03\x00\x06")
