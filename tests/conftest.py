"""Shared fixtures: every behaviour test takes ``backend`` and so runs on pure and native."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType

import httpx
import pytest
from hypothesis import HealthCheck, settings

with warnings.catch_warnings():  # the "native core not built" warning is for users
    warnings.simplefilter("ignore", RuntimeWarning)
    from hbeam import _core

settings.register_profile("fast", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("slow", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

REQUIRE_NATIVE = os.environ.get("HBEAM_REQUIRE_NATIVE") == "1"


def _backend_params() -> list[object]:
    params: list[object] = ["pure"]
    if REQUIRE_NATIVE or _core.available("native"):
        params.append("native")
    else:
        params.append(
            pytest.param("native", marks=pytest.mark.skip(reason="native core not built"))
        )
    return params


@pytest.fixture(params=_backend_params())
def backend(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The active core backend module (``hbeam._pure`` or ``hbeam._native``)."""
    with _core.use(request.param) as module:
        yield module


@pytest.fixture
def both_backends() -> tuple[ModuleType, ModuleType]:
    """``(pure, native)`` for parity tests; fails when native is required but missing."""
    pure = _core.load("pure")
    if not _core.available("native"):
        if REQUIRE_NATIVE:
            pytest.fail("HBEAM_REQUIRE_NATIVE=1 but hbeam._native is not importable")
        pytest.skip("native core not built")
    return pure, _core.load("native")


@pytest.fixture
def free_port() -> Callable[[], int]:
    """``free_port()``: a TCP port on 127.0.0.1 that nothing listens on right now."""

    def pick() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    return pick


@pytest.fixture
def wait_for_http() -> Callable[..., httpx.Response]:
    """``wait(url, proc=None, timeout=60.0)``: poll ``url`` until it answers 200 (that
    response); fails after ``timeout`` seconds, or at once when ``proc`` has exited."""

    def wait(
        url: str,
        proc: subprocess.Popen[str] | subprocess.Popen[bytes] | None = None,
        timeout: float = 60.0,
    ) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while True:
            assert proc is None or proc.poll() is None, f"the server exited ({proc.args!r})"
            try:
                response = httpx.get(url, timeout=5)
                if response.status_code == 200:
                    return response
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer")
            time.sleep(0.05)

    return wait
