"""Lua token transfers per second through AosProcess.handle vs the bare-lupa ceiling.

``native`` = hbeam's path: :meth:`hbeam.lua.AosProcess.handle` with an AO message dict —
Python → Lua conversion, the sandbox's limits, aos normalisation and Handlers dispatch, the
token's Transfer handler, and the result (outbox with notices and the cache patch) back as
Python dicts. ``baseline`` = bare lupa, the ceiling: the same token Transfer handler function
called directly from Python with a pre-built classic Lua message table (no conversion either
way, no dispatch, no limits). Same VM, same ledger, same transfers.

Ledgers with 10 and with 100,000 holders; ``extra_info["ops"]`` = transfers per round, so
the report shows transfers/s, and the ``vs native`` column is the ratio to the ceiling.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hbeam.lua import TOKEN_SOURCE, AosProcess

PID = "p" * 43
OWNER = "o" * 43
TRANSFERS = 2000
HOLDERS = [10, 100_000]

_FUND = """
for i = 1, %d do
  Balances[string.format("holder-%%037d", i)] = "1000000000"
end
"""

# the bare ceiling: the Transfer handler itself, called with ready-made classic messages
_BARE = """
local handler
for _, h in ipairs(Handlers.list) do
  if h.name == "Transfer" then handler = h.handle end
end
local msgs = {}
local function reply(msg, r)
  r.Target = msg.From
  return Send(r)
end
local bare = {}
function bare.prepare(froms, tos, quantities)
  msgs = {}
  for i = 1, #froms do
    local m = {Id = "bare-" .. i, From = froms[i], Owner = froms[i], Action = "Transfer",
               Recipient = tos[i], Quantity = quantities[i]}
    m.Tags = {Action = "Transfer", Recipient = tos[i], Quantity = quantities[i]}
    m.reply = function(r) return reply(m, r) end
    msgs[i] = m
  end
end
function bare.transfer(i)
  ao.outbox.Messages = {}
  handler(msgs[i])
end
return bare
"""


def _holder(i: int) -> str:
    return f"holder-{i:037d}"


class _Token:
    def __init__(self, holders: int) -> None:
        self.proc = AosProcess()
        self.proc.boot({"id": PID, "owner": OWNER}, [("token.lua", TOKEN_SOURCE)])
        self.proc.handle({"id": "fund", "from": OWNER, "action": "Eval", "data": _FUND % holders})
        self.holders = holders
        self.rng = random.Random(holders)
        self.n = 0

    def transfers(self) -> list[dict[str, Any]]:
        batch = []
        for _ in range(TRANSFERS):
            self.n += 1
            sender = _holder(self.rng.randint(1, self.holders))
            batch.append(
                {
                    "id": f"msg-{self.n:039d}",
                    "from": sender,
                    "owner": sender,
                    "target": PID,
                    "timestamp": 1_700_000_000_000 + self.n,
                    "block-height": 1_500_000,
                    "action": "Transfer",
                    "recipient": _holder(self.rng.randint(1, self.holders)),
                    "quantity": str(self.rng.randint(1, 9)),
                    "data-protocol": "ao",
                    "type": "Message",
                    "variant": "ao.TN.1",
                }
            )
        return batch

    def supply_conserved(self) -> bool:
        balances = self.proc.read("Balances")
        total = int(self.proc.read("TotalSupply")) + self.holders * 1_000_000_000
        return sum(int(v) for v in balances.values()) == total


@pytest.mark.parametrize("holders", HOLDERS)
def test_aos_handle(benchmark: Any, holders: int) -> None:
    token = _Token(holders)
    handle = token.proc.handle

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (token.transfers(),), {}

    def run(batch: list[dict[str, Any]]) -> None:
        for msg in batch:
            handle(msg)

    benchmark.group = f"lua token transfer, {holders} holders: AosProcess.handle vs bare lupa"
    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    benchmark.extra_info.update(impl="native", ops=TRANSFERS, correct=token.supply_conserved())
    token.proc.close()


@pytest.mark.parametrize("holders", HOLDERS)
def test_bare_lupa(benchmark: Any, holders: int) -> None:
    token = _Token(holders)
    vm = token.proc.vm
    bare = vm._rt.execute(_BARE)  # raw lupa on the same VM: no sandbox entry, no codec
    lua_list = vm._rt.table_from

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        batch = token.transfers()
        bare.prepare(
            lua_list([m["from"] for m in batch]),
            lua_list([m["recipient"] for m in batch]),
            lua_list([m["quantity"] for m in batch]),
        )
        return (), {}

    transfer = bare.transfer

    def run() -> None:
        for i in range(1, TRANSFERS + 1):
            transfer(i)

    benchmark.group = f"lua token transfer, {holders} holders: AosProcess.handle vs bare lupa"
    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    benchmark.extra_info.update(impl="baseline", ops=TRANSFERS, correct=token.supply_conserved())
    token.proc.close()


def _lua_flat(value: Any, out: list[Any]) -> list[Any]:
    """``value`` in the wire form convert.lua sends (flat maps as FPAIRS), for test data."""
    if isinstance(value, dict):
        if all(not isinstance(v, (dict, list)) for v in value.values()):
            out += (None, len(value) * 8 + 7)
            for k, v in value.items():
                out += (k, v)
        else:
            out += (None, len(value) * 8 + 2)
            for k, v in value.items():
                out.append(k)
                _lua_flat(v, out)
    elif isinstance(value, list):
        out += (None, len(value) * 8 + 4)
        for v in value:
            _lua_flat(v, out)
    else:
        out.append(value)
    return out


def _transfer_result(n: int) -> list[Any]:
    """What one token Transfer returns to the host: two notices and the balances patch."""
    a, b = _holder(2 * n), _holder(2 * n + 1)
    return [
        {"data": f"You transferred 8 to {b}", "target": a, "action": "Debit-Notice",
         "quantity": "8", "reference": str(2 * n), "recipient": b},
        {"data": f"You received 8 from {a}", "target": b, "action": "Credit-Notice",
         "quantity": "8", "reference": str(2 * n + 1), "sender": a},
        {"cache": {"balances": {a: "999992", b: "1000008"}}, "device": "patch@1.0"},
    ]  # fmt: skip


@pytest.mark.parametrize("op", ["decode", "encode"])
def test_flat_codec(benchmark: Any, core: Any, op: str) -> None:
    """The host half of the Lua value codec on the token's data, per message: decoding a
    batch of 20 transfer results (as ``LuaVM.call_batch`` gets them), encoding one
    transfer message (as ``AosProcess`` sends it)."""
    batch = 20
    if op == "decode":
        results = [_transfer_result(n) for n in range(batch)]
        flat: list[Any] = [True, 0]
        for result in results:
            flat += (1, *_lua_flat(result, []))
        values = tuple(flat)
        expected = [x for result in results for x in (1, result)]
        benchmark.group = "lua flat codec: decode 20 token transfer results"
        got = benchmark(core.lua_decode_values, values, 2)
        benchmark.extra_info.update(ops=batch, correct=got == expected)
    else:
        sender = _holder(1)
        msg = {"from": sender, "action": "Transfer", "recipient": _holder(2), "quantity": "8",
               "owner": sender, "id": "m10019", "timestamp": 10019}  # fmt: skip
        benchmark.group = "lua flat codec: encode a token transfer message"
        got = benchmark(core.lua_encode_map, msg)
        benchmark.extra_info.update(ops=1, correct=got[:2] == [None, len(msg) * 8 + 1])
    benchmark.extra_info["impl"] = _core_name(core)


def _core_name(core: Any) -> str:
    return "pure" if core.build_profile == "pure" else "native"
