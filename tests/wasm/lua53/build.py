"""Build Lua 5.3 as a wasm64 json-iface module with ``zig cc`` (PyPI ``ziglang``).

The Lua sources are taken at build time from the ``lupa`` source distribution on PyPI
(it ships ``third-party/lua53``), never committed. zig has no libc for wasm64, so
``libc.c`` + ``include/`` here provide the little Lua needs; setjmp/longjmp are lowered
by LLVM to the legacy wasm exception-handling instructions, which is what hbeam's
load-time translation turns into the exnref form wasmtime runs.

Usage: ``python tests/wasm/lua53/build.py [OUT_DIR]`` (prints the module's path).
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUPA_VERSION = "2.8"
LUA_CORE = (
    "lapi lcode lctype ldebug ldo ldump lfunc lgc llex lmem lobject lopcodes lparser "
    "lstate lstring ltable ltm lundump lvm lzio lauxlib lbaselib lcorolib lmathlib "
    "lstrlib ltablib lutf8lib"
).split()
FLAGS = [
    "-target", "wasm64-freestanding",
    "-O2", "-std=c99", "-Wno-string-plus-int",
    "-DLUA_USE_C89",
    "-mllvm", "-wasm-enable-sjlj", "-mexception-handling",
    "-Wl,--no-entry", "-Wl,--export-memory", "-Wl,--strip-debug",
]  # fmt: skip


class BuildUnavailable(RuntimeError):
    """The toolchain or the Lua sources cannot be had here."""


def _zig() -> list[str]:
    if importlib.util.find_spec("ziglang") is None:
        raise BuildUnavailable("the `ziglang` package is not installed (pip install ziglang)")
    return [sys.executable, "-m", "ziglang"]


def _lua_sources(cache: Path) -> Path:
    src = cache / f"lupa-{LUPA_VERSION}" / "third-party" / "lua53"
    if (src / "lua.h").is_file():
        return src
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
               ":all:", f"lupa=={LUPA_VERSION}", "-d", tmp]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        archives = list(Path(tmp).glob("lupa-*.tar.gz"))
        if done.returncode or not archives:
            raise BuildUnavailable(f"cannot download the lupa sdist: {done.stderr.strip()[-300:]}")
        with tarfile.open(archives[0]) as tar:
            members = [m for m in tar.getmembers() if "/third-party/lua53/" in m.name]
            tar.extractall(cache, members=members, filter="data")
    if not (src / "lua.h").is_file():
        raise BuildUnavailable(f"lupa {LUPA_VERSION} sdist has no third-party/lua53")
    return src


def build(out_dir: Path) -> Path:
    """Build (or reuse) ``lua53.wasm`` under ``out_dir``; returns its path."""
    zig = _zig()
    ours = [
        HERE / "libc.c",
        HERE / "handle.c",
        HERE / "tag.s",
        *sorted((HERE / "include").iterdir()),
    ]
    key = hashlib.sha256(LUPA_VERSION.encode() + " ".join(FLAGS).encode())
    for path in ours:
        key.update(path.read_bytes())
    target = out_dir / f"lua53-{key.hexdigest()[:16]}.wasm"
    if target.is_file():
        return target
    src = _lua_sources(out_dir / "src")
    cmd = [*zig, "cc", *FLAGS, "-isystem", str(HERE / "include"), f"-I{src}",
           *(str(src / f"{name}.c") for name in LUA_CORE),
           str(HERE / "libc.c"), str(HERE / "handle.c"), str(HERE / "tag.s"),
           "-o", str(target)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode or not target.is_file():
        raise RuntimeError(f"zig cc failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return target


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache" / "hbeam" / "lua53"
    print(build(out))
