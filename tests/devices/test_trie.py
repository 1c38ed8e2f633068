"""trie@1.0 (core.md §10)."""

from __future__ import annotations

import itertools
from types import ModuleType

import hbeam
import pytest
from hbeam import NOT_FOUND, UNSET
from hbeam.errors import InvalidMessage

WORDS = {
    "car": 31337,
    "card": 90210,
    "cardano": 666,
    "carmex": 8675309,
    "camshaft": 777,
    "zebra": 0,
}
EXPECTED = {
    "device": "trie@1.0",
    "zebra": 0,
    "ca": {
        "mshaft": 777,
        "r": {"node-value": 31337, "mex": 8675309, "d": {"node-value": 90210, "ano": 666}},
    },
}


def test_structure_in_any_order(backend: ModuleType) -> None:
    for order in itertools.islice(itertools.permutations(WORDS), 0, 720, 37):
        trie = hbeam.set({"device": "trie@1.0"}, {w: WORDS[w] for w in order})
        assert trie == EXPECTED
    one_by_one = {"device": "trie@1.0"}
    for w in reversed(list(WORDS)):
        one_by_one = hbeam.set(one_by_one, w, WORDS[w])
    assert one_by_one == EXPECTED


def test_get(backend: ModuleType) -> None:
    trie = EXPECTED
    for word, value in WORDS.items():
        assert hbeam.get(word, trie) == value
    assert hbeam.get("ca", trie) is NOT_FOUND
    assert hbeam.get("cardx", trie) is NOT_FOUND
    assert hbeam.get("x", trie) is NOT_FOUND
    assert hbeam.resolve(trie, {"path": "get", "key": "card"}) == 90210
    with pytest.raises(InvalidMessage, match="'key' parameter is required"):
        hbeam.resolve(trie, "get")


def test_keys(backend: ModuleType) -> None:
    assert sorted(hbeam.keys(EXPECTED)) == sorted(WORDS)
    assert hbeam.resolve(EXPECTED, "keys") == [
        "camshaft",
        "car",
        "card",
        "cardano",
        "carmex",
        "zebra",
    ]


def test_update_delete_and_map_values(backend: ModuleType) -> None:
    trie = hbeam.set(EXPECTED, "card", 1)
    assert hbeam.get("card", trie) == 1 and hbeam.get("cardano", trie) == 666
    trie = hbeam.set(trie, {"car": UNSET})
    assert hbeam.get("car", trie) is NOT_FOUND and hbeam.get("card", trie) == 1
    trie = hbeam.set(trie, "zebra", UNSET)
    assert hbeam.get("zebra", trie) is NOT_FOUND
    trie = hbeam.set(trie, {"map": {"a": 1}})
    assert hbeam.get("map", trie) == {"a": 1}
    assert "map" in hbeam.keys(trie)


def test_nested_trie_through_paths(backend: ModuleType) -> None:
    state = {"balances": {"device": "trie@1.0"}}
    state = hbeam.set(state, {"balances": {"alice": "10", "alex": "5"}})
    assert hbeam.get("balances/alice", state) == "10"
    assert hbeam.get("balances/alex", state) == "5"
    assert "al" in state["balances"]  # stored as a trie, not a flat map
    state = hbeam.set(state, "balances/alice", "11")
    assert hbeam.get("balances/alice", state) == "11"


def test_reserved_key(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage, match="reserved"):
        hbeam.set({"device": "trie@1.0"}, "node-value", 1)
