"""The native module's surface: the same names as ``_pure`` and the stub, the Python
classes of ``hbeam.errors`` and ``hbeam._sentinels``, a release build under ``make``."""

from __future__ import annotations

import abc
import ast
import gc
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import hbeam
import pytest
from hbeam import errors
from hbeam._sentinels import NOT_FOUND

STUB = Path(hbeam.__file__).with_name("_native.pyi")


def _public(names: object) -> set[str]:
    return {n for n in names if not (n.startswith("__") and n.endswith("__"))}  # type: ignore[attr-defined]


def _stub_names() -> set[str]:
    tree = ast.parse(STUB.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return _public(names)


def test_names_agree_with_pure_and_stub(both_backends: tuple[ModuleType, ModuleType]) -> None:
    pure, native = both_backends
    expected = _public(pure.__all__)
    assert _public(dir(native)) == expected
    assert _stub_names() == expected
    assert _public(native.__all__) == expected


def test_build_profile_and_version(both_backends: tuple[ModuleType, ModuleType]) -> None:
    _, native = both_backends
    assert native.build_profile in ("release", "debug")
    if os.environ.get("HBEAM_REQUIRE_NATIVE") == "1":  # `make test` builds with --release
        assert native.build_profile == "release"
    assert native.__version__ == hbeam.__version__


def test_classes(both_backends: tuple[ModuleType, ModuleType]) -> None:
    _, native = both_backends
    m = native.Message(a=1)
    assert isinstance(m, Mapping)
    assert issubclass(native.Message, Mapping)
    assert native.Message.__module__ == "hbeam._native"
    assert native.ResultCache.__module__ == "hbeam._native"
    assert type(native.Message(a=1).set("b", 2)) is native.Message


def test_mapping_checks_on_a_message_are_cached(
    both_backends: tuple[ModuleType, ModuleType],
) -> None:
    # CPython caches isinstance answers for a class found through a registered ABC, not
    # for one registered with Mapping itself (then every check walks the ABC's hooks)
    _, native = both_backends
    assert isinstance(native.Message(a=1), Mapping)
    cache = abc._get_dump(Mapping)[1]  # type: ignore[attr-defined]
    assert native.Message in {ref() for ref in cache}
    registry = abc._get_dump(Mapping)[0]  # type: ignore[attr-defined]
    assert native.Message not in {ref() for ref in registry}


def test_messages_are_left_out_of_the_cycle_collector(
    both_backends: tuple[ModuleType, ModuleType],
) -> None:
    # a native Message's traverse visits none of its values, so tracking it would only
    # make every collection walk every live Message; reference counting still frees it
    _, native = both_backends
    M = native.Message
    made = {
        "dict": M({"a": {"b": 1}}),
        "keywords": M(a=1),
        "pairs": M([("a", 1)]),
        "copy": M(M(a=1)),
        "empty": M(),
        "merge": M(a=1).merge({"c": {"d": 2}}),
        "set": M(a=1).set("x", {"y": 1}),
        "remove": M(a=1, b=2).remove("a"),
        "decode": native.decode(native.encode(M({"a": {"b": [1, 2]}}))),
    }
    made["nested"] = made["dict"]["a"]
    made["merged nested"] = made["merge"]["c"]
    made["decoded nested"] = made["decode"]["a"]
    for how, msg in made.items():
        assert type(msg) is M, how
        assert not gc.is_tracked(msg), how

    value = "".join(["a value held only here", str(id(made))])
    held = sys.getrefcount(value)
    msg = M({"a": {"b": value}}).set("c", 1)
    assert sys.getrefcount(value) > held
    del msg
    assert sys.getrefcount(value) == held


def test_errors_are_the_python_classes(both_backends: tuple[ModuleType, ModuleType]) -> None:
    _, native = both_backends
    with pytest.raises(errors.InvalidPath) as path_info:
        native.parts(1.5)
    assert type(path_info.value) is errors.InvalidPath
    with pytest.raises(errors.InvalidMessage) as msg_info:
        native.normalize_key(1.5)
    assert type(msg_info.value) is errors.InvalidMessage
    with pytest.raises(errors.NotFound) as nf_info:
        native.Message()["x"]
    assert type(nf_info.value) is errors.NotFound
    assert isinstance(nf_info.value, KeyError)
    assert str(nf_info.value) == "key 'x' not found"


def test_sentinels_are_the_python_objects(both_backends: tuple[ModuleType, ModuleType]) -> None:
    _, native = both_backends
    assert native.Message().get_path("missing") is NOT_FOUND
    assert native.Message().get_path("missing", None) is None
    assert native.Message(a=1).set("a", hbeam.UNSET) == {}
    m = native.Message(a=1)
    assert m.set("a", hbeam.UNDEFINED) is m


def test_constants(both_backends: tuple[ModuleType, ModuleType]) -> None:
    pure, native = both_backends
    for name in ("MAX_DEPTH", "MAX_KEY_BYTES", "MAX_SEGMENT_BYTES"):
        assert getattr(native, name) == getattr(pure, name)
