"""message@1.0 (core.md §7)."""

from __future__ import annotations

from types import ModuleType

import hbeam
import pytest
from hbeam import NOT_FOUND, UNDEFINED, UNSET, device
from hbeam.errors import NotFound


def test_case_insensitive_get(backend: ModuleType) -> None:
    assert hbeam.resolve({"Test-Header": "1"}, "Test-Header") == "1"
    assert hbeam.resolve({"Test-Header": "1"}, "test-header") == "1"
    assert hbeam.get("A", {"a": 1}) == 1
    assert hbeam.get("a", {"A": 1}) == 1
    assert hbeam.get("exact", {"EXACT": 1, "exact": 2}) == 2
    assert hbeam.resolve({"path": ["test_path"]}, "path") == ["test_path"]
    assert hbeam.resolve({"Path": ["a"]}, "Path") == ["a"]


def test_private_keys_are_refused(backend: ModuleType) -> None:
    m = {"a": 1, "private_key": 2, "priv": {"b": 2}, "Privacy": 3}
    for key in ("private_key", "priv", "priv/b", "Privacy", "PRIV"):
        with pytest.raises(NotFound):
            hbeam.resolve(m, key)
        assert hbeam.get(key, m) is NOT_FOUND
    assert hbeam.keys(m) == ["a"]


def test_keys_hide_commitments(backend: ModuleType) -> None:
    m = {"a": 1, "commitments": {"c1": {"committer": "x"}}}
    assert hbeam.resolve(m, "keys") == ["a"]


def test_set_through_resolve(backend: ModuleType) -> None:
    assert hbeam.resolve({"dangerous": "Value1"}, {"path": "set", "dangerous": "Value2"}) == {
        "dangerous": "Value2"
    }
    assert hbeam.resolve({"dangerous": "Value1"}, {"path": "set", "dangerous": UNSET}) == {}
    assert hbeam.resolve({"k": 1}, {"path": "set", "k": UNDEFINED, "j": 2}) == {"k": 1, "j": 2}


def test_set_skips_reserved_keys(backend: ModuleType) -> None:
    out = hbeam.set({"a": 1}, {"keys": 1, "id": 2, "set": 3, "remove": 4, "verify": 5, "b": 2})
    assert out == {"a": 1, "b": 2}


def test_set_mode_explicit_replaces(backend: ModuleType) -> None:
    base = {"a": {"x": 1}}
    deep = hbeam.resolve(base, {"path": "set", "a": {"y": 2}})
    explicit = hbeam.resolve(base, {"path": "set", "a": {"y": 2}, "set-mode": "explicit"})
    assert deep == {"a": {"x": 1, "y": 2}}
    assert explicit == {"a": {"y": 2}}


def test_set_drops_commitments_when_signed_keys_change(backend: ModuleType) -> None:
    signed = {
        "a": 1,
        "b": 2,
        "commitments": {"c1": {"committer": "addr", "committed": ["a"]}},
    }
    assert "commitments" in hbeam.set(signed, "a", 1)  # same value
    assert "commitments" in hbeam.set(signed, "b", 3)  # key not covered
    assert "commitments" not in hbeam.set(signed, "a", 5)


def test_set_path_and_remove(backend: ModuleType) -> None:
    assert hbeam.resolve({"a": 1}, {"path": "set_path", "value": "x"}) == {"a": 1, "path": "x"}
    assert hbeam.resolve({"key1": "V1", "key2": "V2"}, {"path": "remove", "item": "key1"}) == {
        "key2": "V2"
    }
    assert (
        hbeam.resolve({"key1": "V1", "key2": "V2"}, {"path": "remove", "items": ["key1", "key2"]})
        == {}
    )


def test_id_and_commitment_reads(backend: ModuleType) -> None:
    m = backend.Message({"test_key": "1"})
    assert hbeam.resolve(m, "id") == hbeam.id(m)
    assert len(hbeam.get("id", m)) == 43
    signed = {
        "a": 1,
        "commitments": {
            "c1": {"committer": "alice", "committed": ["a", "b"]},
            "c2": {"committer": "bob", "committed": ["a"]},
            "c3": {"committed": ["a"]},
        },
    }
    assert sorted(hbeam.resolve(signed, "committers")) == ["alice", "bob"]
    assert hbeam.resolve(signed, "committed") == ["a"]
    assert hbeam.resolve({"a": 1}, "committed") == ["a"]


def test_get_key(backend: ModuleType) -> None:
    assert hbeam.resolve({"A": 1}, {"path": "get", "key": "a"}) == 1
    with pytest.raises(NotFound):
        hbeam.resolve({"A": 1}, {"path": "get"})


def test_default_device_is_this_module(backend: ModuleType) -> None:
    import hbeam.devices.message as mod

    assert device.default() is mod
    assert device.info(mod)["default"] is not None
