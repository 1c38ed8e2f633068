"""Seed 000 end to end, in-process with real Lua: token patching, cache reads, dynamic
functions, composable chains, state synchronisation, notices between local processes.

The seed's Lua snippets are used as the seed prints them (``tests/lua/seed000/``).
``.load token.lua`` in the aos console becomes: publish the bundled token blueprint and
spawn with it; what the seed types into the console becomes ``Eval`` messages from the
process owner.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam.lua import TOKEN_SOURCE
from hbeam.node import Node

_SEED_DIR = Path(__file__).parents[1] / "lua" / "seed000"


def _seed(name: str) -> str:
    """A Lua snippet of seed 000, byte for byte (tests/lua checks them against the seed)."""
    return (_SEED_DIR / name).read_text(encoding="utf-8")


PATCH_TRANSFER = _seed("patch_transfer.lua")

TEST_YOUR_PATCH = _seed("console_test.lua")

SUM_KV = _seed("sum_kv.lua")

CHAINS = _seed("chains.lua")

SYNC_CACHES = _seed("sync_caches.lua")

ALICE = "alice-" + "a" * 37
HOLDER = "holder-" + "h" * 36
SEED_RECIPIENT = "vh-NTHVvlKZqRxc8LyyTNok65yQ55a_PJ1zWLb9G2JI"
SUPPLY = 10_000_000_000_000_000  # the blueprint's initial supply, held by the process

# A process running the seed's own patchTransfer / syncCaches (they use numeric balances
# and a Metadata table), wired to actions.
DEMO = (
    "Balances = Balances or { [Owner] = 100000 }\nMetadata = Metadata or {}\n"
    + PATCH_TRANSFER
    + SYNC_CACHES
    + """
Handlers.add("Patch-Transfer", Handlers.utils.hasMatchingTag("Action", "Patch-Transfer"),
  function(msg)
    local result = patchTransfer(msg)
    if result.error then msg.reply({ Action = "Patch-Transfer-Error", Error = result.error }) end
  end)
Handlers.add("Sync-Caches", Handlers.utils.hasMatchingTag("Action", "Sync-Caches"), syncCaches)
"""
)

# A wallet process: records the notices it receives in its cache.
WALLET = """
Handlers.add("Notices",
  function(msg) return msg.Action == "Credit-Notice" or msg.Action == "Debit-Notice" end,
  function(msg)
    Send({ device = "patch@1.0",
           cache = { notices = { [msg.Action] = { quantity = msg.Quantity, from = msg.From } } } })
  end)
"""


def settle(node: Node, *pids: str) -> None:
    """Compute every process until pushes (self-sends, notices) add no more slots."""
    while True:
        before = [node.slot(p) for p in pids]
        for p in pids:
            node.now(p)
        if [node.slot(p) for p in pids] == before:
            return


def public(msg: Any) -> dict[str, Any]:
    return {k: v for k, v in msg.items() if not k.startswith("priv")}


def evaluate(node: Node, pid: str, code: str) -> int:
    """What typing ``code`` into the aos console of ``pid`` does: an Eval from the owner."""
    slot: int = node.schedule(pid, {"from": ALICE, "action": "Eval", "data": code})["slot"]
    return slot


def send(node: Node, pid: str, sender: str, **tags: Any) -> int:
    slot: int = node.schedule(pid, {"from": sender, **tags})["slot"]
    return slot


def outbox(node: Node, pid: str, slot: int) -> list[Any]:
    box = node.compute(pid, slot)["results"]["outbox"]
    return [box[k] for k in sorted(box, key=int)]


def cached_balances(node: Node, pid: str) -> dict[str, Any]:
    return public(node.resolve(f"/{pid}~process@1.0/now/cache/balances"))


@pytest.fixture
def node(backend: ModuleType, tmp_path: Path) -> Iterator[Node]:
    with Node(f"lmdb:{tmp_path / 'node'}", eager=False) as n:
        yield n


@pytest.fixture
def token(node: Node) -> str:
    """aos my-token-process; .load token.lua; the seed's patch; the seed's test transfer."""
    token_id = node.publish(TOKEN_SOURCE, "application/lua")
    pid = node.spawn_lua(token_id, owner=ALICE)
    assert cached_balances(node, pid) == {pid: str(SUPPLY)}  # the blueprint's load-time patch
    evaluate(node, pid, PATCH_TRANSFER)
    check, transfer = TEST_YOUR_PATCH.split("\n\n")
    slot = evaluate(node, pid, check)
    assert pid in node.compute(pid, slot)["results"]["output"]["data"]  # `Balances` printed
    evaluate(node, pid, transfer)
    settle(node, pid)
    return pid


def test_the_seed_transfer_is_a_self_send_that_patches_the_cache(node: Node, token: str) -> None:
    transfer = next(
        s
        for s in range(1, node.slot(token) + 1)
        if node.scheduler.assignment(token, s)["body"].get("action") == "Transfer"
    )
    body = node.scheduler.assignment(token, transfer)["body"]
    assert body["from"] == token and body["from-process"] == token  # back in its own schedule
    base = f"/{token}~process@1.0/now/cache/balances"
    assert node.resolve(f"{base}/{SEED_RECIPIENT}") == "10000"
    assert node.resolve(f"{base}/{token}") == str(SUPPLY - 10000)


def test_a_transfer_of_10000_from_the_owner_updates_both_cached_balances(
    node: Node, token: str
) -> None:
    send(node, token, ALICE, action="Mint", quantity="50000")
    send(node, token, ALICE, action="Transfer", recipient=HOLDER, quantity="10000")
    base = f"/{token}~process@1.0/now/cache/balances"
    assert node.resolve(f"{base}/{HOLDER}") == "10000"
    assert node.resolve(f"{base}/{ALICE}") == "40000"


def test_an_overdraft_leaves_the_cache_unchanged(node: Node, token: str) -> None:
    before = cached_balances(node, token)
    slot = send(node, token, SEED_RECIPIENT, action="Transfer", recipient=HOLDER, quantity="20000")
    (reply,) = outbox(node, token, slot)
    assert reply["action"] == "Transfer-Error" and reply["error"] == "Insufficient Balance!"
    assert reply["target"] == SEED_RECIPIENT
    assert cached_balances(node, token) == before


def test_a_two_address_patch_keeps_the_other_holders(node: Node, token: str) -> None:
    evaluate(
        node,
        token,
        f'Send({{Target = ao.id, Action = "Transfer", Recipient = "{HOLDER}", Quantity = "5"}})',
    )
    settle(node, token)
    assert cached_balances(node, token) == {
        token: str(SUPPLY - 10005),
        SEED_RECIPIENT: "10000",  # not in the last patch, still cached
        HOLDER: "5",
    }


def test_serialize_and_format_json_agree(node: Node, token: str) -> None:
    base = f"/{token}~process@1.0/now/cache/balances"
    serialized = node.resolve(f"{base}/serialize~json@1.0")
    formatted = node.resolve(f"{base}/format~json@1.0")
    assert serialized["body"] == formatted["body"]
    assert json.loads(serialized["body"]) == cached_balances(node, token)


def test_the_sum_dynamic_function_at_cache_and_at_the_seed_url(node: Node, token: str) -> None:
    sum_id = node.publish(SUM_KV, "application/lua")
    slots = node.slot(token)
    metrics = node.resolve(f"/{token}~process@1.0/now/cache/~lua@5.3a&module={sum_id}/sum")
    assert public(metrics) | {"AverageBalance": None} == {
        "CirculatingSupply": str(SUPPLY),
        "BalanceCount": "2",
        "MaxBalance": str(SUPPLY - 10000),
        "MinBalance": "10000",
        "AverageBalance": None,
    }
    assert float(metrics["AverageBalance"]) == SUPPLY / 2
    # the seed's own URL: the base is the balances map itself, which has no `balances` key
    seed_url = f"/{token}~process@1.0/now/cache/balances/~lua@5.3a/sum&module={sum_id}"
    zero = {
        "CirculatingSupply": "0",
        "BalanceCount": "0",
        "MaxBalance": "0",
        "MinBalance": "0",
        "AverageBalance": "0",
    }
    assert public(node.resolve(seed_url)) == zero
    assert json.loads(node.resolve(f"{seed_url}/serialize~json@1.0")["body"]) == zero
    assert node.resolve(f"{seed_url}/format~hyperbuddy@1.0")
    assert node.slot(token) == slots  # read-only: nothing scheduled
    assert cached_balances(node, token)[SEED_RECIPIENT] == "10000"


def test_composable_function_chains(node: Node, token: str) -> None:
    chain_id = node.publish(SUM_KV + CHAINS, "application/lua")
    cast = f"~lua@5.3a&module={chain_id}"
    base = f"/{token}~process@1.0/now/cache/{cast}"
    big = node.resolve(f"{base}/filterLargeHolders&threshold=20000/{cast}/calculateMetrics")
    assert big["BalanceCount"] == "1" and big["MinBalance"] == str(SUPPLY - 10000)
    both = node.resolve(f"{base}/filterLargeHolders&threshold=5000/{cast}/calculateMetrics")
    assert both["BalanceCount"] == "2" and both["CirculatingSupply"] == str(SUPPLY)
    filtered = node.resolve(f"{base}/filterLargeHolders")  # default threshold 1000
    assert set(public(filtered["balances"])) == {token, SEED_RECIPIENT}


def test_the_seeds_patch_transfer_and_sync_caches(node: Node, token: str) -> None:
    demo = node.spawn_lua(DEMO, owner=ALICE)
    send(node, demo, ALICE, action="Patch-Transfer", recipient=SEED_RECIPIENT, quantity="10000")
    assert cached_balances(node, demo) == {ALICE: 90000, SEED_RECIPIENT: 10000}
    slot = send(node, demo, ALICE, action="Patch-Transfer", recipient=HOLDER, quantity="100000")
    (reply,) = outbox(node, demo, slot)
    assert reply["error"] == "Insufficient balance"
    assert cached_balances(node, demo) == {ALICE: 90000, SEED_RECIPIENT: 10000}

    slots = {p: node.slot(p) for p in (token, demo)}
    sync = send(node, demo, ALICE, action="Sync-Caches", recipient=SEED_RECIPIENT)
    settle(node, token, demo)
    state = node.compute(demo, sync)
    stamp = node.scheduler.assignment(demo, sync)["timestamp"]
    assert public(state["cache"]["metadata"]) == {"lastTransfer": stamp, "totalTransfers": 1}
    (backup,) = outbox(node, demo, sync)  # the patch@1.0 message was moved into the cache
    assert backup["device"] == "backup-cache@1.0" and "target" not in backup
    assert backup["cache"]["balances"][SEED_RECIPIENT] == 10000
    assert {p: node.slot(p) for p in (token, demo)} == slots | {demo: sync}  # never delivered


def test_notices_are_delivered_to_local_processes(node: Node, token: str) -> None:
    wallet_id = node.publish(WALLET, "application/lua")
    w1 = node.spawn_lua(wallet_id, owner=ALICE, tags={"name": "w1"})
    w2 = node.spawn_lua(wallet_id, owner=ALICE, tags={"name": "w2"})
    evaluate(
        node,
        token,
        f'Send({{Target = ao.id, Action = "Transfer", Recipient = "{w1}", Quantity = "5000"}})',
    )
    settle(node, token, w1, w2)
    credit = node.resolve(f"/{w1}~process@1.0/now/cache/notices/Credit-Notice")
    assert public(credit) == {"quantity": "5000", "from": token}
    # w1 spends through its own outbox: the token sees w1 as the sender
    evaluate(
        node,
        w1,
        f'Send({{Target = "{token}", Action = "Transfer", Recipient = "{w2}", Quantity = "1250"}})',
    )
    settle(node, token, w1, w2)
    debit = node.resolve(f"/{w1}~process@1.0/now/cache/notices/Debit-Notice")
    assert public(debit) == {"quantity": "1250", "from": token}
    credit2 = node.resolve(f"/{w2}~process@1.0/now/cache/notices/Credit-Notice")
    assert public(credit2) == {"quantity": "1250", "from": token}
    balances = cached_balances(node, token)
    assert balances[w1] == "3750" and balances[w2] == "1250"
