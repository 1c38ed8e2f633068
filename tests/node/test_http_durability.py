"""A 200 from ``POST /<pid>/schedule`` means durable: SIGKILL the node mid-stream and every
acknowledged assignment is in its store."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from hbeam import AOError
from hbeam.client import Client
from hbeam.node import Node

_COUNTER = 'Handlers.add("count", function(msg) return true end, function(msg) end)'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the node exited"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer")


def _send_until_killed(
    env: dict[str, str], store: Path, pid: str, run: int, pause: float
) -> tuple[str, list[tuple[int, str]]]:
    """Start a node on ``store``, spawn the process when ``pid`` is empty, have 16 client
    threads schedule until ``pause`` seconds after the 50th answer, SIGKILL the node;
    (pid, every (slot, tag) a client got a 200 for)."""
    port = _free_port()
    command = [sys.executable, "-m", "hbeam", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--store", str(store), "--allow-unsigned"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    acks: list[tuple[int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()
    url = f"http://127.0.0.1:{port}"

    def sender(name: str) -> None:
        with Client(url, timeout=10) as client:
            n = 0
            while not stop.is_set():
                tag = f"{run}-{name}-{n}"
                try:
                    answer = client.schedule(pid, {"action": "count", "tag": tag})
                except AOError:
                    return  # the node is gone: this request was never acknowledged
                with lock:
                    acks.append((int(answer["slot"]), tag))
                n += 1

    try:
        _until_up(f"{url}/healthz", proc)
        with Client(url) as client:
            pid = pid or client.spawn(module=_COUNTER)
        senders = [threading.Thread(target=sender, args=(str(i),)) for i in range(16)]
        for thread in senders:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acks) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(pause)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stop.set()
        for thread in senders:
            thread.join(30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return pid, acks


@pytest.mark.timeout(180)
def test_sigkill_loses_no_assignment_a_client_was_told_of(
    backend: ModuleType, tmp_path: Path
) -> None:
    rng = random.Random(8734)
    env = {**os.environ, "HBEAM_BACKEND": backend.__name__.rsplit("_", 1)[-1]}
    store = tmp_path / "store"
    pid = ""
    for run in range(3):  # later runs restart on a store a kill left behind
        pid, acks = _send_until_killed(env, store, pid, run, rng.uniform(0.0, 0.3))
        assert len(acks) >= 50
        with Node(f"lmdb:{store}", eager=False) as node:
            last = node.slot(pid)
            for slot, tag in acks:
                assert slot <= last
                assert node.scheduler.assignment(pid, slot, from_store=True)["body"]["tag"] == tag
            assert len({slot for slot, _ in acks}) == len(acks)
