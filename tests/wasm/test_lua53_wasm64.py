"""Lua 5.3 built to wasm64 (``tests/wasm/lua53``) as a json-iface process.

The module comes from ``HBEAM_LUA53_WASM`` (a prebuilt file) or is built with
``zig cc`` when the ``ziglang`` package is installed (about ten CPU-seconds the first
time, then cached under ``$HBEAM_LUA53_CACHE`` or ``~/.cache/hbeam/lua53``); otherwise
these tests are skipped.
Lua's error handling is setjmp/longjmp, compiled to legacy wasm exception handling, so
every Lua error raised here runs through hbeam's load-time exnref translation.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
from hbeam import _core
from hbeam.errors import WasmError
from hbeam.wasm import WasmEngine, WasmInstance, call_handle, env_json, message_json

TOKEN = r"""
local balances = { OWNER = 100 }
local function tag(msg, name)
  return msg:match('{"name":"' .. name .. '","value":"([^"]*)"}')
end
function handle(msg, env)
  local from = msg:match('"From":"([^"]*)"')
  local action = tag(msg, "Action")
  local out, messages = "", {}
  if action == "Transfer" then
    local qty = math.tointeger(tonumber(tag(msg, "Quantity")))
    local to = tag(msg, "Recipient")
    if not qty or qty <= 0 then error("Quantity must be a positive integer") end
    if (balances[from] or 0) < qty then error("Insufficient balance") end
    balances[from] = balances[from] - qty
    balances[to] = (balances[to] or 0) + qty
    out = string.format("%s sent %d to %s", from, qty, to)
    messages[1] = string.format(
      '{"Target":"%s","Tags":[{"name":"Action","value":"Credit-Notice"},' ..
      '{"name":"Quantity","value":"%d"}]}', to, qty)
  elseif action == "Balance" then
    out = tostring(balances[tag(msg, "Account") or from] or 0)
  end
  return string.format('{"ok":true,"response":{"Output":{"data":"%s"},"Messages":[%s]}}',
    out, table.concat(messages, ","))
end
"""


def _module() -> bytes:
    prebuilt = os.environ.get("HBEAM_LUA53_WASM")
    if prebuilt:
        return Path(prebuilt).read_bytes()
    spec = importlib.util.spec_from_file_location(
        "hbeam_lua53_build", Path(__file__).parent / "lua53" / "build.py"
    )
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    try:
        path = build.build(build.default_cache())
    except build.BuildUnavailable as exc:
        pytest.skip(f"Lua 5.3 wasm64 build unavailable: {exc}")
    return Path(path).read_bytes()


@pytest.fixture(scope="module")
def lua53() -> bytes:
    return _module()


def _boot(engine: WasmEngine, data: bytes) -> WasmInstance:
    inst = engine.instantiate(data, require_memory64=True, strict_imports=True, module_id="lua53")
    (ptr,) = inst.call("boot", inst.write_cstring(TOKEN))
    assert inst.read_cstring(ptr) == b""
    return inst


def _eval(inst: WasmInstance, code: str) -> str:
    (ptr,) = inst.call("eval", inst.write_cstring(code))
    return inst.read_cstring(ptr).decode()


def _send(inst: WasmInstance, sender: str, **tags: str) -> object:
    msg = message_json(tags, image="LUA53", owner=sender, id="M")
    return call_handle(inst, msg, env_json({"type": "Process"}), process_id="P", image="LUA53")


def test_lua_errors_run_through_translated_exception_handling(
    backend: ModuleType, lua53: bytes
) -> None:
    engine = WasmEngine()
    if _core.name == "pure":
        with pytest.raises(WasmError, match="needs the native core"):
            engine.instantiate(lua53)
        return
    inst = _boot(engine, lua53)
    assert _eval(inst, "return 1 + 1") == "2"
    assert _eval(inst, "return 10 / 3") == "3.3333333333333"
    assert _eval(inst, "return select(2, pcall(error, 'boom'))") == "boom"
    co = "local co = coroutine.wrap(function(a) return coroutine.yield(a + 1) * 2 end)"
    assert _eval(inst, co + " return co(1) .. ',' .. co(10)") == "2,20"
    assert "stack overflow" in _eval(
        inst, "local function f() return f() + 1 end return select(2, pcall(f))"
    )
    assert _eval(inst, "error('top-level')") == (
        '{"ok":false,"error":"[string \\"error(\'top-level\')\\"]:1: top-level"}'
    )


def test_token_process_on_wasm64_lua(backend: ModuleType, lua53: bytes) -> None:
    if _core.name == "pure":
        pytest.skip("needs the native core's legacy exception-handling translation")
    engine = WasmEngine()
    inst = _boot(engine, lua53)
    r = _send(inst, "OWNER", action="Transfer", quantity="30", recipient="ALICE")
    assert r.ok and r.data == "OWNER sent 30 to ALICE"  # type: ignore[attr-defined]
    assert r.outbox["1"]["action"] == "Credit-Notice"  # type: ignore[attr-defined]
    assert r.outbox["1"]["from-process"] == "P"  # type: ignore[attr-defined]
    bad = _send(inst, "ALICE", action="Transfer", quantity="500", recipient="BOB")
    assert not bad.ok and "Insufficient balance" in bad.error  # type: ignore[attr-defined]
    snap = inst.snapshot()
    # a restart: fresh instance (no boot), memory restored, state carries on
    again = engine.instantiate(lua53, require_memory64=True, module_id="lua53")
    again.restore(snap)
    assert again.read(0, again.memory_size()) == inst.read(0, inst.memory_size())
    for target in (inst, again):
        r = _send(target, "ALICE", action="Transfer", quantity="5", recipient="BOB")
        assert r.data == "ALICE sent 5 to BOB"  # type: ignore[attr-defined]
        assert _send(target, "X", action="Balance", account="ALICE").data == "25"  # type: ignore[attr-defined]
        assert _send(target, "X", action="Balance", account="OWNER").data == "70"  # type: ignore[attr-defined]
