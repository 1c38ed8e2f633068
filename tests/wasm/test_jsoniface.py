"""json-iface@1.0: message/environment JSON in, results out, through a counter process."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import orjson
import pytest
from hbeam.errors import WasmError
from hbeam.wasm import WasmEngine, call_handle, env_json, message_json, parse_result
from hbeam.wasm.jsoniface import EXEC_ERROR, JSON_ERROR, header_case, message_struct

Wat = Callable[[str], bytes]

PROCESS = {
    "type": "Process",
    "image": "IMAGE-ID",
    "scheduler": "SCHED",
    "memory-limit": "1-gb",
}


def test_message_json_has_the_aos_fields(backend: ModuleType) -> None:
    msg = {
        "id": "ignored-when-given",
        "action": "Transfer",
        "quantity": 5,
        "data": "hello",
        "target": "PROC",
        "anchor": "A1",
        "commitments": {"x": {}},
        "from-process": "OTHER",
    }
    doc = orjson.loads(
        message_json(msg, image="IMAGE-ID", block_height=7, id="MSG-ID", owner="OWNER")
    )
    assert doc["Id"] == "MSG-ID"
    assert doc["Owner"] == "OWNER"
    assert doc["From"] == "OTHER"  # from-process wins over the owner
    assert doc["Target"] == "PROC"
    assert doc["Anchor"] == "A1"
    assert doc["Data"] == "hello"
    assert doc["Module"] == "IMAGE-ID"
    assert doc["Block-Height"] == 7
    assert {t["name"]: t["value"] for t in doc["Tags"]} == {
        "Action": "Transfer",
        "Quantity": "5",
        "From-Process": "OTHER",
    }
    assert next(iter(doc)) == "Id"


def test_message_struct_details(backend: ModuleType) -> None:
    s = message_struct({"data": b"\x00\xff"}, owner="O")
    assert s["Data"] is None  # binary data is not sent, as HyperBEAM does
    assert s["From"] == "O"
    s = message_struct({"body": "text", "flag": True}, tags=[("Original", "Tag")])
    assert s["Data"] == "text"
    assert s["Tags"] == [{"name": "Original", "value": "Tag"}]
    assert header_case("content-type") == "Content-Type"
    env = orjson.loads(env_json(PROCESS, id="PROC-ID"))
    assert env["Process"]["Id"] == "PROC-ID"
    assert {"name": "Memory-Limit", "value": "1-gb"} in env["Process"]["Tags"]


def test_counter_process_through_json_iface(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    inst = engine.instantiate(wat("counter"), require_memory64=True, module_id="counter")
    env = env_json(PROCESS, id="PROC-ID")
    for n in (1, 2, 3):
        msg = message_json({"action": "Count"}, image="IMAGE-ID", id=f"MSG-{n}")
        result = call_handle(inst, msg, env, process_id="PROC-ID", image="IMAGE-ID")
        assert result.ok
        assert result.data == f"count={n}"
        assert result.outbox == {
            "1": {
                "target": f"MSG-{n}",
                "data": str(n),
                "action": "Counted",
                "from-process": "PROC-ID",
                "from-image": "IMAGE-ID",
            }
        }
        assert result.patches == [{"count": str(n)}]
        assert result.error is None


def test_handle_traps_and_missing_exports(
    backend: ModuleType, engine: WasmEngine, wat: Wat
) -> None:
    adder = engine.instantiate(wat("adder"))
    with pytest.raises(WasmError, match="no export 'malloc'"):
        call_handle(adder, b"{}", b"{}")
    src = b"""(module (memory (export "memory") i64 1)
      (func (export "malloc") (param i64) (result i64) (i64.const 64))
      (func (export "handle") (param i64 i64) (result i64) (i64.const 0)))"""
    with pytest.raises(WasmError, match="null pointer"):
        call_handle(engine.instantiate(src), b"{}", b"{}")
    wrong = b"""(module (memory (export "memory") i64 1)
      (func (export "malloc") (param i64) (result f64) (f64.const 64))
      (func (export "handle") (param i64 i64)))"""
    with pytest.raises(WasmError, match="malloc export must return one integer pointer"):
        call_handle(engine.instantiate(wrong), b"{}", b"{}")
    no_result = b"""(module (memory (export "memory") i64 1)
      (func (export "malloc") (param i64) (result i64) (i64.const 64))
      (func (export "handle") (param i64 i64)))"""
    with pytest.raises(WasmError, match="handle must return one integer pointer"):
        call_handle(engine.instantiate(no_result), b"{}", b"{}")


@pytest.mark.parametrize(
    ("text", "ok", "data", "error"),
    [
        (b"not json", False, "", JSON_ERROR),
        (b"[1, 2]", False, "", JSON_ERROR),
        (b'{"ok": true}', False, "", JSON_ERROR),
        (b'{"ok": false, "error": "boom"}', False, "", "boom"),
        (b'{"ok": true, "response": {"Error": "bad input"}}', True, "bad input", None),
        (b'{"ok": true, "response": {"Output": "plain"}}', True, "plain", None),
        (b'{"ok": true, "response": {"Data": "d"}}', True, "d", None),
        (b'{"ok": true, "response": {}}', True, "", None),
    ],
)
def test_parse_result_shapes(
    backend: ModuleType, text: bytes, ok: bool, data: str, error: str | None
) -> None:
    result = parse_result(text)
    assert (result.ok, result.data, result.error) == (ok, data, error)


def test_parse_result_outbox_normalisation(backend: ModuleType) -> None:
    doc = {
        "ok": True,
        "response": {
            "Output": {"data": "out"},
            "Messages": [
                {
                    "Target": "T",
                    "Anchor": "dropped",
                    "From-Process": "spoofed",
                    "Data": "x",
                    "Tags": [
                        {"name": "Action", "value": "Credit"},
                        {"name": "Target", "value": "TAG"},
                    ],
                },
                {"target": "U"},
            ],
            "Spawns": [{"Data": "code", "Tags": [{"name": "Type", "value": "Process"}]}],
            "patches": [{"Tags": [{"name": "balance", "value": "10"}]}, {"cache": {"a": 1}}],
        },
    }
    r = parse_result(orjson.dumps(doc), process_id="P", image="I")
    assert r.ok and r.data == "out"
    assert r.outbox == {
        "1": {
            "target": "TAG",
            "data": "x",
            "action": "Credit",
            "from-process": "P",
            "from-image": "I",
        },
        "2": {"target": "U", "from-process": "P", "from-image": "I"},
    }
    assert r.spawns == {
        "1": {"data": "code", "type": "Process", "from-process": "P", "from-image": "I"}
    }
    assert r.patches == [{"balance": "10"}, {"cache": {"a": 1}}]
    assert EXEC_ERROR == "WASM execution error."
