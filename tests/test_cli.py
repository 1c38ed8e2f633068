"""The ``hbeam`` command line (typer's CliRunner), ``hbeam serve`` and ``make run``'s module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from hbeam.cli import app
from hbeam.lua.aos import TOKEN_SOURCE
from hbeam.node import Node
from hbeam.node.server import BackgroundServer
from hbeam.wallet import Wallet
from typer.testing import CliRunner

ROOT = Path(__file__).parents[1]

FreePort = Callable[[], int]  # the conftest fixtures
WaitForHttp = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def wallet_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Wallet]:
    wallet = Wallet.generate("ed25519")
    path = tmp_path_factory.mktemp("wallet") / "wallet.json"
    wallet.save(path)
    return path, wallet


@pytest.fixture
def cli(
    backend: ModuleType, tmp_path: Path, wallet_file: tuple[Path, Wallet]
) -> Iterator[tuple[CliRunner, dict[str, str]]]:
    env = {"HBEAM_WALLET": str(wallet_file[0]), "HBEAM_STORE": str(tmp_path / "store")}
    yield CliRunner(), env


def _ok(result: object) -> str:
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)  # type: ignore[attr-defined]
    return result.stdout.strip()  # type: ignore[attr-defined,no-any-return]


def test_in_process_publish_spawn_send_resolve(
    cli: tuple[CliRunner, dict[str, str]], tmp_path: Path, wallet_file: tuple[Path, Wallet]
) -> None:
    runner, env = cli
    token = tmp_path / "token.lua"
    token.write_text(TOKEN_SOURCE)
    module = _ok(runner.invoke(app, ["publish", str(token)], env=env))
    assert len(module) == 43
    pid = _ok(runner.invoke(app, ["spawn", "--module", module, "--tag", "Name=Points"], env=env))
    assert len(pid) == 43
    minted = json.loads(
        _ok(
            runner.invoke(
                app, ["send", "--action", "Mint", "--tag", "Quantity=500", "--", pid], env=env
            )
        )
    )
    assert minted["slot"] == 1 and minted["body"]["from"] == wallet_file[1].address
    bob = "b" * 43
    args = ["send", "-a", "Transfer", "-t", f"Recipient={bob}", "-t", "Quantity=20", "--", pid]
    assert json.loads(_ok(runner.invoke(app, args, env=env)))["slot"] == 2
    balances = json.loads(
        _ok(runner.invoke(app, ["resolve", f"/{pid}~process@1.0/now/cache/balances"], env=env))
    )
    assert balances[wallet_file[1].address] == "480" and balances[bob] == "20"
    owner = _ok(runner.invoke(app, ["resolve", f"/{pid}~process@1.0/now/owner"], env=env))
    assert owner == wallet_file[1].address
    # spawn --module FILE publishes the file first
    again = _ok(runner.invoke(app, ["spawn", "-m", str(token), "-t", "Name=Other"], env=env))
    assert len(again) == 43 and again != pid


def test_remote_commands_sign(
    cli: tuple[CliRunner, dict[str, str]], tmp_path: Path, wallet_file: tuple[Path, Wallet]
) -> None:
    runner, env = cli
    token = tmp_path / "token.lua"
    token.write_text(TOKEN_SOURCE)
    with Node(f"lmdb:{tmp_path / 'remote'}") as node, BackgroundServer(node) as srv:
        remote = {**env, "HBEAM_NODE": srv.url}
        pid = _ok(runner.invoke(app, ["spawn", "--module", str(token)], env=remote))
        sent = json.loads(
            _ok(
                runner.invoke(
                    app, ["send", "--action", "Mint", "-t", "Quantity=7", "--", pid], env=remote
                )
            )
        )
        assert sent["body"]["from"] == wallet_file[1].address
        out = _ok(
            runner.invoke(app, ["resolve", f"/{pid}~process@1.0/now/cache/balances"], env=remote)
        )
        assert json.loads(out)[wallet_file[1].address] == "7"
        ident = _ok(runner.invoke(app, ["publish", str(token), "--node", srv.url], env=env))
        assert node.content_type(ident) == "application/lua"


def test_console_in_process(cli: tuple[CliRunner, dict[str, str]]) -> None:
    runner, env = cli
    lines = [
        "x = 21",
        "return x * 2",
        "function add(a,",
        "  b)",
        "  return a + b",
        "end",
        "add(40, 2) + 1",
        ".load token.lua",
        "Balances[ao.id]",
        ".load no-such-file.lua",
        "error('bad')",
        ".pid",
        ".exit",
    ]
    result = runner.invoke(app, ["console"], input="\n".join(lines) + "\n", env=env)
    out = _ok(result).splitlines()
    assert out[0] == "42" and out[1] == "43"
    assert "10000000000000000" in out
    assert len(out[-1]) == 43  # .pid
    assert "spawned aos process" in result.stderr and "bundled token.lua" in result.stderr
    assert "no file 'no-such-file.lua'" in result.stderr
    assert any("bad" in line for line in out)


def test_console_attaches_to_a_process_over_http(
    cli: tuple[CliRunner, dict[str, str]], tmp_path: Path, wallet_file: tuple[Path, Wallet]
) -> None:
    runner, env = cli
    with Node(f"lmdb:{tmp_path / 'remote'}") as node, BackgroundServer(node) as srv:
        pid = node.spawn_lua(TOKEN_SOURCE, owner=wallet_file[1].address)
        result = runner.invoke(
            app,
            ["console", "--node", srv.url, "--", pid],
            input="Ticker\nOwner == ao.id\n",
            env=env,
        )
        assert _ok(result).splitlines() == ["PNTS", "false"]


def test_errors_and_usage(cli: tuple[CliRunner, dict[str, str]]) -> None:
    runner, env = cli
    bad = runner.invoke(app, ["resolve", "/a/(b"], env=env)
    assert bad.exit_code == 1 and bad.stdout == ""
    assert bad.stderr.startswith("hbeam: error:") and len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr
    debug = runner.invoke(app, ["resolve", "/a/(b", "--debug"], env=env)
    assert debug.exit_code == 1 and type(debug.exception).__name__ == "InvalidPath"
    assert runner.invoke(app, ["send"], env=env).exit_code == 2
    assert (
        runner.invoke(app, ["send", "x" * 43, "-a", "A", "-t", "novalue"], env=env).exit_code == 2
    )
    missing = runner.invoke(app, ["publish", "/no/such/file"], env=env)
    assert missing.exit_code == 1 and "/no/such/file" in missing.stderr
    nowhere = runner.invoke(app, ["resolve", "/x", "--node", "http://127.0.0.1:9"], env=env)
    assert nowhere.exit_code == 1 and "cannot reach" in nowhere.stderr
    no_wallet = {**env, "HBEAM_WALLET": "/no/such/wallet.json"}
    refused = runner.invoke(app, ["send", "x" * 43, "-a", "A"], env=no_wallet)
    assert refused.exit_code == 1 and "wallet" in refused.stderr
    for command in ("serve", "resolve", "publish", "spawn", "send", "bench", "console"):
        shown = runner.invoke(app, [command, "--help"], env=env)
        assert shown.exit_code == 0 and "--debug" in shown.stdout
        if command not in ("serve", "bench"):
            assert "--node" in shown.stdout


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_make_run_module_and_serve(
    backend: ModuleType,
    tmp_path: Path,
    free_port: FreePort,
    wait_for_http: WaitForHttp,
) -> None:
    """``python -m hbeam.examples.run`` (make run), then ``python -m hbeam serve`` on its store."""
    port = free_port()
    env = {**os.environ, "HBEAM_BACKEND": backend.__name__.rsplit("_", 1)[-1]}
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "hbeam.examples.run", "--port", str(port), "--store", str(store)]
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path
    ) as proc:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz")
        finally:
            out = _stop(proc)
    assert proc.returncode == 0, out
    urls = [line.strip() for line in out.splitlines() if line.strip().startswith("http://")]
    assert len(urls) >= 7
    pid = out.split("token process ", 1)[1].split(",", 1)[0]

    with subprocess.Popen(
        [sys.executable, "-m", "hbeam", "serve", "--port", str(port), "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as proc:
        try:
            base = f"http://127.0.0.1:{port}/{pid}~process@1.0"
            balances = wait_for_http(f"{base}/now/cache/balances/format~json@1.0").json()
            assert balances["vh-NTHVvlKZqRxc8LyyTNok65yQ55a_PJ1zWLb9G2JI"] == "10000"
            metrics = next(u for u in urls if "sum&module=" in u and "/balances/" not in u)
            assert httpx.get(metrics).json()["BalanceCount"] == "4"
        finally:
            out = _stop(proc)
    assert proc.returncode == 0, out
    assert "hbeam node on http://127.0.0.1" in out


def test_an_id_starting_with_a_dash_goes_after_double_dash(
    cli: tuple[CliRunner, dict[str, str]],
) -> None:
    runner, env = cli
    dashed = "-O" + "x" * 41  # base64url IDs may start with '-'
    result = runner.invoke(app, ["send", "--action", "A", "--", dashed], env=env)
    assert result.exit_code == 1, result.output  # unknown process, not a usage error (2)
