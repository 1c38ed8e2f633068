"""The node signs its schedules: attested hash-chain heads that anyone can check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hbeam import InvalidSignature, NotFound, device
from hbeam.node import Node
from hbeam.node.attest import latest, verify_schedule
from hbeam.wallet import Wallet


class Noop:
    def init(self, base: Any, req: Any, opts: Any) -> Any:
        return base

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        return base


device.register("test-noop@1.0", Noop())


@pytest.fixture(scope="module")
def node_wallet() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture
def node(backend: ModuleType, tmp_path: Path, node_wallet: Wallet) -> Iterator[Node]:
    with Node(f"lmdb:{tmp_path / 'n'}", wallet=node_wallet, eager=False) as n:
        yield n


def test_the_schedule_is_attested_by_the_node_wallet(node: Node, node_wallet: Wallet) -> None:
    pid = node.spawn({"execution-device": "test-noop@1.0"})
    node.schedule_many(pid, [{"n": i} for i in range(5)])
    assert node.attestor is not None
    node.attestor.flush()
    assert verify_schedule(node, pid, signer=node_wallet.address) == 5
    assert latest(node, pid)["slot"] == 5


def test_a_rewritten_assignment_breaks_verification(node: Node) -> None:
    from hbeam import _core

    pid = node.spawn({"execution-device": "test-noop@1.0"})
    node.schedule_many(pid, [{"n": i} for i in range(3)])
    assert node.attestor is not None
    node.attestor.flush()
    forged = node.scheduler.assignment(pid, 2).set("body", {"n": 99})
    node.store.write(f"assignments/{pid}/2", _core.impl.encode(forged))
    with pytest.raises(InvalidSignature, match="slot 2"):
        verify_schedule(node, pid)


def test_another_signer_is_refused_and_none_yet_is_not_found(node: Node) -> None:
    pid = node.spawn({"execution-device": "test-noop@1.0"})
    assert node.attestor is not None
    node.attestor.flush()
    with pytest.raises(InvalidSignature, match="not"):
        verify_schedule(node, pid, signer="x" * 43)
    with pytest.raises(NotFound):
        verify_schedule(node, "y" * 43)
