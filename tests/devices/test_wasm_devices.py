"""wasm-64@1.0, json-iface@1.0 and wasi@1.0 as devices: calls, error results, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from hbeam import ao
from hbeam.errors import NotFound, WasmError
from hbeam.node import Node

MODULES = Path(__file__).parent.parent / "wasm" / "modules"


def wat(name: str) -> bytes:
    return (MODULES / f"{name}.wat").read_bytes()


@pytest.fixture
def node(backend: ModuleType, tmp_path: Path) -> Iterator[Node]:
    with Node(f"lmdb:{tmp_path / 'node'}", eager=False) as n:
        yield n


def call(node: Node, image: Any, function: str, *params: Any) -> Any:
    """A one-off wasm-64@1.0 call (no process): the ``results`` it writes."""
    base = {"device": "wasm-64@1.0", "image": image, "function": function}
    if params:
        base["parameters"] = list(params)
    return ao.resolve(base, {"path": "compute"}, opts=node.opts)["results"]


def test_one_off_calls_convert_arguments_and_return_values(node: Node) -> None:
    image = node.publish(wat("adder"))
    assert call(node, image, "add", 2, 40) == {"type": "ok", "output": [42]}
    assert call(node, image, "fac", 5.0)["output"] == [120.0]
    assert call(node, image, "add", "7", 8)["output"] == [15]  # numeric strings accepted
    assert call(node, image, "pair", 3)["output"] == [3, 3.0]
    assert call(node, image, "nop") == {"type": "ok", "output": []}
    # the image may also be raw bytes or a message with a body
    assert call(node, wat("adder"), "add", 1, 1)["output"] == [2]
    assert call(node, {"body": wat("adder")}, "add", 1, 2)["output"] == [3]


def test_function_and_parameters_come_from_the_request_body_first(node: Node) -> None:
    image = node.publish(wat("adder"))
    base = {"device": "wasm-64@1.0", "image": image, "function": "nop"}
    req = {"path": "compute", "body": {"function": "add", "parameters": [20, 22]}}
    assert ao.resolve(base, req, opts=node.opts)["results"]["output"] == [42]
    # a later pass of a multipass stack does not call again; no function is a no-op
    assert "results" not in ao.resolve({**base, "pass": 2}, {"path": "compute"}, opts=node.opts)
    assert "results" not in ao.resolve(
        {"device": "wasm-64@1.0", "image": image}, {"path": "compute"}, opts=node.opts
    )


def test_a_trap_is_an_error_result(node: Node) -> None:
    image = node.publish(wat("trap"))
    results = call(node, image, "boom")
    assert results["type"] == "error"
    assert results["error"] == "WasmError"
    assert "unreachable" in results["output"]
    div = call(node, image, "div", 1, 0)
    assert div["type"] == "error" and "divide by zero" in div["output"]
    assert call(node, image, "ok")["output"] == [1]


def test_bad_input_names_the_image_and_the_problem(node: Node) -> None:
    junk = node.publish(b"\0asm\x01\0\0\0garbage")
    with pytest.raises(WasmError, match=f"image {junk}.*invalid"):
        call(node, junk, "add", 1, 2)
    text = node.publish(b"definitely not wasm")
    with pytest.raises(WasmError, match=f"image {text}.*not a WebAssembly module"):
        call(node, text, "add", 1, 2)
    w32 = node.publish(wat("wasm32"))
    with pytest.raises(WasmError, match=f"image {w32}.*32-bit.*memory64"):
        call(node, w32, "add", 1, 2)
    imports = node.publish(wat("imports"))
    with pytest.raises(WasmError, match=f"image {imports}.*env.mystery.*not provided"):
        call(node, imports, "call_mystery", 1)
    adder = node.publish(wat("adder"))
    with pytest.raises(WasmError, match=f"image {adder} has no exported function 'mul'"):
        call(node, adder, "mul", 1, 2)
    with pytest.raises(WasmError, match=f"image {adder}.*takes 2 argument"):
        call(node, adder, "add", 1)
    with pytest.raises(WasmError, match=f"image {adder}.*must be i64"):
        call(node, adder, "add", "x", 1)
    missing = "M" * 43
    with pytest.raises(NotFound, match=f"{missing} is not in the store"):
        call(node, missing, "add", 1, 2)
    with pytest.raises(NotFound, match="names no 'image'"):
        ao.resolve(
            {"device": "wasm-64@1.0", "function": "add"}, {"path": "compute"}, opts=node.opts
        )


def test_unknown_imports_can_be_stubbed_and_are_recorded(
    backend: ModuleType, tmp_path: Path
) -> None:
    with Node(f"lmdb:{tmp_path / 'n'}", eager=False, wasm_strict_imports=False) as node:
        image = node.publish(wat("imports"))
        results = call(node, image, "call_mystery", 41)
    assert results["type"] == "ok"
    assert results["output"] == [1]  # the stub returned 0
    assert results["undefined-calls"] == {
        "1": {"module": "env", "name": "log"},
        "2": {"module": "env", "name": "mystery"},
    }


def test_wasi_marks_the_state_and_passes_everything_else_through(node: Node) -> None:
    base = {"device": "wasi@1.0", "output-prefix": "wasm", "x": 1}
    state = ao.resolve(base, {"path": "init"}, opts=node.opts)
    assert state["wasm"]["stdlib"]["wasi_snapshot_preview1"] == "wasi@1.0"
    assert ao.resolve(state, {"path": "init"}, opts=node.opts) == state  # idempotent
    assert ao.resolve(base, {"path": "compute"}, opts=node.opts) == {**base}
    status, _ = ao.resolve_status(base, {"path": "snapshot"}, opts=node.opts)
    assert status != "ok"


def test_json_iface_init_sets_handle(node: Node) -> None:
    state = ao.resolve({"device": "json-iface@1.0"}, {"path": "init"}, opts=node.opts)
    assert state["function"] == "handle"


def test_json_iface_message_document(backend: ModuleType) -> None:
    from hbeam.devices.json_iface import _message_doc

    req = {
        "message": "MSG-ID",
        "block-height": 12,
        "body": {"from": "ALICE", "action": "Transfer", "quantity": "5", "data": "hi"},
    }
    doc = orjson.loads(_message_doc(req, "IMAGE"))
    assert doc["Id"] == "MSG-ID"
    assert doc["Owner"] == doc["From"] == "ALICE"
    assert doc["Data"] == "hi"
    assert doc["Module"] == "IMAGE"
    assert doc["Block-Height"] == 12
    assert doc["Tags"] == [
        {"name": "Action", "value": "Transfer"},
        {"name": "Quantity", "value": "5"},
    ]
    pushed = {"message": "M2", "body": {"from": "PROC", "from-process": "PROC", "x": "1"}}
    doc = orjson.loads(_message_doc(pushed, "IMAGE"))
    assert doc["From"] == "PROC"
