"""The device system: lookup order, info, loading, registry (core.md §5)."""

from __future__ import annotations

import importlib.metadata
import types
from collections.abc import Callable
from types import ModuleType
from typing import Any

import hbeam
import pytest
from hbeam import device
from hbeam.errors import DeviceError, NotFound

Register = Callable[[str, Any], Any]


def handler(key: str, base: Any, req: Any, opts: Any) -> str:
    return "HANDLER VALUE"


def test_handler_answers_every_key(backend: ModuleType, register: Register) -> None:
    register("h@1.0", types.SimpleNamespace(info={"handler": handler}))
    assert hbeam.resolve({"device": "h@1.0", "test_key": "BAD"}, "test_key") == "HANDLER VALUE"
    assert hbeam.resolve({"device": "h@1.0"}, "anything") == "HANDLER VALUE"


def test_exports_limit_the_device(backend: ModuleType, register: Register) -> None:
    register(
        "ex@1.0", types.SimpleNamespace(info={"exports": ["test1", "Test2"], "handler": handler})
    )
    msg = {"device": "ex@1.0", "test1": "BAD1", "test3": "GOOD3"}
    assert hbeam.get("test1", msg) == "HANDLER VALUE"
    assert hbeam.get("test2", msg) == "HANDLER VALUE"
    assert hbeam.get("test3", msg) == "GOOD3"  # not exported: message@1.0 reads it
    assert hbeam.get("test5", msg) is hbeam.NOT_FOUND
    with pytest.raises(NotFound):
        hbeam.resolve(msg, "test5")
    out = hbeam.set(msg, "test4", "GOOD4")  # set is not exported: message@1.0's set works
    assert out["test4"] == "GOOD4"


def test_excludes(backend: ModuleType, register: Register) -> None:
    register("exc@1.0", types.SimpleNamespace(info={"excludes": ["set"], "handler": handler}))
    msg = {"device": "exc@1.0", "a": 1}
    assert hbeam.get("a", msg) == "HANDLER VALUE"
    assert hbeam.get("keys", msg) == "HANDLER VALUE"
    assert hbeam.set(msg, "b", 2)["b"] == 2


def test_handler_map_with_excludes(backend: ModuleType, register: Register) -> None:
    register(
        "hm@1.0", types.SimpleNamespace(info={"handler": {"func": handler, "excludes": ["raw"]}})
    )
    msg = {"device": "hm@1.0", "raw": "RAW"}
    assert hbeam.get("other", msg) == "HANDLER VALUE"
    assert hbeam.get("raw", msg) == "RAW"


def test_default_function(backend: ModuleType, register: Register) -> None:
    register(
        "df@1.0",
        types.SimpleNamespace(
            state_key=lambda base: "STATE",
            info={"default": lambda key, base: f"DEFAULT:{key}"},
        ),
    )
    msg = {"device": "df@1.0"}
    assert hbeam.get("state_key", msg) == "STATE"
    assert hbeam.get("any_random_key", msg) == "DEFAULT:any_random_key"


def test_default_device_delegation(backend: ModuleType, register: Register) -> None:
    register("inner@1.0", types.SimpleNamespace(shared=lambda base: "FROM INNER"))
    register(
        "outer@1.0", types.SimpleNamespace(own=lambda base: "OWN", info={"default": "inner@1.0"})
    )
    register("outer2@1.0", types.SimpleNamespace(info={"default_mod": "inner@1.0"}))
    msg = {"device": "outer@1.0", "plain": 1}
    assert hbeam.get("own", msg) == "OWN"
    assert hbeam.get("shared", msg) == "FROM INNER"
    assert hbeam.get("plain", msg) == 1  # inner has no such key: message@1.0
    assert hbeam.get("shared", {"device": "outer2@1.0"}) == "FROM INNER"


def test_default_device_cycle(backend: ModuleType, register: Register) -> None:
    register("ca@1.0", types.SimpleNamespace(info={"default": "cb@1.0"}))
    register("cb@1.0", types.SimpleNamespace(info={"default": "ca@1.0"}))
    with pytest.raises(DeviceError, match="cycle"):
        hbeam.get("x", {"device": "ca@1.0"})


def test_fallback_to_message_device(backend: ModuleType) -> None:
    msg = {"device": "patch@1.0", "a": 1}
    assert hbeam.get("a", msg) == 1
    assert sorted(hbeam.keys(msg)) == ["a", "device"]
    status, dev, _fun = device.message_to_fun(msg, "a")
    assert dev is device.default() and status == "add_key"


def test_key_names_map_to_attributes(backend: ModuleType, register: Register) -> None:
    register(
        "attrs@1.0",
        types.SimpleNamespace(patch_from=lambda base: "PF", pass_=lambda base: "PASS"),
    )
    msg = {"device": "attrs@1.0"}
    assert hbeam.get("patch-from", msg) == "PF"
    assert hbeam.get("patch_from", msg) == "PF"
    assert hbeam.get("pass", msg) == "PASS"


def test_module_device_exposes_only_its_own_functions(backend: ModuleType) -> None:
    patch = device.load("patch@1.0")
    # patch.py imports hbeam.ao; its helpers are private: only its own functions are keys
    assert device.message_to_fun({"device": "patch@1.0"}, "get_first")[1] is device.default()
    assert device.message_to_fun({"device": "patch@1.0"}, "all")[2] is patch.all


def test_register_decorator_and_names(backend: ModuleType) -> None:
    @device.register("Counter@1.0")
    class Counter:
        def value(self, base: Any) -> int:
            return 42

    try:
        assert isinstance(device.load("counter@1.0"), Counter)
        assert device.load("COUNTER@1.0") is device.load("counter@1.0")
        assert hbeam.resolve({"device": "Counter@1.0"}, "value") == 42
        assert device.device_name(device.load("counter@1.0")) == "Counter@1.0"
        assert "counter@1.0" in device.known()
    finally:
        device.unregister("Counter@1.0")
    with pytest.raises(DeviceError):
        device.load("counter@1.0")


def test_message_names_device_case_insensitively(backend: ModuleType) -> None:
    assert device.message_to_device({"Device": "PATCH@1.0"}) is device.load("patch@1.0")


def test_unloadable_builtin(backend: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(device.BUILTIN, "broken@1.0", "hbeam.devices.does_not_exist")
    with pytest.raises(DeviceError) as info:
        device.load("broken@1.0")
    assert isinstance(info.value.__cause__, ImportError)
    assert "broken@1.0" in str(info.value)


def test_entry_points(backend: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = importlib.metadata.EntryPoint(
        name="ext-json@1.0", value="hbeam.devices.json", group=device.ENTRY_POINT_GROUP
    )

    def fake(**kw: Any) -> list[Any]:
        return [ep] if kw.get("group") == device.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    monkeypatch.setattr(device, "_entry_points", None)
    monkeypatch.setattr(device, "_loaded", dict(device._loaded))
    assert device.load("ext-json@1.0") is device.load("json@1.0")
    assert "ext-json@1.0" in device.known()
    body = hbeam.resolve({"device": "ext-json@1.0", "a": 1}, "serialize")["body"]
    assert body == '{"a":1}'


def test_info_cached_or_dynamic(backend: ModuleType, register: Register) -> None:
    calls = {"static": 0, "dynamic": 0}

    def static_info() -> dict[str, Any]:
        calls["static"] += 1
        return {"exports": ["f"]}

    def dynamic_info(msg: Any) -> dict[str, Any]:
        calls["dynamic"] += 1
        return {"exports": list(msg.get("stack-keys", []))}

    register("st@1.0", types.SimpleNamespace(f=lambda b: "F", g=lambda b: "G", info=static_info))
    register("dy@1.0", types.SimpleNamespace(f=lambda b: "F", g=lambda b: "G", info=dynamic_info))
    for _ in range(3):
        assert hbeam.get("f", {"device": "st@1.0"}) == "F"
        assert hbeam.get("g", {"device": "st@1.0", "g": "plain"}) == "plain"
    assert calls["static"] == 1
    assert hbeam.get("g", {"device": "dy@1.0", "stack-keys": ["g"]}) == "G"
    assert hbeam.get("g", {"device": "dy@1.0", "stack-keys": ["f"], "g": "plain"}) == "plain"
    assert calls["dynamic"] >= 2
    assert device.info("st@1.0") == {"exports": ["f"]}


def test_info_failure(backend: ModuleType, register: Register) -> None:
    def bad_info(msg: Any) -> dict[str, Any]:
        raise RuntimeError("no info")

    register("bi@1.0", types.SimpleNamespace(info=bad_info))
    with pytest.raises(DeviceError) as info:
        hbeam.get("x", {"device": "bi@1.0"})
    assert isinstance(info.value.__cause__, RuntimeError)


def test_is_exported_and_direct_access(backend: ModuleType, register: Register) -> None:
    msg: dict[str, Any] = {"data": 1}
    dev_message = device.default()
    assert device.is_exported(msg, dev_message, "get")
    assert device.is_exported(msg, dev_message, "info")
    register("only@1.0", types.SimpleNamespace(a=lambda b: 1, info={"exports": ["a"]}))
    assert device.is_exported({}, "only@1.0", "a")
    assert not device.is_exported({}, "only@1.0", "b")
    assert device.is_exported({}, "only@1.0", "info")
    assert device.is_direct_key_access({"device": "only@1.0", "b": 2}, {"path": "b"})
    assert not device.is_direct_key_access({"device": "only@1.0"}, {"path": "a"})
    for fn_key in ("get", "set", "keys", "id", "remove", "set_path"):
        assert not device.is_direct_key_access({}, {"path": fn_key})


def test_device_value_must_be_a_name(backend: ModuleType) -> None:
    with pytest.raises(DeviceError, match="named by a str"):
        hbeam.resolve({"device": 5, "a": 1}, "a")
    with pytest.raises(DeviceError):
        device.load(None)
