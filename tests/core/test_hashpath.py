"""Canonical encoding, IDs and hash paths (contract; core.md §11-12).

Expected IDs and hash paths are FIXED strings: any drift of the encoding or the chain on
either backend fails here.
"""

from __future__ import annotations

import base64
import math
import struct
from types import ModuleType
from typing import Any

import pytest
from blake3 import blake3
from hbeam.errors import InvalidMessage, InvalidPath


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


# ------------------------------------------------------------------ encode


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, b"n"),
        (True, b"t"),
        (False, b"f"),
        (0, b"i" + _u32(1) + b"0"),
        (-12, b"i" + _u32(3) + b"-12"),
        (10**20, b"i" + _u32(21) + b"1" + b"0" * 20),
        (1.5, b"d" + struct.pack(">d", 1.5)),
        (-0.0, b"d" + bytes(8)),
        (math.nan, b"d\x7f\xf8" + bytes(6)),
        (-math.nan, b"d\x7f\xf8" + bytes(6)),
        (struct.unpack(">d", bytes.fromhex("7ff0000000000001"))[0], b"d\x7f\xf8" + bytes(6)),
        (math.inf, b"d" + struct.pack(">d", math.inf)),
        ("", b"s" + _u32(0)),
        ("é", b"s" + _u32(2) + "é".encode()),
        (b"\x00\xff", b"b" + _u32(2) + b"\x00\xff"),
        (bytearray(b"x"), b"b" + _u32(1) + b"x"),
        ([], b"l" + _u32(0)),
        ((1, "a"), b"l" + _u32(2) + b"i" + _u32(1) + b"1" + b"s" + _u32(1) + b"a"),
        ({}, b"m" + _u32(0)),
        (
            {"b": 1, "a": [None]},
            b"m" + _u32(2) + _u32(1) + b"al" + _u32(1) + b"n" + _u32(1) + b"bi" + _u32(1) + b"1",
        ),
    ],
)
def test_encode_exact_bytes(backend: ModuleType, value: Any, expected: bytes) -> None:
    assert backend.encode(value) == expected


def test_encode_big_message_exact(backend: ModuleType) -> None:
    m = backend.Message(
        {"b": [1, "x", None], "a": {"t": True, "f": False}, "c": b"\x00", "d": 1.5, "priv": 1}
    )
    assert backend.encode(m) == (
        b"m\x00\x00\x00\x04\x00\x00\x00\x01am\x00\x00\x00\x02\x00\x00\x00\x01ff\x00\x00\x00"
        b"\x01tt\x00\x00\x00\x01bl\x00\x00\x00\x03i\x00\x00\x00\x011s\x00\x00\x00\x01xn\x00"
        b"\x00\x00\x01cb\x00\x00\x00\x01\x00\x00\x00\x00\x01dd?\xf8\x00\x00\x00\x00\x00\x00"
    )


def test_encode_skips_private_keys_at_every_level(backend: ModuleType) -> None:
    M = backend.Message
    with_private = M(a=1, priv={"x": 1}, Private=2, n={"b": 2, "priv_k": 3}, l=[{"PRIV": 1}])
    assert backend.encode(with_private) == backend.encode(M(a=1, n={"b": 2}, l=[{}]))
    assert backend.encode({"priv": 1}) == b"m" + _u32(0)


def test_encode_sorts_keys_by_utf8(backend: ModuleType) -> None:
    data = backend.encode({"é": 1, "z": 2, "A": 3, "😀": 4})
    keys = []
    pos = 5
    while pos < len(data):
        n = struct.unpack(">I", data[pos : pos + 4])[0]
        keys.append(data[pos + 4 : pos + 4 + n].decode())
        pos += 4 + n + 6  # value: 'i' + u32(1) + digit
    assert keys == ["A", "z", "é", "😀"]


def test_encode_huge_int(backend: ModuleType) -> None:
    big = -(10**5000) + 1
    text = ("-" + "9" * 5000).encode()
    assert backend.encode(big) == b"i" + _u32(len(text)) + text
    assert backend.decode(backend.encode(big)) == big


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "unsupported value type object"),
        ({1, 2}, "unsupported value type set"),
        ({"a": {"b": {1}}}, "unsupported value type set at key 'a/b'"),
        ([1, object()], "unsupported value type object at key '2'"),
        ("x\ud800", "value is not valid UTF-8"),
        ({1.5: 1}, "unsupported key type float: 1.5"),
    ],
)
def test_encode_rejects(backend: ModuleType, value: Any, message: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.encode(value)
    assert str(info.value) == message


# ------------------------------------------------------------------ decode


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**64,
        -(10**700),
        1.5,
        math.inf,
        -math.inf,
        "",
        "text é 😀",
        b"",
        b"\xff\x00",
        [],
        [1, [2, [3]], {"a": []}],
        {},
        {"a": {"b": {"c": [1, 2.5, "x", b"y", None, True]}}, "Z": {}},
    ],
)
def test_decode_round_trip(backend: ModuleType, value: Any) -> None:
    data = backend.encode(value)
    back = backend.decode(data)
    if isinstance(value, dict):
        assert isinstance(back, backend.Message)
        assert back == value
    else:
        assert back == value
        assert type(back) is type(value)
    assert backend.encode(back) == data


def test_decode_nan_and_negative_zero(backend: ModuleType) -> None:
    assert math.isnan(backend.decode(backend.encode(math.nan)))
    zero = backend.decode(backend.encode(-0.0))
    assert zero == 0.0 and math.copysign(1, zero) == 1


def test_decode_lists_are_lists_and_maps_messages(backend: ModuleType) -> None:
    back = backend.decode(backend.encode([{"a": [1]}]))
    assert type(back) is list
    assert isinstance(back[0], backend.Message)
    assert type(back[0]["a"]) is list
    assert backend.decode(bytearray(backend.encode([1]))) == [1]
    assert backend.decode(memoryview(backend.encode([1]))) == [1]


def _key(text: str) -> bytes:
    raw = text.encode()
    return _u32(len(raw)) + raw


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"", 0),
        (b"x", 0),
        (b"nn", 1),  # trailing byte
        (b"i", 1),  # truncated length
        (b"i" + _u32(2) + b"1", 5),  # truncated payload
        (b"i" + _u32(0), 5),
        (b"i" + _u32(2) + b"01", 5),
        (b"i" + _u32(2) + b"-0", 5),
        (b"i" + _u32(2) + b"+1", 5),
        (b"i" + _u32(2) + b" 1", 5),
        (b"i" + _u32(1) + b"-", 5),
        (b"i" + _u32(2) + "\u0661".encode()[:2], 5),
        (b"d" + bytes(7), 1),
        (b"d\x80" + bytes(7), 1),  # -0.0 is written as 0.0
        (b"d\x7f\xf8" + bytes(5) + b"\x01", 1),  # a NaN other than the canonical one
        (b"s" + _u32(1) + b"\xff", 5),
        (b"s" + _u32(5) + b"abc", 5),
        (b"b" + _u32(4) + b"ab", 5),
        (b"l" + _u32(2) + b"n", 6),
        (b"l" + _u32(0xFFFFFFFF), 5),
        (b"m" + _u32(1), 5),
        (b"m" + _u32(1) + _key("a"), 10),
        (b"m" + _u32(1) + _key(""), 9),  # empty key
        (b"m" + _u32(1) + _key("priv") + b"n", 9),  # private keys are never encoded
        (b"m" + _u32(1) + _u32(1) + b"\xff" + b"n", 9),
        (b"m" + _u32(2) + _key("b") + b"n" + _key("a") + b"n", 15),  # not ascending
        (b"m" + _u32(2) + _key("a") + b"n" + _key("a") + b"n", 15),  # duplicate
        (b"m" + _u32(0) + b"n", 5),
        (b"q", 0),
    ],
)
def test_decode_malformed(backend: ModuleType, data: bytes, offset: int) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.decode(data)
    assert str(info.value) == f"malformed encoding at byte {offset}"


def test_decode_depth_limit(backend: ModuleType) -> None:
    ok = b"l" + _u32(1)
    assert backend.decode(ok * 199 + b"l" + _u32(0)) is not None
    with pytest.raises(InvalidMessage) as info:
        backend.decode(ok * 200 + b"l" + _u32(0))
    assert str(info.value) == "malformed encoding at byte 1000"
    with pytest.raises(InvalidMessage, match=r"^malformed encoding at byte 1000$"):
        backend.decode(ok * 100_000 + b"n")


def test_decode_rejects_non_bytes(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.decode("n")
    assert str(info.value) == "decode expects bytes, got str"


# ------------------------------------------------------------------ id

EMPTY_ID = "WT6e4CAvJ6PQ9kECDZTXQPgXzqineXguIlQ7WNP1kmU"
A1_ID = "ElSowZNOSS3N4OeLFeJCB5n2-qooZgg5s-w8Kp31nv8"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, EMPTY_ID),
        ([], EMPTY_ID),
        ({"a": 1}, A1_ID),
        ({"a": 1, "commitments": {"x": 1}}, A1_ID),
        ({"a": 1, "priv": {"hashpath": "h"}}, A1_ID),
        ([1, 2], "dOPE-Wj_eS45qEL8sBaSpHk3hGt8n9VkRJCR2FCfCVU"),
        ("hello", "6o8WPbOGgpJeRJHF5Y1Ls1Bu-MFOt4qG6QjFYkpnIA8"),
        (b"hello", "6o8WPbOGgpJeRJHF5Y1Ls1Bu-MFOt4qG6QjFYkpnIA8"),
        ("", "rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI"),
        (b"", "rxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI"),
        (1, "4q1s8HZdl3Sdrwhf8jTA3LWG2tSQoWgQkFDYMAAEblU"),
        (0, "ByoQ_Ov3kUbH6T1_2whb9DfEPrQAZgiJ5nh9DQ86yf0"),
        (-12, "4hAFESZRpiHAdWhwqGH0KwrqEfxySwLm8FpblTIWvEQ"),
        (1.5, "vzEq2PSWBQn2JMOIbV7OHLpfgvZ4YRbZ8yTfcuYDe2Y"),
        (0.0, "OvZFHh766em1YW1K-S5Ys9SYXOpkQVvqmTHdDnRYiZ4"),
        (-0.0, "OvZFHh766em1YW1K-S5Ys9SYXOpkQVvqmTHdDnRYiZ4"),
        (math.nan, "NnuVoL5wx9dkUmqmp63-hExa885CabJC1E-fKYG2WCg"),
        (math.inf, "dh02k-gaOnEbPzqS2JtstOHWxYLh8-0QrJrRdjpMzBE"),
        (True, "BThmFCMjal2N9ihqhjM2nioDxfkNSO3tMzIi2-6M290"),
        (False, "mrOIvtxD6vRBUBB9F60JD2scNGEPV0B3jduV2fBldu4"),
        (None, "p04LFDO1S3ozv-WOYAkyOcvPyoxL68vxG3BpcLjaL7s"),
        (
            {"key1": "value1", "key2": {"x": [1, 2.5, b"b"]}},
            "Sm-KiVlAmtlhA8Kg9FGu1u0HOsXldr1yFb7bJddvhAM",
        ),
    ],
)
def test_id_fixed(backend: ModuleType, value: Any, expected: str) -> None:
    assert backend.id(value) == expected
    if isinstance(value, dict):
        assert backend.id(backend.Message(value)) == expected


def test_id_definition(backend: ModuleType) -> None:
    M = backend.Message
    m = M(a={"b": [1, "x"]}, c=b"z")
    assert backend.id(m) == _b64(blake3(backend.encode(m)).digest())
    assert backend.id("héllo") == _b64(blake3("héllo".encode()).digest())
    assert backend.id(42) == _b64(blake3(backend.encode(42)).digest())
    assert backend.id(["a", "b"]) == backend.id({"1": "a", "2": "b"})
    assert backend.id(("a",)) == backend.id(["a"])
    assert len(backend.id(m)) == 43
    # only the top-level commitments key is left out
    assert backend.id(M(n={"commitments": 1})) != backend.id(M(n={}))
    # typed: 1, True, 1.0 and "1" all differ
    ids = {backend.id(M(a=v)) for v in (1, True, 1.0, "1", b"1", [1], {"1": 1})}
    assert len(ids) == 7
    # the ID is stable for a message and changes with its content
    assert backend.id(m) == backend.id(m)
    assert backend.id(m.set("a/b", [1, "y"])) != backend.id(m)


def test_id_rejects(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage, match=r"^unsupported value type object$"):
        backend.id(object())
    with pytest.raises(InvalidMessage, match=r"^unsupported value type set at key 'a'$"):
        backend.id({"a": {1}})
    with pytest.raises(InvalidMessage, match=r"^value is not valid UTF-8$"):
        backend.id("\udcff")


# ------------------------------------------------------------------ hashpath


def test_hashpath_one_argument(backend: ModuleType) -> None:
    M = backend.Message
    assert backend.hashpath(M(a=1)) == A1_ID
    assert backend.hashpath({"a": 1}) == A1_ID
    assert backend.hashpath(M(a=1, priv={"hashpath": "X/y"})) == "X/y"
    assert backend.hashpath({"a": 1, "priv": {"hashpath": "X/y"}}) == "X/y"
    assert backend.hashpath(M(a=1, priv={"hashpath": 5})) == backend.id(M(a=1))
    assert backend.hashpath(M(a=1, priv="x")) == A1_ID
    assert backend.hashpath("some/string") == "some/string"
    assert backend.hashpath(A1_ID) == A1_ID


def test_hashpath_fixed(backend: ModuleType) -> None:
    M = backend.Message
    # path-only request: the component is the first path part (core.md §11)
    assert (
        backend.hashpath(M(base="message"), {"path": "base"})
        == "pBRbEjMk1TIooMDMsEae7sDKoxiwiNEBwZUKZjGsAP4/base"
    )
    assert backend.hashpath(M(a=1), "/a/b") == A1_ID + "/a"
    assert backend.hashpath(M(a=1), "x") == A1_ID + "/x"
    # a request with more content: its ID (of the whole request, path included)
    req = M(path="b", x=1)
    assert backend.hashpath(M(a=1), req) == A1_ID + "/" + backend.id(req)
    assert backend.hashpath(M(a=1), req) == A1_ID + "/fvjIsXKCH0d-tm1KPckuzUdvDda9Pk07iq7danjel8o"
    # chaining: prev has a "/" so its two parts are folded with blake3
    first = backend.hashpath(M(a=1), "x")
    second = backend.hashpath(M(priv={"hashpath": first}), "y")
    assert second == "YJv_4f4s6HNzO__lJqj71UOaIaCCtin2dFbrVeKl6vk/y"
    assert second == _b64(blake3(blake3_id_bytes(A1_ID) + b"x").digest()) + "/y"
    with_id = backend.hashpath(M(a=1), {"z": 1})
    assert with_id == A1_ID + "/0E6Q_yHUBCBd4FeF_ws07UisTg7qtkS80e8PFr7x3Tk"
    third = backend.hashpath(with_id, "w")
    assert third == "tYiRlMai-thAo6LMD0f-AJ-CcsSjYiVVoJM2lLpdVl4/w"
    # a 43-char base64url second part is decoded to its 32 bytes
    part2 = with_id.split("/")[1]
    assert third == _b64(blake3(blake3_id_bytes(A1_ID) + blake3_id_bytes(part2)).digest()) + "/w"


def blake3_id_bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=")


def test_hashpath_components(backend: ModuleType) -> None:
    M = backend.Message
    base = M(a=1)
    assert backend.hashpath(base, "") == A1_ID + "//"
    assert backend.hashpath(base, "/") == A1_ID + "//"
    assert backend.hashpath(base, {"path": "/"}) == A1_ID + "//"
    assert backend.hashpath(base, {"path": ["k", "l"]}) == A1_ID + "/k"
    assert backend.hashpath(base, {"path": "p/q", "hashpath": "h"}) == A1_ID + "/p"
    assert backend.hashpath(base, {"path": "p", "priv": {"x": 1}}) == A1_ID + "/p"
    assert backend.hashpath(base, {"path": "p", "Private": 1}) == A1_ID + "/p"
    # not path-only: the ID of the whole request
    full = {"path": "p", "k": "v"}
    assert backend.hashpath(base, full) == A1_ID + "/" + backend.id(full)
    no_path = {"k": "v"}
    assert backend.hashpath(base, no_path) == A1_ID + "/" + backend.id(no_path)
    assert backend.hashpath(base, {}) == A1_ID + "/" + EMPTY_ID
    # the key is "path" exactly
    assert backend.hashpath(base, {"Path": "p"}) == A1_ID + "/" + backend.id({"Path": "p"})


def test_hashpath_alg(backend: ModuleType) -> None:
    M = backend.Message
    ok = M(a=1, **{"hashpath-alg": "blake3-chain"})
    assert backend.hashpath(ok, "x") == backend.id(ok) + "/x"
    with pytest.raises(InvalidMessage) as info:
        backend.hashpath(M(**{"hashpath-alg": "sha-256-chain"}), "x")
    assert str(info.value) == "unsupported hashpath-alg 'sha-256-chain'"
    with pytest.raises(InvalidMessage, match=r"^unsupported hashpath-alg 5$"):
        backend.hashpath({"hashpath-alg": 5}, "x")
    # only asked for when chaining
    assert backend.hashpath(M(**{"hashpath-alg": "x"})) == backend.id({"hashpath-alg": "x"})


def test_hashpath_errors(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage) as info:
        backend.hashpath("short/x", "y")
    assert str(info.value) == "hash path 'short' does not start with a 43-character ID"
    with pytest.raises(InvalidMessage, match=r"does not start with a 43-character ID"):
        backend.hashpath(A1_ID[:-1] + "!/x", "y")
    with pytest.raises(InvalidMessage) as info:
        backend.hashpath(5)
    assert str(info.value) == "hashpath expects a Mapping or str, got int: 5"
    with pytest.raises(InvalidMessage) as info:
        backend.hashpath({"a": 1}, 5)
    assert str(info.value) == "hashpath request must be a Mapping or str, got int: 5"
    with pytest.raises(InvalidPath, match=r"^unsupported path type float: 1.5$"):
        backend.hashpath({"a": 1}, {"path": 1.5})
    with pytest.raises(InvalidMessage, match=r"^unsupported value type object at key 'x'$"):
        backend.hashpath({"x": object()}, "y")


def test_hashpath_second_part_as_text(backend: ModuleType) -> None:
    prev = A1_ID + "/not-an-id"
    expected = _b64(blake3(blake3_id_bytes(A1_ID) + b"not-an-id").digest()) + "/c"
    assert backend.hashpath(prev, "c") == expected
    # a 43-character second part outside the alphabet is text too
    odd = "!" * 43
    assert (
        backend.hashpath(A1_ID + "/" + odd, "c")
        == _b64(blake3(blake3_id_bytes(A1_ID) + odd.encode()).digest()) + "/c"
    )
    # text may hold further slashes and non-ASCII characters
    assert (
        backend.hashpath(A1_ID + "/é/x", "c")
        == _b64(blake3(blake3_id_bytes(A1_ID) + "é/x".encode()).digest()) + "/c"
    )
