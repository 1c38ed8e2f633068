"""``ao.key_step``: a compiled one-key step returns exactly what ``ao.resolve_key`` returns.

The process runtime compiles ``compute`` once per run of slots; ``stack@1.0`` compiles
its fold (a step per device). These tests compare compiled steps with the resolver on
stacks whose devices return every status (ok, pass, skip, not found, errors), on
messages the step was not compiled for, and check that no step is compiled when the
resolver has work of its own (a step hook, caching, hash paths).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hbeam import NOT_FOUND, ao
from hbeam.errors import AOError

QUIET = {"cache_control": ["no-cache", "no-store"], "hashpath": "ignore"}


class Tally:
    """Appends the pass number; asks for another pass while ``passes`` says so."""

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        seen = [*base.get("seen", []), base.get("pass")]
        out = base.set("seen", seen)
        if len(seen) < int(base.get("passes", 1)):
            return ao.Status("pass", out)
        return out


class Adder:
    """Adds the request's ``add``; skips the rest of the fold when ``stop`` is set."""

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        out = base.set("total", base.get("total", 0) + int(req.get("add", 1)))
        if base.get("stop") == "yes":
            return ao.Status("skip", out)
        if req.get("fail") == "yes":
            raise RuntimeError("asked to fail")
        if req.get("missing") == "yes":
            return NOT_FOUND
        return out


class NoCompute:
    """Has no ``compute``: skipped by a fold."""

    def init(self, base: Any, req: Any, opts: Any) -> Any:
        return base


@pytest.fixture
def stack(backend: ModuleType, register: Callable[[str, Any], Any]) -> Any:
    register("test-tally@1.0", Tally())
    register("test-adder@1.0", Adder())
    register("test-nocompute@1.0", NoCompute())
    return backend.Message(
        {
            "device": "stack@1.0",
            "device-stack": ["test-tally@1.0", "test-nocompute@1.0", "test-adder@1.0"],
            "priv": {"ao-volatile": True},
        }
    )


def _outcome(fn: Callable[[], tuple[str, Any]]) -> Any:
    try:
        return fn()
    except AOError as exc:
        return ("raised", type(exc).__name__, str(exc))


@pytest.mark.parametrize(
    ("changes", "request_keys"),
    [
        ({}, {}),
        ({"passes": 3}, {"add": 5}),
        ({"stop": "yes", "passes": 2}, {}),
        ({}, {"fail": "yes"}),
        ({}, {"missing": "yes"}),
        ({"total": 10}, {"add": 2, "mode": "Map"}),  # a request mode: the router decides
        ({"device-stack": ["test-adder@1.0"]}, {}),  # another stack: the router runs it
        ({"device": "test-adder@1.0"}, {}),  # another device: the resolver runs it
        ({"cache-control": ["no-cache"]}, {}),
        ({"priv": {}}, {}),  # not marked volatile: the result gets the mark
    ],
)
def test_a_step_returns_what_the_resolver_returns(
    backend: ModuleType, stack: Any, changes: dict[str, Any], request_keys: dict[str, Any]
) -> None:
    step = ao.key_step(stack, "compute", opts=QUIET)
    assert step is not None
    msg = stack.merge(changes)
    req = backend.Message({"path": "compute", **request_keys})
    want = _outcome(lambda: ao.resolve_key(msg, "compute", req, opts=QUIET))
    got = _outcome(lambda: step(msg, req))
    assert got == want


def test_no_step_when_the_resolver_has_work_to_do(stack: Any) -> None:
    assert ao.key_step(stack, "compute", opts={**QUIET, "on_step": lambda s: None}) is None
    assert ao.key_step(stack, "compute", opts={"cache_control": ["no-cache", "no-store"]}) is None
    assert ao.key_step(stack, "compute", opts={"hashpath": "ignore"}) is None  # may cache
    assert ao.key_step(stack.set("cache-control", ["no-store"]), "compute", opts=QUIET) is None
    assert ao.key_step(stack, "a/b", opts=QUIET) is None
    assert ao.key_step(stack.set("device", "message@1.0"), "total", opts=QUIET) is None


def test_a_volatile_key_compiles_even_with_caching_on(
    backend: ModuleType, register: Callable[[str, Any], Any]
) -> None:
    class Clock:
        info = {"volatile": ["now"]}

        def now(self, base: Any, req: Any, opts: Any) -> Any:
            return base.set("ticks", base.get("ticks", 0) + 1)

    register("test-clock@1.0", Clock())
    base = backend.Message({"device": "test-clock@1.0"})
    opts = {"hashpath": "ignore"}
    step = ao.key_step(base, "now", opts=opts)
    assert step is not None
    req = backend.Message({"path": "now"})
    assert step(base, req) == ao.resolve_key(base, "now", req, opts=opts)
    assert step(base, req)[1]["priv"]["ao-volatile"] is True


def test_the_compiled_fold_skips_the_router(
    backend: ModuleType, stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hbeam.devices import stack as stack_device

    step = ao.key_step(stack, "compute", opts=QUIET)
    assert step is not None
    req = backend.Message({"path": "compute", "add": 3})
    want = ao.resolve_key(stack.set("passes", 2), "compute", req, opts=QUIET)

    def no_router(*args: Any) -> Any:
        raise AssertionError("the compiled fold went through the router")

    monkeypatch.setattr(stack_device, "router", no_router)
    assert step(stack.set("passes", 2), req) == want


def _patch_base(backend: ModuleType) -> Any:
    return backend.Message(
        {
            "device": "patch@1.0",
            "patch-from": "/results/outbox",
            "patch-to": "/",
            "cache": {"balances": {"a": "1"}},
            "results": {
                "outbox": {
                    "1": {"target": "x", "action": "Debit-Notice"},
                    "2": {"device": "patch@1.0", "cache": {"balances": {"b": "2"}}},
                    "3": {"method": "PATCH", "cache": {"supply": "3"}},
                }
            },
        }
    )


@pytest.mark.parametrize("key", ["compute", "patches"])
@pytest.mark.parametrize(
    ("changes", "request_keys"),
    [
        ({}, {}),
        ({}, {"patch-from": "/results"}),  # request settings come first
        ({}, {"from": "/cache"}),
        ({}, {"Patch-To": "/cache"}),  # found case-insensitively, as a plain read does
        ({}, {"to": "/moved"}),
        ({}, {"device": "message@1.0"}),
        ({"patch-from": "/cache"}, {}),  # the message's own settings changed
        ({"patch-to": "/cache"}, {}),
        ({"patch-from": None, "from": "/results/outbox"}, {}),
        ({"patch-from": "base:/results/outbox"}, {}),
        ({"patch-from": "req:/body"}, {"body": {"1": {"method": "PATCH", "k": "v"}}}),
        ({"results": {"outbox": []}}, {}),
        ({"results": "not a map"}, {}),
        ({"results": None}, {}),  # no source: not found
        ({"device": "message@1.0"}, {}),  # another device: the resolver runs it
        ({"priv": {"ao-volatile": True}}, {}),
    ],
)
def test_the_compiled_patch_move_returns_what_the_resolver_returns(
    backend: ModuleType, key: str, changes: dict[str, Any], request_keys: dict[str, Any]
) -> None:
    from hbeam._sentinels import UNSET

    base = _patch_base(backend)
    step = ao.key_step(base, key, opts=QUIET)
    assert step is not None
    msg = base.merge({k: UNSET if v is None else v for k, v in changes.items()})
    req = backend.Message({"path": key, **request_keys})
    want = _outcome(lambda: ao.resolve_key(msg, key, req, opts=QUIET))
    got = _outcome(lambda: step(msg, req))
    assert got == want


def test_the_compiled_patch_move_is_one_core_call(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hbeam.devices import patch as patch_device

    base = _patch_base(backend)
    step = ao.key_step(base, "compute", opts=QUIET)
    assert step is not None
    req = backend.Message({"path": "compute", "slot": 1})
    want = ao.resolve_key(base, "compute", req, opts=QUIET)

    def no_general(*args: Any) -> Any:
        raise AssertionError("the compiled move took the general path")

    monkeypatch.setattr(patch_device, "_move", no_general)
    monkeypatch.setattr(patch_device, "compute", no_general)
    assert step(base, req) == want
    assert want[1]["cache"]["balances"]["b"] == "2"
    assert want[1]["cache"]["supply"] == "3"
    assert list(want[1]["results"]["outbox"]) == ["1"]


def test_no_compiled_patch_move_for_a_base_it_cannot_move_plainly(backend: ModuleType) -> None:
    from hbeam.devices import patch as patch_device

    base = _patch_base(backend)
    assert patch_device.plan(base, "all", QUIET) is None
    assert patch_device.plan(base.set("patch-from", "req:/x"), "compute", QUIET) is None
    assert patch_device.plan(base.set("patch-to", "/cache"), "compute", QUIET) is None
    assert patch_device.plan(base, "compute", {**QUIET, "on_step": print}) is None
    # declining still compiles a step: it calls the device function as the resolver would
    step = ao.key_step(base.set("patch-to", "/cache"), "compute", opts=QUIET)
    assert step is not None


class Shapes:
    """A function per call shape the resolver knows: 0-3 arguments, and failures."""

    def none(self) -> Any:
        return {"shape": 0}

    def one(self, base: Any) -> Any:
        return base.set("shape", 1)

    def two(self, base: Any, req: Any) -> Any:
        return base.set("shape", 2).set("add", req.get("add"))

    def three(self, base: Any, req: Any, opts: Any) -> Any:
        return base.set("shape", 3).set("quiet", opts.get("hashpath"))

    def crash(self, base: Any, req: Any) -> Any:
        raise KeyError("no such thing")

    def deep(self, base: Any, req: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    def status(self, base: Any, req: Any) -> Any:
        return ao.Status("skip", base.set("shape", "status"))

    def missing(self, base: Any, req: Any) -> Any:
        return NOT_FOUND


class Handled:
    """Every key goes to one handler, which takes the key first."""

    def __init__(self, arity: int) -> None:
        handlers = {
            2: lambda key, base: base.set("handled", key),
            3: lambda key, base, req: base.set("handled", [key, req.get("add")]),
            4: lambda key, base, req, opts: base.set("handled", [key, opts.get("hashpath")]),
        }
        self.info = {"handler": handlers[arity]}


@pytest.mark.parametrize(
    "key", ["none", "one", "two", "three", "crash", "deep", "status", "missing"]
)
def test_a_step_calls_each_function_shape_as_the_resolver_does(
    backend: ModuleType, register: Callable[[str, Any], Any], key: str
) -> None:
    register("test-shapes@1.0", Shapes())
    base = backend.Message({"device": "test-shapes@1.0", "n": 1})
    step = ao.key_step(base, key, opts=QUIET)
    assert step is not None
    req = backend.Message({"path": key, "add": 4})
    want = _outcome(lambda: ao.resolve_key(base, key, req, opts=QUIET))
    assert _outcome(lambda: step(base, req)) == want
    if key in ("crash", "deep"):
        assert want[0] == "raised"
        assert want[1] == ("DeviceError" if key == "crash" else "RecursionLimit")


@pytest.mark.parametrize("arity", [2, 3, 4])
def test_a_step_passes_the_key_to_a_handler(
    backend: ModuleType, register: Callable[[str, Any], Any], arity: int
) -> None:
    register("test-handled@1.0", Handled(arity))
    base = backend.Message({"device": "test-handled@1.0"})
    step = ao.key_step(base, "anything", opts=QUIET)
    assert step is not None
    req = backend.Message({"path": "anything", "add": 4})
    want = ao.resolve_key(base, "anything", req, opts=QUIET)
    assert step(base, req) == want
    assert want[0] == "ok" and "handled" in want[1]


# -- lanes: a device's ready result, run by the compiled Fold without each step's guard --


class Counted:
    """Adds one to ``count`` (and to ``<name>-count``); its lane does the same unless
    the request names it in ``decline`` (the lane then returns None) or ``boom``."""

    info = {"excludes": ["lane"], "volatile": ["compute"]}

    def __init__(self, name: str) -> None:
        self.name = name
        self.lane_calls = 0
        self.lane_results = 0
        self.computed = 0

    def compute(self, base: Any, req: Any, opts: Any) -> Any:
        self.computed += 1
        if req.get("boom") == self.name:
            raise RuntimeError(f"{self.name} blew up")
        return base.merge(
            {
                "count": base.get("count", 0) + 1,
                f"{self.name}-count": 1,
                "seen-pass": base.get("pass"),
            }
        )

    def lane(self, base: Any, key: str, opts: Any) -> Any:
        if key != "compute":
            return None

        def ready(msg: Any, req: Any) -> Any:
            self.lane_calls += 1
            if req.get("decline") == self.name:
                return None
            out = self.compute(msg, req, opts)
            self.lane_results += 1
            return out

        return ready


@pytest.fixture
def laned(backend: ModuleType, register: Callable[[str, Any], Any]) -> tuple[Any, list[Counted]]:
    devices = [Counted("a"), Counted("b")]
    for dev in devices:
        register(f"test-counted-{dev.name}@1.0", dev)
    base = backend.Message(
        {
            "device": "stack@1.0",
            "device-stack": ["test-counted-a@1.0", "test-counted-b@1.0"],
            "priv": {"ao-volatile": True},
        }
    )
    return base, devices


@pytest.mark.parametrize(
    ("changes", "request_keys"),
    [
        ({}, {}),
        ({}, {"decline": "a"}),  # the first lane declines: the ordinary Fold from the start
        ({}, {"decline": "b"}),  # the second declines: the ordinary Fold goes on from there
        ({}, {"boom": "a"}),
        ({}, {"boom": "b"}),
        ({"pass": 3}, {}),  # a base with pass: the ordinary Fold
        ({"max-passes": 2}, {}),
        ({"max-passes": "many"}, {}),  # fails as the ordinary Fold fails
        ({"cache-control": ["no-cache"]}, {}),
        ({}, {"cache-control": ["no-cache"]}),
        ({"priv": {}}, {}),  # not marked volatile: the results get the mark
        ({"device-key": "7", "previous-device": "x"}, {}),  # restored as the Fold restores
        ({"input-prefixes": ["in"], "input-prefix": "old"}, {}),  # another config: router
    ],
)
def test_a_fold_of_lanes_returns_what_the_resolver_returns(
    backend: ModuleType,
    laned: tuple[Any, list[Counted]],
    changes: dict[str, Any],
    request_keys: dict[str, Any],
) -> None:
    base, _ = laned
    step = ao.key_step(base, "compute", opts=QUIET)
    assert step is not None
    msg = base.merge(changes)
    req = backend.Message({"path": "compute", **request_keys})
    want = _outcome(lambda: ao.resolve_key(msg, "compute", req, opts=QUIET))
    got = _outcome(lambda: step(msg, req))
    assert got == want


def test_a_fold_of_lanes_runs_the_lanes(
    backend: ModuleType, laned: tuple[Any, list[Counted]]
) -> None:
    base, (a, b) = laned
    step = ao.key_step(base, "compute", opts=QUIET)
    assert step is not None
    status, value = step(base, backend.Message({"path": "compute"}))
    assert status == "ok" and value["count"] == 2
    assert (a.lane_results, b.lane_results) == (1, 1)
    # b declines: a's lane result is kept (its lane is not run twice), b runs as a step
    status, value = step(base, backend.Message({"path": "compute", "decline": "b"}))
    assert status == "ok" and value["count"] == 2
    assert (a.lane_calls, a.lane_results, b.lane_calls, b.lane_results) == (2, 2, 2, 1)
    assert (a.computed, b.computed) == (2, 2)  # each device once per fold


def test_a_lane_is_given_only_where_a_step_is(
    backend: ModuleType, laned: tuple[Any, list[Counted]], register: Callable[[str, Any], Any]
) -> None:
    base, _ = laned
    dev = base.merge({"device": "test-counted-a@1.0", "device-stack": None})
    step = ao.key_step(dev, "compute", opts=QUIET)
    assert step is not None
    lane = ao.step_lane(step)
    assert lane is not None
    req = backend.Message({"path": "compute"})
    assert lane(dev, req) == step(dev, req)[1]
    assert lane(dev.set("cache-control", ["no-cache"]), req) is None  # the step's guard
    register("test-other@1.0", NoCompute())  # the device registry changed
    assert lane(dev, req) is None
    plain = ao.key_step(backend.Message({"device": "test-adder@1.0"}), "compute", opts=QUIET)
    assert plain is None or ao.step_lane(plain) is None
    assert "lane" not in ao.keys(dev, opts=QUIET)  # a host hook, not a key


def test_a_fold_of_lanes_keeps_the_depth_limit(
    backend: ModuleType, laned: tuple[Any, list[Counted]]
) -> None:
    base, _ = laned
    opts = {**QUIET, "max_resolve_depth": 1}
    step = ao.key_step(base, "compute", opts=opts)
    assert step is not None
    req = backend.Message({"path": "compute"})
    want = _outcome(lambda: ao.resolve_key(base, "compute", req, opts=opts))
    assert want[0] == "raised"
    assert _outcome(lambda: step(base, req)) == want
