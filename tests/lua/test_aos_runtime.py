"""The aos-compatible runtime: Handlers, messages, Send/Spawn, Eval, trust, limits."""

from __future__ import annotations

import itertools
from types import ModuleType
from typing import Any

import pytest
from hbeam.errors import LimitExceeded, LuaError
from hbeam.lua import AosProcess
from hbeam.lua.aos import parse_authorities

PID = "P" * 43
OWNER = "O" * 43
ALICE = "A" * 43
BOB = "B" * 43
NODE = "N" * 43

_ids = itertools.count(1)


def message(sender: str, *, owner: str | None = None, **fields: Any) -> dict[str, Any]:
    """An AO message as the scheduler delivers it (lower-case keys)."""
    n = next(_ids)
    msg: dict[str, Any] = {
        "id": f"msg-{n:039d}",
        "from": sender,
        "owner": sender if owner is None else owner,
        "target": PID,
        "timestamp": 1_700_000_000_000 + n,
        "block-height": 1000 + n,
    }
    msg.update({k.replace("_", "-"): v for k, v in fields.items()})
    return msg


def boot(*modules: str, **limits: Any) -> AosProcess:
    proc = AosProcess(**limits)
    proc.boot(
        {"id": PID, "owner": OWNER, "authority": NODE, "name": "tester", "app": "unit"},
        [(f"mod{i}.lua", src) for i, src in enumerate(modules)],
    )
    return proc


def handle(proc: AosProcess, sender: str = OWNER, **fields: Any) -> dict[str, Any]:
    return proc.handle(message(sender, **fields))


def test_handlers_run_in_order_with_break_and_continue() -> None:
    proc = boot(
        """
        Seen = {}
        Handlers.add("log", function(msg) return "continue" end,
          function(msg) Seen[#Seen + 1] = "log" end)
        Handlers.add("one", function(msg) return 1 end, function(msg) Seen[#Seen + 1] = "one" end)
        Handlers.add("ping", "Ping", function(msg) Seen[#Seen + 1] = "ping" end)
        Handlers.add("never", function(msg) return -1 end,
          function(msg) Seen[#Seen + 1] = "never" end)
        """
    )
    handle(proc, action="Ping")
    assert proc.read("Seen") == ["log", "one", "ping"]


def test_handler_pattern_kinds() -> None:
    proc = boot(
        """
        Hits = {}
        local function hit(name) return function() Hits[#Hits + 1] = name end end
        Handlers.add("skip0", function() return 0 end, hit("skip0"))
        Handlers.add("skipfalse", function() return false end, hit("skipfalse"))
        Handlers.add("skipstr", function() return "skip" end, hit("skipstr"))
        Handlers.add("spec", {Action = "Go", Quantity = "%d+", Note = "_"}, hit("spec"))
        Handlers.add("alt", {Action = {"Stop", "Halt"}}, hit("alt"))
        Handlers.add("fn", {Action = function(v) return v == "Fn" end}, hit("fn"))
        Handlers.add("data", Handlers.utils.hasMatchingData("ping"), hit("data"))
        Handlers.add("brk", function(msg) return msg.Action == "Brk" and "break" end, hit("brk"))
        """
    )
    handle(proc, action="Go", quantity="12", note="x")
    handle(proc, action="Go", quantity="abc", note="x")  # not a number: no match
    handle(proc, action="Go", quantity="12")  # Note missing: "_" needs a value
    handle(proc, action="Halt")
    handle(proc, action="Fn")
    handle(proc, data="ping")
    handle(proc, action="Brk")
    assert proc.read("Hits") == ["spec", "alt", "fn", "data", "brk"]


def test_add_replaces_prepend_before_after_remove_once() -> None:
    proc = boot(
        """
        Order = {}
        local function mark(n) return function() Order[#Order + 1] = n end end
        local any = function() return 1 end
        Handlers.add("b", any, mark("b"))
        Handlers.add("c", any, mark("c-old"))
        Handlers.add("c", any, mark("c"))         -- same name: replaced in place
        Handlers.prepend("a", any, mark("a"))
        Handlers.before("c").add("b2", any, mark("b2"))
        Handlers.after("c").add("d", any, mark("d"))
        Handlers.once("first", any, mark("once"))
        Handlers.append("gone", any, mark("gone"))
        Handlers.remove("gone")
        function Names()
          local t = {} for _, h in ipairs(Handlers.list) do t[#t+1] = h.name end return t
        end
        """
    )
    handle(proc, action="X")
    assert proc.read("Order") == ["once", "a", "b", "b2", "c", "d"]
    handle(proc, action="X")
    assert proc.read("Order")[6:] == ["a", "b", "b2", "c", "d"]
    # _default is special (it runs when nothing else handled the message), wherever it is
    assert proc.vm.call("Names") == ["a", "_eval", "_default", "b", "b2", "c", "d"]


def test_unhandled_messages_go_to_the_inbox() -> None:
    proc = boot('Handlers.add("ping", "Ping", function() end)')
    result = handle(proc, ALICE, action="Hello", data="hi")
    assert result["output"] == {"data": f"New Message From {ALICE}: Action = Hello", "print": True}
    (inbox,) = proc.read("Inbox")
    assert inbox["Action"] == "Hello" and inbox["Data"] == "hi" and inbox["From"] == ALICE
    result = handle(proc, OWNER, action="Eval", data="Inbox[1].reply({Data = 'later'})")
    assert result["outbox"] == [{"target": ALICE, "data": "later", "reference": "1"}]
    handle(proc, ALICE, action="Ping")
    assert len(proc.read("Inbox")) == 1


def test_messages_look_like_classic_aos() -> None:
    proc = boot(
        """
        Handlers.add("peek", "Peek", function(msg)
          Got = {Action = msg.Action, Quantity = msg.Quantity, From = msg.From, Owner = msg.Owner,
                 Id = msg.Id, Data = msg.Data, Tags = msg.Tags, Height = msg["Block-Height"],
                 Target = msg.Target, Time = os.time(), TagAction = msg.Tags.Action,
                 Match = Handlers.utils.hasMatchingTag("Quantity", "5")(msg)}
        end)
        """
    )
    m = message(ALICE, action="Peek", quantity="5", data="payload", x_custom="c")
    proc.handle(m)
    got = proc.read("Got")
    assert got["Action"] == "Peek" and got["Quantity"] == "5" and got["TagAction"] == "Peek"
    assert got["From"] == ALICE and got["Owner"] == ALICE and got["Id"] == m["id"]
    assert got["Data"] == "payload" and got["Target"] == PID and got["Match"] is True
    assert got["Height"] == m["block-height"] and got["Time"] == m["timestamp"]
    assert got["Tags"] == {"Action": "Peek", "Quantity": "5", "X-Custom": "c"}


def test_send_makes_ao_messages_with_nested_tables() -> None:
    proc = boot(
        """
        Handlers.add("go", "Go", function(msg)
          Send({Target = msg.From, Action = "Pong", ["X-Thing"] = "1", Data = "hi"})
          Send({device = "patch@1.0", cache = {balances = {[msg.From] = "5"}, meta = {n = 2}}})
          Send({Target = "t", Tags = {{name = "Kind", value = "list"}}})
          Send({Target = "t", Tags = {Kind = "map"}, Data = {nested = {1, 2}}})
          msg.reply({Action = "Reply"})
        end)
        """
    )
    result = handle(proc, ALICE, action="Go", x_reference="ref-9")
    out = result["outbox"]
    assert out[0] == {
        "target": ALICE,
        "action": "Pong",
        "x-thing": "1",
        "data": "hi",
        "reference": "1",
    }
    assert out[1] == {
        "device": "patch@1.0",
        "cache": {"balances": {ALICE: "5"}, "meta": {"n": 2}},
    }  # patches carry no reference: they are state, not messages
    assert out[2]["kind"] == "list" and out[3]["kind"] == "map"
    assert out[3]["data"] == {"nested": [1, 2]}
    assert out[4] == {
        "target": ALICE,
        "action": "Reply",
        "x-reference": "ref-9",
        "reference": "4",
    }
    assert result["error"] is None and result["spawns"] == []


def test_spawn_is_recorded() -> None:
    proc = boot('Handlers.add("s", "S", function() Spawn("MODULE-ID", {Name = "child"}) end)')
    result = handle(proc, action="S")
    assert result["spawns"] == [{"module": "MODULE-ID", "name": "child", "reference": "1"}]


def test_print_goes_to_output_and_eval_belongs_to_the_owner() -> None:
    proc = boot()
    result = handle(proc, OWNER, action="Eval", data="X = 21 * 2 print('set', X) return X")
    assert result["output"] == {"data": "set\t42\n42", "print": True}
    assert handle(proc, OWNER, action="Eval", data="X + 1")["output"]["data"] == "43"
    assert handle(proc, OWNER, action="Eval", data="{b = 1, a = {2, 3}}")["output"]["data"] == (
        "{ a = { 2, 3 }, b = 1 }"
    )
    # not the owner: not evaluated, it lands in the inbox
    result = handle(proc, ALICE, action="Eval", data="X = 0")
    assert proc.read("X") == 42
    assert result["output"]["data"].startswith(f"New Message From {ALICE}")


def test_a_handler_error_is_reported_and_sends_nothing() -> None:
    proc = boot(
        """
        Handlers.add("bad", "Bad", function(msg)
          Partial = true
          Send({Target = msg.From, Data = "never sent"})
          error("kaboom")
        end)
        """
    )
    result = handle(proc, action="Bad")
    assert result["error"] == "mod0.lua:5: kaboom"
    assert result["outbox"] == []
    assert result["output"]["data"] == "mod0.lua:5: kaboom"
    assert proc.read("Partial") is True  # aos keeps what the handler did before failing
    assert not proc.broken
    assert handle(proc, action="Eval", data="1")["output"]["data"] == "1"


def test_trust() -> None:
    proc = boot('Handlers.add("t", "T", function(msg) Count = (Count or 0) + 1 end)')
    handle(proc, ALICE, action="T")  # from == owner: a direct user message
    handle(proc, ALICE, owner=NODE, action="T")  # pushed by the node, an authority
    result = handle(proc, ALICE, owner=BOB, action="T")  # relayed by a stranger
    assert result["output"]["data"] == "Message is not trusted."
    assert proc.read("Count") == 2


def test_process_identity() -> None:
    proc = AosProcess()
    proc.boot(
        {
            "id": PID,
            "owner": OWNER,
            "authority": f'"{NODE}", "{BOB}"',
            "name": "named",
            "tags": [{"name": "Extra", "value": "e"}],
        },
        [("peek.lua", "Env = ao.env Auth = ao.authorities Id = ao.id Who = Owner")],
    )
    assert proc.read("Id") == PID == proc.process_id
    assert proc.read("Who") == OWNER
    assert proc.read("Auth") == [NODE, BOB]
    env = proc.read("Env")
    assert env["Process"]["Id"] == PID and env["Process"]["Owner"] == OWNER
    assert env["Process"]["Tags"]["Name"] == "named"
    assert env["Process"]["Tags"]["Extra"] == "e"
    assert proc.read("Name") == "named"
    proc.handle(message(OWNER, action="Eval", data="Env2 = ao.env"), {"module": {"id": "M"}})
    assert proc.read("Env2")["Module"] == {"id": "M"}


def test_parse_authorities() -> None:
    assert parse_authorities(None) == []
    assert parse_authorities("a, b") == ["a", "b"]
    assert parse_authorities('"a","b"') == ["a", "b"]
    assert parse_authorities(["a", "b,c"]) == ["a", "b", "c"]


def test_random_and_time_come_from_the_message() -> None:
    code = "Handlers.add('r', 'R', function() Rolls = {math.random(1, 1000000), os.time()} end)"
    a, b = boot(code), boot(code)
    m = message(ALICE, action="R")
    a.handle(m)
    b.handle(dict(m))
    assert a.read("Rolls") == b.read("Rolls")
    assert a.read("Rolls")[1] == m["timestamp"]
    a.handle(message(ALICE, action="R"))
    assert a.read("Rolls") != b.read("Rolls")


def test_json_data_is_decoded() -> None:
    proc = boot('Handlers.add("j", "J", function(msg) Got = msg.Data.list[2] end)')
    handle(proc, action="J", content_type="application/json", data='{"list": [1, 2, 3]}')
    assert proc.read("Got") == 2
    assert boot("J = require('json').encode({b = {1, 2}, a = 'x'})").read("J") == (
        '{"a":"x","b":[1,2]}'
    )


def test_core_messages_can_be_handled(backend: ModuleType) -> None:
    proc = boot('Handlers.add("p", "Ping", function(msg) msg.reply({Data = msg.Data}) end)')
    result = proc.handle(backend.Message(message(ALICE, action="Ping", data="pong")))
    assert result["outbox"][0]["data"] == "pong"
    assert result["outbox"][0]["target"] == ALICE


def test_a_huge_message_still_goes_through() -> None:
    proc = boot('Handlers.add("n", "N", function(msg) Count = #msg.Items end)')
    handle(proc, action="N", items=list(range(150_000)))
    assert proc.read("Count") == 150_000


def test_limits_break_the_process_and_history_rebuilds_it() -> None:
    done: list[tuple[dict[str, Any], None]] = []
    proc = AosProcess(
        max_instructions=1_000_000, max_memory=32 * 1024 * 1024, history=lambda: list(done)
    )
    proc.boot({"id": PID, "owner": OWNER}, [])

    def apply(**fields: Any) -> dict[str, Any]:
        m = message(OWNER, **fields)
        result = proc.handle(m)
        if not proc.broken:
            done.append((m, None))
        return result

    apply(action="Eval", data="Kept = 1")
    result = apply(action="Eval", data="Kept = 2 Lost = true while true do end")
    assert result["error"] == "aos handle: Lua instruction limit of 1000000 exceeded"
    assert proc.broken
    # the next use rebuilds the VM from history: the failed message left no trace
    assert proc.read("Lost") is None and proc.read("Kept") == 1
    assert not proc.broken
    result = apply(action="Eval", data='Big = string.rep("x", 1e15)')
    assert "memory limit of 33554432 bytes exceeded" in result["error"]
    assert apply(action="Eval", data="Kept")["output"]["data"] == "1"
    result = apply(
        action="Eval",
        data="local t = {} while true do t[#t + 1] = string.rep('x', 65536) .. #t end",
    )
    assert "memory limit" in result["error"]
    assert apply(action="Eval", data="Kept + 1")["output"]["data"] == "2"


def test_without_history_a_broken_process_refuses_to_continue() -> None:
    proc = boot(max_instructions=500_000)
    assert "instruction limit" in handle(proc, action="Eval", data="while true do end")["error"]
    with pytest.raises(LuaError, match="must be rebuilt"):
        handle(proc, action="Eval", data="1")
    proc.boot({"id": PID, "owner": OWNER}, [])
    assert handle(proc, action="Eval", data="1 + 1")["output"]["data"] == "2"


def test_a_failing_module_fails_the_boot() -> None:
    with pytest.raises(LuaError, match=r"loading module 'mod0\.lua' failed.*syntax error"):
        boot("this is not lua")
    with pytest.raises(LuaError, match=r"loading module 'mod0\.lua' failed.*oops"):
        boot("error('oops')")
    with pytest.raises(LimitExceeded, match=r"loading module 'mod0\.lua'"):
        boot("while true do end", max_instructions=100_000)


def test_an_unbooted_process_refuses_work() -> None:
    with pytest.raises(LuaError, match="has not been booted"):
        AosProcess().handle(message(ALICE, action="X"))


def test_call_runs_in_a_fresh_vm() -> None:
    proc = boot(
        """
        Counter = 0
        function bump(base, req) Counter = Counter + 1 return {n = Counter, got = base.x} end
        """
    )
    handle(proc, action="Eval", data="Counter = 100")
    assert proc.call("bump", {"x": 1}, {}) == {"n": 1, "got": 1}
    assert proc.call("bump", {"x": 2}, {}) == {"n": 1, "got": 2}  # nothing is kept
    assert proc.read("Counter") == 100  # the live process is untouched
