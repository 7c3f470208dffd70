#!/usr/bin/env python3
"""The Markdown table of the Performance section of README.md, from the JSON document of `benchmarks/run`.

    benchmarks/run --out run.json && python benchmarks/table.py run.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

ROWS = [
    # target key, figure, how to show the measured value(s)
    ("1a_check_url_vs_floor", "1. `check_url`, BIG set, vs the floor loop", "ratio"),
    ("1b_check_url_big_vs_small", "1. `check_url`, BIG set, vs SMALL set", "ratio"),
    ("2_check_text_msgs_per_s", "2. `check_text`, chat messages/s, one core", "int"),
    ("3a_service_check_vs_bare", "3. `/v1/check` req/s, 1 worker, vs bare aiohttp", "ratio"),
    ("3b_batch_urls_per_s_per_worker", "3. `/v1/check/batch` URLs/s per worker", "int"),
    ("4a_ready_s", "4. start to ready, BIG set (s)", "float"),
    ("4b_pss_one_worker_mb", "4. PSS, master + 1 worker (MB)", "float"),
    ("4c_pss_two_workers_vs_one", "4. PSS, 2 workers vs 1", "ratio"),
    ("5a_reload_failed_requests", "5. failed requests during a reload", "int"),
    ("5b_reload_p99_ms", "5. p99 during a reload (ms)", "float"),
]


def fmt(value: Any, kind: str) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    if kind == "int":
        return f"{round(value):,}"
    if kind == "ratio":
        return f"{value:.3f}x"
    return f"{value:.1f}"


def table(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    detail = {
        "1a_check_url_vs_floor": f"{f['check_url_big_urls_per_s']:,} vs {f['floor_urls_per_s']:,} URLs/s"
        if f.get("floor_urls_per_s") else "",
        "1b_check_url_big_vs_small": f"{f['check_url_big_urls_per_s']:,} vs "
        f"{f['check_url_small_urls_per_s']:,} URLs/s, each over its own set's traffic" + (
            f"; median of the rounds {f['check_url_big_to_small_median']:.3f}x"
            if f.get("check_url_big_to_small_median") else "") + (
            f"; over the big set's traffic {f['check_url_big_to_small_same_urls']:.3f}x"
            if f.get("check_url_big_to_small_same_urls") else "")
        if f.get("check_url_small_urls_per_s") else "",
        "3a_service_check_vs_bare": f"{f['service_check_req_per_s']:,} vs "
        f"{f['service_bare_req_per_s']:,} req/s; per CPU-s {f['service_check_req_per_cpu_s']:,} vs "
        f"{f['service_bare_req_per_cpu_s']:,}" + (
            f"; median of the rounds' ratios {f['service_check_to_bare_median']:.3f}x"
            if f.get("service_check_to_bare_median") else "") + (
            f"; the engine alone in the bare handler {f['service_ceiling_req_per_s']:,} req/s "
            f"({f['service_ceiling_to_bare']:.3f}x)" if f.get("service_ceiling_req_per_s") else "")
        if f.get("service_bare_req_per_s") else "",
        "4c_pss_two_workers_vs_one": f"{f['pss_two_workers_mb']} vs {f['pss_one_worker_mb']} MB"
        if f.get("pss_two_workers_mb") else "",
    }
    out = ["| figure | target | measured (wall clock) | per CPU-second | pass | |",
           "|---|---|---|---|---|---|"]
    sizes = {"BIG": doc["lists"]["big"]["entries"], "SMALL": doc["lists"]["small"]["entries"]}
    for key, name, kind in ROWS:
        for label, n in sizes.items():
            name = name.replace(label, f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k")
        t = doc["targets"].get(key)
        if t is None:
            continue
        cpu = fmt(t["measured_cpu_basis"], kind) if "measured_cpu_basis" in t else "-"
        verdict = "pass" if t["pass"] else "FAIL"
        if "pass_cpu_basis" in t and t["pass_cpu_basis"] != t["pass"]:
            verdict += f" ({'pass' if t['pass_cpu_basis'] else 'FAIL'} per CPU-s)"
        out.append(f"| {name} | {t['target']} | {fmt(t['measured'], kind)} | {cpu} | {verdict} | "
                   f"{detail.get(key, '')} |")
    return "\n".join(out)


def main() -> int:
    if len(sys.argv) > 1:
        with open(sys.argv[1]) as f:
            doc = json.load(f)
    else:
        doc = json.load(sys.stdin)
    print(table(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
