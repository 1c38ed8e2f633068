"""``apply_patches``: patch@1.0's move in one core call equals the generic path, or is None."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pytest
from hbeam.devices import patch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NOTICE = {"action": "Debit-Notice", "quantity": "5"}
TOKEN_PATCH = {"device": "patch@1.0", "cache": {"balances": {"a": "1", "b": "2"}}}
OUTBOX = ["results", "outbox"]


def _state(backend: ModuleType, box: Any, /, **root: Any) -> Any:
    return backend.Message(
        {
            "device": "patch@1.0",
            "cache": {"balances": {"a": "0", "c": "9"}},
            "results": {"outbox": box, "data": "ok"},
            **root,
        }
    )


def _generic(backend: ModuleType, state: Any, source: list[str]) -> Any:
    """patch@1.0's generic path (through ao.get / ao.set: ``on_step`` turns the fast
    paths off)."""
    base = state.merge({"patch-from": "/" + "/".join(source), "patch-to": "/"})
    req = backend.Message({"path": "compute"})
    return patch._move("patches", base, req, {"on_step": lambda step: None})


def canon(value: Any) -> Any:
    """Public content with key order and exact types."""
    if isinstance(value, Mapping):
        return ("M", [(k, canon(v)) for k, v in value.items() if not k.lower().startswith("priv")])
    if isinstance(value, (list, tuple)):
        return ("L", [canon(v) for v in value])
    return (type(value).__name__, value)


def _same(backend: ModuleType, state: Any, source: list[str]) -> Any:
    """apply_patches on ``state`` (with the patch settings the generic path reads),
    checked against the generic path; returns the result."""
    base = state.merge({"patch-from": "/" + "/".join(source), "patch-to": "/"})
    got = backend.apply_patches(base, source, [])
    if got is None:
        return None
    assert type(got) is backend.Message
    want = _generic(backend, state, source)
    assert got == want
    assert canon(got) == canon(want)
    return got


# ------------------------------------------------------------------------ examples


def test_token_case(backend: ModuleType) -> None:
    state = _state(backend, {"1": NOTICE, "2": NOTICE, "3": TOKEN_PATCH})
    out = _same(backend, state, OUTBOX)
    assert out is not None
    assert out["cache"]["balances"] == {"a": "1", "b": "2", "c": "9"}
    assert out["results"] == {"outbox": {"1": NOTICE, "2": NOTICE}, "data": "ok"}
    assert out["device"] == "patch@1.0"


def test_nested_slash_keys_are_read_as_the_generic_path_reads_them(backend: ModuleType) -> None:
    # a kept entry and a patch are re-set as message@1.0 would set them, which reads a
    # "/" key as a path: those go through the merge, plain ones are kept as they are
    notice = {**NOTICE, "meta": {"a/b": "1", "c": {"d/e": "2"}}}
    patch = {"device": "patch@1.0", "cache": {"balances": {"a": "1"}, "x": {"y/z": "3"}}}
    for box in (
        {"1": notice, "2": TOKEN_PATCH},
        {"1": NOTICE, "2": patch},
        {"1": notice, "2": patch, "3": TOKEN_PATCH},
    ):
        out = _same(backend, _state(backend, box), OUTBOX)
        assert out is not None


def test_numeric_order(backend: ModuleType) -> None:
    outbox = {
        "10": {"method": "PATCH", "x": "ten"},
        "2": {"method": "PATCH", "x": "two", "y": "two"},
        "a": {"method": "PATCH", "y": "a"},
        "02": {"method": "PATCH", "z": "02"},
    }
    out = _same(backend, _state(backend, outbox), OUTBOX)
    assert out is not None
    # "02" < "2" < "10" < "a"
    assert (out["x"], out["y"], out["z"]) == ("ten", "a", "02")
    assert out["results"]["outbox"] == {}


def test_method_patch_any_case(backend: ModuleType) -> None:
    outbox = {"1": {"Method": "patch", "k": "v"}, "2": {"METHOD": "Patch", "j": "w"}}
    out = _same(backend, _state(backend, outbox), OUTBOX)
    assert out is not None
    assert (out["k"], out["j"]) == ("v", "w")
    assert "Method" not in out and "METHOD" not in out


def test_device_key_any_case(backend: ModuleType) -> None:
    outbox = {"1": {"Device": "PATCH@1.0", "k": "v"}, "2": {"dEvIcE": "other@1.0", "j": "w"}}
    out = _same(backend, _state(backend, outbox), OUTBOX)
    assert out is not None
    assert out["k"] == "v" and out["Device"] == "PATCH@1.0"
    assert out["results"]["outbox"] == {"2": {"dEvIcE": "other@1.0", "j": "w"}}


def test_method_none_falls_back_to_other_case(backend: ModuleType) -> None:
    outbox = {"1": {"method": None, "Method": "PATCH", "k": "v"}}
    out = _same(backend, _state(backend, outbox), OUTBOX)
    assert out is not None and out["k"] == "v"


def test_stripped_keys(backend: ModuleType) -> None:
    entry = {
        "method": "PATCH",
        "Commitments": {"x": {"committed": ["k"]}},
        "Tags": ["a"],
        "tags": "t",
        "k": "v",
    }
    out = _same(backend, _state(backend, {"1": entry}), OUTBOX)
    assert out is not None
    for gone in ("method", "Commitments", "Tags", "tags"):
        assert gone not in out
    assert out["k"] == "v"


def test_private_keys(backend: ModuleType) -> None:
    outbox = {
        "priv-1": {"method": "PATCH", "k": "v"},
        "1": {"method": "PATCH", "priv": {"x": "1"}, "private": "p", "hashpath": "h", "j": "w"},
    }
    out = _same(backend, _state(backend, outbox), OUTBOX)
    assert out is not None
    # a private entry is no patch: it stays; private keys of a patch are not written
    assert out["results"]["outbox"]["priv-1"] == {"method": "PATCH", "k": "v"}
    assert "k" not in out and "private" not in out and "hashpath" not in out
    assert out["j"] == "w"


def test_reserved_keys_not_written(backend: ModuleType) -> None:
    outbox = {"1": {"method": "PATCH", "id": "i", "keys": "k", "set": "s", "j": "w"}}
    out = _same(backend, _state(backend, outbox), OUTBOX)
    assert out is not None
    assert "id" not in out and "keys" not in out and "set" not in out


def test_no_patches(backend: ModuleType) -> None:
    state = _state(backend, {"1": NOTICE, "2": {"method": "GET"}})
    assert backend.apply_patches(state, OUTBOX, []) is state
    base = state.merge({"patch-from": "/results/outbox", "patch-to": "/"})
    assert _same(backend, state, OUTBOX) == base


def test_empty_patch_leaves_root(backend: ModuleType) -> None:
    state = _state(backend, {"1": {"method": "PATCH"}, "2": NOTICE})
    out = _same(backend, state, OUTBOX)
    assert out is not None
    assert out["results"]["outbox"] == {"2": NOTICE}
    assert out["cache"] == state["cache"]


def test_source_not_a_message(backend: ModuleType) -> None:
    state = _state(backend, "text")
    assert backend.apply_patches(state, OUTBOX, []) is state
    base = state.merge({"patch-from": "/results/data", "patch-to": "/"})
    assert _same(backend, state, ["results", "data"]) == base


def test_top_level_source(backend: ModuleType) -> None:
    state = backend.Message({"outbox": {"1": TOKEN_PATCH, "2": NOTICE}, "cache": {}})
    out = _same(backend, state, ["outbox"])
    assert out is not None
    assert out["outbox"] == {"2": NOTICE}
    assert out["cache"] == {"balances": {"a": "1", "b": "2"}}


@pytest.mark.parametrize(
    ("source", "dest", "root"),
    [
        (OUTBOX, ["x"], {}),  # a destination
        (["results", ""], [], {}),
        (["results", "priv"], [], {}),
        (["privy"], [], {}),
        (["results", "keys"], [], {}),
        (["results", "missing"], [], {}),
        (["results", "OUTBOX"], [], {}),  # exact lookups only
        (["path"], [], {"path": {"1": TOKEN_PATCH}}),
        (["id"], [], {"id": {"1": TOKEN_PATCH}}),
        (["set-mode"], [], {"set-mode": {"1": TOKEN_PATCH}}),
        (["hashpath"], [], {"hashpath": {"1": TOKEN_PATCH}}),
        (OUTBOX, [], {"commitments": {"c": {"committed": ["cache"]}}}),
        (["cache", "balances", "a"], [], {"cache": {"device": "trie@1.0", "balances": {}}}),
        (["list"], [], {"list": [TOKEN_PATCH]}),
        (["list", "1"], [], {"list": [TOKEN_PATCH]}),
        (["weird"], [], {"weird": {"é": TOKEN_PATCH}}),
        (["two"], [], {"two": {"1": {"method": "PATCH", "device": "trie@1.0"}, "2": TOKEN_PATCH}}),
        (["two"], [], {"two": {"1": {"method": "PATCH", "a/b": "x"}}}),
        (["two"], [], {"two": {"1": {"method": "PATCH", "path": "x"}}}),
        (["two"], [], {"two": {"1": {"method": "PATCH", "set-mode": "explicit", "a": "1"}}}),
        (
            ["two"],
            [],
            {
                "two": {
                    "1": {"method": "PATCH", "x": {"device": "d"}},
                    "2": {**TOKEN_PATCH, "x": {"b": "1"}},
                }
            },
        ),
        (["two"], [], {"two": {"1": TOKEN_PATCH}, "cache": {"balances": {"device": "trie@1.0"}}}),
        (["two"], [], {"two": {"1": TOKEN_PATCH}, "cache": ["not", "a", "map"]}),
    ],
)
def test_not_plain_is_none(
    backend: ModuleType, source: list[str], dest: list[str], root: dict[str, Any]
) -> None:
    state = _state(backend, {"1": TOKEN_PATCH}, **root)
    assert backend.apply_patches(state, source, dest) is None


def test_bad_arguments_are_none(backend: ModuleType) -> None:
    state = _state(backend, {"1": TOKEN_PATCH})
    assert backend.apply_patches(state, [], []) is None
    assert backend.apply_patches({"a": 1}, OUTBOX, []) is None
    assert backend.apply_patches(state, "results/outbox", []) is None
    assert backend.apply_patches(state, [1, 2], []) is None


def test_deep_nesting_is_none_or_equal(backend: ModuleType) -> None:
    deep: dict[str, Any] = {"x": "1"}
    for _ in range(70):
        deep = {"n": deep}
    state = _state(backend, {"1": {"method": "PATCH", "n": deep}}, n=deep)
    assert backend.apply_patches(state, OUTBOX, []) is None


# ------------------------------------------------------------------ generated cases

_LEAVES = st.sampled_from(
    [
        "1",
        "x",
        "PATCH",
        "patch",
        "patch@1.0",
        "Patch@1.0",
        "message@1.0",
        "trie@1.0",
        5,
        None,
        True,
        b"b",
        1.5,
    ]
)
_KEYS = st.sampled_from(
    [
        "a",
        "b",
        "cache",
        "balances",
        "device",
        "Device",
        "method",
        "Method",
        "METHOD",
        "tags",
        "Tags",
        "commitments",
        "hashpath",
        "priv",
        "private",
        "Path",
        "set-mode",
        "id",
        "keys",
        "1",
        "2",
        "10",
        "02",
        "x/y",
        "path",
    ]
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(st.dictionaries(_KEYS, inner, max_size=4), st.lists(inner, max_size=2)),
    max_leaves=8,
)
_PLAIN_KEYS = st.sampled_from(["a", "b", "c", "balances", "1", "Device"])
_PLAIN_VALUES = st.recursive(
    st.sampled_from(["1", "2", 3]),
    lambda inner: st.dictionaries(_PLAIN_KEYS, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def _patch(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    marker = draw(st.sampled_from(["method", "Method", "device", "DEVICE", "both", "none"]))
    if marker in ("method", "Method", "both"):
        entry[marker if marker != "both" else "method"] = draw(
            st.sampled_from(["PATCH", "patch", "GET", None])
        )
    if marker in ("device", "DEVICE", "both"):
        entry[marker if marker != "both" else "device"] = draw(
            st.sampled_from(["patch@1.0", "PATCH@1.0", "message@1.0", "trie@1.0"])
        )
    rare = draw(st.booleans())
    entry.update(
        draw(
            st.dictionaries(
                _KEYS if rare else _PLAIN_KEYS, _VALUES if rare else _PLAIN_VALUES, max_size=3
            )
        )
    )
    return entry


_ENTRY_KEYS = st.sampled_from(["1", "2", "3", "10", "02", "0", "a", "priv-x", "Z"])
_OUTBOX = st.dictionaries(
    _ENTRY_KEYS, st.one_of(_patch(), _patch(), st.just(NOTICE), _VALUES), max_size=5
)
_SOURCES = st.sampled_from(
    [OUTBOX, OUTBOX, OUTBOX, ["outbox"], ["results"], ["cache"], ["results", "data"]]
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    outbox=_OUTBOX,
    root=st.dictionaries(
        st.sampled_from(["cache", "a", "b", "1", "Device", "outbox"]),
        st.one_of(_PLAIN_VALUES, _VALUES),
        max_size=3,
    ),
    source=_SOURCES,
)
def test_equals_generic_path(
    backend: ModuleType, outbox: dict[str, Any], root: dict[str, Any], source: list[str]
) -> None:
    state = _state(backend, outbox, **root)
    base = state.merge({"patch-from": "/" + "/".join(source), "patch-to": "/"})
    got = backend.apply_patches(base, source, [])
    if got is None:
        return
    try:
        want = _generic(backend, state, source)
    except Exception as exc:  # the generic path fails: apply_patches must not answer
        raise AssertionError(
            f"apply_patches answered where the generic path raised {exc!r}"
        ) from exc
    assert got == want
    assert canon(got) == canon(want)


def test_token_case_is_native(backend: ModuleType) -> None:
    """The common case is never handed back (None) to the generic path."""
    for n in (1, 3, 20):
        outbox: dict[str, Any] = {str(i): NOTICE for i in range(1, n)}
        outbox[str(n)] = TOKEN_PATCH
        assert _same(backend, _state(backend, outbox), OUTBOX) is not None


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    outbox=_OUTBOX,
    root=st.dictionaries(st.sampled_from(["cache", "a", "Device", "outbox"]), _VALUES, max_size=3),
    source=_SOURCES,
)
def test_parity(
    both_backends: tuple[ModuleType, ModuleType],
    outbox: dict[str, Any],
    root: dict[str, Any],
    source: list[str],
) -> None:
    """Pure and native answer alike: both None, or equal messages."""
    results = []
    for backend in both_backends:
        state = _state(backend, outbox, **root)
        base = state.merge({"patch-from": "/" + "/".join(source), "patch-to": "/"})
        out = backend.apply_patches(base, source, [])
        results.append(None if out is None else ("M", canon(out), out.to_dict()))
    assert results[0] == results[1]
