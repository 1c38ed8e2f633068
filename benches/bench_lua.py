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
