#!/usr/bin/env python3
"""Instructions a /v1/check request costs in the serving process, counted by callgrind: the
before/after figure for a change's commit message that repeats (runs of one build agree within
0.5k of ~360k here), where this machine's wall clock moves by 20% from one round to the next.
Not a figure of the issue.

    instructions.py [--kind serve|bare|ceiling] [--dir CHECKOUT] [--requests 2000]

serve: `linkguard serve --workers 1` run from CHECKOUT (default: this checkout), so its own
`linkguard` package; bare and ceiling: bare_app.py, as bench_service runs them. Each runs under
`valgrind --tool=callgrind --trace-children=yes`. 300 requests warm it up, its counters are
zeroed (`callgrind_control -z`), the service benchmark's 100 bodies (1k set) go `--requests`
times over 16 connections from an aiohttp client, and the counters are dumped. The serving
process is the one that counted most. Needs valgrind (apt-get install -y valgrind); about 80 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import aiohttp
import common
from bench_service import check_bodies


async def send(url: str, bodies: list[bytes], n: int, connections: int) -> None:
    """`n` requests, the bodies in turn, `connections` at a time; each must answer 200."""
    sent = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:
        async def client() -> None:
            nonlocal sent
            while sent < n:
                body, sent = bodies[sent % len(bodies)], sent + 1
                async with s.post(url, data=body,
                                  headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{url} answered {r.status}")
        await asyncio.gather(*(client() for _ in range(connections)))


def callgrind(command: str, pids: list[int]) -> None:
    subprocess.run(["callgrind_control", command, *map(str, pids)], check=True,
                   capture_output=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=("serve", "bare", "ceiling"), default="serve")
    p.add_argument("--dir", type=Path, default=common.HERE.parent, help="the checkout (serve)")
    p.add_argument("--lists", default=str(common.SMALL_SET / "lists.toml"))
    p.add_argument("--urls", default=str(common.SMALL_SET / "check-urls.txt"))
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--connections", type=int, default=16)
    a = p.parse_args(argv)
    common.exit_on_sigterm()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
    port = common.free_port()
    server = {"serve": common.serve_cmd(a.lists, port, 1), "bare": common.bare_app_cmd(port),
              "ceiling": common.bare_app_cmd(port, a.lists)}[a.kind]
    bodies = [json.dumps(b).encode() for b in check_bodies(common.lines(a.urls))]
    url = f"http://127.0.0.1:{port}/v1/check"
    tmp = Path(tempfile.mkdtemp(prefix="lg-instructions-"))
    try:
        cmd = ["valgrind", "--tool=callgrind", "--trace-children=yes",
               f"--callgrind-out-file={tmp}/cg.%p", *server]
        env = {**common.serve_env(), "PYTHONHASHSEED": "0"}
        with common.started(cmd, log=tmp / "server.log", env=env,
                            cwd=a.dir if a.kind == "serve" else None) as proc:
            common.wait_ready(f"http://127.0.0.1:{port}/readyz", proc, 600)
            asyncio.run(send(url, bodies, 300, a.connections))
            pids = common.process_tree(proc.pid)
            callgrind("-z", pids)
            asyncio.run(send(url, bodies, a.requests, a.connections))
            callgrind("-d", pids)
        counted = []
        for dump in tmp.glob("cg.*.1"):  # the dump after the zeroing, one per process
            if m := re.search(r"^summary:\s*(\d+)", dump.read_text(), re.MULTILINE):
                counted.append(int(m.group(1)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not counted:
        raise SystemExit("callgrind wrote no dump")
    common.emit({"bench": "instructions", "kind": a.kind,
                 "dir": str(a.dir) if a.kind == "serve" else None, "requests": a.requests,
                 "connections": a.connections,
                 "instructions_per_request": round(max(counted) / a.requests)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
