"""get / get_first / set / remove / keys through devices (core.md §6, §17)."""

from __future__ import annotations

import types
from collections.abc import Callable
from types import ModuleType
from typing import Any

import hbeam
import pytest
from hbeam import NOT_FOUND, UNDEFINED, UNSET
from hbeam.errors import InvalidMessage

Register = Callable[[str, Any], Any]


def test_get_paths_and_defaults(backend: ModuleType) -> None:
    m = {"key1": "value1", "key2": {"key3": "v3"}}
    assert hbeam.get("key1", m) == "value1"
    assert hbeam.get(["key2", "key3"], m) == hbeam.get("key2/key3", m) == "v3"
    assert hbeam.get("missing", m) is NOT_FOUND
    assert hbeam.get("missing", m, "dflt") == "dflt"
    assert len(hbeam.get("id", {"test_key": "1"})) == 43
    assert hbeam.get("keys", {"a": 1, "b": 2}) == ["a", "b"]


def test_get_first(backend: ModuleType) -> None:
    assert hbeam.get_first([({"a": 1}, "b"), ({"b": 2}, "b")]) == 2
    assert hbeam.get_first([], "d") == "d"
    assert hbeam.get_first([({"a": 0}, "a"), ({"a": 2}, "a")]) == 0  # falsy counts
    assert hbeam.get_first([({"a": False}, "a")], "d") is False
    assert hbeam.get_first([({"a": 1}, "x")]) is NOT_FOUND


def test_set_deep_merges(backend: ModuleType) -> None:
    assert hbeam.set({"key1": "value1", "key2": "value2"}, {"key1": "new_value1"}) == {
        "key1": "new_value1",
        "key2": "value2",
    }
    assert hbeam.set({"a": {"x": 1}}, {"a": {"y": 2}}) == {"a": {"x": 1, "y": 2}}
    assert hbeam.set({"a": "x"}, {"a": {"y": 2}}) == {"a": {"y": 2}}
    assert hbeam.set({"a": {"x": 1}}, "a", "flat") == {"a": "flat"}
    assert hbeam.set({"a": {"x": 1}}, "a", {"y": 2}) == {"a": {"x": 1, "y": 2}}
    assert hbeam.set({"a": {"b": "RESULT"}}, "a/b", "RESULT2") == {"a": {"b": "RESULT2"}}
    assert hbeam.set({"a": {"b": "RESULT"}}, ["a", "b"], "RESULT2") == {"a": {"b": "RESULT2"}}


def test_set_creates_levels(backend: ModuleType) -> None:
    m = hbeam.set({"a": {"b": {"c": "1"}}}, "d/e", "3")
    m = hbeam.set(m, "d/f", "4")
    assert m == {"a": {"b": {"c": "1"}}, "d": {"e": "3", "f": "4"}}
    m = hbeam.set(m, {"z/a": "0", "z/b": "1", "z/y/x": "2"})
    assert m["z"] == {"a": "0", "b": "1", "y": {"x": "2"}}
    assert hbeam.set({"a": "x"}, "a/b", 1) == {"a": {"b": 1}}


def test_set_unset_and_undefined(backend: ModuleType) -> None:
    m = {"deep": {"test-key2": 1, "test-key3": 2, "k": 3}, "top": 1}
    m1 = hbeam.set(m, {"deep/test-key2": UNSET})
    assert m1["deep"] == {"test-key3": 2, "k": 3}
    m2 = hbeam.set(m1, "deep/test-key3", UNSET)
    m3 = hbeam.set(m2, "deep/k", UNSET)
    assert m3 == {"deep": {}, "top": 1}  # emptied parents stay
    assert hbeam.set(m3, {"deep": UNSET}) == {"top": 1}
    assert hbeam.set({"test-key": "Value1"}, {"test-key": UNDEFINED}) == {"test-key": "Value1"}
    assert hbeam.set({"a": 1}, {}) == {"a": 1}


def test_set_root_and_path(backend: ModuleType) -> None:
    assert hbeam.set({"a": 1}, "/", {"b": 2}) == {"a": 1, "b": 2}
    assert hbeam.set({"a": 1}, "path", "x") == {"a": 1, "path": "x"}
    assert hbeam.set({"a": 1, "path": "x"}, "path", UNSET) == {"a": 1}
    assert hbeam.set(["a"], "2", "b") == {"1": "a", "2": "b"}
    with pytest.raises(InvalidMessage):
        hbeam.set("literal", "a", 1)


def test_set_keeps_priv_and_adds_no_hashpath(backend: ModuleType) -> None:
    m = backend.Message({"a": 1, "priv": {"secret": 1}})
    out = hbeam.set(m, "b", 2)
    assert out["priv"] == {"secret": 1}
    assert hbeam.set(m, {"priv": {"x": 1}, "hashpath": "h"})["priv"] == {"secret": 1}


def test_set_goes_through_each_level_device(backend: ModuleType, register: Register) -> None:
    def flag_set(base: Any, req: Any) -> Any:
        updates = {k: v for k, v in req.items() if k != "path"}
        return base.merge({**updates, "modified": True})

    register("flagger@1.0", types.SimpleNamespace(set=flag_set))
    msg = {
        "device": "flagger@1.0",
        "modified": False,
        "b": {"modified": False, "c": {"device": "flagger@1.0", "modified": False}},
    }
    out = hbeam.set(msg, "b/c/d", "x")
    assert out["modified"] is True  # level A: its own device's set
    assert out["b"]["modified"] is False  # level B: plain message
    assert out["b"]["c"]["modified"] is True and out["b"]["c"]["d"] == "x"


def test_remove(backend: ModuleType) -> None:
    assert hbeam.remove({"key1": "V1", "key2": "V2"}, "key1") == {"key2": "V2"}
    assert hbeam.remove({"key1": "V1", "key2": "V2"}, ["key1", "key2"]) == {}
    assert hbeam.remove({"a": {"b": 1, "c": 2}}, "a/b") == {"a": {"c": 2}}
    assert hbeam.remove({"a": 1}, "zzz") == {"a": 1}


def test_keys(backend: ModuleType) -> None:
    assert sorted(hbeam.keys({"a": 1, "b": 2})) == ["a", "b"]
    assert hbeam.keys({"x": 1, "priv": {"y": 2}}) == ["x"]
    assert hbeam.keys({"a": 1, "private": 2}) == ["a"]
    assert hbeam.keys({"a": 1, "priv_foo": 4}) == ["a"]
    assert sorted(hbeam.keys({"device": "patch@1.0", "a": 1})) == ["a", "device"]
    assert hbeam.keys({"a": 1, "commitments": {"x": {}}}) == ["a"]


def test_set_paths_through_lists(backend: ModuleType) -> None:
    msg = {"items": ["x", "y"]}
    assert hbeam.set(msg, "items/2", "Y") == {"items": {"1": "x", "2": "Y"}}
    assert hbeam.set(msg, {"items/3": "Z"}) == {"items": {"1": "x", "2": "y", "3": "Z"}}
    assert hbeam.remove(msg, "items/1") == {"items": {"2": "y"}}
    # a map (not a path) still replaces the list, as a deep merge does
    assert hbeam.set(msg, {"items": {"3": "Z"}}) == {"items": {"3": "Z"}}
