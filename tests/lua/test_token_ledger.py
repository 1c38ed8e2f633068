"""The bundled token blueprint (token.lua) as a ledger, with its cache patches."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from hbeam.lua import TOKEN_SOURCE, AosProcess

PID = "P" * 43
OWNER = "O" * 43
NODE = "N" * 43
ALICE, BOB, CAROL, DAVE = ("A" * 43, "B" * 43, "C" * 43, "D" * 43)
SUPPLY = 10000 * 10**12
_ids = itertools.count(1)


class Ledger:
    """A token process plus the cache its patches build (what patch@1.0 would hold)."""

    def __init__(self) -> None:
        self.proc = AosProcess(max_instructions=5_000_000, max_memory=64 * 1024 * 1024)
        self.cache: dict[str, Any] = {}
        self.log: list[dict[str, Any]] = []
        boot = self.proc.boot(
            {"id": PID, "owner": OWNER, "authority": NODE}, [("token.lua", TOKEN_SOURCE)]
        )
        self._patch(boot["outbox"])

    def _patch(self, outbox: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rest = []
        for m in outbox:
            if m.get("device") == "patch@1.0":
                cache = self.cache.setdefault("cache", {})
                for key, value in m["cache"].items():
                    if isinstance(value, dict):
                        cache.setdefault(key, {}).update(value)
                    else:
                        cache[key] = value
            else:
                rest.append(m)
        return rest

    def send(self, sender: str, owner: str | None = None, **fields: Any) -> dict[str, Any]:
        n = next(_ids)
        msg = {
            "id": f"tok-{n:039d}",
            "from": sender,
            "owner": owner or sender,
            "target": PID,
            "timestamp": 1_700_000_000_000 + n,
        }
        msg.update({k.replace("_", "-"): v for k, v in fields.items()})
        self.log.append(msg)
        result = self.proc.handle(msg)
        result["messages"] = self._patch(result["outbox"])
        return result

    def fund(self, who: str, amount: int) -> None:
        """The process itself holds the supply: the node delivers its self-sent transfer."""
        r = self.send(PID, owner=NODE, action="Transfer", recipient=who, quantity=str(amount))
        assert r["error"] is None

    @property
    def balances(self) -> dict[str, str]:
        value = self.proc.read("Balances")
        assert isinstance(value, dict)
        return value

    def supply(self) -> int:
        return int(self.proc.read("TotalSupply"))


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


def test_the_initial_state_is_patched_into_the_cache(ledger: Ledger) -> None:
    assert ledger.balances == {PID: str(SUPPLY)}
    assert ledger.cache == {"cache": {"balances": {PID: str(SUPPLY)}, "totalsupply": str(SUPPLY)}}


def test_transfer_moves_funds_notifies_both_and_patches_two_balances(ledger: Ledger) -> None:
    ledger.fund(ALICE, 1000)
    before = dict(ledger.cache["cache"]["balances"])
    r = ledger.send(ALICE, action="Transfer", recipient=BOB, quantity="250", x_memo="rent")
    assert r["error"] is None
    debit, credit = r["messages"]
    assert debit == {
        "target": ALICE,
        "action": "Debit-Notice",
        "recipient": BOB,
        "quantity": "250",
        "data": f"You transferred 250 to {BOB}",
        "x-memo": "rent",
        "reference": debit["reference"],
    }
    assert credit["target"] == BOB and credit["action"] == "Credit-Notice"
    assert credit["sender"] == ALICE and credit["quantity"] == "250"
    assert credit["x-memo"] == "rent"
    patch = next(m for m in r["outbox"] if m.get("device") == "patch@1.0")
    assert patch["cache"] == {"balances": {ALICE: "750", BOB: "250"}}
    # the other cached balances survive a patch that lists only two addresses
    assert ledger.cache["cache"]["balances"] == {**before, ALICE: "750", BOB: "250"}
    assert ledger.cache["cache"]["balances"] == ledger.balances


def test_transfers_conserve_supply(ledger: Ledger) -> None:
    holders = [ALICE, BOB, CAROL, DAVE]
    for h in holders:
        ledger.fund(h, 10_000)
    rng = random.Random(6)
    for _ in range(60):
        sender, recipient = rng.choice(holders), rng.choice(holders)
        ledger.send(
            sender, action="Transfer", recipient=recipient, quantity=str(rng.randint(1, 6000))
        )
    balances = ledger.balances
    assert sum(int(v) for v in balances.values()) == SUPPLY == ledger.supply()
    assert all(isinstance(v, str) and int(v) >= 0 for v in balances.values())
    assert ledger.cache["cache"]["balances"] == balances


def test_an_overdraft_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    ledger.fund(ALICE, 100)
    before = ledger.balances
    r = ledger.send(ALICE, action="Transfer", recipient=BOB, quantity="101")
    assert r["error"] is None
    assert r["outbox"] == [
        {
            "target": ALICE,
            "action": "Transfer-Error",
            "message-id": ledger.log[-1]["id"],
            "error": "Insufficient Balance!",
            "reference": r["outbox"][0]["reference"],
        }
    ]
    assert ledger.balances == before
    r = ledger.send(BOB, action="Transfer", recipient=ALICE, quantity="1")  # no balance at all
    assert r["outbox"][0]["error"] == "Insufficient Balance!"
    assert ledger.balances == before and BOB not in ledger.cache["cache"]["balances"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"recipient": BOB, "quantity": "0"}, "Quantity must be greater than 0!"),
        ({"recipient": BOB, "quantity": "-5"}, "whole number"),
        ({"recipient": BOB, "quantity": "1.5"}, "whole number"),
        ({"recipient": BOB, "quantity": "ten"}, "whole number"),
        ({"recipient": BOB}, "Quantity is required"),
        ({"quantity": "5"}, "Recipient is required!"),
    ],
)
def test_bad_transfers_are_errors(ledger: Ledger, fields: dict[str, Any], error: str) -> None:
    ledger.fund(ALICE, 100)
    before = ledger.balances
    r = ledger.send(ALICE, action="Transfer", **fields)
    assert error in r["error"]
    assert r["outbox"] == [] and ledger.balances == before


def test_cast_transfers_send_no_notices(ledger: Ledger) -> None:
    ledger.fund(ALICE, 100)
    r = ledger.send(ALICE, action="Transfer", recipient=BOB, quantity="10", cast="true")
    assert r["messages"] == []
    assert ledger.balances[BOB] == "10"


def test_balance_info_and_supply_queries(ledger: Ledger) -> None:
    ledger.fund(ALICE, 42)
    (reply,) = ledger.send(CAROL, action="Balance")["outbox"]
    assert reply["balance"] == reply["data"] == "0" and reply["account"] == CAROL
    (reply,) = ledger.send(CAROL, action="Balance", recipient=ALICE)["outbox"]
    assert reply["balance"] == "42" and reply["ticker"] == "PNTS" and reply["target"] == CAROL
    (reply,) = ledger.send(ALICE, action="Balance")["outbox"]
    assert reply["balance"] == "42"
    (reply,) = ledger.send(CAROL, action="Balances")["outbox"]
    assert json.loads(reply["data"]) == ledger.balances
    (reply,) = ledger.send(CAROL, action="Info")["outbox"]
    assert reply["name"] == "Points Coin" and reply["denomination"] == "12"
    assert reply["total-supply"] == str(SUPPLY)
    (reply,) = ledger.send(CAROL, action="Total-Supply")["outbox"]
    assert reply["action"] == "Total-Supply" and reply["data"] == str(SUPPLY)


def test_mint_is_for_the_owner_only(ledger: Ledger) -> None:
    r = ledger.send(ALICE, action="Mint", quantity="500")
    assert r["outbox"][0]["action"] == "Mint-Error"
    assert ledger.supply() == SUPPLY and ALICE not in ledger.balances
    r = ledger.send(OWNER, action="Mint", quantity="500")
    assert r["error"] is None
    assert ledger.balances[OWNER] == "500" and ledger.supply() == SUPPLY + 500
    assert ledger.cache["cache"]["totalsupply"] == str(SUPPLY + 500)
    assert ledger.cache["cache"]["balances"][OWNER] == "500"


def test_big_numbers_stay_exact_strings(ledger: Ledger) -> None:
    huge = 10**30 + 7
    ledger.send(OWNER, action="Mint", quantity=str(huge))
    ledger.send(OWNER, action="Transfer", recipient=ALICE, quantity=str(10**29 + 3))
    ledger.send(OWNER, action="Transfer", recipient=ALICE, quantity=99)  # an integer works too
    assert ledger.balances[OWNER] == str(huge - 10**29 - 3 - 99)
    assert ledger.balances[ALICE] == str(10**29 + 3 + 99)
    assert ledger.supply() == SUPPLY + huge
    ledger.send(ALICE, action="Burn", quantity=str(10**29))
    assert ledger.balances[ALICE] == "102"
    assert ledger.supply() == SUPPLY + huge - 10**29
    r = ledger.send(ALICE, action="Transfer", recipient=BOB, quantity=str(10**40))
    assert r["outbox"][0]["error"] == "Insufficient Balance!"
    assert ledger.cache["cache"]["balances"] == ledger.balances


def test_replay_rebuilds_the_same_ledger(ledger: Ledger) -> None:
    for who, amount in ((ALICE, 500), (BOB, 300)):
        ledger.fund(who, amount)
    ledger.send(ALICE, action="Transfer", recipient=CAROL, quantity="120")
    ledger.send(BOB, action="Transfer", recipient=ALICE, quantity="7")
    replayed = AosProcess()
    replayed.boot({"id": PID, "owner": OWNER, "authority": NODE}, [("token.lua", TOKEN_SOURCE)])
    for msg in ledger.log:
        replayed.handle(msg)
    assert replayed.read("Balances") == ledger.balances
