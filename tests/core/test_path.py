"""Paths (core.md §3.1-3.2, contract "Paths"): parts and to_str."""

from __future__ import annotations

from types import ModuleType

import pytest
from hbeam.errors import InvalidPath


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("abc", ["abc"]),
        ("a/b/c", ["a", "b", "c"]),
        ("/a//b/", ["a", "b"]),
        ("/a/b//c", ["a", "b", "c"]),
        ("/", []),
        ("", []),
        ("///", []),
        ("A/B", ["A", "B"]),  # no case change
        ("base:/data", ["base:", "data"]),  # no prefix interpretation
        ("../.", ["..", "."]),  # no traversal meaning
        ("a/../b", ["a", "..", "b"]),
        ("é/😀", ["é", "😀"]),
        (b"/a/b", ["a", "b"]),
        (b"", []),
        (5, ["5"]),
        (-3, ["-3"]),
        (0, ["0"]),
        (True, ["true"]),
        (False, ["false"]),
        ([], []),
        ((), []),
        ([["/a", ["b", "//b"]], "c"], ["a", "b", "b", "c"]),
        (["a", 1, b"b/c", ("d",)], ["a", "1", "b", "c", "d"]),
        (["", "/", "data"], ["data"]),
    ],
)
def test_parts(backend: ModuleType, path: object, expected: list[str]) -> None:
    assert backend.parts(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["a", "b", "c"], "a/b/c"),
        (["a", ["b", "//b"], "c"], "a/b/b/c"),
        ("/a/b", "a/b"),
        (["", "data"], "data"),
        ([], ""),
        ("/", ""),
        (7, "7"),
    ],
)
def test_to_str(backend: ModuleType, path: object, expected: str) -> None:
    assert backend.to_str(path) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (1.5, "unsupported path type float: 1.5"),
        (None, "unsupported path type NoneType: None"),
        ({"a": 1}, "unsupported path type dict: {'a': 1}"),
        ({1}, "unsupported path type set: {1}"),
        (["a", 2.5], "unsupported path type float: 2.5"),
        (bytearray(b"a"), "unsupported path type bytearray: bytearray(b'a')"),
        (b"a/\xff", "path is not valid UTF-8: b'a/\\xff'"),
        ("a\udcff", "path is not valid UTF-8: 'a\\udcff'"),
    ],
)
def test_parts_rejects(backend: ModuleType, path: object, message: str) -> None:
    with pytest.raises(InvalidPath) as info:
        backend.parts(path)
    assert str(info.value) == message
    with pytest.raises(InvalidPath):
        backend.to_str(path)


def test_parts_object(backend: ModuleType) -> None:
    with pytest.raises(InvalidPath, match=r"^unsupported path type object: <object object"):
        backend.parts(object())
    with pytest.raises(InvalidPath, match=r"^unsupported path type Message: "):
        backend.parts(backend.Message(a=1))


def test_segment_limit(backend: ModuleType) -> None:
    ten_mb = "x" * (10 * 1024 * 1024)
    with pytest.raises(InvalidPath) as info:
        backend.parts(f"a/b/{ten_mb}/c")
    assert str(info.value) == "segment 3 is 10485760 bytes (limit 65536)"
    with pytest.raises(InvalidPath, match=r"^segment 1 is 10485760 bytes \(limit 65536\)$"):
        backend.parts(ten_mb.encode())
    # segments are counted in the result, across list elements and after dropped empties
    with pytest.raises(InvalidPath, match=r"^segment 4 is 65537 bytes \(limit 65536\)$"):
        backend.parts(["//a", ["b/c"], "/" + "y" * 65537])
    assert backend.parts("x" * 65536) == ["x" * 65536]
    # UTF-8 bytes, not characters
    assert backend.parts("é" * 32768) == ["é" * 32768]
    with pytest.raises(InvalidPath, match=r"^segment 1 is 65538 bytes \(limit 65536\)$"):
        backend.parts("é" * 32769)
    # a long path of short segments is fine
    long_path = "/".join(["seg"] * 100_000)
    assert len(backend.parts(long_path)) == 100_000


def test_deep_and_cyclic_path_lists(backend: ModuleType) -> None:
    deep: list[object] = ["x"]
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidPath) as info:
        backend.parts(deep)
    assert str(info.value) == "path nesting deeper than 200 levels"
    cyclic: list[object] = ["a"]
    cyclic.append(cyclic)
    with pytest.raises(InvalidPath, match=r"^path nesting deeper than 200 levels$"):
        backend.parts(cyclic)
    ok: list[object] = ["x"]
    for _ in range(199):
        ok = [ok]
    assert backend.parts(ok) == ["x"]


def test_parts_returns_fresh_plain_strs(backend: ModuleType) -> None:
    class S(str):
        pass

    result = backend.parts(S("a/b"))
    assert result == ["a", "b"]
    assert all(type(p) is str for p in result)
    first = backend.parts("a/b")
    first.append("c")
    assert backend.parts("a/b") == ["a", "b"]
