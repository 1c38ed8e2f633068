"""``make run``: a node on :8734 serving seed 000's token process and its dynamic function.

``python -m hbeam.examples.run [--port 8734] [--host 127.0.0.1] [--store .hbeam]``:

1. opens the node on the LMDB store (``./.hbeam``; its wallet is ``.hbeam/wallet.json``,
   created on first run);
2. spawns the token process — hbeam's token blueprint (``hbeam/lua/token.lua``) through
   ``node.spawn_lua``, owned by the node's wallet — and, on the first run only, hands out a
   few balances from the process's own supply (Transfers from the process itself, so the
   balances, the schedule and the events stream have something to show);
3. publishes seed 000's ``sum`` dynamic function (``sum_kv.lua`` beside this file);
4. prints the URLs to open, and serves until Ctrl-C.

Running it again reuses the same store: the same process ID, its balances kept.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["HOLDERS", "Demo", "main", "setup", "urls"]

SEED_RECIPIENT = "vh-NTHVvlKZqRxc8LyyTNok65yQ55a_PJ1zWLb9G2JI"
"""The recipient of seed 000's example Transfer."""


def _address(name: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(name.encode()).digest()).rstrip(b"=").decode()


HOLDERS: dict[str, str] = {
    SEED_RECIPIENT: "10000",
    _address("hbeam-demo-alice"): "2500000",
    _address("hbeam-demo-bob"): "750000",
}
"""Balances handed out on the first run (address → quantity)."""

SUM_SOURCE = (Path(__file__).with_name("sum_kv.lua")).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Demo:
    """What :func:`setup` made: the token process and the published ``sum`` module."""

    pid: str
    sum_module: str


def setup(node: Any) -> Demo:
    """Spawn (or find again) the token process, seed its balances once, publish ``sum``."""
    from hbeam.lua.aos import TOKEN_SOURCE

    owner = node.wallet.address if node.wallet is not None else None
    pid = node.spawn_lua(TOKEN_SOURCE, tags={"Name": "Points Coin", "Ticker": "PNTS"}, owner=owner)
    if node.slot(pid) == 0:
        # in-process calls are trusted code: the process hands out part of its own supply
        node.schedule_many(
            pid,
            [
                {"from": pid, "Action": "Transfer", "Recipient": address, "Quantity": quantity}
                for address, quantity in HOLDERS.items()
            ],
        )
    node.now(pid)
    module = node.publish(SUM_SOURCE, "application/lua")
    return Demo(pid, module)


def urls(base: str, demo: Demo) -> dict[str, str]:
    """The URLs worth opening, by what they show."""
    p, m = f"{base}/{demo.pid}~process@1.0", demo.sum_module
    return {
        "balances (JSON)": f"{p}/now/cache/balances/format~json@1.0",
        "balances (HTML view)": f"{p}/now/cache/balances/format~hyperbuddy@1.0",
        "token metrics: sum, seed form (module on the call)": (
            f"{p}/now/cache/~lua@5.3a/sum&module={m}/serialize~json@1.0"
        ),
        "token metrics: sum, HyperBEAM form (module on the cast)": (
            f"{p}/now/cache/~lua@5.3a&module={m}/sum/format~hyperbuddy@1.0"
        ),
        "sum on seed 000's URL as written (base is the balances map: zeros)": (
            f"{p}/now/cache/balances/~lua@5.3a/sum&module={m}/serialize~json@1.0"
        ),
        "live balance updates (Server-Sent Events)": f"{p}/events/cache/balances",
        "the whole process state": f"{p}/now",
        "node dashboard": f"{base}/",
    }


def main(argv: list[str] | None = None) -> int:
    """Run the demo node (see the module docs)."""
    parser = argparse.ArgumentParser(
        prog="python -m hbeam.examples.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, default=8734)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--store", type=Path, default=Path(".hbeam"))
    args = parser.parse_args(argv)

    from hbeam.errors import AOError
    from hbeam.node import Node
    from hbeam.node.server import serve
    from hbeam.wallet import Wallet

    try:
        wallet = Wallet.default(args.store / "wallet.json", create=True)
        node = Node(f"lmdb:{args.store}", wallet=wallet)
    except AOError as exc:
        print(f"hbeam: error: {exc}", file=sys.stderr)
        return 1
    try:
        demo = setup(node)
        host = f"[{args.host}]" if ":" in args.host else args.host
        base = f"http://{host}:{args.port}"
        print(f"hbeam node on {base}  (store {args.store}, node address {wallet.address})")
        print(f"token process {demo.pid}, sum module {demo.sum_module}\n")
        for what, url in urls(base, demo).items():
            print(f"  {what}:\n    {url}")
        print(
            "\nsend a transfer:  hbeam send",
            demo.pid,
            "--action Transfer --tag Recipient=<address> --tag Quantity=10 --node",
            base,
        )
        print("Ctrl-C stops the node.", flush=True)
        serve(node, host=args.host, port=args.port, log_level="warning")
    except AOError as exc:
        print(f"hbeam: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        node.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
