"""lua@5.3a as a device: finding modules, dynamic (read-only) functions, errors, sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam import ao
from hbeam.errors import LimitExceeded, LuaError, NotFound
from hbeam.node import Node
from hbeam.path import parse_request

FUNCS = """
function double(base, req) return { value = (tonumber(base.value) or 0) * 2 } end
function seen(base, req)
  local keys = {}
  for k in pairs(base) do keys[#keys + 1] = k end
  table.sort(keys)
  return { keys = table.concat(keys, ","), threshold = req.threshold or "none" }
end
function counter(base, req)
  Count = (Count or 0) + 1
  string.upper = nil
  return Count
end
function upper(base, req) return string.upper("abc") end
function boom(base, req) error("kaboom: " .. tostring(base.value)) end
function refuse(base, req) return "error", "refused politely" end
function spin(base, req) while true do end end
function hog(base, req)
  local t, i = {}, 0
  while true do i = i + 1 t[i] = string.rep("x", 4096) .. i end
end
function shell(base, req) return os.execute("true") end
function file(base, req) return io.open("/tmp/hbeam-lua-device-test", "w") end
function nested(base, req) return { list = {1, 2, 3}, map = { a = { b = "c" } }, n = 1.5 } end
function args(a, b) return { a = a, b = b } end
"""

SEED_SUM = """
function sum(base, req)
    local totalSupply = 0
    local holders = 0
    if base.balances then
        for address, balance in pairs(base.balances) do
            totalSupply = totalSupply + (tonumber(balance) or 0)
            holders = holders + 1
        end
    end
    return { CirculatingSupply = tostring(totalSupply), BalanceCount = tostring(holders) }
end
"""


@pytest.fixture
def node(backend: ModuleType, tmp_path: Path) -> Iterator[Node]:
    with Node(
        f"lmdb:{tmp_path / 'node'}",
        eager=False,
        lua_instruction_limit=2_000_000,
        lua_memory_limit=32 * 1024 * 1024,
    ) as n:
        yield n


@pytest.fixture
def funcs(node: Node) -> str:
    return node.publish(FUNCS, "application/lua")


def call(node: Node, base: dict[str, Any], key: str, **req: Any) -> Any:
    return ao.resolve({"device": "lua@5.3a", **base}, {"path": key, **req}, opts=node.opts)


def test_a_published_module_is_found_by_id_and_its_function_called(node: Node, funcs: str) -> None:
    assert call(node, {"module": funcs, "value": 21}, "double") == {"value": 42}


def test_module_on_the_request_is_the_fallback_seed_url_form(node: Node, funcs: str) -> None:
    assert call(node, {"value": 4}, "double", module=funcs) == {"value": 8}
    # the base's module wins when both are given (HyperBEAM reads only the base's)
    other = node.publish("function double() return { value = 'base' } end")
    assert call(node, {"module": other, "value": 4}, "double", module=funcs) == {"value": "base"}


def test_module_lists_messages_and_maps_load_in_order(node: Node) -> None:
    first = node.publish("Base = 10")
    second = node.publish("function get() return Base + 1 end")
    assert call(node, {"module": [first, second]}, "get") == 11
    inline = {"content-type": "application/lua", "body": "function get() return 'inline' end"}
    assert call(node, {"module": inline}, "get") == "inline"
    by_data = {"content-type": "text/x-lua", "data": "function get() return 'data' end"}
    assert call(node, {"module": by_data}, "get") == "data"
    numbered = {"1": first, "2": second}
    assert call(node, {"module": numbered}, "get") == 11


def test_missing_modules_are_not_found_naming_the_id(node: Node) -> None:
    ghost = "G" * 43
    with pytest.raises(NotFound, match=f"Lua module '{ghost}' not found"):
        call(node, {"module": ghost}, "anything")
    with pytest.raises(NotFound, match="no-modules-found"):
        call(node, {}, "anything")
    with pytest.raises(NotFound, match="not loadable"):
        call(node, {"module": {"content-type": "application/lua", "name": "x"}}, "anything")


def test_base_without_cast_keys_and_global_keys(node: Node, funcs: str) -> None:
    base = {"balances": {"a": "1"}, "x-extra": "kept"}
    assert call(node, {**base, "module": funcs}, "seen") == {
        "keys": "balances,x-extra",
        "threshold": "none",
    }
    # over HTTP every header/query key is set on the cast message too: Lua must not see them
    pid = node.spawn({"execution-device": "stack@1.0", "device-stack": ["patch@1.0"], **base})
    path = f"/{pid}~process@1.0/now/~lua@5.3a&module={funcs}/seen&threshold=7"
    msgs = parse_request(path, {"accept": "application/json", "x-header": "h"})
    result = ao.resolve_many(msgs, opts=node.opts)
    keys = result["keys"].split(",")
    assert "balances" in keys and "x-extra" in keys
    assert not {"device", "module", "accept", "x-header", "path"} & set(keys)
    assert result["threshold"] == "7"


def test_calls_are_isolated_and_read_only(node: Node, funcs: str) -> None:
    for _ in range(3):
        assert call(node, {"module": funcs}, "counter") == 1  # no global survives a call
    assert call(node, {"module": funcs}, "upper") == "ABC"  # nor a change to a library


def test_keys_the_message_has_are_plain_reads(node: Node, funcs: str) -> None:
    assert call(node, {"module": funcs, "double": "mine"}, "double") == "mine"
    assert call(node, {"module": funcs}, "module") == funcs


def test_function_and_parameters_keys(node: Node, funcs: str) -> None:
    assert call(node, {"module": funcs, "value": 3}, "anything", function="double") == {"value": 6}
    assert call(node, {"module": funcs}, "args", parameters=["x", 2]) == {"a": "x", "b": 2}


def test_results_convert_back(node: Node, funcs: str) -> None:
    out = call(node, {"module": funcs}, "nested")
    assert out["list"] == [1, 2, 3]
    assert out["map"]["a"]["b"] == "c"
    assert out["n"] == 1.5


def test_errors(node: Node, funcs: str) -> None:
    with pytest.raises(NotFound, match="define no function 'nope'"):
        call(node, {"module": funcs}, "nope")
    with pytest.raises(LuaError, match="kaboom: 5"):
        call(node, {"module": funcs, "value": 5}, "boom")
    with pytest.raises(LuaError, match="refused politely"):
        call(node, {"module": funcs}, "refuse")
    broken = node.publish("function f( return end")
    with pytest.raises(LuaError, match=r"syntax|expected"):
        call(node, {"module": broken}, "f")
    # the pool keeps serving after failures
    assert call(node, {"module": funcs, "value": 1}, "double") == {"value": 2}


def test_limits_and_sandbox(node: Node, funcs: str) -> None:
    with pytest.raises(LimitExceeded, match="instruction limit"):
        call(node, {"module": funcs}, "spin")
    with pytest.raises(LimitExceeded, match="memory limit"):
        call(node, {"module": funcs}, "hog")
    with pytest.raises(LuaError, match=r"os\.execute is not available"):
        call(node, {"module": funcs}, "shell")
    with pytest.raises(LuaError, match=r"io\.open is not available"):
        call(node, {"module": funcs}, "file")
    assert not Path("/tmp/hbeam-lua-device-test").exists()
    assert call(node, {"module": funcs, "value": 2}, "double") == {"value": 4}


def test_the_seed_sum_on_a_map_and_on_a_bare_balances_map(node: Node) -> None:
    sid = node.publish(SEED_SUM, "application/lua")
    balances = {"a": "100", "b": "50"}
    assert call(node, {"module": sid, "balances": balances}, "sum") == {
        "CirculatingSupply": "150",
        "BalanceCount": "2",
    }
    # the seed's own URL applies it to the balances map itself: base.balances is nil
    assert call(node, {**balances}, "sum", module=sid) == {
        "CirculatingSupply": "0",
        "BalanceCount": "0",
    }
