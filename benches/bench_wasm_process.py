"""A json-iface wasm process: messages/s through the whole node pipeline vs bare ``handle`` calls.

``process`` = ``schedule_many`` (one durable commit) + ``now`` through
``stack@1.0`` [wasi, json-iface, wasm-64, patch, multipass] with two passes per slot;
``baseline`` = the same counter module's ``handle`` called directly with the engine
(message JSON built, written with ``malloc``, result parsed).  ``extra_info["ops"]`` is
messages per round, so the report shows messages/s.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hbeam.node import Node
from hbeam.wasm import WasmEngine, call_handle, env_json, message_json

MODULES = Path(__file__).parent.parent / "tests" / "wasm" / "modules"
MESSAGES = 200


def test_json_iface_process_messages(benchmark: Any, core: Any) -> None:
    """Scheduled and computed counter messages per round (LMDB store, durable)."""
    with tempfile.TemporaryDirectory() as tmp:
        node = Node(f"lmdb:{tmp}", eager=False)
        pid = node.spawn_wasm((MODULES / "counter.wat").read_bytes())
        node.now(pid)
        msgs = [{"from": "ALICE", "action": "Count", "quantity": "1"}] * MESSAGES

        def run() -> None:
            node.schedule_many(pid, msgs)
            node.now(pid)

        benchmark.group = "wasm json-iface: counter messages, process vs bare handle"
        benchmark.extra_info.update(impl=f"process-{core.__name__.rsplit('_', 1)[-1]}")
        benchmark.extra_info["ops"] = MESSAGES
        benchmark.pedantic(run, rounds=3, iterations=1)
        benchmark.extra_info["correct"] = node.now(pid)["results"]["data"].startswith("count=")
        node.close()


@pytest.mark.parametrize("impl", ["baseline"])
def test_json_iface_bare_handle_messages(benchmark: Any, impl: str) -> None:
    """The same messages straight through the engine: JSON in, ``handle``, JSON out."""
    inst = WasmEngine().instantiate((MODULES / "counter.wat").read_bytes(), require_memory64=True)
    env = env_json({"type": "Process", "image": "IMG"}, id="PROC")

    def run() -> None:
        for i in range(MESSAGES):
            msg = message_json(
                {"action": "Count", "quantity": "1"}, image="IMG", id=f"MSG-{i}", owner="ALICE"
            )
            call_handle(inst, msg, env, process_id="PROC", image="IMG")

    benchmark.group = "wasm json-iface: counter messages, process vs bare handle"
    benchmark.extra_info.update(impl=impl, ops=MESSAGES)
    benchmark.pedantic(run, rounds=3, iterations=1)
