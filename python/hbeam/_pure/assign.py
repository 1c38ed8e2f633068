"""``assign_many``: the scheduler's per-message work for a batch in one core call.

Twin of ``rust/src/assign.rs``; the contract is ``docs/core-contract.md`` §assign_many.
Each message gets its ID, the next link of the hash chain (``blake3(chain ‖ raw ID)``),
an assignment Message and that Message's encoding — exactly what ``id``, ``Message`` and
``encode`` of this backend give one at a time.
"""

from __future__ import annotations

import binascii
from typing import Any, Final

from blake3 import blake3

from hbeam._pure.hashpath import b64, encode, id
from hbeam._pure.message import Message
from hbeam.errors import InvalidMessage

__all__ = ["assign_many"]

_MAX_SLOT: Final = (1 << 63) - 1
_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")


def _int_arg(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__int__(value)
    raise InvalidMessage(f"assign_many: {name} must be an int, got {type(value).__name__}")


def _raw_id(message_id: str) -> bytes:
    """The 32 bytes of a 43-character base64url ID."""
    try:
        return binascii.a2b_base64(message_id.encode("ascii").translate(_TO_STANDARD) + b"=")
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise InvalidMessage(f"assign_many: bad message ID '{message_id}'") from exc


def assign_many(
    process: Any,
    messages: Any,
    slot: Any,
    chain: Any,
    timestamp: Any,
    block_height: Any,
    block_timestamp: Any,
) -> tuple[list[Message], list[bytes], bytes]:
    """The assignments of ``messages`` to slots ``slot, slot + 1, …`` of ``process``:
    ``(assignments, their encodings, the hash chain after the last)``.

    Message ``i`` gets ``id(message)``, the chain ``blake3(previous chain ‖ raw ID)``
    (starting from ``chain``) and the assignment ``Message({"path": "compute",
    "data-protocol": "ao", "variant": "ao.N.1", "type": "Assignment", "process": process,
    "epoch": "0", "slot": slot + i, "timestamp": timestamp, "block-height": block_height,
    "block-timestamp": block_timestamp, "hash-chain": <chain, base64url>, "message": <ID>,
    "body": message})``, then ``encode`` of it. No messages → ``([], [], chain)``.

    Raises:
        InvalidMessage: ``messages`` is not a list or tuple; ``slot``, ``timestamp``,
            ``block_height`` or ``block_timestamp`` is not an ``int``; a slot would fall
            outside ``0..2**63-1``; ``chain`` is not ``bytes``; or a message (or
            ``process``) cannot be stored — the error ``id``/``Message`` raise for the
            first message that fails.
    """
    if not isinstance(messages, (list, tuple)):
        raise InvalidMessage(
            f"assign_many expects a list of messages, got {type(messages).__name__}"
        )
    first = _int_arg("slot", slot)
    count = len(messages)
    if first < 0 or first + max(count, 1) - 1 > _MAX_SLOT:
        raise InvalidMessage(
            f"assign_many: cannot assign {count} slots from {first} (slots are 0..{_MAX_SLOT})"
        )
    if not isinstance(chain, bytes):
        raise InvalidMessage(f"assign_many: chain must be bytes, got {type(chain).__name__}")
    stamp = _int_arg("timestamp", timestamp)
    height = _int_arg("block_height", block_height)
    block_stamp = _int_arg("block_timestamp", block_timestamp)
    if not messages:
        return [], [], chain
    assignments: list[Message] = []
    encodings: list[bytes] = []
    now = bytes(chain)
    for offset, message in enumerate(messages):
        message_id = id(message)
        digest = blake3(now + _raw_id(message_id)).digest()
        now = digest
        assignment = Message(
            {
                "path": "compute",
                "data-protocol": "ao",
                "variant": "ao.N.1",
                "type": "Assignment",
                "process": process,
                "epoch": "0",
                "slot": first + offset,
                "timestamp": stamp,
                "block-height": height,
                "block-timestamp": block_stamp,
                "hash-chain": b64(digest),
                "message": message_id,
                "body": message,
            }
        )
        encodings.append(encode(assignment))
        assignments.append(assignment)
    return assignments, encodings, now
