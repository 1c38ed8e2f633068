"""``hand_over``: a thread waiting for the GIL runs at once, and the caller's timer slack is
left as it was."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from types import ModuleType

import pytest
from hbeam import _gil


@pytest.fixture
def long_switch_interval() -> Iterator[None]:
    """Without a hand-over, a waiting thread would get the GIL only after a second."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    yield
    sys.setswitchinterval(before)


@pytest.mark.parametrize("with_prctl", [True, False])
def test_a_thread_waiting_for_the_gil_runs_at_a_hand_over(
    backend: ModuleType,
    long_switch_interval: None,
    with_prctl: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other thread is woken while this one runs Python; it gets the GIL only when this
    one lets go: a hand-over (or, after a second, the switch interval)."""
    if not with_prctl:
        monkeypatch.setattr(_gil, "_PRCTL", None)
    wake = threading.Semaphore(0)
    steps: list[int] = []

    def other() -> None:
        while True:
            wake.acquire()
            if len(steps) == 5:
                return
            steps.append(1)

    thread = threading.Thread(target=other, daemon=True)
    thread.start()
    try:
        for step in range(1, 6):
            wake.release()
            start = time.monotonic()
            hand_overs = 0
            while len(steps) < step:
                _gil.hand_over()
                hand_overs += 1
                assert hand_overs < 10_000
            assert time.monotonic() - start < 0.5  # well inside the switch interval
    finally:
        wake.release()
        thread.join(10)
    assert not thread.is_alive()


@pytest.mark.skipif(_gil._PRCTL is None, reason="timer slack is a Linux prctl")
def test_the_callers_timer_slack_is_left_as_it_was(backend: ModuleType) -> None:
    prctl = _gil._PRCTL
    assert prctl is not None
    original = prctl(_gil._PR_GET_TIMERSLACK, 0, 0, 0, 0)
    try:
        prctl(_gil._PR_SET_TIMERSLACK, 123_456, 0, 0, 0)
        _gil.hand_over()
        assert prctl(_gil._PR_GET_TIMERSLACK, 0, 0, 0, 0) == 123_456
    finally:
        prctl(_gil._PR_SET_TIMERSLACK, original, 0, 0, 0)
