"""Every test case of seeds 001 (dev_patch), 002 (hb_ao) and 003 (the AO-Core tutorial),
as pytest, on both core backends.  Names follow the seeds' eunit names."""

from __future__ import annotations

import types
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import hbeam
import pytest
from hbeam import NOT_FOUND, ao, device
from hbeam.errors import AOError, InvalidPath, NotFound


@pytest.fixture(autouse=True)
def fresh_default_caches() -> Iterator[None]:
    """Each test starts with empty default result caches."""
    for cache in ao._default_caches.values():
        cache.clear()
    yield


# A stand-in for hb:wallet() signing: a commitments map as hb_message:commit adds one.
FAKE_COMMITMENTS = {
    "sig-1": {
        "commitment-device": "httpsig@1.0",
        "committer": "addr-1",
        "committed": ["method", "prices"],
        "signature": "c2ln",
    }
}


# --- seed 001: dev_patch.erl -----------------------------------------------------------


def test_all_mode_basic(backend: ModuleType) -> None:
    init_state = {
        "device": "patch@1.0",
        "input": {
            "zones": {
                "1": {"prices": {"apple": 100, "banana": 200}},
                "2": {"prices": {"orange": 300}},
            }
        },
        "state": {"prices": {"apple": 1000}},
    }
    resolved = hbeam.resolve(
        init_state, {"path": "all", "patch-to": "/state", "patch-from": "/input/zones"}
    )
    assert hbeam.get("state/1/prices/apple", resolved) == 100
    assert hbeam.get("state/2/prices/orange", resolved) == 300
    assert hbeam.get("input/zones", resolved) is NOT_FOUND
    # core.md §9.2: old data merged, not replaced; the emptied parent stays
    assert hbeam.get("state/prices/apple", resolved) == 1000
    assert hbeam.get("input", resolved) == {}


def test_all_with_base_prefix(backend: ModuleType) -> None:
    base = {"device": "patch@1.0", "data": {"original": "value1"}}
    req = {"path": "all", "patch-from": "base:/data", "patch-to": "/result"}
    result = hbeam.resolve(base, req)
    assert hbeam.get("result/original", result) == "value1"
    assert hbeam.get("data", result) is NOT_FOUND


def test_patches_mode_basic(backend: ModuleType) -> None:
    init_state = {
        "device": "patch@1.0",
        "results": {
            "outbox": {
                "1": {"method": "PATCH", "prices": {"apple": 100, "banana": 200}},
                "2": {"method": "GET", "prices": {"apple": 1000}},
            }
        },
        "patch-to": "/",
        "patch-from": "/results/outbox",
    }
    resolved = hbeam.resolve(init_state, "compute")
    assert hbeam.get("prices/apple", resolved) == 100
    assert hbeam.get("results/outbox/1", resolved) is NOT_FOUND
    entry = hbeam.get("results/outbox/2", resolved)
    assert entry["method"] == "GET"
    assert hbeam.get("method", resolved) is NOT_FOUND  # method removed from the patch


def test_patches_to_submessage(backend: ModuleType) -> None:
    signed = {
        "method": "PATCH",
        "prices": {"apple": 100, "banana": 200},
        "commitments": FAKE_COMMITMENTS,
    }
    init_state = {
        "device": "patch@1.0",
        "results": {"outbox": {"1": signed}},
        "state": {"prices": {"apple": 1000}},
        "patch-to": "/state",
        "patch-from": "/results/outbox",
    }
    resolved = hbeam.resolve(init_state, "compute")
    assert hbeam.get("state/prices/apple", resolved) == 100
    assert hbeam.get("state/prices/banana", resolved) == 200  # deep merge
    assert "commitments" not in resolved["state"]  # stripped from the patch


def test_patches_with_device_tag(backend: ModuleType) -> None:
    init_state = {
        "device": "patch@1.0",
        "results": {"outbox": {"1": {"device": "patch@1.0", "data": "patched-value"}}},
        "patch-to": "/",
        "patch-from": "/results/outbox",
    }
    resolved = hbeam.resolve(init_state, "compute")
    assert hbeam.get("data", resolved) == "patched-value"


def test_compute_hook(backend: ModuleType) -> None:
    dev_patch = device.load("patch@1.0")
    assert callable(dev_patch.compute)
    assert device.is_exported({}, dev_patch, "compute")
    status, dev, fun = device.message_to_fun({"device": "patch@1.0"}, "compute")
    assert (status, dev, fun) == ("ok", dev_patch, dev_patch.compute)


def test_hooks_passthrough(backend: ModuleType) -> None:
    dev_patch = device.load("patch@1.0")
    msg = {"data": "value"}
    assert dev_patch.init(msg, {}, {}) is msg
    assert dev_patch.normalize(msg, {}, {}) is msg
    assert dev_patch.snapshot(msg, {}, {}) is msg
    # and through the resolver
    base = {"device": "patch@1.0", "data": "value"}
    for hook in ("init", "normalize", "snapshot"):
        assert hbeam.resolve(base, hook) == base


def test_common_pattern_outbox_to_root(backend: ModuleType) -> None:
    state = {
        "device": "patch@1.0",
        "results": {
            "outbox": {
                "1": {"method": "PATCH", "x": 1},
                "2": {"method": "PATCH", "y": 2},
            }
        },
        "patch-from": "/results/outbox",
        "patch-to": "/",
    }
    patched = hbeam.resolve(state, "compute")
    assert patched["x"] == 1 and patched["y"] == 2
    assert patched["results"]["outbox"] == {}


def test_common_pattern_move_all(backend: ModuleType) -> None:
    state = {"device": "patch@1.0", "temp": {"data": "value"}}
    moved = hbeam.resolve(state, {"path": "all", "from": "/temp", "to": "/permanent"})
    assert hbeam.get("permanent/data", moved) == "value"
    assert hbeam.get("temp", moved) is NOT_FOUND


def test_common_pattern_custom_set_device(backend: ModuleType) -> None:
    state = {
        "device": "patch@1.0",
        "results": {
            "outbox": {
                "1": {"device": "patch@1.0", "balances": {"device": "trie@1.0"}},
                "2": {"device": "patch@1.0", "balances": {"A": "50", "B": "100"}},
            }
        },
        "patch-from": "/results/outbox",
    }
    result = hbeam.resolve(state, "compute")
    assert result["balances"]["device"] == "trie@1.0"
    assert hbeam.get("balances/A", result) == "50"
    assert hbeam.get("balances/B", result) == "100"


def test_path_resolution_req_prefix(backend: ModuleType) -> None:
    base = {"device": "patch@1.0", "state": {"prices": {"apple": 1}}}
    req = {
        "path": "patches",
        "patch-from": "req:/input/data",
        "patch-to": "/state",
        "input": {"data": {"1": {"method": "PATCH", "prices": {"apple": 100}}}},
    }
    result = hbeam.resolve(base, req)
    # the result is built on the request message (core.md §9.2 req_prefix_test)
    assert hbeam.get("state/prices/apple", result) == 100
    assert hbeam.get("input/data/1", result) is NOT_FOUND


def test_error_source_not_found(backend: ModuleType) -> None:
    base = {"device": "patch@1.0", "a": 1}
    with pytest.raises(NotFound):
        hbeam.resolve(base, {"path": "all", "from": "/missing", "to": "/x"})
    status, value = ao.resolve_status(base, {"path": "all", "from": "/missing", "to": "/x"})
    assert (status, value) == ("error", NOT_FOUND)


def test_error_source_empty(backend: ModuleType) -> None:
    base = {"device": "patch@1.0", "outbox": {}, "state": {"a": 1}}
    result = hbeam.resolve(base, {"path": "compute", "from": "/outbox", "to": "/state"})
    assert result["state"] == {"a": 1}


# --- seed 002: hb_ao.erl ----------------------------------------------------------------


def test_resolve_path(backend: ModuleType) -> None:
    assert hbeam.resolve({"path": "/data", "data": "value"}) == "value"


def test_resolve_binary_path(backend: ModuleType) -> None:
    result = hbeam.resolve("/id")
    assert isinstance(result, (str, backend.Message))


def test_resolve_no_path_error(backend: ModuleType) -> None:
    with pytest.raises(InvalidPath) as info:
        hbeam.resolve({"data": "test"})
    assert isinstance(str(info.value), str) and "without a path" in str(info.value)


def test_resolve_with_base(backend: ModuleType) -> None:
    base = {"key1": "value1", "key2": "value2"}
    assert hbeam.resolve(base, {"path": "key1"}) == "value1"


def test_resolve_with_path(backend: ModuleType) -> None:
    assert hbeam.resolve({"data": "test"}, "/data") == "test"


def test_resolve_nested(backend: ModuleType) -> None:
    base = {"outer": {"inner": "value"}}
    assert hbeam.resolve(base, {"path": "/outer/inner"}) == "value"


def test_resolve_many_sequence(backend: ModuleType) -> None:
    base = {"count": 0}
    req1 = {"path": "set", "count": 1}
    req2 = {"path": "set", "count": 2}
    result = hbeam.resolve_many([base, req1, req2])
    assert result["count"] == 2


def test_resolve_many_simple_path(backend: ModuleType) -> None:
    assert hbeam.resolve_many([{"data": "value"}, {"path": "/data"}]) == "value"


def test_get_simple(backend: ModuleType) -> None:
    assert hbeam.get("key", {"key": "value"}) == "value"


def test_get_with_default(backend: ModuleType) -> None:
    assert hbeam.get("missing", {"existing": "value"}, "default") == "default"


def test_get_nested(backend: ModuleType) -> None:
    assert hbeam.get("/outer/inner", {"outer": {"inner": "value"}}) == "value"


def test_get_missing_key(backend: ModuleType) -> None:
    assert hbeam.get("nonexistent", {"key": "value"}, None) is None
    assert hbeam.get("nonexistent", {"key": "value"}, hbeam.UNDEFINED) is hbeam.UNDEFINED


def test_set_single_key(backend: ModuleType) -> None:
    updated = hbeam.set({"old": "value"}, "new", "data")
    assert updated["new"] == "data"


def test_set_multiple_keys(backend: ModuleType) -> None:
    updated = hbeam.set({"a": 1}, {"b": 2, "c": 3})
    assert updated["b"] == 2 and updated["c"] == 3


def test_set_nested_path(backend: ModuleType) -> None:
    updated = hbeam.set({"outer": {}}, "/outer/inner", "value")
    assert updated["outer"]["inner"] == "value"


def test_set_override(backend: ModuleType) -> None:
    assert hbeam.set({"key": "old"}, "key", "new")["key"] == "new"


def test_remove_key(backend: ModuleType) -> None:
    updated = hbeam.remove({"key": "value", "keep": "this"}, "key")
    assert "key" not in updated
    assert updated["keep"] == "this"


def test_remove_nonexistent(backend: ModuleType) -> None:
    msg = {"key": "value"}
    assert hbeam.remove(msg, "missing") == msg


def test_keys_simple(backend: ModuleType) -> None:
    ks = hbeam.keys({"a": 1, "b": 2, "c": 3})
    assert len(ks) == 3 and set(ks) == {"a", "b", "c"}


def test_keys_empty_map(backend: ModuleType) -> None:
    assert hbeam.keys({}) == []


def test_normalize_binary(backend: ModuleType) -> None:
    assert hbeam.normalize_key(b"test") == "test"
    assert hbeam.normalize_key("test") == "test"


def test_normalize_atom(backend: ModuleType) -> None:
    # Python has no atoms: a str is the nearest (an Enum/str subclass behaves the same)
    assert hbeam.normalize_key("test") == "test"


def test_normalize_integer(backend: ModuleType) -> None:
    assert hbeam.normalize_key(42) == "42"


def test_normalize_string(backend: ModuleType) -> None:
    assert hbeam.normalize_key("test") == "test"


def test_normalize_path_list(backend: ModuleType) -> None:
    assert hbeam.normalize_key([b"a", "b", "c"]) == "a/b/c"


def test_normalize_keys_map(backend: ModuleType) -> None:
    normalized = hbeam.normalize_keys({"atom_key": "value", 123: "number"})
    assert "atom_key" in normalized and "123" in normalized


def test_normalize_keys_list(backend: ModuleType) -> None:
    normalized = hbeam.normalize_keys(["a", "b", "c"])
    assert isinstance(normalized, backend.Message)
    assert (normalized["1"], normalized["2"], normalized["3"]) == ("a", "b", "c")


@pytest.fixture
def my_device() -> Iterator[Any]:
    dev = types.SimpleNamespace(
        my_key=lambda msg1, msg2, opts: {"result": "computed"},
        info=lambda: {"exports": ["my_key"], "default": "message@1.0"},
    )
    device.register("my-device@1.0", dev)
    yield dev
    device.unregister("my-device@1.0")


def test_device_function_lookup(backend: ModuleType, my_device: Any) -> None:
    base = {"device": "my-device@1.0", "data": "plain"}
    assert hbeam.resolve(base, "my_key") == {"result": "computed"}
    # not exported -> the default device message@1.0 reads it
    assert hbeam.resolve(base, "data") == "plain"
    status, dev, _ = device.message_to_fun(base, "my_key")
    assert (status, dev) == ("ok", my_device)


# --- seed 003: the AO-Core tutorial -----------------------------------------------------


def test_counter(backend: ModuleType) -> None:
    state = {"count": 0, "name": "My Counter"}
    assert hbeam.resolve(state, {"path": "/count"}) == 0
    state2 = hbeam.resolve(state, {"path": "set", "count": 1})
    assert hbeam.resolve(state2, {"path": "/count"}) == 1
    final = hbeam.resolve_many([state, {"path": "set", "count": 10}, {"path": "set", "count": 20}])
    assert hbeam.get("count", final) == 20


def test_device(backend: ModuleType) -> None:
    import hbeam.devices.message as dev_message

    assert device.default() is dev_message
    mod = device.load(dev_message)
    assert mod is dev_message
    assert device.load("message@1.0") is dev_message
    info = device.info(dev_message, {}, opts={})
    assert isinstance(info, dict)
    msg = {"data": "test"}
    assert device.is_exported(msg, dev_message, "get") is True


def test_access(backend: ModuleType) -> None:
    base = {"device": "message@1.0", "data": "value"}
    assert device.is_direct_key_access(base, {"path": "data"}) is True
    assert device.is_direct_key_access(base, {"path": "get"}) is False


def test_tutorial_read_value(backend: ModuleType) -> None:
    base = {"name": "Alice", "balance": 100}
    assert hbeam.resolve(base, {"path": "/balance"}) == 100
    nested = {"user": {"profile": {"name": "Alice"}}}
    assert hbeam.resolve(nested, {"path": "/user/profile/name"}) == "Alice"


def test_tutorial_default_device_operations(backend: ModuleType) -> None:
    msg = {"data": "value"}
    assert hbeam.get("data", msg) == "value"
    assert hbeam.set(msg, "new", "thing") == {"data": "value", "new": "thing"}
    assert hbeam.keys(msg) == ["data"]


def test_tutorial_key_operations(backend: ModuleType) -> None:
    msg = {"name": "Alice", "settings": {"theme": "dark"}}
    assert hbeam.get("name", msg) == "Alice"
    assert hbeam.get("/settings/theme", msg) == "dark"
    assert hbeam.get("missing", msg, "default") == "default"
    counter = {"count": 0}
    assert hbeam.set(counter, "count", 1) == {"count": 1}
    assert hbeam.set(counter, "/data/value", "test") == {"count": 0, "data": {"value": "test"}}
    assert hbeam.set(counter, {"a": 1, "b": 2}) == {"count": 0, "a": 1, "b": 2}
    assert hbeam.remove({"keep": 1, "remove": 2}, "remove") == {"keep": 1}
    assert hbeam.keys({"a": 1, "b": 2, "c": 3}) == ["a", "b", "c"]


def test_pattern_read_modify_write(backend: ModuleType) -> None:
    msg = {"balance": 5}
    value = hbeam.get("balance", msg, 0)
    assert hbeam.set(msg, "balance", value + 100) == {"balance": 105}
    assert hbeam.get("balance", {}, 0) == 0


@pytest.fixture
def pipeline_device() -> Iterator[Any]:
    class Pipeline:
        def validate(self, base: Any) -> Any:
            if not isinstance(base.get("items"), list):
                return ao.Status("error", {"status": 400, "body": "items missing"})
            return hbeam.set(base, "valid", True)

        def transform(self, base: Any) -> Any:
            return hbeam.set(base, "items", [x * 2 for x in base["items"]])

        def save(self, base: Any) -> Any:
            return hbeam.set(base, "saved", True)

    device.register("pipeline@1.0", Pipeline)
    yield Pipeline
    device.unregister("pipeline@1.0")


def test_pattern_pipeline(backend: ModuleType, pipeline_device: Any) -> None:
    initial = {"device": "pipeline@1.0", "items": [1, 2, 3]}
    result = hbeam.resolve_many(
        [initial, {"path": "validate"}, {"path": "transform"}, {"path": "save"}]
    )
    assert result["items"] == [2, 4, 6]
    assert result["valid"] is True and result["saved"] is True
    with pytest.raises(AOError) as info:
        hbeam.resolve_many([{"device": "pipeline@1.0"}, {"path": "validate"}, {"path": "save"}])
    assert info.value.details["status"] == "error"
    assert info.value.details["body"] == "items missing"


def test_pattern_conditional_device_loading(backend: ModuleType) -> None:
    assert device.message_to_device({"a": 1}) is device.default()
    assert device.message_to_device({"device": "patch@1.0"}) is device.load("patch@1.0")


def test_pattern_check_before_execute(backend: ModuleType, my_device: Any) -> None:
    msg = {"device": "my-device@1.0"}
    assert device.is_exported(msg, my_device, "my_key") is True
    assert device.is_exported(msg, my_device, "my_op") is False
