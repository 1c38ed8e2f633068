"""Render a pytest-benchmark JSON file as BENCHMARKS.md (``make bench`` calls this)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hbeam.bench import _build_profile, render


def main() -> int:
    if _build_profile() == "debug":
        print("refusing to report from a debug build: run `make build`", file=sys.stderr)
        return 2
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".benchmarks/latest.json")
    data = json.loads(path.read_text())
    sys.stdout.write(render(data, command="make bench"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
