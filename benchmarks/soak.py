"""Soak: minutes of steady load with a reload every 10 s. Do requests fail, does memory grow,
do file descriptors leak?

    python benchmarks/soak.py [--seconds 180] [--workers 2] [--connections 16] [--entries 50000]
                              [--reload-every 10] [--settle 5]

    # the hand-over stress: a reload every 0.4 s (before the drain fix, 26 failed in 400)
    python benchmarks/soak.py --seconds 300 --entries 1000 --reload-every 0.4 --settle 0

1. writes a synthetic `domains` list (--entries names, fixed --seed) and starts
   `linkguard serve --workers N` on a free loopback port with an admin token;
2. warm-up: a reload with the service idle, after which file descriptors are counted ("idle
   start"); then steady POST /v1/check load starts (wrk in back-to-back 1 s runs, else an
   aiohttp client; 1 message in 100 carries a blocked link) and a second reload runs under it;
   5 s later memory is measured ("start"). The first reloads legitimately add memory: the master
   keeps the previous engine while a new generation is forked (the HTTP service section of README.md, "Memory"), and
   the allocator of the thread that builds engines keeps its arenas; measured here, resident
   memory settles after the second reload (the figures after each warm-up reload are printed);
3. for --seconds: every 10 s one entry of the list is replaced (a new feed of the same size)
   and POST /admin/reload; once the old generation has exited the new entry must block; 5 s
   after each hand-over memory is measured again (the series; its last is "end");
4. the load stops and file descriptors are counted with the service idle again ("idle end");
5. prints JSON: requests, failed requests, p50/p99/max latency, reloads, memory (PSS and RSS of
   the master and of the workers: after each warm-up reload, start, end, growth %, the series),
   file descriptors of every process (idle and under load, start and end, by kind), and any
   warning or error line of the service log.

Targets: zero failed requests (and every reload applied), PSS growth < 5 % (the median of the
first three measurements against that of the last three: one sample moves by a few %),
no more file descriptors of any kind in any process at the end than at the start. Exit status 0
when all three hold.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import string
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from reload_under_load import (
    PythonLoad,
    Server,
    WrkLoad,
    add_load_args,
    run_in_tempdir,
    write_lists,
)

MEMORY_TARGET_PCT = 5.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=180.0, help="soak length (default 180)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--entries", type=int, default=50_000)
    p.add_argument("--reload-every", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--settle", type=float, default=5.0,
                   help="seconds of load after a hand-over before memory is measured (default 5)")
    add_load_args(p)
    result = run_in_tempdir(p.parse_args(), "linkguard-soak-", run)
    return 0 if all(result["targets"].values()) else 1


def run(args: argparse.Namespace, client: str, tmp: Path) -> dict[str, Any]:
    blocked = write_lists(tmp, args.entries, args.seed)
    server = Server(tmp, args.workers)
    rng = random.Random(args.seed)
    reloads: list[dict[str, Any]] = []
    warm_up: list[dict[str, float]] = []
    series: list[dict[str, float]] = []
    try:
        startup = server.start()
        url = f"http://127.0.0.1:{server.port}/v1/check"
        block_text = f"look at https://{blocked}/login now"
        assert server.check(block_text) == "block", "the synthetic list is not loaded"
        memory_initial = memory(server)

        reloads.append(reload(server, tmp, rng, "warm-up"))
        # Each worker opens its metrics files as it publishes its first request's figures (once
        # a second): a worker of the new generation that has served nothing yet has two fewer.
        for _ in range(50):  # a connection each: the kernel hands them to both workers
            server.check(block_text)
        time.sleep(2.0)
        fds_idle_start = fds(server)
        warm_up.append(memory(server))

        load = WrkLoad(url, args.connections, tmp, block_text) if client == "wrk" else \
            PythonLoad(url, args.connections, block_text)
        load.start()
        time.sleep(args.settle)
        reloads.append(reload(server, tmp, rng, "warm-up"))
        time.sleep(args.settle)
        memory_start, fds_start = memory(server), fds(server)
        warm_up.append(memory_start)

        t0 = time.monotonic()
        while True:
            time.sleep(args.reload_every - (time.monotonic() - t0) % args.reload_every)
            if time.monotonic() - t0 >= args.seconds:
                break
            reloads.append(reload(server, tmp, rng, "soak"))
            time.sleep(args.settle)
            series.append(memory(server))
        soak_s = time.monotonic() - t0
        memory_end = series[-1] if series else memory(server)  # 5 s after the last hand-over
        fds_end = fds(server)
        samples = load.stop()
        time.sleep(2.0)  # the load's connections close
        fds_idle_end = fds(server)
        log_errors = errors_in_log(tmp / "serve.log")
    finally:
        server.stop()

    soak = [r for r in reloads if r["phase"] == "soak"]
    growth = {k: pct(memory_start[k], memory_end[k]) for k in memory_start}
    # One sample moves by a few % with copy-on-write and allocator timing (measured: +-4 % over
    # 59 reloads with no trend); the target compares the median of the first three measurements
    # with that of the last three.
    first = [memory_start["pss_total"], *(m["pss_total"] for m in series[:2])]
    last = [m["pss_total"] for m in series[-3:]] or [memory_end["pss_total"]]
    growth_median = pct(statistics.median(first), statistics.median(last))
    leaked = fd_leaks(fds_idle_start, fds_idle_end)
    failed = samples.failed()
    return {
        "seconds": round(soak_s, 1), "workers": args.workers, "connections": args.connections,
        "entries": args.entries, "client": client, "cpus": os.cpu_count(),
        "startup_s": round(startup, 2),
        "requests": samples.requests(), "failed_requests": failed,
        "failures": samples.failure_kinds(),
        "failure_times": failure_times(samples.failures, reloads, t0),
        "latency_ms": {k: v for k, v in samples.stats(None).items() if k.endswith("_ms")},
        "reloads": {"count": len(soak), "ok": sum(r["ok"] for r in soak),
                    "new_entry_blocked": sum(r["blocked"] for r in soak),
                    "seconds_max": max((r["seconds"] for r in soak), default=None),
                    "seconds_median": sorted(r["seconds"] for r in soak)[len(soak) // 2]
                    if soak else None},
        "memory_mb": {"before_any_reload_idle": memory_initial,
                      "after_warm_up_reload_1_idle": warm_up[0],
                      "start": memory_start, "end": memory_end, "growth_pct": growth,
                      "pss_total_growth_pct_median_of_3": growth_median,
                      "series": {k: [m[k] for m in series]
                                 for k in ("pss_master", "pss_workers", "pss_total")},
                      "pss_total_max_growth_pct": pct(memory_start["pss_total"], max(
                          (m["pss_total"] for m in series), default=memory_start["pss_total"])),
                      "note": "start: 5 s after the 2nd warm-up reload (under load); end and "
                              "series: 5 s after each hand-over, under the same load"},
        "fds": {"idle_start": fds_idle_start, "under_load_start": fds_start,
                "under_load_end": fds_end, "idle_end": fds_idle_end, "leaked": leaked},
        "log_errors": log_errors,
        "targets": {"zero_failed": failed == 0 and all(r["ok"] and r["blocked"] for r in reloads),
                    "memory_growth_under_5pct": growth_median < MEMORY_TARGET_PCT,
                    "no_leaked_fds": not leaked},
    }


def reload(server: Server, tmp: Path, rng: random.Random, phase: str) -> dict[str, Any]:
    """Replace one entry of the list (a new feed, the same size), reload, wait for the old
    generation to exit, and check that the new entry blocks."""
    path = tmp / "big.txt"
    lines = path.read_text().splitlines()
    fresh = "".join(rng.choices(string.ascii_lowercase, k=12)) + ".soak-example.net"
    lines[-1] = fresh
    path.write_text("\n".join(lines) + "\n")
    t0 = time.monotonic()
    status, body = server.admin("POST", "/admin/reload", {"lists": ["big"]})
    server.wait_old_generation_gone()
    t1 = time.monotonic()
    blocked = server.check(f"https://www.{fresh}/x") == "block"
    return {"phase": phase, "ok": status == 200, "blocked": blocked,
            "seconds": round(t1 - t0, 2), "window": (t0, t1),
            "version": body.get("lists_version")}


def failure_times(failures: list[tuple[float, float, str]], reloads: list[dict[str, Any]],
                  t0: float) -> list[dict[str, Any]]:
    """Each failed request: when (seconds from the soak's start; wrk reports per 1 s run, so a
    window), its kind, and whether that window overlaps a reload (request to old-gen exit)."""
    out = []
    for start, end, kind in failures:
        overlaps = any(start <= r["window"][1] and end >= r["window"][0] for r in reloads)
        out.append({"from_s": round(start - t0, 1), "to_s": round(end - t0, 1), "kind": kind,
                    "during_reload": overlaps})
    return out


def pids(server: Server) -> dict[str, list[int]]:
    assert server.proc is not None
    workers = [w["pid"] for w in server.admin("GET", "/admin/lists")[1]["workers"]]
    return {"master": [server.proc.pid], "workers": sorted(workers)}


def memory(server: Server) -> dict[str, float]:
    """MB: PSS (shared copy-on-write pages split between sharers) and RSS, per role and total."""
    out: dict[str, float] = {}
    for role, ps in pids(server).items():
        out[f"pss_{role}"] = round(sum(_status(pid, "smaps_rollup", "Pss:") for pid in ps) / 1024, 1)
        out[f"rss_{role}"] = round(sum(_status(pid, "status", "VmRSS:") for pid in ps) / 1024, 1)
    out["pss_total"] = round(out["pss_master"] + out["pss_workers"], 1)
    out["rss_total"] = round(out["rss_master"] + out["rss_workers"], 1)
    return out


def _status(pid: int, name: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fds(server: Server) -> dict[str, Any]:
    """Open file descriptors of every process, by kind (socket, pipe, anon_inode, file)."""
    out: dict[str, Any] = {}
    roles = pids(server)
    time.sleep(0.5)  # the server closes its side of the connection that just asked for the pids
    for role, ps in roles.items():
        out[role] = [{"pid": pid, **_fd_kinds(pid)} for pid in ps]
    return out


def _fd_kinds(pid: int) -> dict[str, int]:
    kinds = {"total": 0, "socket": 0, "pipe": 0, "anon_inode": 0, "file": 0}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return kinds
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target and not target.startswith("/") else "file"
        kinds[kind if kind in kinds else "file"] += 1
        kinds["total"] += 1
    return kinds


def fd_leaks(start: dict[str, Any], end: dict[str, Any]) -> list[str]:
    """Idle counts per role must be equal (workers are new processes each reload: compare each
    worker slot by kind)."""
    leaks = []
    for role, processes in start.items():
        for i, (a, b) in enumerate(zip(processes, end[role])):
            for kind in a:
                if kind != "pid" and b[kind] > a[kind]:
                    leaks.append(f"{role}[{i}].{kind}: {a[kind]} -> {b[kind]}")
    return leaks


def pct(before: float, after: float) -> float:
    return round((after - before) / before * 100, 2) if before else 0.0


def errors_in_log(log: Path) -> list[str]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            out.append(line[:300])  # not a JSON log line: a traceback or a crash
            continue
        if record.get("level") in ("warning", "error", "critical"):
            out.append(line[:300])
    return out


if __name__ == "__main__":
    raise SystemExit(main())
