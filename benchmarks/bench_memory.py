#!/usr/bin/env python3
"""Memory and start-up (issue target 4): `linkguard serve` with the big set.

For --workers 1, then 2: the time from starting the process to the first 200 from /readyz, and
after a few seconds of /v1/check load (so each worker has run the hot path and copied what it
writes to), the PSS summed over the master and its workers (/proc/PID/smaps_rollup: shared
copy-on-write pages are split between the processes sharing them, so the sum is what the
service really takes). Targets: ready <= 15 s; PSS with one worker <= 1 GB; with two workers
<= 1.5 x the one-worker figure.

    bench_memory.py --lists DIR/lists.toml --urls DIR/check-urls.txt
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_service
import common


def measure(manifest: str, workers: int, lua: Path, load_seconds: float,
            timeout: float) -> dict[str, Any]:
    port = common.free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    with common.started(common.serve_cmd(manifest, port, workers),
                        env=common.serve_env()) as proc:
        common.wait_ready(base + "/readyz", proc, timeout)
        ready_s = time.monotonic() - t0
        # CPU time to ready, over the process tree: the start-up cost without the neighbours'
        # share of the cores.
        ready_cpu_s = common.cpu_seconds(common.process_tree(proc.pid))
        deadline = time.monotonic() + 60
        while len(common.process_tree(proc.pid)) < workers + 1:  # every worker forked
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers did not start")
            time.sleep(0.1)
        pss_idle = {pid: common.pss_kb(pid) for pid in common.process_tree(proc.pid)}
        run = None
        if shutil.which("wrk") and load_seconds > 0:
            run = bench_service.wrk(base + "/v1/check", lua, load_seconds, 16)
        time.sleep(0.5)
        tree = common.process_tree(proc.pid)
        pss = {pid: common.pss_kb(pid) for pid in tree}
        rss = {pid: common.rss_kb(pid) for pid in tree}
    return {
        "workers": workers, "ready_s": round(ready_s, 2), "ready_cpu_s": round(ready_cpu_s, 2),
        "pss_mb": round(sum(pss.values()) / 1024, 1),
        "pss_mb_before_load": round(sum(pss_idle.values()) / 1024, 1),
        "per_process": [{"pid": pid, "role": "master" if pid == proc.pid else "worker",
                         "pss_mb": round(pss[pid] / 1024, 1), "rss_mb": round(rss[pid] / 1024, 1)}
                        for pid in tree],
        "load": run,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lists", required=True)
    p.add_argument("--urls", required=True)
    p.add_argument("--load-seconds", type=float, default=3.0)
    p.add_argument("--ready-timeout", type=float, default=180.0)
    a = p.parse_args(argv)
    common.exit_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="lg-bench-memory-"))
    try:
        lua = bench_service.lua_script(tmp / "check.lua",
                                       bench_service.check_bodies(common.lines(a.urls)))
        one = measure(a.lists, 1, lua, a.load_seconds, a.ready_timeout)
        two = measure(a.lists, 2, lua, a.load_seconds, a.ready_timeout)
    except subprocess.SubprocessError as e:
        raise SystemExit(f"bench_memory: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    common.emit({
        "bench": "memory_startup",
        "ready_s": one["ready_s"], "ready_cpu_s": one["ready_cpu_s"],
        "pss_one_worker_mb": one["pss_mb"], "pss_two_workers_mb": two["pss_mb"],
        "ratio_two_to_one": round(two["pss_mb"] / one["pss_mb"], 3),
        "one_worker": one, "two_workers": two,
        "load_average_at_end": common.load_average(),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
