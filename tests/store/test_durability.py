"""Durability with a real SIGKILL: every write a child acknowledged is there after reopening."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import hbeam
import pytest
from hbeam.store import FSStore, LMDBStore, Store

# The child: 4 threads write (single writes and 3-key write_many) into the store and
# print each key on stdout only after the call that wrote it returned.
CHILD = r"""
import sys, threading
from hbeam.store import open as open_store

store = open_store(sys.argv[1])
run = sys.argv[2]
lock = threading.Lock()
out = sys.stdout

def work(t):
    i = 0
    while True:
        if i % 5 == 4:
            keys = [f"k/{run}-{t}-{i}-{j}" for j in range(3)]
            store.write_many({k: k.encode() * 3 for k in keys})
        else:
            keys = [f"k/{run}-{t}-{i}"]
            store.write(keys[0], keys[0].encode() * 3)
        with lock:
            out.write("".join(k + "\n" for k in keys))
            out.flush()
        i += 1

print("ready", flush=True)
for t in range(4):
    threading.Thread(target=work, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(hbeam.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("HBEAM_BACKEND", "pure")  # the store does not need the core
    return env


def _kill_runs(spec: str, runs: int, rng: random.Random) -> list[bytes]:
    """Start the child ``runs`` times, SIGKILL it at a random moment; the acknowledged keys."""
    acked: list[bytes] = []
    env = _child_env()
    for run in range(runs):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, spec, str(run)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            if first != b"ready\n":  # pragma: no cover - show why the child died
                proc.kill()
                proc.wait(10)
                assert proc.stderr is not None
                pytest.fail(f"child did not start: {first!r} {proc.stderr.read()!r}")
            time.sleep(rng.uniform(0.005, 0.15))
            proc.send_signal(signal.SIGKILL)
            out = proc.stdout.read()
        finally:
            proc.kill()
            proc.wait(10)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        assert proc.returncode == -signal.SIGKILL
        lines = out.split(b"\n")
        acked += [line for line in lines[:-1] if line]  # the last piece may be cut off
    return acked


def _check(store: Store, acked: list[bytes]) -> None:
    missing = [k for k in acked if store.read(k.decode()) != k * 3]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"


def test_sigkill_lmdb_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("HBEAM_TEST_SEED", "sigkill"))
    directory = tmp_path / "db"
    acked = _kill_runs(f"lmdb:{directory}", 20, rng)
    assert len(acked) > 20
    with LMDBStore(directory, verify=True) as store:  # also structurally sound
        _check(store, acked)


def test_sigkill_fs_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("HBEAM_TEST_SEED", "sigkill-fs"))
    directory = tmp_path / "fs"
    acked = _kill_runs(f"fs:{directory}", 6, rng)
    assert len(acked) > 6
    with FSStore(directory) as store:
        _check(store, acked)
        assert not (directory / ".journal").exists()
