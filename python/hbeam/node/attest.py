"""The node's signature over its schedules: signed hash-chain heads ("attestations").

Every assignment carries ``hash-chain`` = blake3(previous chain ‖ message ID), so a
signature over the chain at slot N commits every assignment up to N. Instead of signing
each assignment (RSA-4096 costs milliseconds, which would cap durable scheduling near
100/s), the node signs the newest chain head of each process after commits, in the
background, coalescing bursts: an attestation is a message
``{type: Attestation, process, slot, hash-chain}`` committed by the node's wallet,
stored at ``attestations/<pid>/<slot>`` (and the newest at ``scheduler/<pid>/attested``).

:func:`verify_schedule` recomputes the chain from the stored assignments and checks it
against a verified attestation, so anyone holding the store (and the node's address) can
check that the schedule is the one the node signed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from hbeam import _core
from hbeam._sentinels import NOT_FOUND
from hbeam.errors import AOError, InvalidSignature, NotFound
from hbeam.node.scheduler import chain_step

if TYPE_CHECKING:
    from hbeam.node.runtime import Node

__all__ = ["Attestor", "verify_schedule"]


class Attestor:
    """Signs the newest chain head of each process after commits (one background thread)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._pending: dict[str, int] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="hbeam-attest", daemon=True)
        self._thread.start()

    def on_commit(self, pid: str, slot: int) -> None:
        """Scheduler listener: remember that ``pid`` reached ``slot``."""
        with self._cond:
            if slot > self._pending.get(pid, -1):
                self._pending[pid] = slot
            self._cond.notify()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every commit seen so far is attested."""
        with self._cond:
            self._cond.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                batch, self._pending = self._pending, {}
                self._busy = True
            try:
                for pid, slot in batch.items():
                    try:
                        self._attest(pid, slot)
                    except AOError:
                        continue  # the store is closing or full: the next commit retries
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _attest(self, pid: str, slot: int) -> None:
        from hbeam.commitment import commit

        node = self._node
        assignment = node.scheduler.assignment(pid, slot)
        if assignment is NOT_FOUND:
            return
        statement = _core.impl.Message(
            {
                "type": "Attestation",
                "process": pid,
                "slot": slot,
                "hash-chain": assignment["hash-chain"],
            }
        )
        signed = commit(statement, node.wallet)
        data = _core.impl.encode(signed)
        node.write_async(
            [(f"attestations/{pid}/{slot}", data), (f"scheduler/{pid}/attested", data)]
        )


def latest(node: Node, pid: str) -> Any:
    """The newest attestation of ``pid`` (a signed message), or ``NOT_FOUND``."""
    node.store.flush()
    raw = node.store.read(f"scheduler/{pid}/attested")
    return NOT_FOUND if raw is None else _core.impl.decode(raw)


def verify_schedule(node: Node, pid: str, signer: str | None = None) -> int:
    """Check the stored schedule of ``pid`` against the node's newest attestation.

    Recomputes the hash chain from slot 0 through the attested slot and checks the
    attestation's signature (and, when given, that ``signer`` made it).

    Returns:
        The attested slot: every assignment up to it is the one the node signed.

    Raises:
        NotFound: no attestation yet.
        InvalidSignature: the attestation does not verify, was made by someone else, or
            an assignment differs from what was attested.
    """
    from hbeam.commitment import check

    attestation = latest(node, pid)
    if attestation is NOT_FOUND:
        raise NotFound(f"process {pid} has no attestation yet")
    signers = check(attestation)
    if not signers:
        raise InvalidSignature(f"the attestation of {pid} is not signed")
    if signer is not None and signer not in signers:
        raise InvalidSignature(f"the attestation of {pid} was signed by {signers}, not {signer}")
    upto = int(attestation["slot"])
    chain, chain_text = b"", ""
    impl = _core.impl
    for slot in range(upto + 1):
        assignment = node.scheduler.assignment(pid, slot, from_store=True)
        if assignment is NOT_FOUND:
            raise InvalidSignature(f"slot {slot} of {pid} is missing from the attested schedule")
        if impl.id(assignment["body"]) != assignment["message"]:
            raise InvalidSignature(f"slot {slot} of {pid}: the message does not match its ID")
        chain, chain_text = chain_step(chain, assignment["message"])
        if chain_text != assignment["hash-chain"]:
            raise InvalidSignature(f"slot {slot} of {pid}: the hash chain is broken")
    if chain_text != attestation["hash-chain"]:
        raise InvalidSignature(f"the schedule of {pid} differs from what the node attested")
    return upto
