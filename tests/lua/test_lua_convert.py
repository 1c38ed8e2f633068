"""Python ↔ Lua value conversion (execution-http.md §4.4), through a real Lua VM."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import pytest
from hbeam.errors import InvalidMessage
from hbeam.lua import LuaVM, decode_values, encode_values


@pytest.fixture(scope="module")
def vm() -> LuaVM:
    vm = LuaVM()
    vm.execute(
        """
        function echo(...) return ... end
        function describe(v)
          if type(v) ~= "table" then return type(v) .. ":" .. (math.type(v) or tostring(v)) end
          local keys = {}
          for k, x in pairs(v) do keys[#keys + 1] = type(k) .. ":" .. tostring(k) end
          table.sort(keys)
          return table.concat(keys, ",")
        end
        """
    )
    return vm


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        ("ünïcødé ✓", "ünïcødé ✓"),
        (b"bytes", "bytes"),  # a Lua string that is valid UTF-8 comes back as str
        (b"\xff\x00raw", b"\xff\x00raw"),  # ... and as bytes when it is not
        (7, 7),
        (-(2**63), -(2**63)),
        (2**70, float(2**70)),  # beyond 64 bits: a float, as Lua reads such a literal
        (1.0, 1.0),  # an integral float stays a float
        (0.1, 0.1),
        (True, True),
        (False, False),
        ([1, 2, 3], [1, 2, 3]),
        ((1, "a"), [1, "a"]),
        ({"a": 1, "b": {"c": [True, {"d": 2.5}]}}, {"a": 1, "b": {"c": [True, {"d": 2.5}]}}),
        ({"1": "x", "2": "y"}, ["x", "y"]),  # keys exactly "1".."n" are an array
        ({"1": "x", "3": "y"}, {"1": "x", "3": "y"}),
        ({"a": None, "b": 1}, {"b": 1}),  # nil entries vanish
        ({}, {}),
        ([], {}),  # the empty table decodes as an empty map
        ({2: "two", True: "yes"}, {"2": "two", "true": "yes"}),
    ],
)
def test_round_trip(vm: LuaVM, value: Any, expected: Any) -> None:
    (back,) = vm.call_all("echo", value)
    assert back == expected
    assert type(back) is type(expected)


def test_ints_and_floats_stay_apart(vm: LuaVM) -> None:
    assert vm.call("describe", 1) == "number:integer"
    assert vm.call("describe", 1.0) == "number:float"
    assert vm.execute("return 3, 3.0, 7 // 2, 7 / 2, 2^53") == [3, 3.0, 3, 3.5, 2.0**53]
    assert [type(x) for x in vm.execute("return 1, 1.0")] == [int, float]
    nan, inf = vm.execute("return 0/0, math.huge")
    assert math.isnan(nan) and inf == math.inf


def test_lua_tables_to_python(vm: LuaVM) -> None:
    assert vm.execute("return {}") == [{}]
    assert vm.execute("return {1, 2, 3}") == [[1, 2, 3]]
    assert vm.execute("return {[1] = 'a', [3] = 'c'}") == [{"1": "a", "3": "c"}]
    assert vm.execute("return {1, 2, x = 3}") == [{"1": 1, "2": 2, "x": 3}]
    assert vm.execute("return {[1.5] = 'f', [true] = 't', [-2] = 'n'}") == [
        {"1.5": "f", "true": "t", "-2": "n"}
    ]
    assert vm.execute("return {a = {b = {}}, l = {{}, {1}}}") == [{"a": {"b": {}}, "l": [{}, [1]]}]
    assert vm.execute("return {x = 1, y = nil}") == [{"x": 1}]
    assert vm.execute("return nil, 1, nil") == [None, 1, None]
    assert vm.execute("return") == []


def test_python_values_as_lua_sees_them(vm: LuaVM) -> None:
    assert vm.call("describe", {"b": 1, "a": 2}) == "string:a,string:b"
    assert vm.call("describe", [10, 20]) == "number:1,number:2"
    assert vm.call("describe", {"1": "x", "2": "y"}) == "number:1,number:2"
    assert vm.call("describe", {}) == ""
    assert vm.execute("return type(...)", None) == ["nil"]


def test_core_messages_convert_like_dicts(backend: ModuleType, vm: LuaVM) -> None:
    msg = backend.Message({"b": {"c": [1, 2.5, "x"]}, "a": b"raw", "n": {"1": "p", "2": "q"}})
    (back,) = vm.call_all("echo", msg)
    assert back == {"a": "raw", "b": {"c": [1, 2.5, "x"]}, "n": ["p", "q"]}
    assert backend.Message(back) == backend.Message(
        {"a": "raw", "b": {"c": [1, 2.5, "x"]}, "n": ["p", "q"]}
    )


def test_nesting_deeper_than_200_levels_is_refused(vm: LuaVM) -> None:
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(250):
        cur["x"] = {}
        cur = cur["x"]
    with pytest.raises(InvalidMessage, match=r"deeper than 200 levels.*at key 'x/x/x/x/…/x/x/x'"):
        vm.call("echo", deep)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(InvalidMessage, match="deeper than 200"):
        vm.call("echo", cyclic)
    with pytest.raises(InvalidMessage, match="deeper than 200 levels"):
        vm.execute("local t = {} t.t = t return t")
    ok = vm.execute("local t = {} local c = t for i = 1, 199 do c.x = {} c = c.x end return t")
    assert isinstance(ok[0], dict)


def test_unconvertible_values_are_refused(vm: LuaVM) -> None:
    with pytest.raises(InvalidMessage, match="unsupported value type set at key 'a'"):
        vm.call("echo", {"a": {1, 2}})
    with pytest.raises(InvalidMessage, match="type function cannot be converted at key 'f'"):
        vm.execute("return {f = print}")
    with pytest.raises(InvalidMessage, match="unsupported map key type table"):
        vm.execute("return {[{}] = 1}")
    with pytest.raises(InvalidMessage, match="map key is not valid UTF-8"):
        vm.execute('return {["\\255"] = 1}')


def test_large_values_cross_in_pieces(vm: LuaVM) -> None:
    balances = {f"addr-{i:06d}": str(i) for i in range(150_000)}
    (back,) = vm.call_all("echo", {"balances": balances})
    assert back["balances"] == balances
    assert vm.execute("local t = {} for i = 1, 250000 do t[i] = i end return t")[0] == list(
        range(1, 250_001)
    )


def test_the_wire_format_round_trips_in_python() -> None:
    values: list[Any] = [{"a": [1, {"b": None}], "c": "x"}, [], None, 2.5]
    flat = encode_values(values)
    assert flat[0] is None  # a table starts with a nil marker
    # the Lua->host side uses FPAIRS for flat maps; FMAP (host->Lua) decodes too
    assert decode_values(encode_values([{"k": "v", "n": 1}])) == [{"k": "v", "n": 1}]
