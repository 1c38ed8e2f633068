"""A 200 from ``POST /<pid>/schedule`` means durable: SIGKILL the node mid-stream and every
acknowledged assignment is in its store."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from hbeam import AOError
from hbeam.client import Client
from hbeam.node import Node

_COUNTER = 'Handlers.add("count", function(msg) return true end, function(msg) end)'

FreePort = Callable[[], int]  # the conftest fixtures
WaitForHttp = Callable[..., httpx.Response]


def _send_until_killed(
    env: dict[str, str],
    store: Path,
    pid: str,
    run: int,
    pause: float,
    net: tuple[FreePort, WaitForHttp],
) -> tuple[str, list[tuple[int, str]]]:
    """Start a node on ``store``, spawn the process when ``pid`` is empty, have 16 client
    threads schedule until ``pause`` seconds after the 50th answer, SIGKILL the node;
    (pid, every (slot, tag) a client got a 200 for)."""
    free_port, wait_for_http = net
    port = free_port()
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
        wait_for_http(f"{url}/healthz", proc)
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
    backend: ModuleType,
    tmp_path: Path,
    free_port: FreePort,
    wait_for_http: WaitForHttp,
) -> None:
    rng = random.Random(8734)
    env = {**os.environ, "HBEAM_BACKEND": backend.__name__.rsplit("_", 1)[-1]}
    store = tmp_path / "store"
    pid = ""
    for run in range(3):  # later runs restart on a store a kill left behind
        pause = rng.uniform(0.0, 0.3)
        pid, acks = _send_until_killed(env, store, pid, run, pause, (free_port, wait_for_http))
        assert len(acks) >= 50
        with Node(f"lmdb:{store}", eager=False) as node:
            last = node.slot(pid)
            for slot, tag in acks:
                assert slot <= last
                assert node.scheduler.assignment(pid, slot, from_store=True)["body"]["tag"] == tag
            assert len({slot for slot, _ in acks}) == len(acks)
