"""json@1.0: serialize / format / deserialize."""

from __future__ import annotations

import base64
import json
from types import ModuleType

import hbeam
import pytest
from hbeam.errors import InvalidMessage, NotFound


def test_serialize_types(backend: ModuleType) -> None:
    msg = {
        "device": "json@1.0",
        "n": 1,
        "f": 1.5,
        "t": True,
        "none": None,
        "s": "text",
        "list": [1, "two", {"three": 3}],
        "nested": {"device": "trie@1.0", "k": {"deep": 2}, "priv": {"hidden": 1}},
        "priv": {"secret": 1},
        "private-key": "x",
    }
    out = hbeam.resolve(msg, "serialize")
    assert out["content-type"] == "application/json"
    data = json.loads(out["body"])
    assert data == {
        "n": 1,
        "f": 1.5,
        "t": True,
        "none": None,
        "s": "text",
        "list": [1, "two", {"three": 3}],
        "nested": {"device": "trie@1.0", "k": {"deep": 2}},
    }


def test_bytes(backend: ModuleType) -> None:
    msg = {"device": "json@1.0", "utf8": "é".encode(), "raw": b"\xff\x00\x01"}
    data = json.loads(hbeam.resolve(msg, "serialize")["body"])
    assert data["utf8"] == "é"
    assert base64.b64decode(data["raw"]) == b"\xff\x00\x01"


def test_big_integers(backend: ModuleType) -> None:
    big = 2**80 + 1
    data = json.loads(
        hbeam.resolve({"device": "json@1.0", "big": big, "l": [big]}, "serialize")["body"]
    )
    assert data == {"big": big, "l": [big]}


def test_format_is_serialize(backend: ModuleType) -> None:
    msg = {"device": "json@1.0", "a": {"b": 1}}
    assert hbeam.resolve(msg, "format") == hbeam.resolve(msg, "serialize")
    # seed 000's /…/balances/format~json@1.0
    assert (
        hbeam.resolve({"path": "/balances/format~json@1.0", "balances": {"x": "10"}})["body"]
        == '{"x":"10"}'
    )


def test_deserialize(backend: ModuleType) -> None:
    src = {"a": 1, "b": [1, 2], "c": {"d": None}}
    encoded = hbeam.resolve({"device": "json@1.0", **src}, "serialize")
    back = hbeam.resolve(encoded, ("as", "json@1.0", {"path": "deserialize"}))
    assert back == src
    assert hbeam.resolve(
        {"device": "json@1.0", "doc": "[1, 2]"}, {"path": "deserialize", "target": "doc"}
    ) == [1, 2]
    with pytest.raises(InvalidMessage, match="not valid JSON"):
        hbeam.resolve({"device": "json@1.0", "body": "{nope"}, "deserialize")
    with pytest.raises(NotFound):
        hbeam.resolve({"device": "json@1.0"}, "deserialize")
