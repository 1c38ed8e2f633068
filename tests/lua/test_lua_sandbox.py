"""LuaVM: the sandbox is always on, limits are per call, errors are hbeam errors."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from hbeam.errors import DeviceError, InvalidMessage, LimitExceeded, LuaError
from hbeam.lua import DEFAULT_MAX_INSTRUCTIONS, DEFAULT_MAX_MEMORY, LuaVM

SMALL: dict[str, Any] = {"max_instructions": 2_000_000, "max_memory": 16 * 1024 * 1024}


@pytest.fixture
def vm() -> LuaVM:
    return LuaVM(**SMALL)


def test_defaults_are_sensible() -> None:
    vm = LuaVM()
    assert vm.max_instructions == DEFAULT_MAX_INSTRUCTIONS == 50_000_000
    assert vm.max_memory == DEFAULT_MAX_MEMORY == 256 * 1024 * 1024
    assert vm.execute("return _VERSION") == ["Lua 5.3"]


@pytest.mark.parametrize(
    "code",
    [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
        "coroutine.wrap(function() while true do end end)()",
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        "local function f() return f() end f()",  # a proper tail call loops forever
        "string.gsub(string.rep('a', 100), 'a', function() while true do end end)",
        "setmetatable({}, {__index = function() while true do end end}).x = nil"
        " local t = setmetatable({}, {__index = function() while true do end end}) return t.x",
    ],
)
def test_endless_loops_hit_the_instruction_limit_and_the_vm_keeps_working(
    vm: LuaVM, code: str
) -> None:
    with pytest.raises(LimitExceeded, match="instruction limit of 2000000 exceeded") as info:
        vm.execute(code)
    assert isinstance(info.value, DeviceError)
    assert info.value.details["limit"] == "instructions"
    vm.execute("function add(a, b) return a + b end")
    assert vm.call("add", 2, 3) == 5


def test_the_budget_is_per_call(vm: LuaVM) -> None:
    vm.execute("function spin(n) local s = 0 for i = 1, n do s = s + i end return s end")
    for _ in range(5):  # each call alone fits (~600k instructions); together they would not
        assert vm.call("spin", 300_000) == 300_000 * 300_001 // 2


@pytest.mark.parametrize(
    "code",
    [
        'return string.rep("x", 1e15)',
        'return ("x"):rep(2^40, ",")',
        "local t = {} local i = 0 while true do i = i + 1 t[i] = {i} end",
        "local t, i = {}, 0 while true do i = i + 1 t[i] = string.rep('y', 4096) .. i end",
        'local ok = pcall(string.rep, "x", 1e15) return ok',  # user pcall cannot swallow it
        "local s = 'x' while true do s = s .. s end",
    ],
)
def test_memory_bombs_hit_the_memory_limit_and_the_vm_keeps_working(vm: LuaVM, code: str) -> None:
    with pytest.raises(LimitExceeded, match="memory limit of 16777216 bytes exceeded") as info:
        vm.execute(code)
    assert info.value.details["limit"] == "memory"
    assert vm.memory_used < 4 * 1024 * 1024  # the garbage was collected
    assert vm.execute("return 40 + 2") == [42]


def test_an_empty_string_repeated_forever_is_just_empty(vm: LuaVM) -> None:
    # Lua 5.3 would spin 1e15 times in C, out of the hook's reach
    assert vm.execute('return string.rep("", 1e15), string.rep("", 1e15, "")') == ["", ""]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ('os.execute("touch /tmp/hbeam-escaped")', "os.execute is not available"),
        ('os.getenv("HOME")', "os.getenv is not available"),
        ('os.remove("/tmp/x")', "os.remove is not available"),
        ('io.open("/etc/passwd")', "io.open is not available"),
        ("io.write('x')", "io.write is not available"),
        ('require("os")', "module 'os' is not available"),
        ('require("io")', "module 'io' is not available"),
        ('require("debug")', "module 'debug' is not available"),
        ('require("socket")', "module 'socket' not found"),
        ("load(string.dump(function() end))", "field 'dump'"),
        ('dofile("/etc/passwd")', "dofile is not available"),
        ('loadfile("/etc/passwd")', "loadfile is not available"),
        ("debug.getinfo(1)", "global 'debug'"),
        ("package.loadlib('x', 'y')", "global 'package'"),
        ("python.eval('1')", "global 'python'"),
        ('collectgarbage("stop")', "collectgarbage('stop') is not allowed"),
        ('collectgarbage("setpause", 1000)', "not allowed"),
        ("setmetatable({}, {__gc = function() end})", "__gc metamethods are not allowed"),
    ],
)
def test_escapes_are_refused(vm: LuaVM, code: str, message: str) -> None:
    with pytest.raises(LuaError, match=re.escape(message)):
        vm.execute(code)


def test_load_takes_text_only(vm: LuaVM) -> None:
    assert vm.execute('return load("return 1 + 1")()') == [2]
    assert vm.execute('return loadstring("return 3")()') == [3]
    assert vm.execute('return load("\\27LuaS", "x", "b")') == [
        None,
        "binary chunks are not allowed in the hbeam sandbox",
    ]
    nil, why = vm.execute('return load("\\27LuaS\\0\\25\\147", "x")')
    assert nil is None and "binary chunk" in why
    # an explicit environment works as in plain Lua
    assert vm.execute('return load("return x", "c", "t", {x = 5})()') == [5]


def test_require_serves_registered_modules_only(vm: LuaVM) -> None:
    vm.register_module("greet", 'local M = {} function M.hi(n) return "hi " .. n end return M')
    assert vm.execute('return require("greet").hi("bob")') == ["hi bob"]
    assert vm.execute('return require("greet") == require("greet")') == [True]
    assert vm.execute('return require("string") == string') == [True]


def test_lua_errors_carry_message_and_traceback(vm: LuaVM) -> None:
    vm.load("local function inner() error('boom') end\nfunction outer() inner() end", name="mod")
    with pytest.raises(LuaError) as info:
        vm.call("outer")
    err = info.value
    assert str(err) == "function 'outer': mod:1: boom"
    assert err.details["lua_message"] == "mod:1: boom"
    assert "mod:1: in" in err.details["traceback"]
    assert "hbeam/sandbox" not in err.details["traceback"]
    assert err.to_json()["error"] == "LuaError"


def test_syntax_errors_and_undefined_functions(vm: LuaVM) -> None:
    with pytest.raises(LuaError, match=r"syntax error.*broken:1"):
        vm.execute("local = 1", name="broken")
    with pytest.raises(LuaError, match="Lua function 'nope' is not defined"):
        vm.call("nope")


def test_error_objects_that_are_not_strings(vm: LuaVM) -> None:
    vm.execute(
        "function t() error(setmetatable({}, {__tostring = function() while true do end end})) end"
    )
    with pytest.raises(LuaError, match="error object is a table value"):
        vm.call("t")
    with pytest.raises(LuaError, match=r"'n': 42"):
        vm.execute("function n() error(42) end")
        vm.call("n")


def test_invalid_utf8_in_an_error_message_is_readable(vm: LuaVM) -> None:
    with pytest.raises(LuaError, match="bad \u00ff byte"):
        vm.execute('error("bad \\255 byte")')


def test_os_time_and_random_are_deterministic() -> None:
    a, b = LuaVM(**SMALL), LuaVM(**SMALL)
    code = "return os.time(), math.random(), math.random(1, 100), os.date('%Y-%m-%d %H:%M:%S')"
    for vm in (a, b):
        vm.set_clock(1_700_000_000_123, seed="message-1")
    first, second = a.execute(code), b.execute(code)
    assert first == second
    assert first[0] == 1_700_000_000_123
    assert first[3] == "2023-11-14 22:13:20"
    a.set_clock(1_700_000_000_123, seed="message-2")
    assert a.execute(code)[1] != first[1]
    assert a.execute("return os.time({year = 2024, month = 1, day = 1, hour = 0})") == [1704067200]
    assert a.execute("return os.clock()") == [0.0]
    vm = LuaVM(**SMALL)
    vm.execute("math.randomseed(7)")
    x = vm.execute("return math.random(1, 6), math.random()")
    vm.execute("math.randomseed(7)")
    assert vm.execute("return math.random(1, 6), math.random()") == x
    assert 1 <= x[0] <= 6 and 0.0 <= x[1] < 1.0


def test_print_is_captured(vm: LuaVM) -> None:
    vm.execute("print('a', 1, true) print('b')")
    assert vm.take_output() == "a\t1\ttrue\nb"
    assert vm.take_output() == ""


def test_the_vm_is_usable_by_many_threads_one_at_a_time(vm: LuaVM) -> None:
    vm.execute(
        "counter = 0 function bump(n) for i = 1, n do counter = counter + 1 end return counter end"
    )
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                vm.call("bump", 10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert vm.execute("return counter") == [4 * 50 * 10]


def test_a_closed_vm_refuses_calls(vm: LuaVM) -> None:
    vm.close()
    with pytest.raises(LuaError, match="closed"):
        vm.execute("return 1")


def test_arguments_that_do_not_fit_are_refused_before_lua_sees_them() -> None:
    vm = LuaVM(max_instructions=1_000_000, max_memory=4 * 1024 * 1024)
    vm.execute("function len(s) return #s end")
    with pytest.raises(LimitExceeded, match="memory limit"):
        vm.call("len", "x" * (8 * 1024 * 1024))
    assert vm.call("len", "x" * 1000) == 1000


def test_bad_limits_are_refused() -> None:
    with pytest.raises(DeviceError, match="limits must be positive"):
        LuaVM(max_instructions=0)


def test_results_that_cannot_be_converted(vm: LuaVM) -> None:
    with pytest.raises(InvalidMessage, match="type function"):
        vm.execute("return {f = print}")
    # load() keeps whatever a module returns in Lua
    vm.load("return {f = print}", name="lib")
