"""Run every benchmark of the performance issue and print one JSON document (see `run`).

    benchmarks/run            the issue's sizes: 1M domains + 1M URLs ("2M"), and 1k
    benchmarks/run --quick    100k + 100k and 1k, fewer URLs and shorter runs: a smoke test

Steps, each a separate process printing JSON (pinned to core 1 where it measures one core):
  gen_lists.py         the seeded list sets and corpora (cached in benchmarks/.data)
  bench_url.py         target 1: check_url vs the floor loop, and big vs small set
  bench_text.py        target 2: check_text messages/s
  bench_service.py     target 3: /v1/check vs a bare aiohttp app, /v1/check/batch URLs/s
  bench_memory.py      target 4: start-up time, PSS with 1 and 2 workers
  reload_under_load.py target 5 (the service engineer's): failed requests, p99 during a reload

A step that fails is reported with its error and its targets as failed; the others still run.
Every step runs in its own process group, killed if it overruns its time limit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common

import linkguard

HERE = common.HERE

FULL = {"size": 1_000_000, "small": 1_000, "check_urls": 200_000, "messages": 100_000,
        "url_rounds": 5, "text_rounds": 5, "wrk_seconds": 8, "wrk_rounds": 4,
        "reload_entries": 2_000_000}
QUICK = {"size": 100_000, "small": 1_000, "check_urls": 50_000, "messages": 20_000,
         "url_rounds": 3, "text_rounds": 3, "wrk_seconds": 3, "wrk_rounds": 1,
         "reload_entries": 100_000}


def step(name: str, cmd: list[str], timeout: float, log: Callable[[str], None]) -> dict[str, Any]:
    """Run one bench; its stdout is one JSON document. Errors become {"error": ...}."""
    log(f"{name}: {' '.join(cmd)}")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, cwd=HERE.parent)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return {"error": f"timed out after {timeout:g}s", "stderr": err[-2000:]}
    except BaseException:
        _kill_group(proc)
        raise
    seconds = round(time.monotonic() - t0, 1)
    log(f"{name}: done in {seconds}s (exit {proc.returncode})")
    start = out.find("{")
    try:
        doc = json.loads(out[start:]) if start >= 0 else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return {"error": f"exit {proc.returncode}, no JSON", "stderr": err[-2000:],
                "stdout": out[-2000:], "seconds": seconds}
    doc["seconds"] = seconds
    if proc.returncode != 0:
        doc["exit_status"] = proc.returncode
    return doc


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def target(value: Any, op: str, limit: float, unit: str = "",
           per_cpu: Any = None) -> dict[str, Any]:
    def ok(v: Any) -> bool:
        return isinstance(v, (int, float)) and (v >= limit if op == ">=" else v <= limit)

    out = {"target": f"{op} {limit:g}{unit}", "measured": value, "pass": ok(value)}
    if per_cpu is not None:
        out.update(measured_cpu_basis=per_cpu, pass_cpu_basis=ok(per_cpu))
    return out


def dig(doc: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100k/1k lists, short runs (smoke test)")
    p.add_argument("--only", default="", help="comma-separated steps: url,text,service,memory,"
                                              "reload (default: all)")
    p.add_argument("--out", type=Path, help="also write the JSON document here")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    conf = QUICK if a.quick else FULL
    only = set(filter(None, a.only.split(","))) or {"url", "text", "service", "memory", "reload"}
    py = sys.executable
    t_start = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    common.exit_on_sigterm()  # a running step's process group is killed on the way out
    load_start = common.load_average()
    gen = [py, str(HERE / "gen_lists.py"), "--seed", str(a.seed)]
    big = step("gen big", [*gen, "--size", str(conf["size"]), "--check-urls",
                           str(conf["check_urls"]), "--messages", str(conf["messages"])], 900, log)
    small = step("gen small", [*gen, "--size", str(conf["small"]), "--check-urls",
                               str(conf["check_urls"])], 120, log)
    if "error" in big or "error" in small:
        common.emit({"error": "list generation failed", "big": big, "small": small})
        return 2
    big_dir = Path(big["dir"])
    urls, msgs = str(big_dir / "check-urls.txt"), str(big_dir / "messages.txt")
    one_core = common.pin_prefix(1)
    results: dict[str, dict[str, Any]] = {}
    if "url" in only:
        results["url_check"] = step("url", [*one_core, py, str(HERE / "bench_url.py"),
                                            "--big", big["manifest"], "--small",
                                            small["manifest"], "--urls", urls, "--small-urls",
                                            str(Path(small["dir"]) / "check-urls.txt"), "--rounds",
                                            str(conf["url_rounds"])], 900, log)
    if "text" in only:
        results["message_check"] = step("text", [*one_core, py, str(HERE / "bench_text.py"),
                                                 "--lists", big["manifest"], "--messages", msgs,
                                                 "--rounds", str(conf["text_rounds"])], 600, log)
    if "service" in only:
        results["service"] = step("service", [py, str(HERE / "bench_service.py"), "--lists",
                                              big["manifest"], "--urls", urls, "--seconds",
                                              str(conf["wrk_seconds"]), "--rounds",
                                              str(conf["wrk_rounds"])], 600, log)
    if "memory" in only:
        results["memory_startup"] = step("memory", [py, str(HERE / "bench_memory.py"), "--lists",
                                                    big["manifest"], "--urls", urls], 600, log)
    if "reload" in only:
        results["reload_under_load"] = reload_step(py, big["manifest"], conf, log)

    u, t, s = results.get("url_check", {}), results.get("message_check", {}), \
        results.get("service", {})
    m, r = results.get("memory_startup", {}), results.get("reload_under_load", {})
    window = dig(r, "reload_window") or {}

    def per_cpu_ratio(a: Any, b: Any) -> float | None:
        return round(a / b, 3) if isinstance(a, (int, float)) and b else None

    # Each target on two bases: wall clock (the figures are rates; the best round) and
    # CPU time of the measured process (the same work per CPU-second: on a shared machine the
    # neighbours' load changes the first and hardly the second). On a quiet machine they agree.
    targets = {
        "1a_check_url_vs_floor": target(
            u.get("ratio_big_to_floor"), ">=", 0.5, "x",
            per_cpu_ratio(dig(u, "check_url_big_urls_per_s", "best_per_cpu_second"),
                          dig(u, "floor_urls_per_s", "best_per_cpu_second"))),
        "1b_check_url_big_vs_small": target(
            u.get("ratio_big_to_small"), ">=", 0.9, "x",
            per_cpu_ratio(dig(u, "check_url_big_urls_per_s", "best_per_cpu_second"),
                          dig(u, "check_url_small_urls_per_s", "best_per_cpu_second"))),
        "2_check_text_msgs_per_s": target(
            dig(t, "check_text_msgs_per_s", "best"), ">=", 40_000, "",
            dig(t, "check_text_msgs_per_s", "best_per_cpu_second")),
        "3a_service_check_vs_bare": target(s.get("ratio_check_to_bare"), ">=", 0.8, "x",
                                           s.get("ratio_check_to_bare_per_cpu")),
        "3b_batch_urls_per_s_per_worker": target(s.get("batch_urls_per_s"), ">=", 50_000, "",
                                                 s.get("batch_urls_per_cpu_s")),
        "4a_ready_s": target(m.get("ready_s"), "<=", 15, " s", m.get("ready_cpu_s")),
        "4b_pss_one_worker_mb": target(m.get("pss_one_worker_mb"), "<=", 1024, " MB"),
        "4c_pss_two_workers_vs_one": target(m.get("ratio_two_to_one"), "<=", 1.5, "x"),
        "5a_reload_failed_requests": target(r.get("failed_requests"), "<=", 0),
        "5b_reload_p99_ms": target(window.get("p99_ms"), "<=", 50, " ms"),
    }
    doc: dict[str, Any] = {
        "command": "benchmarks/run" + (" --quick" if a.quick else ""),
        "machine": {"cores": common.cores(), "cpu": cpu_model(),
                    "python": platform.python_version(),
                    # the hot path compiled by mypyc (setup.py), or plain Python
                    "build": "mypyc" if linkguard.COMPILED else "pure",
                    "load_average_at_start": load_start},
        "lists": {"big": {"entries": 2 * conf["size"], "manifest": big["manifest"]},
                  "small": {"entries": 2 * conf["small"], "manifest": small["manifest"]},
                  "seed": a.seed},
        "figures": {
            "floor_urls_per_s": dig(u, "floor_urls_per_s", "best"),
            "check_url_big_urls_per_s": dig(u, "check_url_big_urls_per_s", "best"),
            "check_url_small_urls_per_s": dig(u, "check_url_small_urls_per_s", "best"),
            "check_url_big_to_floor": u.get("ratio_big_to_floor"),
            "check_url_big_to_small": u.get("ratio_big_to_small"),
            "check_url_big_to_small_median": u.get("ratio_big_to_small_median"),
            # Not a target: the small set over the big set's traffic (bench_url.py).
            "check_url_big_to_small_same_urls": u.get("ratio_big_to_small_same_urls"),
            "floor_urls_per_cpu_s": dig(u, "floor_urls_per_s", "best_per_cpu_second"),
            "check_url_big_urls_per_cpu_s": dig(u, "check_url_big_urls_per_s",
                                                "best_per_cpu_second"),
            "check_url_small_urls_per_cpu_s": dig(u, "check_url_small_urls_per_s",
                                                  "best_per_cpu_second"),
            "check_text_msgs_per_s": dig(t, "check_text_msgs_per_s", "best"),
            "check_text_msgs_per_cpu_s": dig(t, "check_text_msgs_per_s", "best_per_cpu_second"),
            "service_bare_req_per_s": s.get("bare_req_per_s"),
            "service_check_req_per_s": s.get("check_req_per_s"),
            "service_check_to_bare": s.get("ratio_check_to_bare"),
            "service_check_to_bare_median": s.get("ratio_check_to_bare_median"),
            "service_bare_req_per_cpu_s": s.get("bare_req_per_cpu_s"),
            "service_check_req_per_cpu_s": s.get("check_req_per_cpu_s"),
            "service_check_to_bare_per_cpu": s.get("ratio_check_to_bare_per_cpu"),
            # Not a target: Engine.check_text in the bare handler, nothing else (bare_app.py).
            "service_ceiling_req_per_s": s.get("ceiling_req_per_s"),
            "service_ceiling_to_bare": s.get("ratio_ceiling_to_bare"),
            "service_ceiling_to_bare_median": s.get("ratio_ceiling_to_bare_median"),
            "batch_urls_per_s_per_worker": s.get("batch_urls_per_s"),
            "batch_urls_per_cpu_s": s.get("batch_urls_per_cpu_s"),
            "ready_s": m.get("ready_s"),
            "ready_cpu_s": m.get("ready_cpu_s"),
            "pss_one_worker_mb": m.get("pss_one_worker_mb"),
            "pss_two_workers_mb": m.get("pss_two_workers_mb"),
            "reload_failed_requests": r.get("failed_requests"),
            "reload_window_p99_ms": window.get("p99_ms"),
        },
        "targets": targets,
        "all_pass": all(v["pass"] for v in targets.values()),
        "all_pass_cpu_basis": all(v.get("pass_cpu_basis", v["pass"]) for v in targets.values()),
        "details": results,
        "seconds": round(time.monotonic() - t_start, 1),
    }
    doc["machine"]["load_average_at_end"] = common.load_average()
    text = json.dumps(doc, indent=2)
    if a.out:
        a.out.write_text(text + "\n")
    print(text)
    return 0 if doc["all_pass"] else 1


def reload_step(py: str, manifest: str, conf: dict[str, Any],
                log: Callable[[str], None]) -> dict[str, Any]:
    """reload_under_load.py is the service engineer's: pass the manifest if it takes one, else
    the entry count of its own synthetic domains list (it writes and reloads that list)."""
    script = HERE / "reload_under_load.py"
    if not script.exists():
        return {"error": f"{script} is missing"}
    help_text = subprocess.run([py, str(script), "--help"], capture_output=True, text=True,
                               check=False).stdout
    if "--lists" in help_text:
        args, lists = ["--lists", manifest], manifest
    else:
        args = ["--entries", str(conf["reload_entries"])]
        lists = (f"its own synthetic domains list of {conf['reload_entries']} entries "
                 "(reload_under_load.py takes no manifest)")
    doc = step("reload", [py, str(script), *args], 900, log)
    doc["lists"] = lists
    return doc


if __name__ == "__main__":
    raise SystemExit(main())
