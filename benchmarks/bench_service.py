#!/usr/bin/env python3
"""Service cost (issue target 3), on loopback, in one run:

  bare     benchmarks/bare_app.py (one POST handler: `await request.json()`, small JSON out)
  ceiling  bare_app.py --lists: that handler plus Engine.check_text (coalesced as linkguard does)
           and its verdict out, nothing
           else (no bounds, metrics, guard, errors): what any web layer on aiohttp around this
           engine could reach at best; not a target, it shows how much of the gap is the engine
  check    `linkguard serve --workers 1` with the big set, POST /v1/check, a message with one link
  batch    the same server, POST /v1/check/batch, 100 messages a body, one URL each in `urls`
  batch_text  the same, the URL inside each message's `text`

Both servers are pinned to core 0 and wrk to core 1 (when there are two cores and taskset).
wrk cycles through the same bodies for bare, ceiling and check; they alternate for --rounds rounds and
the best round of each counts. Also reported: the median of the rounds' own ratios (bare, ceiling
and check run one after the other in a round), which a quiet moment that favours one side moves
less than the best rounds do. Targets: check >= 0.8 x bare (requests/s); batch >= 50k URLs/s per worker.

    bench_service.py --lists DIR/lists.toml --urls DIR/check-urls.txt
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import common

LUA = r"""
local bodies = {BODIES}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""

TEMPLATES = ("have a look at {} when you get a chance", "{}", "new post: {} (via a friend)",
             "is this legit?? {}", "docs are here {} thanks")


def lua_script(path: Path, bodies: list[dict[str, Any]]) -> Path:
    # A JSON string literal is a valid Lua string literal.
    items = ",\n".join(json.dumps(json.dumps(b, separators=(",", ":"))) for b in bodies)
    path.write_text(LUA.replace("{BODIES}", "{\n" + items + "\n}"))
    return path


def check_bodies(urls: list[str], n: int = 100) -> list[dict[str, Any]]:
    return [{"text": TEMPLATES[i % len(TEMPLATES)].format(u)} for i, u in enumerate(urls[:n])]


def batch_bodies(urls: list[str], per_body: int, bodies: int, text: bool) -> list[dict[str, Any]]:
    out = []
    for b in range(bodies):
        chunk = urls[b * per_body:(b + 1) * per_body]
        out.append({"messages": [
            {"id": i, "text": f"see {u}"} if text else {"id": i, "urls": [u]}
            for i, u in enumerate(chunk)]})
    return out


def wrk(url: str, script: Path, seconds: float, connections: int,
        server_pid: int | None = None) -> dict[str, Any]:
    """One wrk run. With `server_pid`, also the server's CPU time (its whole process tree)
    during the run, and so requests per CPU-second: what the server does with a core of its
    own, whatever else the machine runs."""
    pids = common.process_tree(server_pid) if server_pid else []
    cpu0 = common.cpu_seconds(pids)
    cmd = [*common.pin_prefix(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s",
           "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    m = re.search(r"^WRKJSON (.*)$", out.stdout, re.MULTILINE)
    if m is None:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    r = json.loads(m.group(1))
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
    cpu = common.cpu_seconds(pids) - cpu0
    return {"req_per_s": round(r["requests"] / (r["duration_us"] / 1e6)),
            "server_cpu_s": round(cpu, 2),
            "req_per_cpu_s": round(r["requests"] / cpu) if cpu > 0 else None,
            "requests": r["requests"], "non_2xx": r["status"], "socket_errors": errors,
            "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000}


def post(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lists", required=True)
    p.add_argument("--urls", required=True)
    p.add_argument("--seconds", type=float, default=8.0, help="per wrk run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--ready-timeout", type=float, default=180.0)
    a = p.parse_args(argv)
    common.exit_on_sigterm()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")

    urls = common.lines(a.urls)
    tmp = Path(tempfile.mkdtemp(prefix="lg-bench-service-"))
    port_bare, port_ceil, port_lg = common.free_port(), common.free_port(), common.free_port()
    base_bare, base_ceil, base_lg = (f"http://127.0.0.1:{port}"
                                     for port in (port_bare, port_ceil, port_lg))
    check_lua = lua_script(tmp / "check.lua", check_bodies(urls))
    batch_lua = lua_script(tmp / "batch.lua", batch_bodies(urls, 100, 20, text=False))
    batch_text_lua = lua_script(tmp / "batch_text.lua", batch_bodies(urls, 100, 20, text=True))

    bare_cmd = common.bare_app_cmd(port_bare, core=0)
    ceil_cmd = common.bare_app_cmd(port_ceil, a.lists, core=0)
    lg_cmd = common.serve_cmd(a.lists, port_lg, 1, core=0)
    try:
        with contextlib.ExitStack() as stack:
            bare = stack.enter_context(common.started(bare_cmd, log=tmp / "bare.log"))
            lg = stack.enter_context(common.started(lg_cmd, log=tmp / "serve.log",
                                                    env=common.serve_env()))
            common.wait_ready(base_bare + "/readyz", bare, 30)
            ready_s = common.wait_ready(base_lg + "/readyz", lg, a.ready_timeout)
            # Started once linkguard is ready: the two would share core 0 while loading.
            ceil = stack.enter_context(common.started(ceil_cmd, log=tmp / "ceiling.log"))
            common.wait_ready(base_ceil + "/readyz", ceil, a.ready_timeout)
            sample = check_bodies(urls)[0]
            assert post(base_bare + "/v1/check", sample)["verdict"] == "allow"
            verdict = post(base_lg + "/v1/check", sample)
            assert verdict["links"], f"no link found in {sample}: {verdict}"
            batch = post(base_lg + "/v1/check/batch", batch_bodies(urls, 100, 1, False)[0])
            assert len(batch["results"]) == 100

            assert post(base_ceil + "/v1/check", sample)["links"] == verdict["links"]
            servers = {"bare": (base_bare, bare.pid), "ceiling": (base_ceil, ceil.pid),
                       "check": (base_lg, lg.pid)}
            for base, _pid in servers.values():  # warm up
                wrk(base + "/v1/check", check_lua, 1, a.connections)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
            for _ in range(a.rounds):
                for name, (base, pid) in servers.items():
                    runs[name].append(wrk(base + "/v1/check", check_lua, a.seconds,
                                          a.connections, pid))
            batch_run = wrk(base_lg + "/v1/check/batch", batch_lua, a.seconds, a.connections,
                            lg.pid)
            batch_text_run = wrk(base_lg + "/v1/check/batch", batch_text_lua, a.seconds,
                                 a.connections, lg.pid)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def best(name: str, key: str = "req_per_s") -> Any:
        return max(r[key] or 0 for r in runs[name])

    def median_ratio(name: str) -> float | None:
        """The median of each round's ratio to the bare handler's run of the same round."""
        ratios = [r["req_per_s"] / b["req_per_s"]
                  for r, b in zip(runs[name], runs["bare"]) if b["req_per_s"]]
        return round(statistics.median(ratios), 3) if ratios else None

    bare_cpu, check_cpu = best("bare", "req_per_cpu_s"), best("check", "req_per_cpu_s")
    common.emit({
        "bench": "service",
        "pinning": {"servers": "core 0", "wrk": "core 1"} if common.pin_prefix(1) else None,
        "wrk": {"threads": 1, "connections": a.connections, "seconds": a.seconds,
                "rounds": a.rounds},
        "ready_s": round(ready_s, 2),
        "bare_req_per_s": best("bare"), "check_req_per_s": best("check"),
        "ratio_check_to_bare": round(best("check") / best("bare"), 3),
        "ratio_check_to_bare_median": median_ratio("check"),
        "bare_req_per_cpu_s": bare_cpu, "check_req_per_cpu_s": check_cpu,
        "ratio_check_to_bare_per_cpu": round(check_cpu / bare_cpu, 3) if bare_cpu else None,
        "ceiling_req_per_s": best("ceiling"),
        "ratio_ceiling_to_bare": round(best("ceiling") / best("bare"), 3),
        "ratio_ceiling_to_bare_median": median_ratio("ceiling"),
        "ratio_check_to_ceiling": round(best("check") / best("ceiling"), 3),
        "runs": runs,
        "batch_urls_per_s": batch_run["req_per_s"] * 100,
        "batch_urls_per_cpu_s": (batch_run["req_per_cpu_s"] or 0) * 100,
        "batch_text_urls_per_s": batch_text_run["req_per_s"] * 100,
        "batch_text_urls_per_cpu_s": (batch_text_run["req_per_cpu_s"] or 0) * 100,
        "batch": batch_run, "batch_text": batch_text_run,
        "load_average_at_end": common.load_average(),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
