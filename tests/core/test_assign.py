"""``assign_many``: a batch of assignments equals the one-by-one ``id``/``Message``/``encode``
steps, with the hash chain computed here from first principles; both backends agree."""

from __future__ import annotations

import base64
import math
import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial
from types import ModuleType
from typing import Any

import pytest
from blake3 import blake3
from hbeam.errors import AOError, InvalidMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PID = "P" * 43
MAX_SLOT = (1 << 63) - 1


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _one_by_one(
    backend: ModuleType,
    process: Any,
    messages: list[Any],
    slot: int,
    chain: bytes,
    timestamp: int,
    block_height: int,
    block_timestamp: int,
) -> tuple[list[Any], list[bytes], bytes]:
    """What the scheduler did before ``assign_many``: each step with the core's functions."""
    assignments, encodings = [], []
    for offset, message in enumerate(messages):
        message_id = backend.id(message)
        chain = blake3(chain + base64.urlsafe_b64decode(message_id + "=")).digest()
        assignment = backend.Message(
            {
                "path": "compute",
                "data-protocol": "ao",
                "variant": "ao.N.1",
                "type": "Assignment",
                "process": process,
                "epoch": "0",
                "slot": slot + offset,
                "timestamp": timestamp,
                "block-height": block_height,
                "block-timestamp": block_timestamp,
                "hash-chain": _b64(chain),
                "message": message_id,
                "body": message,
            }
        )
        assignments.append(assignment)
        encodings.append(backend.encode(assignment))
    return assignments, encodings, chain


def test_a_batch_equals_the_steps_one_by_one(backend: ModuleType) -> None:
    messages: list[Any] = [
        backend.Message({"action": "Transfer", "quantity": str(i), "n": i}) for i in range(5)
    ]
    messages += [
        {"plain": "dict", "nested": {"a": [1, 2.5, None, b"x"]}},
        OrderedDict(k="v"),
        backend.Message({"signed": "yes", "commitments": {"c1": {"sig": "s"}}}),
        backend.Message({"priv-x": "hidden", "shown": True}),
        "a text message",
        [1, "two"],
    ]
    chain = b"\x07" * 32
    args = (PID, messages, 17, chain, 1_700_000_000_123, 5, 1_700_000_000)
    assignments, encodings, after = backend.assign_many(*args)
    want, want_encodings, want_chain = _one_by_one(backend, *args)
    assert encodings == want_encodings
    assert after == want_chain
    assert assignments == want
    for slot, (assignment, encoded) in enumerate(zip(assignments, encodings, strict=True), 17):
        assert type(assignment) is backend.Message
        assert assignment["slot"] == slot
        assert backend.encode(assignment) == encoded
        assert backend.decode(encoded) == assignment
    # the commitments are in the body, not in the ID
    signed = assignments[7]
    assert signed["message"] == backend.id(messages[7])
    assert "commitments" in signed["body"]
    # a Message body is the very object given
    assert assignments[0]["body"] is messages[0]


def test_the_chain_is_blake3_of_the_previous_chain_and_the_raw_id(backend: ModuleType) -> None:
    bodies = [{"n": i} for i in range(3)]
    assignments, _, after = backend.assign_many(PID, bodies, 0, b"", 1, 0, 0)
    chain = b""
    for body, assignment in zip(bodies, assignments, strict=True):
        raw_id = blake3(backend.encode(backend.Message(body))).digest()
        chain = blake3(chain + raw_id).digest()
        assert assignment["message"] == _b64(raw_id)
        assert assignment["hash-chain"] == _b64(chain)
    assert after == chain
    # a batch split in two continues the same chain
    first, _, middle = backend.assign_many(PID, bodies[:1], 0, b"", 1, 0, 0)
    rest, _, end = backend.assign_many(PID, bodies[1:], 1, middle, 1, 0, 0)
    assert [*first, *rest] == assignments and end == after


def test_no_messages_give_nothing_and_the_same_chain(backend: ModuleType) -> None:
    chain = b"abc"
    assignments, encodings, after = backend.assign_many(PID, [], 3, chain, 1, 0, 0)
    assert assignments == [] and encodings == [] and after is chain
    assert backend.assign_many(PID, (), MAX_SLOT, b"", 1, 0, 0)[2] == b""


def test_slots_run_up_to_the_largest_i64(backend: ModuleType) -> None:
    assignments, _, _ = backend.assign_many(PID, [{"a": 1}, {"a": 2}], MAX_SLOT - 1, b"", 1, 0, 0)
    assert [a["slot"] for a in assignments] == [MAX_SLOT - 1, MAX_SLOT]


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"messages": {"a": 1}}, "assign_many expects a list of messages, got dict"),
        ({"slot": "1"}, "assign_many: slot must be an int, got str"),
        ({"slot": True}, "assign_many: slot must be an int, got bool"),
        (
            {"slot": -1},
            "assign_many: cannot assign 2 slots from -1 (slots are 0..9223372036854775807)",
        ),
        (
            {"slot": MAX_SLOT},
            "assign_many: cannot assign 2 slots from 9223372036854775807 "
            "(slots are 0..9223372036854775807)",
        ),
        (
            {"slot": 1 << 70},
            f"assign_many: cannot assign 2 slots from {1 << 70} (slots are 0..{MAX_SLOT})",
        ),
        ({"chain": "abc"}, "assign_many: chain must be bytes, got str"),
        ({"chain": bytearray(b"x")}, "assign_many: chain must be bytes, got bytearray"),
        ({"timestamp": 1.5}, "assign_many: timestamp must be an int, got float"),
        ({"block_height": None}, "assign_many: block_height must be an int, got NoneType"),
        ({"block_timestamp": False}, "assign_many: block_timestamp must be an int, got bool"),
        # checked in order: the list first
        ({"messages": 5, "slot": "x"}, "assign_many expects a list of messages, got int"),
        ({"chain": 5, "timestamp": "x"}, "assign_many: chain must be bytes, got int"),
    ],
)
def test_bad_arguments_are_refused(backend: ModuleType, change: dict[str, Any], text: str) -> None:
    args: dict[str, Any] = {
        "process": PID,
        "messages": [{"a": 1}, {"a": 2}],
        "slot": 0,
        "chain": b"",
        "timestamp": 1,
        "block_height": 0,
        "block_timestamp": 0,
    }
    args.update(change)
    with pytest.raises(InvalidMessage) as info:
        backend.assign_many(*args.values())
    assert str(info.value) == text


def _deep(backend: ModuleType, levels: int) -> Any:
    value: Any = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return backend.Message(value)


def test_message_errors_are_those_of_the_steps_in_order(backend: ModuleType) -> None:
    def error(process: Any, messages: list[Any]) -> str:
        with pytest.raises(InvalidMessage) as info:
            backend.assign_many(process, messages, 0, b"", 1, 0, 0)
        return str(info.value)

    # the ID's error (no key path) comes first
    assert error(PID, [{"a": 1}, {"x": 1.5j}]) == "unsupported value type complex at key 'x'"
    assert error({1, 2}, [{"x": 1.5j}]) == "unsupported value type complex at key 'x'"
    # then the process (only once a message needs it), then the body
    assert error({1, 2}, [{"a": 1}]) == "unsupported value type set at key 'process'"
    assert backend.assign_many({1, 2}, [], 0, b"", 1, 0, 0)[0] == []
    deep = _deep(backend, backend.MAX_DEPTH)
    assert error(PID, [{"a": 1}, deep]) == (
        f"nesting deeper than {backend.MAX_DEPTH} levels at key 'body'"
    )
    # one level less fits
    ok = backend.assign_many(PID, [_deep(backend, backend.MAX_DEPTH - 1)], 0, b"", 1, 0, 0)
    assert len(ok[0]) == 1


# ------------------------------------------------------------------- parity


def _canon(value: Any) -> Any:
    if isinstance(value, Mapping):
        return ("M", [(k, _canon(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_canon(v) for v in value])
    if isinstance(value, float):
        return ("f", struct.pack(">d", value) if not math.isnan(value) else "nan")
    return (type(value).__name__, value)


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        assignments, encodings, chain = call()
    except AOError as exc:
        return ("raise", type(exc).__name__, str(exc))
    return ("ok", [_canon(a) for a in assignments], encodings, chain)


_key = st.text(alphabet="abcAB-_pPrRiIvV0é", min_size=1, max_size=6)
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
)
_value = st.recursive(
    _leaf,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(_key, kids, max_size=3)),
    max_leaves=12,
)
_garbage = st.one_of(st.just({1, 2}), st.just(1.5j), st.just("x\ud800"), st.just(object()))
_dict_message = st.dictionaries(
    st.one_of(_key, st.sampled_from(["commitments", "priv", "Commitments"])),
    _value,
    max_size=6,
)
_message = st.one_of(
    _dict_message,
    _dict_message,
    _dict_message,
    st.lists(_value, max_size=3),
    st.text(max_size=5),
    st.dictionaries(_key, _garbage, min_size=1, max_size=1),
)


# both_backends only hands out the two (stateless) modules: sharing it across inputs is fine
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=st.lists(st.tuples(_message, st.booleans()), min_size=1, max_size=6),
    process=st.one_of(st.just(PID), st.just(PID), st.text(max_size=6), _value, _garbage),
    slot=st.one_of(
        st.integers(0, 1000),
        st.integers(0, 1000),
        st.integers(MAX_SLOT - 8, MAX_SLOT),
        st.integers(),
    ),
    chain=st.binary(max_size=40),
    stamps=st.tuples(st.integers(), st.integers(0, 10**6), st.integers(0, 10**12)),
)
def test_native_and_pure_agree(
    both_backends: tuple[ModuleType, ModuleType],
    messages: list[tuple[Any, bool]],
    process: Any,
    slot: int,
    chain: bytes,
    stamps: tuple[int, int, int],
) -> None:
    pure, native = both_backends
    results = []
    for backend in (pure, native):
        batch = []
        for message, as_message in messages:
            # a core Message (the scheduler's case) when it can be one, else as given
            if as_message and isinstance(message, dict):
                try:
                    message = backend.Message(message)
                except AOError:
                    pass
            batch.append(message)
        results.append(_outcome(partial(backend.assign_many, process, batch, slot, chain, *stamps)))
    assert results[0] == results[1]
    if results[0][0] == "ok":
        # and both equal the steps one by one
        want = _one_by_one(pure, process, [m for m, _ in messages], slot, chain, *stamps)
        assert results[0][2] == want[1] and results[0][3] == want[2]
