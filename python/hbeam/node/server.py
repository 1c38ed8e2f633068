"""Serving a node over HTTP with uvicorn (uvloop + httptools): ``serve`` and ``BackgroundServer``.

Why uvicorn: it is the server Starlette is developed against, its ``uvloop``/``httptools``
stack is already a dependency (``uvicorn[standard]``), it runs in-process next to the
node (one Python process owns the store, the scheduler and the live Lua VMs — a
multi-process server would need a node per worker and cannot share them), and it can be
started on a pre-bound socket inside a thread, which the tests and the benches use.
Granian 2.8 (Rust HTTP stack) was measured against it on the same app, both as one
process on 127.0.0.1 with the bench's load generator (a loaded 2-core machine, so rough):
``/healthz`` 3.4k/6.9k/9.7k req/s at 1/16/64 clients vs uvicorn's 2.8k/3.2k/4.8k, the
cached balances 2.3k/6.0k/7.2k vs 1.7k/4.3k/2.9k.  Granian is faster, but it loads the
app by import string into worker processes it manages (the node is a live object: an
open LMDB environment, scheduler threads, Lua VMs), and serving a given app object on a
pre-bound socket from a thread is only possible through its experimental ``embed``
server; uvicorn does all of that today and is already a dependency.  Revisit if the
HTTP stack becomes the bottleneck.

Shutting down ends open SSE streams first (they would otherwise hold the graceful
shutdown open until its timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any

import uvicorn

from hbeam.errors import AOError

__all__ = ["BackgroundServer", "NodeServer", "bind", "config", "serve"]

_READY_TIMEOUT = 30.0


class NodeServer(uvicorn.Server):
    """A uvicorn server that tells the node's SSE streams to finish before waiting for
    connections to close."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        http = getattr(getattr(self.config.loaded_app, "state", None), "http", None)
        if http is None:
            app = getattr(self.config, "app", None)
            http = getattr(getattr(app, "state", None), "http", None)
        if http is not None:
            http.close()
        await super().shutdown(sockets)


def config(app: Any, *, host: str = "127.0.0.1", port: int = 8734, **kwargs: Any) -> uvicorn.Config:
    """uvicorn's configuration for a node app: uvloop, httptools, no access log."""
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
        "server_header": False,
    }
    options.update(kwargs)
    return uvicorn.Config(app, host=host, port=port, **options)


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        AOError: the address cannot be bound (in use, not permitted, bad host).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted sockets inherit it: without it a response's header and body writes
        # meet the client's delayed ACK and every request takes 40 ms
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise AOError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def serve(node: Any, host: str = "127.0.0.1", port: int = 8734, **kwargs: Any) -> None:
    """Serve ``node.app`` on ``host:port`` until interrupted (Ctrl-C / SIGTERM).

    Extra keyword arguments go to :class:`uvicorn.Config` (e.g. ``log_level``).

    Raises:
        AOError: the port cannot be bound.
    """
    sock = bind(host, port)
    server = NodeServer(config(node.app, host=host, port=port, **kwargs))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class BackgroundServer:
    """A node served by uvicorn in a background thread, on ``127.0.0.1`` and a free port.

    >>> with Node() as node, BackgroundServer(node) as server:   # doctest: +SKIP
    ...     httpx.get(server.url + "/healthz")

    ``start()`` returns once the server accepts connections; ``stop()`` (also on leaving
    the ``with`` block) shuts it down and joins the thread.  ``app`` defaults to
    ``node.app``.
    """

    def __init__(
        self, node: Any, *, host: str = "127.0.0.1", port: int = 0, app: Any = None, **kwargs: Any
    ) -> None:
        self.node = node
        self.app = app if app is not None else node.app
        self.host = host
        self._sock = bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self.server = NodeServer(config(self.app, host=host, port=self.port, **kwargs))
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported by start()/stop()
            self._error = exc

    def start(self) -> BackgroundServer:
        """Start serving; returns when the server is ready.

        Raises:
            AOError: it did not start within 30 s (or failed while starting).
        """
        self._thread = threading.Thread(target=self._run, name="hbeam-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _READY_TIMEOUT
        while not self.server.started:
            if self._error is not None or not self._thread.is_alive():
                raise AOError(f"the HTTP server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise AOError("the HTTP server did not start within 30 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread (idempotent)."""
        if self._thread is not None:
            self.server.should_exit = True
            self._thread.join(timeout=15)
            if self._thread.is_alive():
                self.server.force_exit = True
                self._thread.join(timeout=5)
            self._thread = None
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
