"""Build Lua 5.3 as a wasm64 json-iface module with ``zig cc`` (PyPI ``ziglang``).

The Lua sources are taken at build time from the ``lupa`` source distribution on PyPI
(it ships ``third-party/lua53``; pinned by sha256), never committed. zig has no libc for wasm64, so
``libc.c`` + ``include/`` here provide the little Lua needs; setjmp/longjmp are lowered
by LLVM to the legacy wasm exception-handling instructions, which is what hbeam's
load-time translation turns into the exnref form wasmtime runs.

A module may embed Lua *runtime chunks* (``runtime=[(name, source), ...]``): ``handle.c``
makes them available as ``_HB_SOURCES[name]`` and runs the one named ``main`` when the
Lua state is created — that is how ``aos_host.lua`` boots the aos runtime inside the
module.  Each C file is compiled to its own cached object (two at a time), so changing
an embedded chunk (or ``handle.c``) costs one small compile and a link, not the whole
Lua build.

Cache: ``$HBEAM_LUA53_CACHE`` if set, else ``~/.cache/hbeam/lua53`` (zig's own cache
goes under it too unless ``ZIG_GLOBAL_CACHE_DIR`` is set), so CI can keep one directory.

Usage: ``python tests/wasm/lua53/build.py [OUT_DIR] [--aos] [--exnref]`` (prints the
module's path; ``--aos`` embeds the aos runtime, ``--exnref`` emits standard EH).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUPA_VERSION = "2.8"
SDIST = f"lupa-{LUPA_VERSION}.tar.gz"
SDIST_SHA256 = "d8022641b9ec8ecf2c5ecbe9f47e5a70e0b87c4b5ae921b92cb02a638e0acd08"
INDEX = os.environ.get("HBEAM_PYPI_SIMPLE", "https://pypi.org/simple")
LUA_CORE = (
    "lapi lcode lctype ldebug ldo ldump lfunc lgc llex lmem lobject lopcodes lparser "
    "lstate lstring ltable ltm lundump lvm lzio lauxlib lbaselib lcorolib lmathlib "
    "lstrlib ltablib lutf8lib"
).split()
TARGET = ["-target", "wasm64-freestanding"]
CFLAGS = [
    "-O2", "-std=c99", "-Wno-string-plus-int",
    "-DLUA_USE_C89",
    "-mllvm", "-wasm-enable-sjlj", "-mexception-handling",
]  # fmt: skip
# the standard (exnref) exception-handling instructions instead of the legacy ones
EXNREF = ["-mllvm", "-wasm-use-legacy-eh=false"]
LDFLAGS = ["-Wl,--no-entry", "-Wl,--export-memory", "-Wl,--strip-debug"]


class BuildUnavailable(RuntimeError):
    """The toolchain or the Lua sources cannot be had here."""


def default_cache() -> Path:
    """``$HBEAM_LUA53_CACHE`` or ``~/.cache/hbeam/lua53``."""
    env = os.environ.get("HBEAM_LUA53_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hbeam" / "lua53"


def _zig() -> list[str]:
    if importlib.util.find_spec("ziglang") is None:
        raise BuildUnavailable("the `ziglang` package is not installed (pip install ziglang)")
    return [sys.executable, "-m", "ziglang"]


def _download_sdist(dest: Path) -> Path:
    """The pinned lupa sdist, found through PyPI's simple index (PEP 691) and checked.

    Not ``pip download``: pip prepares the sdist's metadata, and lupa's ``setup.py``
    builds LuaJIT and every bundled Lua while doing so (minutes of CPU for nothing).
    """
    req = urllib.request.Request(
        f"{INDEX}/lupa/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            files = json.load(resp)["files"]
        url = next(f["url"] for f in files if f["filename"] == SDIST)
        with urllib.request.urlopen(url, timeout=300) as resp:
            data = resp.read()
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise BuildUnavailable(f"cannot download {SDIST} from {INDEX}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != SDIST_SHA256:
        raise BuildUnavailable(f"{SDIST}: sha256 {digest}, expected {SDIST_SHA256}")
    path = dest / SDIST
    path.write_bytes(data)
    return path


def _lua_sources(cache: Path) -> Path:
    src = cache / f"lupa-{LUPA_VERSION}" / "third-party" / "lua53"
    if (src / "lua.h").is_file():
        return src
    cache.mkdir(parents=True, exist_ok=True)
    # extract beside the cache and rename into place: parallel test workers may race here
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        archive = _download_sdist(Path(tmp))
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if "/third-party/lua53/" in m.name]
            tar.extractall(Path(tmp) / "x", members=members, filter="data")
        try:
            os.replace(Path(tmp) / "x" / f"lupa-{LUPA_VERSION}", cache / f"lupa-{LUPA_VERSION}")
        except OSError:
            if not (src / "lua.h").is_file():
                raise
    if not (src / "lua.h").is_file():
        raise BuildUnavailable(f"lupa {LUPA_VERSION} sdist has no third-party/lua53")
    return src


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if done.returncode:
        raise RuntimeError(f"zig cc failed on {what} ({done.returncode}):\n{done.stderr[-2000:]}")


def _c_string(data: bytes) -> str:
    """``data`` as a C string literal (octal escapes, split into lines)."""
    parts = []
    for i in range(0, len(data), 64):
        chunk = data[i : i + 64]
        parts.append('"' + "".join(f"\\{b:03o}" for b in chunk) + '"')
    return "\n  ".join(parts) or '""'


def runtime_c(chunks: Sequence[tuple[str, str]]) -> str:
    """The generated C file holding the embedded Lua chunks ``hb_chunks`` (NULL-terminated)."""
    lines = ["#include <stddef.h>", "struct hb_chunk { const char *name, *code; size_t len; };"]
    rows = []
    for i, (name, source) in enumerate(chunks):
        data = source.encode()
        lines.append(f"static const char c{i}[] =\n  {_c_string(data)};")
        rows.append(f"  {{{_c_string(name.encode())}, c{i}, {len(data)}}},")
    lines.append("const struct hb_chunk hb_chunks[] = {")
    lines.extend(rows)
    lines.append("  {NULL, NULL, 0}};")
    return "\n".join(lines) + "\n"


def build(
    out_dir: Path, runtime: Sequence[tuple[str, str]] = (), *, legacy_eh: bool = True
) -> Path:
    """Build (or reuse) the module under ``out_dir``, embedding ``runtime``; its path.

    ``legacy_eh=False`` emits the standard exnref instructions (wasmtime runs the module
    without hbeam's translation, so the pure core can too).
    """
    zig = _zig()
    cflags = CFLAGS if legacy_eh else [*CFLAGS, *EXNREF]
    env = dict(os.environ)
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(out_dir / "zig-cache"))
    # objects depend on the compiler, the Lua version, the flags and our headers
    headers = hashlib.sha256(
        f"zig {importlib.metadata.version('ziglang')} lupa {LUPA_VERSION} ".encode()
        + " ".join(TARGET + cflags).encode()
    )
    for path in sorted((HERE / "include").iterdir()):
        headers.update(path.name.encode() + path.read_bytes())
    gen = runtime_c(runtime).encode()
    ours = [HERE / "libc.c", HERE / "handle.c", HERE / "tag.s"]
    final = hashlib.sha256(headers.digest() + " ".join(LDFLAGS).encode() + gen)
    for path in ours:
        final.update(path.read_bytes())
    target = out_dir / f"lua53-{final.hexdigest()[:16]}.wasm"
    if target.is_file():
        return target
    src = _lua_sources(out_dir / "src")
    objdir = out_dir / "obj"
    objdir.mkdir(parents=True, exist_ok=True)
    gen_c = objdir / f"runtime-{hashlib.sha256(gen).hexdigest()[:16]}.c"
    if not gen_c.is_file():
        tmp_c = gen_c.with_suffix(f".{os.getpid()}.tmp")
        tmp_c.write_bytes(gen)
        tmp_c.replace(gen_c)
    sources = [*(src / f"{name}.c" for name in LUA_CORE), *ours, gen_c]
    jobs: list[tuple[list[str], str]] = []
    objects = []
    for source in sources:
        key = hashlib.sha256(headers.digest() + source.read_bytes()).hexdigest()[:16]
        obj = objdir / f"{source.stem}-{key}.o"
        objects.append(obj)
        if obj.is_file():
            continue
        tmp = obj.with_suffix(f".{os.getpid()}.tmp.o")
        cmd = [*zig, "cc", *TARGET, *cflags, "-isystem", str(HERE / "include"), f"-I{src}",
               "-c", str(source), "-o", str(tmp)]  # fmt: skip
        jobs.append((cmd, source.name))

    def compile_one(job: tuple[list[str], str]) -> None:
        cmd, name = job
        _run(cmd, env, name)
        tmp = Path(cmd[-1])
        tmp.replace(tmp.with_name(tmp.name.split(".", 1)[0] + ".o"))

    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        list(pool.map(compile_one, jobs))
    tmp_target = target.with_suffix(f".{os.getpid()}.tmp.wasm")
    _run([*zig, "cc", *TARGET, *LDFLAGS, *(str(o) for o in objects), "-o", str(tmp_target)],
         env, "link")  # fmt: skip
    tmp_target.replace(target)
    return target


def aos_runtime() -> list[tuple[str, str]]:
    """The chunks of the aos module: hbeam's json.lua and aos.lua, and ``aos_host.lua``."""
    from hbeam.lua.aos import AOS_SOURCE, JSON_SOURCE

    return [
        ("json", JSON_SOURCE),
        ("aos", AOS_SOURCE),
        ("main", (HERE / "aos_host.lua").read_text()),
    ]


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else default_cache()
    chunks = aos_runtime() if "--aos" in sys.argv else ()
    print(build(out, chunks, legacy_eh="--exnref" not in sys.argv))
