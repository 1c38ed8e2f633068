"""``parse_request`` of seed 000's longest URL: native vs pure (target native ≥ 10x pure)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

PID = "FkJPkIHp_Gc_7KOLbtyzowPcJUc3SG_G25SJp0fbTmE"
TX = "QSBQZsowVRdvsEbdTv-KEF4_Z5bYf11M3X5-8LN0NM4"
# seed 000, "Using Dynamic Functions via HyperBEAM" (the path part of the URL)
LONGEST = f"/{PID}~process@1.0/now/cache/balances/~lua@5.3a/sum&module={TX}/format~hyperbuddy@1.0"
EXPECTED = [
    ("as", "process@1.0", PID),
    {"path": "now"},
    {"path": "cache"},
    {"path": "balances"},
    ("as", "lua@5.3a", {}),
    {"path": "sum", "module": TX},
    ("as", "hyperbuddy@1.0", {"path": "format"}),
]
# what the HTTP node passes along: the request headers are the globals
HEADERS = {
    "host": "localhost:8734",
    "user-agent": "curl/8.5.0",
    "accept": "*/*",
    "method": "GET",
}


def test_parse_request_seed_url(benchmark: Any, core: ModuleType) -> None:
    benchmark.group = "parse_request: seed 000 longest URL"
    benchmark.extra_info["impl"] = core.__name__.rsplit("_", 1)[-1]
    result = benchmark(core.parse_request, LONGEST)
    benchmark.extra_info["correct"] = result == EXPECTED


def test_parse_request_seed_url_with_headers(benchmark: Any, core: ModuleType) -> None:
    benchmark.group = "parse_request: seed 000 longest URL + 4 header globals"
    benchmark.extra_info["impl"] = core.__name__.rsplit("_", 1)[-1]
    result = benchmark(core.parse_request, LONGEST + "?slot+integer=3", HEADERS)
    expected = {**HEADERS, "slot": 3, "path": "sum", "module": TX}
    benchmark.extra_info["correct"] = result[5] == expected
