"""The ``hbeam`` command line (also ``python -m hbeam``): serve, resolve, publish, spawn,
send, console, bench.

Every command but ``serve`` and ``bench`` talks to a running node when given ``--node URL``
(or ``$HBEAM_NODE``), and otherwise runs in-process on the LMDB store ``--store``
(default ``./.hbeam``; don't point it at a store a running node has open).  Messages are
signed with the user's wallet (``--wallet FILE``, else ``$HBEAM_WALLET``, else
``~/.hbeam/wallet.json``, created on first use): over HTTP every request is signed and
every scheduled or spawned message committed; in-process the messages are committed.

Errors print one line on stderr and exit 1 (2 for a usage error); ``--debug`` shows the
traceback instead.  Results go to stdout as JSON (text values as they are), so they can
be piped.
"""

from __future__ import annotations

import json
import mimetypes
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import typer

from hbeam.errors import AOError, InvalidMessage

__all__ = ["app", "main"]

T = TypeVar("T")

_ID = re.compile(r"[A-Za-z0-9_-]{43}\Z")
DEFAULT_STORE: Final = Path(".hbeam")
CONSOLE_MODULE: Final = "-- an aos process started by `hbeam console`\n"

app = typer.Typer(
    name="hbeam",
    help="hbeam: AO-Core (HyperBEAM's message-resolution engine) for Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

NodeOpt = Annotated[
    str | None,
    typer.Option(
        "--node",
        envvar="HBEAM_NODE",
        help="URL of a running node (e.g. http://127.0.0.1:8734); without it the command "
        "runs in-process on --store.",
    ),
]
StoreOpt = Annotated[
    Path,
    typer.Option("--store", envvar="HBEAM_STORE", help="LMDB store directory (in-process use)."),
]
WalletOpt = Annotated[
    Path | None,
    typer.Option(
        "--wallet",
        help="JWK wallet file to sign with (default: $HBEAM_WALLET or ~/.hbeam/wallet.json, "
        "created on first use).",
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
TagOpt = Annotated[
    list[str] | None,
    typer.Option("--tag", "-t", help="A tag as KEY=VALUE (repeatable)."),
]


# --- plumbing ---------------------------------------------------------------------------


def _fail(message: str) -> typer.Exit:
    typer.echo(f"hbeam: error: {message}", err=True)
    return typer.Exit(1)


@contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """One line on stderr and exit 1 for expected failures; tracebacks only with --debug."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.BadParameter):
        raise
    except KeyboardInterrupt:
        typer.echo("", err=True)
        raise typer.Exit(130) from None
    except AOError as exc:
        if debug:
            raise
        raise _fail(str(exc) or type(exc).__name__) from None
    except OSError as exc:
        if debug:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        raise _fail(f"{exc.strerror or exc}{where}") from None
    except Exception as exc:
        if debug:
            raise
        raise _fail(
            f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)"
        ) from None


def _tags(values: list[str] | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        tags[key.strip()] = value
    return tags


def _wallet(path: Path | None) -> Any:
    from hbeam.wallet import Wallet

    return Wallet.default(path)


def _plain(value: Any) -> Any:
    """JSON-able data for a result (messages as dicts, bytes as text)."""
    from hbeam.devices.json import dumps

    return json.loads(dumps(value))


def _print(value: Any) -> None:
    if isinstance(value, str):
        typer.echo(value)
    elif isinstance(value, (bytes, bytearray)):
        sys.stdout.buffer.write(bytes(value))
        sys.stdout.flush()
    else:
        typer.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _content_type(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".lua":
        return "application/lua"
    if suffix == ".wasm":
        return "application/wasm"
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed


class _Target:
    """What the commands need from a node, over HTTP or in-process."""

    def __init__(
        self, node_url: str | None, store: Path, wallet_path: Path | None, *, signing: bool
    ) -> None:
        self.remote = node_url is not None
        self._wallet_path = wallet_path
        self._wallet: Any = None
        self.client: Any = None
        self.node: Any = None
        if node_url is not None:
            from hbeam.client import Client

            self.client = Client(node_url, wallet=self.wallet if signing else None)
        else:
            from hbeam.node import Node

            self.node = Node(f"lmdb:{store}", eager=False)

    @property
    def wallet(self) -> Any:
        if self._wallet is None:
            self._wallet = _wallet(self._wallet_path)
        return self._wallet

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.node is not None:
            self.node.close()

    def resolve(self, path: str) -> Any:
        if self.client is not None:
            return self.client.get(path)
        return self.node.resolve(path)

    def publish(self, data: bytes, content_type: str | None) -> str:
        if self.client is not None:
            return str(self.client.publish(data, content_type))
        return str(self.node.publish(data, content_type))

    def spawn(self, module: str, tags: Mapping[str, Any]) -> str:
        if self.client is not None:
            return str(self.client.spawn(module=module, tags=tags))
        return str(self.node.spawn_lua(module, tags=tags, owner=self.wallet.address))

    def _committed(self, msg: Mapping[str, Any]) -> Any:
        from hbeam.commitment import commit

        return commit(msg, self.wallet)

    def send(self, pid: str, msg: Mapping[str, Any]) -> Any:
        if self.client is not None:
            return self.client.schedule(pid, msg)
        return self.node.schedule(pid, self._committed(msg))

    def push(self, pid: str, msg: Mapping[str, Any]) -> Any:
        """Schedule ``msg`` and compute its slot: the slot's ``results``."""
        if self.client is not None:
            return self.client.push(pid, msg).get("results", {})
        assignment = self.node.schedule(pid, self._committed(msg))
        state = self.node.compute(pid, int(assignment["slot"]))
        results = state.get("results") if isinstance(state, Mapping) else None
        return results if isinstance(results, Mapping) else {}


@contextmanager
def _target(
    node_url: str | None, store: Path, wallet: Path | None, *, signing: bool = True
) -> Iterator[_Target]:
    target = _Target(node_url, store, wallet, signing=signing)
    try:
        yield target
    finally:
        target.close()


# --- commands ---------------------------------------------------------------------------


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", "-p", envvar="HB_PORT", help="TCP port.")] = 8734,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    store: StoreOpt = DEFAULT_STORE,
    wallet: Annotated[
        Path | None,
        typer.Option("--wallet", help="The node's wallet (default: STORE/wallet.json, created)."),
    ] = None,
    allow_unsigned: Annotated[
        bool,
        typer.Option("--allow-unsigned", help="Accept unsigned schedule/spawn requests."),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level.")] = "info",
    debug: DebugOpt = False,
) -> None:
    """Serve a node over HTTP (the path language, processes, SSE, HTML views)."""
    from hbeam.node import Node
    from hbeam.wallet import Wallet

    with _errors(debug):
        node_wallet = Wallet.default(
            wallet if wallet is not None else store / "wallet.json", create=wallet is None
        )
        node = Node(f"lmdb:{store}", wallet=node_wallet, require_signed=not allow_unsigned)
        try:
            typer.echo(
                f"hbeam node on http://{host}:{port}  (store {store}, "
                f"address {node_wallet.address})",
                err=True,
            )
            node.serve(host=host, port=port, log_level=log_level)
        except KeyboardInterrupt:
            pass  # uvicorn re-raises the Ctrl-C it shut down on: a normal stop
        finally:
            node.close()


@app.command()
def resolve(
    path: Annotated[str, typer.Argument(help="A path, e.g. /PID~process@1.0/now/cache/balances")],
    node: NodeOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    wallet: WalletOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Resolve a path (HyperBEAM's path language) and print the result."""
    with _errors(debug), _target(node, store, wallet, signing=wallet is not None) as target:
        _print(target.resolve(path))


@app.command()
def publish(
    file: Annotated[
        Path, typer.Argument(help="The file to publish (a Lua module, a wasm image …).")
    ],
    content_type: Annotated[
        str | None, typer.Option("--content-type", help="Its content type (guessed from the name).")
    ] = None,
    node: NodeOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    wallet: WalletOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Publish a file on the node; prints its ID."""
    with _errors(debug):
        data = file.read_bytes()
        with _target(node, store, wallet) as target:
            typer.echo(target.publish(data, content_type or _content_type(file)))


def _module(target: _Target, module: str) -> str:
    """An ID for ``--module``: a file is published first, an ID is used as it is."""
    file = Path(module)
    if file.is_file():
        return target.publish(file.read_bytes(), _content_type(file) or "application/lua")
    if _ID.match(module):
        return module
    raise InvalidMessage(f"--module {module!r} is neither a file nor a 43-character ID")


@app.command()
def spawn(
    module: Annotated[str, typer.Option("--module", "-m", help="Lua module: a file or an ID.")],
    tag: TagOpt = None,
    node: NodeOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    wallet: WalletOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Spawn an aos Lua process running MODULE; prints the process ID."""
    tags = _tags(tag)
    with _errors(debug), _target(node, store, wallet) as target:
        typer.echo(target.spawn(_module(target, module), tags))


@app.command()
def send(
    pid: Annotated[
        str, typer.Argument(help="The process ID (one starting with '-' goes after '--').")
    ],
    action: Annotated[str, typer.Option("--action", "-a", help="The message's Action tag.")],
    tag: TagOpt = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="The message's Data.")] = None,
    node: NodeOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    wallet: WalletOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Send a message to a process; prints its assignment."""
    msg: dict[str, Any] = {"Action": action, **_tags(tag)}
    if data is not None:
        msg["Data"] = data
    with _errors(debug), _target(node, store, wallet) as target:
        _print(target.send(pid, msg))


@app.command()
def bench(
    k: Annotated[
        str | None, typer.Option("-k", help="Only benchmarks matching this expression.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Render this pytest-benchmark JSON instead.")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Run benches/ and print the side-by-side table (python -m hbeam.bench)."""
    from hbeam import bench as _bench

    argv: list[str] = []
    if k:
        argv += ["-k", k]
    if json_file is not None:
        argv += ["--json", str(json_file)]
    with _errors(debug):
        code = _bench.main(argv)
    raise typer.Exit(code)


# --- console ----------------------------------------------------------------------------


class _Completeness:
    """Whether Lua input is complete, the way the Lua REPL decides (an ``<eof>`` error)."""

    def __init__(self) -> None:
        import lupa.lua53 as lupa

        self._load = lupa.LuaRuntime(register_eval=False).eval("load")

    def complete(self, code: str) -> bool:
        fn, _err = self._call("return " + code)
        if fn is not None:
            return True
        fn, err = self._call(code)
        if fn is not None:
            return True
        return not (isinstance(err, str) and err.rstrip().endswith("<eof>"))

    def _call(self, code: str) -> tuple[Any, Any]:
        result = self._load(code, "=stdin")
        if isinstance(result, tuple):
            return result[0], result[1] if len(result) > 1 else None
        return result, None


def _output_text(results: Mapping[str, Any]) -> str | None:
    """The text an aos Eval printed, from a slot's ``results``."""
    output = results.get("output")
    if isinstance(output, Mapping):
        data = output.get("data")
        if data not in (None, ""):
            return data if isinstance(data, str) else json.dumps(_plain(data), ensure_ascii=False)
        return None
    if isinstance(output, (str, int, float)) and output != "":
        return str(output)
    error = results.get("error")
    if error:
        return f"error: {error}"
    return None


def _read_line(prompt: str, interactive: bool) -> str | None:
    if interactive:
        try:
            return input(prompt)
        except EOFError:
            return None
    line = sys.stdin.readline()
    if not line:
        return None
    return line.rstrip("\n")


def _history(interactive: bool) -> Callable[[], None]:
    if not interactive:
        return lambda: None
    try:
        import readline
    except ImportError:  # pragma: no cover - no readline on this platform
        return lambda: None
    file = Path.home() / ".hbeam" / "console_history"
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        if file.exists():
            readline.read_history_file(file)
    except OSError:
        pass
    readline.set_history_length(2000)

    def save() -> None:
        try:
            readline.write_history_file(file)
        except OSError:
            pass

    return save


def _load_source(name: str) -> tuple[str, str]:
    """``(code, where)`` for ``.load NAME``: a file, else a blueprint bundled with hbeam."""
    file = Path(name).expanduser()
    if file.is_file():
        return file.read_text(encoding="utf-8"), str(file)
    bundled = Path(__file__).parent / "lua" / Path(name).name
    if (
        bundled.suffix == ".lua"
        and bundled.is_file()
        and bundled.name not in ("aos.lua", "sandbox.lua", "convert.lua")
    ):
        return bundled.read_text(encoding="utf-8"), f"hbeam's bundled {bundled.name} blueprint"
    raise InvalidMessage(f"no file {name!r} to load")


_CONSOLE_HELP = """\
Lua lines are sent to the process as Action=Eval; what they print is shown.
  .load FILE   evaluate a Lua file (token.lua: hbeam's bundled token blueprint)
  .pid         show the process ID
  .help        this text
  .exit        leave (also Ctrl-D)
A line that is not a complete Lua statement continues on the next one."""


@app.command()
def console(
    pid: Annotated[
        str | None,
        typer.Argument(
            help="Process to attach to (default: a new one); after '--' if it starts with '-'."
        ),
    ] = None,
    node: NodeOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    wallet: WalletOpt = None,
    debug: DebugOpt = False,
) -> None:
    """An aos-style console: each Lua line is evaluated in the process (Action=Eval)."""
    interactive = sys.stdin.isatty()
    with _errors(debug), _target(node, store, wallet) as target:
        if pid is None:
            module = target.publish(CONSOLE_MODULE.encode(), "application/lua")
            pid = target.spawn(module, {"Name": "console", "Spawned-At": str(time.time_ns())})
            typer.echo(f"spawned aos process {pid}", err=True)
        elif not _ID.match(pid):
            raise InvalidMessage(f"{pid!r} is not a process ID (43 characters)")
        else:
            typer.echo(f"attached to {pid}", err=True)
        checker = _Completeness()
        save_history = _history(interactive)
        try:
            _repl(target, pid, checker, interactive, debug)
        finally:
            save_history()


def _eval(target: _Target, pid: str, code: str, debug: bool) -> None:
    try:
        results = target.push(pid, {"Action": "Eval", "Data": code})
    except AOError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        return
    text = _output_text(results)
    if text is not None:
        typer.echo(text)


def _repl(
    target: _Target, pid: str, checker: _Completeness, interactive: bool, debug: bool
) -> None:
    buffer: list[str] = []
    while True:
        line = _read_line("... " if buffer else "aos> ", interactive)
        if line is None:
            if buffer:
                _eval(target, pid, "\n".join(buffer), debug)
            return
        if not buffer:
            command = line.strip()
            if command in (".exit", ".quit"):
                return
            if command == ".help":
                typer.echo(_CONSOLE_HELP)
                continue
            if command == ".pid":
                typer.echo(pid)
                continue
            if command.startswith(".load"):
                name = command[len(".load") :].strip()
                if not name:
                    typer.echo("usage: .load FILE", err=True)
                    continue
                try:
                    code, where = _load_source(name)
                except (AOError, OSError) as exc:
                    typer.echo(f"error: {exc}", err=True)
                    continue
                typer.echo(f"loading {where}", err=True)
                _eval(target, pid, code, debug)
                continue
            if not command:
                continue
        buffer.append(line)
        code = "\n".join(buffer)
        if line.endswith("\\"):
            buffer[-1] = line[:-1]
            continue
        if not checker.complete(code):
            continue
        buffer = []
        _eval(target, pid, code, debug)


def main() -> None:
    """The ``hbeam`` entry point."""
    app()
