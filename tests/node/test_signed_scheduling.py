"""In-process scheduling of signed messages: verified senders, replay protection, owners."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam import InvalidSignature, device
from hbeam.commitment import commit
from hbeam.node import Node
from hbeam.wallet import Wallet


class Recorder:
    """Keeps the sender of every message it computes."""

    def init(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("senders", [])

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("senders", [*base["senders"], req["body"].get("from")])


device.register("test-recorder@1.0", Recorder())


@pytest.fixture(scope="module")
def alice() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture(scope="module")
def bob() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture
def node(backend: ModuleType, tmp_path: Path) -> Iterator[Node]:
    with Node(f"lmdb:{tmp_path / 'n'}") as n:
        yield n


def test_from_is_the_verified_signer_not_what_was_typed(
    node: Node, alice: Wallet, bob: Wallet
) -> None:
    pid = node.spawn({"execution-device": "test-recorder@1.0"})
    forged = commit({"action": "Transfer", "from": bob.address}, alice)
    node.schedule(pid, forged)
    node.schedule(pid, {"action": "Trusted", "from": "in-process"})
    assert node.now(pid)["senders"] == [alice.address, "in-process"]


def test_a_replayed_signed_message_gets_its_first_slot(node: Node, alice: Wallet) -> None:
    pid = node.spawn({"execution-device": "test-recorder@1.0"})
    msg = commit({"action": "Transfer", "quantity": "1"}, alice)
    first = node.schedule(pid, msg)
    again = node.schedule(pid, msg)
    assert again["slot"] == first["slot"] == 1
    assert node.slot(pid) == 1
    other = node.schedule(pid, commit({"action": "Transfer", "quantity": "2"}, alice))
    assert other["slot"] == 2


def test_a_tampered_message_is_refused(node: Node, alice: Wallet) -> None:
    pid = node.spawn({"execution-device": "test-recorder@1.0"})
    msg = commit({"action": "Transfer", "quantity": "1"}, alice)
    tampered = msg.set("quantity", "1000") if hasattr(msg, "set") else {**msg, "quantity": "1000"}
    with pytest.raises(InvalidSignature):
        node.schedule(pid, tampered)
    assert node.slot(pid) == 0


def test_a_signed_spawn_makes_the_signer_the_owner(node: Node, alice: Wallet) -> None:
    definition = commit({"execution-device": "test-recorder@1.0", "name": "owned"}, alice)
    pid = node.spawn(definition)
    assert node.definition(pid)["owner"] == alice.address
    assert node.spawn(definition) == pid


def test_a_signed_process_resolves_by_its_signed_id(node: Node, alice: Wallet) -> None:
    pid = node.spawn(commit({"execution-device": "test-recorder@1.0", "name": "p"}, alice))
    node.schedule(pid, {"action": "x", "from": "me"})
    assert node.resolve(f"/{pid}~process@1.0/now/senders") == ["me"]


def test_a_coroutine_schedules_with_the_same_checks(node: Node, alice: Wallet, bob: Wallet) -> None:
    """``schedule_async``/``schedule_many_async`` verify, replace ``from``, answer a replay
    with its first slot, and refuse an unknown process or a bad signature, as ``schedule``."""
    import asyncio

    from hbeam import NotFound

    pid = node.spawn({"execution-device": "test-recorder@1.0"})
    signed = commit({"action": "Transfer", "from": bob.address}, alice)
    tampered = {**commit({"action": "Transfer", "quantity": "1"}, alice), "quantity": "9"}

    async def run() -> None:
        first = await node.schedule_async(pid, signed)
        again, trusted = await node.schedule_many_async(
            pid, [signed, {"action": "Trusted", "from": "in-process"}]
        )
        assert again["slot"] == first["slot"] == 1 and trusted["slot"] == 2  # 0: the spawn
        with pytest.raises(NotFound):
            await node.schedule_async("X" * 43, {"action": "Nowhere"})
        with pytest.raises(InvalidSignature):
            await node.schedule_async(pid, tampered)

    asyncio.run(run())
    assert node.now(pid)["senders"] == [alice.address, "in-process"]


def test_admit_is_what_schedule_hands_the_scheduler(node: Node, alice: Wallet, bob: Wallet) -> None:
    from hbeam import NotFound

    pid = node.spawn({"execution-device": "test-recorder@1.0"})
    admitted = node.admit(pid, commit({"action": "Transfer", "from": bob.address}, alice))
    assert admitted["from"] == alice.address
    assert node.admit(pid, {"action": "Trusted", "from": "in-process"})["from"] == "in-process"
    with pytest.raises(NotFound):
        node.admit("X" * 43, {"action": "Nowhere"})
    tampered = {**commit({"action": "Transfer", "quantity": "1"}, alice), "quantity": "9"}
    with pytest.raises(InvalidSignature):
        node.admit(pid, tampered)
    assert node.scheduler.schedule(pid, admitted)["slot"] == 1
    assert node.now(pid)["senders"] == [alice.address]
