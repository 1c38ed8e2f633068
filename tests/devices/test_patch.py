"""patch@1.0 beyond seed 001 (core.md §9, execution-http.md §1.9)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import hbeam
import pytest
from hbeam import NOT_FOUND

ID1 = "CbNHBa9N4OCVm3hO8DVeCVr27LdOUjStfHFBF1Z8dUU"
ID2 = "CbxkT3pu4bIjx6udpLSQAjY2ZBwi8FYU4LHmnvdCaHw"  # shares "Cb" with ID1


def test_custom_set_patch_through_trie(backend: ModuleType) -> None:
    state: dict[str, Any] = {
        "device": "patch@1.0",
        "results": {
            "outbox": {
                "1": {"device": "patch@1.0", "balances": {"device": "trie@1.0"}},
                "2": {"device": "patch@1.0", "balances": {"A": "50", ID2: "250"}},
            }
        },
        "patch-from": "/results/outbox",
    }
    r1 = hbeam.resolve(state, "compute")
    assert hbeam.get("balances/A", r1) == "50"
    assert hbeam.get(f"balances/{ID2}", r1) == "250"
    step2 = hbeam.set(
        r1,
        "results/outbox",
        {"1": {"device": "patch@1.0", "balances": {ID1: "1", ID2: "500"}}},
    )
    r2 = hbeam.resolve(step2, "compute")
    assert hbeam.get(f"balances/{ID1}", r2) == "1"
    assert hbeam.get("balances/A", r2) == "50"
    assert hbeam.get(f"balances/{ID2}", r2) == "500"
    # the two IDs share a prefix: the trie split the edge instead of adding a sibling
    assert "Cb" in r2["balances"]


def test_list_source_is_numbered(backend: ModuleType) -> None:
    state = {
        "device": "patch@1.0",
        "results": {"outbox": [{"method": "PATCH", "x": 1}, {"target": "p", "data": "keep"}]},
        "patch-from": "/results/outbox",
    }
    out = hbeam.resolve(state, "compute")
    assert out["x"] == 1
    assert out["results"]["outbox"] == {"2": {"target": "p", "data": "keep"}}


def test_empty_list_source_has_no_patches(backend: ModuleType) -> None:
    state = {"device": "patch@1.0", "results": {"outbox": []}, "patch-from": "/results/outbox"}
    out = hbeam.resolve(state, "compute")
    assert out["results"]["outbox"] == []


def test_patches_apply_in_numeric_order(backend: ModuleType) -> None:
    outbox = {str(i): {"method": "PATCH", "v": i} for i in range(1, 12)}
    state = {"device": "patch@1.0", "results": {"outbox": outbox}, "patch-from": "/results/outbox"}
    assert hbeam.resolve(state, "compute")["v"] == 11  # "11" after "2", not after "10"


def test_stripping(backend: ModuleType) -> None:
    patch = {
        "Method": "PATCH",
        "Tags": [{"name": "x", "value": "y"}],
        "commitments": {"c": {}},
        "device": "patch@1.0",
        "target": "someone",
        "cache": {"balances": {"a": 1}},
    }
    state = {
        "device": "patch@1.0",
        "results": {"outbox": {"1": patch}},
        "patch-from": "/results/outbox",
    }
    out = hbeam.resolve(state, "compute")
    assert out["cache"] == {"balances": {"a": 1}}
    assert out["target"] == "someone"  # seed 001: all other data is preserved
    for gone in ("Method", "method", "Tags", "commitments"):
        assert gone not in out


def test_patch_deep_merge_keeps_other_balances(backend: ModuleType) -> None:
    state = {
        "device": "patch@1.0",
        "cache": {"balances": {"a": 10, "b": 20, "c": 30}},
        "results": {
            "outbox": {"1": {"device": "patch@1.0", "cache": {"balances": {"a": 5, "d": 1}}}}
        },
        "patch-from": "/results/outbox",
    }
    out = hbeam.resolve(state, "compute")
    assert out["cache"]["balances"] == {"a": 5, "b": 20, "c": 30, "d": 1}


def test_other_devices_are_not_patches(backend: ModuleType) -> None:
    backup = {"device": "backup-cache@1.0", "cache": {"x": 1}}
    state = {
        "device": "patch@1.0",
        "results": {"outbox": {"1": backup}},
        "patch-from": "/results/outbox",
    }
    out = hbeam.resolve(state, "compute")
    assert "cache" not in out
    assert out["results"]["outbox"]["1"] == backup


def test_all_mode_keeps_method(backend: ModuleType) -> None:
    base = {"device": "patch@1.0", "src": {"1": {"method": "PATCH", "x": 1}}}
    out = hbeam.resolve(base, {"path": "all", "from": "/src", "to": "/dst"})
    assert out["dst"] == {"1": {"method": "PATCH", "x": 1}}


def test_lookup_order(backend: ModuleType) -> None:
    base = {
        "device": "patch@1.0",
        "one": {"1": {"method": "PATCH", "got": "one"}},
        "two": {"1": {"method": "PATCH", "got": "two"}},
        "three": {"1": {"method": "PATCH", "got": "three"}},
        "four": {"1": {"method": "PATCH", "got": "four"}},
        "patch-from": "/three",
        "from": "/four",
    }
    assert (
        hbeam.resolve(base, {"path": "compute", "patch-from": "/one", "from": "/two"})["got"]
        == "one"
    )
    assert hbeam.resolve(base, {"path": "compute", "from": "/two"})["got"] == "two"
    assert hbeam.resolve(base, "compute")["got"] == "three"
    no_patch_from = {k: v for k, v in base.items() if k != "patch-from"}
    assert hbeam.resolve(no_patch_from, "compute")["got"] == "four"


def test_root_source(backend: ModuleType) -> None:
    base = {"device": "patch@1.0", "a": 1, "b": {"c": 2}}
    out = hbeam.resolve(base, {"path": "all", "from": "/", "to": "/backup"})
    assert out == {"backup": base}


def test_missing_source_status(backend: ModuleType) -> None:
    status, value = hbeam.ao.resolve_status(
        {"device": "patch@1.0"}, {"path": "compute", "from": "/x"}
    )
    assert (status, value) == ("error", NOT_FOUND)


def test_hooks_are_keys(backend: ModuleType) -> None:
    base = {"device": "patch@1.0", "k": 1}
    for hook in ("init", "normalize", "snapshot"):
        assert hbeam.resolve(base, hook) == base


@pytest.mark.parametrize("key", ["results", "patch-to"])
def test_other_keys_read_through(backend: ModuleType, key: str) -> None:
    base = {"device": "patch@1.0", "results": {"x": 1}, "patch-to": "/"}
    assert hbeam.get(key, base) == base[key]
