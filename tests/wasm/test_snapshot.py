"""Memory snapshots: restore gives byte-identical memory, also after a restart."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hbeam.errors import LimitExceeded, WasmError
from hbeam.wasm import WasmEngine, WasmSnapshot, call_handle

Wat = Callable[[str], bytes]


def _count(inst: object) -> str:
    result = call_handle(inst, b'{"Id":"m"}', b"{}")  # type: ignore[arg-type]
    return str(result.data)


def test_restore_is_byte_identical_and_continues(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    inst = engine.instantiate(wat("counter"), require_memory64=True)
    for _ in range(3):
        _count(inst)
    inst.write_cstring("y" * 200_000)  # grows memory past its initial page
    snap = inst.snapshot()
    before = inst.read(0, inst.memory_size())

    fresh = engine.instantiate(wat("counter"))
    assert fresh.memory_size() < len(before)
    fresh.restore(snap)
    assert fresh.read(0, fresh.memory_size()) == before
    assert _count(fresh) == "count=4"
    assert _count(inst) == "count=4"
    assert fresh.read(0, fresh.memory_size()) == inst.read(0, inst.memory_size())


def test_snapshot_bytes_survive_a_restart(backend: ModuleType, wat: Wat, tmp_path: Path) -> None:
    engine = WasmEngine(cache_dir=tmp_path / "cache")
    inst = engine.instantiate(wat("counter"))
    for _ in range(5):
        _count(inst)
    blob = inst.snapshot().to_bytes()
    image = inst.read(0, inst.memory_size())
    (tmp_path / "snap").write_bytes(blob)
    del inst, engine

    restarted = WasmEngine(cache_dir=tmp_path / "cache")
    inst2 = restarted.instantiate(wat("counter"))
    assert restarted.loaded == 1 and restarted.compiled == 0
    inst2.restore((tmp_path / "snap").read_bytes())
    assert inst2.read(0, inst2.memory_size()) == image
    assert _count(inst2) == "count=6"
    assert len(blob) < len(image)  # compressed


def test_exported_mutable_globals_are_part_of_the_snapshot(
    backend: ModuleType, engine: WasmEngine
) -> None:
    src = b"""(module (memory (export "memory") i64 1)
      (global $g (export "g") (mut i64) (i64.const 0))
      (func (export "bump") (result i64)
        (global.set $g (i64.add (global.get $g) (i64.const 1))) (global.get $g)))"""
    inst = engine.instantiate(src)
    inst.call("bump")
    inst.call("bump")
    snap = WasmSnapshot.from_bytes(inst.snapshot().to_bytes())
    assert snap.globals == {"g": 2}
    fresh = engine.instantiate(src)
    fresh.restore(snap)
    assert fresh.call("bump") == [3]


def test_bad_snapshots_are_errors(backend: ModuleType, engine: WasmEngine, wat: Wat) -> None:
    inst = engine.instantiate(wat("counter"), memory_limit=2 * 65536)
    with pytest.raises(WasmError, match="bad magic"):
        inst.restore(b"nope")
    good = inst.snapshot()
    with pytest.raises(WasmError, match="corrupt"):
        inst.restore(WasmSnapshot(b"not zlib", good.memory_size))
    with pytest.raises(WasmError, match="header says"):
        inst.restore(WasmSnapshot(good.memory, good.memory_size + 1))
    huge = 4 * 65536
    with pytest.raises(LimitExceeded, match="exceeds the memory limit"):
        inst.restore(WasmSnapshot(zlib.compress(bytes(huge)), huge))
    with pytest.raises(WasmError, match="smaller than the instance"):
        inst.restore(WasmSnapshot(zlib.compress(b"\0" * 16), 16))
