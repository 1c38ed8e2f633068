"""Resolution stages and edge cases (core.md §4, §14, §17) on both backends."""

from __future__ import annotations

import types
from collections.abc import Callable
from types import ModuleType
from typing import Any

import hbeam
import pytest
from hbeam import NOT_FOUND, ao
from hbeam.errors import (
    AOError,
    DeviceError,
    InvalidMessage,
    InvalidPath,
    NotFound,
    RecursionLimit,
)

Register = Callable[[str, Any], Any]


def test_path_segments_each_get_the_request_keys(backend: ModuleType, register: Register) -> None:
    seen: list[dict[str, Any]] = []

    def collect(base: Any, req: Any) -> Any:
        seen.append(dict(req))
        return {"device": "collect@1.0", "x": req.get("x"), "depth": base.get("depth", 0) + 1}

    register("collect@1.0", types.SimpleNamespace(collect=collect))
    result = hbeam.resolve(
        {"device": "collect@1.0"},
        {"path": "/collect/collect", "x": 7},
        opts={"cache": backend.ResultCache()},
    )
    assert result["depth"] == 2 and result["x"] == 7
    assert seen == [{"path": "collect", "x": 7}, {"path": "collect", "x": 7}]


def test_two_segment_string_is_two_steps(backend: ModuleType) -> None:
    steps: list[str] = []
    hbeam.resolve({"a": {"b": 1}}, "a/b", opts={"on_step": lambda s: steps.append(s.key)})
    assert steps == ["a", "b"]


def test_literal_in_the_middle_is_not_found(backend: ModuleType) -> None:
    assert hbeam.get("a/b", {"a": "x"}) is NOT_FOUND
    with pytest.raises(NotFound) as info:
        hbeam.resolve({"a": "x"}, "a/b")
    assert "'b'" in str(info.value) and "str" in str(info.value)
    with pytest.raises(NotFound):
        hbeam.resolve_many([{"a": "x"}, {"path": "a"}, {"path": "b"}])


def test_lists_are_one_based_numbered_messages(backend: ModuleType) -> None:
    letters = ["A", "B", "C", "D", "E"]
    assert hbeam.get(1, letters) == "A"
    assert hbeam.get(5, letters) == "E"
    assert hbeam.get(0, letters) is NOT_FOUND
    assert hbeam.get("items/2", {"items": ["x", "y", "z"]}) == "y"
    assert hbeam.resolve(["a", "b"], "2") == "b"
    assert hbeam.keys(["a", "b"]) == ["1", "2"]


def test_root_path_returns_the_base(backend: ModuleType) -> None:
    base = {"a": 1}
    assert hbeam.resolve(base, "/") == base
    assert hbeam.get("/", base) == base


def test_missing_or_empty_path_is_invalid(backend: ModuleType) -> None:
    with pytest.raises(InvalidPath):
        hbeam.resolve({"a": 1}, "")
    with pytest.raises(InvalidPath):
        hbeam.resolve({"a": 1}, None)
    with pytest.raises(InvalidPath, match="no 'path'"):
        hbeam.resolve({"a": 1}, {"x": 1})


def test_deep_paths(backend: ModuleType) -> None:
    msg: dict[str, Any] = {"v": "bottom"}
    for i in range(30):
        msg = {f"k{i}": msg}
    path = "/".join(f"k{i}" for i in reversed(range(30))) + "/v"
    assert hbeam.resolve(msg, path) == "bottom"
    assert hbeam.get(path, msg) == "bottom"
    assert hbeam.get(path.split("/"), msg) == "bottom"


def test_resolve_many_forms(backend: ModuleType) -> None:
    assert hbeam.resolve_many({"1": {"a": "v"}, "2": {"path": "a"}}) == "v"
    assert hbeam.resolve_many([{"a": {"b": "1"}}, {"path": "a"}, {"path": "b"}]) == "1"
    assert hbeam.resolve_many([{"a": 1}]) == {"a": 1}
    with pytest.raises(InvalidMessage, match="empty message sequence"):
        hbeam.resolve_many([])
    with pytest.raises(InvalidMessage, match="numbered"):
        hbeam.resolve_many({"1": {"a": 1}, "3": {"path": "a"}})
    with pytest.raises(InvalidMessage):
        hbeam.resolve_many("not a list")


def test_lone_id_needs_a_store(backend: ModuleType) -> None:
    ident = "zHViBlawFhuCQA31rTR4Gvo8O7gT-Ey48hFL-8VizrA"
    with pytest.raises(NotFound, match="store"):
        hbeam.resolve_many([ident])
    with pytest.raises(NotFound):
        hbeam.resolve(ident, "now")


def test_chain_stops_at_a_non_ok_status(backend: ModuleType, register: Register) -> None:
    calls: list[str] = []

    def stop(base: Any) -> Any:
        calls.append("stop")
        return ao.Status("skip", {"why": "stopped"})

    def after(base: Any) -> Any:
        calls.append("after")
        return base

    register("stopper@1.0", types.SimpleNamespace(stop=stop, after=after))
    status, value = ao.resolve_status({"device": "stopper@1.0"}, "stop/after")
    assert status == "skip" and value == {"why": "stopped"}
    assert calls == ["stop"]
    with pytest.raises(AOError) as info:
        hbeam.resolve({"device": "stopper@1.0"}, "stop/after")
    assert info.value.details["status"] == "skip"
    assert info.value.value == {"why": "stopped"}  # type: ignore[attr-defined]


def test_get_as_with_device(backend: ModuleType, register: Register) -> None:
    handler_dev = types.SimpleNamespace(
        info={"handler": lambda key, base, req, opts: "HANDLER VALUE"}
    )
    register("handler@1.0", handler_dev)
    msg = {"device": "handler@1.0", "test_key": "ACTUAL VALUE"}
    assert hbeam.get("test_key", msg) == "HANDLER VALUE"
    assert hbeam.get("test_key", ("as", "message@1.0", msg)) == "ACTUAL VALUE"
    assert hbeam.resolve_many([("as", "message@1.0", msg), {"path": "test_key"}]) == "ACTUAL VALUE"


def test_as_request_swaps_the_device(backend: ModuleType) -> None:
    data = {"a": 1, "b": [1, 2]}
    result = hbeam.resolve_many(
        [{"data": data}, {"path": "data"}, ("as", "json@1.0", {"path": "serialize"})]
    )
    assert result["content-type"] == "application/json"
    assert result["body"] == '{"a":1,"b":[1,2]}'


def test_cast_without_path_sets_the_device(backend: ModuleType) -> None:
    cast = hbeam.resolve_many([{"x": {"k": "v"}}, {"path": "x"}, ("as", "patch@1.0", {"extra": 1})])
    assert cast == {"k": "v", "device": "patch@1.0", "extra": 1}


def test_http_paths(backend: ModuleType) -> None:
    assert hbeam.resolve("/~message@1.0&a=5/a") == "5"
    assert hbeam.resolve({"path": "/data/format~json@1.0", "data": {"n": 1}})["body"] == '{"n":1}'
    msg = {"path": "/map/(~message@1.0&k=x/k)", "map": {"x": "found"}}
    assert hbeam.resolve(msg) == "found"
    q = hbeam.resolve({"path": "/echo?v+integer=3", "echo": "ok"})
    assert q == "ok"


def test_resolve_values_inside_requests(backend: ModuleType, register: Register) -> None:
    register("echo@1.0", types.SimpleNamespace(echo=lambda base, req: req.get("v")))
    result = hbeam.resolve("/~echo@1.0/echo&v+resolve=~message@1.0%26k=5/k")
    assert result == "5"
    req = {"path": "echo", "v": ("resolve", [{"z": 9}, {"path": "z"}])}
    assert hbeam.resolve({"device": "echo@1.0"}, req) == 9


def test_hashpath_linking(backend: ModuleType) -> None:
    base = backend.Message({"a": {"b": {"c": 1}}, "x": "lit"})
    step1 = hbeam.resolve(base, "a")
    assert step1["priv"]["hashpath"] == hbeam.hashpath(base, "a")
    assert hbeam.hashpath(step1).endswith("/a")
    step2 = hbeam.resolve(base, "a/b")
    assert hbeam.hashpath(step2) == hbeam.hashpath(step1, "b")
    assert hbeam.resolve(base, "x") == "lit"  # literal results untouched
    req = {"path": "set", "y": 1}
    out = hbeam.resolve(base, req)
    assert hbeam.hashpath(out) == hbeam.hashpath(base, req)
    assert len(hbeam.hashpath(out)) == 87  # <43>/<43-char request ID>


def test_hashpath_modes(backend: ModuleType, register: Register) -> None:
    marked = backend.Message({"v": 1, "priv": {"hashpath": "X" * 43 + "/old"}})
    register("marked@1.0", types.SimpleNamespace(get_it=lambda base: marked))
    base = {"device": "marked@1.0"}
    cache = backend.ResultCache()
    upd = hbeam.resolve(base, "get_it", opts={"cache": cache})
    assert hbeam.hashpath(upd) == hbeam.hashpath(backend.Message(base), "get_it")
    reset = hbeam.resolve(
        base, "get_it", opts={"hashpath": "reset", "cache": cache, "cache_control": "no-cache"}
    )
    assert "hashpath" not in reset.get("priv", {})
    ignored = hbeam.resolve(
        base, "get_it", opts={"hashpath": "ignore", "cache": cache, "cache_control": "no-cache"}
    )
    assert ignored["priv"]["hashpath"] == "X" * 43 + "/old"
    with pytest.raises(InvalidMessage):
        hbeam.resolve(base, "get_it", opts={"hashpath": "sometimes"})


def test_error_results_lose_their_hashpath(backend: ModuleType, register: Register) -> None:
    bad = backend.Message({"status": 400, "priv": {"hashpath": "X" * 43 + "/y"}})
    register("bad@1.0", types.SimpleNamespace(fail=lambda base: ao.Status("error", bad)))
    status, value = ao.resolve_status({"device": "bad@1.0"}, "fail")
    assert status == "error"
    assert "hashpath" not in value.get("priv", {})


def test_force_message(backend: ModuleType) -> None:
    assert hbeam.force_message("x") == {"ao-result": "body", "body": "x"}
    assert hbeam.force_message(["a"]) == {"1": "a"}
    assert hbeam.force_message({"a": 1}) == {"a": 1}
    assert hbeam.resolve({"a": 1}, "a", opts={"force_message": True}) == {
        "ao-result": "body",
        "body": 1,
    }


def test_not_found_names_the_key_and_the_keys(backend: ModuleType) -> None:
    with pytest.raises(NotFound) as info:
        hbeam.resolve({"alpha": 1, "beta": 2, "priv": {"x": 1}}, "gamma")
    text = str(info.value)
    assert "'gamma'" in text and "'alpha'" in text and "'beta'" in text
    assert "priv" not in text
    assert isinstance(info.value, KeyError)


def test_device_exception_becomes_device_error(backend: ModuleType, register: Register) -> None:
    def boom(base: Any) -> Any:
        raise ValueError("kaput")

    register("boom@1.0", types.SimpleNamespace(explode=boom))
    with pytest.raises(DeviceError) as info:
        hbeam.resolve({"device": "boom@1.0"}, "explode")
    err = info.value
    assert err.device == "boom@1.0" and err.key == "explode"
    assert isinstance(err.__cause__, ValueError)
    assert "kaput" in str(err)
    # get only swallows *returned* errors
    with pytest.raises(DeviceError):
        hbeam.get("explode", {"device": "boom@1.0"}, "default")


def test_unknown_device(backend: ModuleType) -> None:
    with pytest.raises(DeviceError) as info:
        hbeam.resolve({"device": "nope@9.9", "a": 1}, "a")
    assert "nope@9.9" in str(info.value) and "message@1.0" in str(info.value)
    with pytest.raises(DeviceError):
        hbeam.get("a", {"device": "nope@9.9", "a": 1}, "default")


def test_device_returned_error(backend: ModuleType, register: Register) -> None:
    register(
        "err@1.0",
        types.SimpleNamespace(
            fail=lambda base: ao.Status("error", {"status": 422, "body": "no such thing"}),
            gone=lambda base: NOT_FOUND,
            raised=lambda base: hbeam.InvalidMessage("bad shape"),
        ),
    )
    with pytest.raises(AOError) as info:
        hbeam.resolve({"device": "err@1.0"}, "fail")
    assert info.value.details["status_code"] == 422
    assert info.value.details["body"] == "no such thing"
    with pytest.raises(NotFound):
        hbeam.resolve({"device": "err@1.0"}, "gone")
    assert hbeam.get("gone", {"device": "err@1.0"}, "d") == "d"
    assert hbeam.get("fail", {"device": "err@1.0"}, "d") == "d"
    with pytest.raises(InvalidMessage, match="bad shape"):
        hbeam.resolve({"device": "err@1.0"}, "raised")


def test_sub_resolution_result(backend: ModuleType, register: Register) -> None:
    register(
        "sub@1.0",
        types.SimpleNamespace(
            indirect=lambda base: ("resolve", [{"a": {"b": 2}}, {"path": "a/b"}])
        ),
    )
    assert hbeam.resolve({"device": "sub@1.0"}, "indirect") == 2


def test_on_step_traces_and_rewrites(backend: ModuleType) -> None:
    steps: list[ao.Step] = []
    hbeam.resolve({"a": {"b": 1}}, "a/b", opts={"on_step": steps.append})
    assert [(s.key, s.device, s.status, s.cached) for s in steps] == [
        ("a", "message@1.0", "ok", False),
        ("b", "message@1.0", "ok", False),
    ]

    def rewrite(step: ao.Step) -> Any:
        return ao.Status("ok", "rewritten") if step.key == "b" else None

    assert hbeam.resolve({"a": {"b": 1}}, "a/b", opts={"on_step": rewrite}) == "rewritten"


def test_function_arities(backend: ModuleType, register: Register) -> None:
    register(
        "arity@1.0",
        types.SimpleNamespace(
            one=lambda base: base["k"],
            two=lambda base, req: req["k"],
            three=lambda base, req, opts: opts["k"],
        ),
    )
    base = {"device": "arity@1.0", "k": "1"}
    assert hbeam.resolve(base, "one") == "1"
    assert hbeam.resolve(base, {"path": "two", "k": "13"}) == "13"
    assert hbeam.resolve(base, "three", opts={"k": "1337"}) == "1337"


def test_python_recursion_never_escapes(backend: ModuleType, register: Register) -> None:
    def spin(n: int) -> int:
        return spin(n + 1)

    register("spin@1.0", types.SimpleNamespace(spin=lambda base: spin(0)))
    with pytest.raises(RecursionLimit):
        hbeam.resolve({"device": "spin@1.0"}, "spin")


def test_bad_opts(backend: ModuleType) -> None:
    with pytest.raises(InvalidMessage):
        hbeam.resolve({"a": 1}, "a", opts=["not", "a", "mapping"])  # type: ignore[arg-type]


def test_empty_segments_are_dropped(backend: ModuleType) -> None:
    msg = {"a": {"b": {"c": 1}}}
    assert hbeam.resolve(msg, "/a//b/") == {"c": 1}
    assert hbeam.get("//a/b//c", msg) == 1
    assert hbeam.resolve(msg, ["/a", ["b", "//c"]]) == 1


def test_malformed_request_paths(backend: ModuleType) -> None:
    for bad, where in [
        ("/a/(b/c", "parenthesis"),
        ("/a/b)", "parenthesis"),
        ("/a&n+integer=x", "integer"),
        ("/a&n+nope=1", "unknown type"),
        ("/a/~/b", "device"),
        ("/" + "x" * 600, "600 bytes"),
    ]:
        with pytest.raises(InvalidPath, match=where):
            hbeam.resolve(bad)


def test_seed_000_url_shapes(backend: ModuleType, register: Register, fake_store: Any) -> None:
    """Seed 000's URLs, with a stand-in process device and a sum device."""

    def now(base: Any) -> Any:
        return {"cache": {"balances": base["initial"]}, "at-slot": 3}

    def total(base: Any) -> Any:
        public = {k: v for k, v in base.items() if k not in ("device", "priv")}
        return {"CirculatingSupply": str(sum(int(v) for v in public.values()))}

    register("fakeproc@1.0", types.SimpleNamespace(now=now, info={"volatile": ["now"]}))
    register("summer@1.0", types.SimpleNamespace(sum=total))
    pid = fake_store.write({"device": "fakeproc@1.0", "initial": {"a": "10", "b": "5"}}, opts={})
    opts = {"store": object()}
    balances = hbeam.resolve(f"/{pid}~fakeproc@1.0/now/cache/balances", opts=opts)
    assert balances == {"a": "10", "b": "5"}
    as_json = hbeam.resolve(f"/{pid}~fakeproc@1.0/now/cache/balances/format~json@1.0", opts=opts)
    assert as_json["body"] == '{"a":"10","b":"5"}'
    summed = hbeam.resolve(
        f"/{pid}~fakeproc@1.0/now/cache/balances/~summer@1.0/sum/serialize~json@1.0", opts=opts
    )
    assert summed["body"] == '{"CirculatingSupply":"15"}'
    one = hbeam.resolve(f"/{pid}~fakeproc@1.0/now/cache/balances/a", opts=opts)
    assert one == "10"
