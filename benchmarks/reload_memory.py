#!/usr/bin/env python3
"""Memory after reloads (not a target of the issue, but it matters): `linkguard serve` on a list
set, then N reloads of every list through /admin/reload, and the PSS of the master and its
workers on a fresh start and 5 s after each reload. Prints JSON.

    reload_memory.py --lists DIR/lists.toml [--workers 1] [--reloads 3]
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request

import common

TOKEN = "reload-memory-bench"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lists", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--reloads", type=int, default=3)
    p.add_argument("--ready-timeout", type=float, default=180.0)
    a = p.parse_args()
    common.exit_on_sigterm()
    port = common.free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = common.serve_cmd(a.lists, port, a.workers)
    with common.started(cmd, env=common.serve_env(admin_token=TOKEN)) as proc:
        common.wait_ready(base + "/readyz", proc, a.ready_timeout)
        time.sleep(3)

        def pss_mb() -> float:
            return round(sum(common.pss_kb(pid) for pid in common.process_tree(proc.pid)) / 1024, 1)

        series = [pss_mb()]
        for _ in range(a.reloads):
            req = urllib.request.Request(base + "/admin/reload", data=b"{}", method="POST", headers={
                "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=600) as resp:
                if not json.loads(resp.read()).get("ok"):
                    raise SystemExit("a reload failed")
            time.sleep(5)
            series.append(pss_mb())
    common.emit({"bench": "reload_memory", "workers": a.workers, "pss_mb": series,
                 "after_last_vs_fresh": round(series[-1] / series[0], 3)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
