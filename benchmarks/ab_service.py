#!/usr/bin/env python3
"""/v1/check of two checkouts of linkguard side by side: the wall-clock figure for a change's
commit message (not a figure of the issue).

Both workers are up at once on core 0 and wrk, on core 1, alternates between them round by
round (A then B, then B then A). That is done twice, started in one order and then in the
other: the worker started second once read 1.09x against the same code. Printed: B/A for each
round, the median of each session's rounds, and the geometric mean of the two medians. On this
project's shared 2-core VM single rounds spread by 20% and more; 12 rounds each way could not
tell a 4-5% change from none, 24 each way could (README, "Seventeenth session").

    ab_service.py --a DIR --b DIR [--lists MANIFEST] [--urls FILE] [--rounds 24] [--seconds 3]

Each DIR is a checkout; `python -m linkguard serve` runs from it, so its own `linkguard`
package is served, with the compiled modules built in it (`setup.py build_ext --inplace`, or
copied from a build of the same sources), or as plain Python without them. For worktrees:
`git worktree add /tmp/before HEAD~1 && cp linkguard/*.so /tmp/before/linkguard/` when the
compiled modules did not change.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import common
from bench_service import check_bodies, lua_script, wrk


def session(checkouts: dict[str, Path], first: str, a: argparse.Namespace, lua: Path,
            tmp: Path) -> list[float]:
    """One session, `first` ("a" or "b") started first: B/A of each round."""
    ports = {side: common.free_port() for side in checkouts}
    with contextlib.ExitStack() as stack:
        for side in sorted(checkouts, key=lambda side: side != first):
            cmd = common.serve_cmd(a.lists, ports[side], 1, core=0)
            proc = stack.enter_context(common.started(
                cmd, log=tmp / f"serve-{side}.log", env=common.serve_env(), cwd=checkouts[side]))
            common.wait_ready(f"http://127.0.0.1:{ports[side]}/readyz", proc, 300)
        urls = {side: f"http://127.0.0.1:{port}/v1/check" for side, port in ports.items()}
        for url in urls.values():  # warm up
            wrk(url, lua, 1, a.connections)
        ratios = []
        for r in range(a.rounds):
            rate = {side: wrk(urls[side], lua, a.seconds, a.connections)["req_per_s"]
                    for side in ("a", "b")[::1 if r % 2 == 0 else -1]}
            ratios.append(round(rate["b"] / rate["a"], 3))
        return ratios


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", type=Path, required=True, help="the checkout before")
    p.add_argument("--b", type=Path, required=True, help="the checkout after")
    p.add_argument("--lists", default=str(common.SMALL_SET / "lists.toml"))
    p.add_argument("--urls", default=str(common.SMALL_SET / "check-urls.txt"))
    p.add_argument("--rounds", type=int, default=24, help="per session")
    p.add_argument("--seconds", type=float, default=3.0, help="per wrk run")
    p.add_argument("--connections", type=int, default=16)
    a = p.parse_args(argv)
    common.exit_on_sigterm()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    if not Path(a.lists).exists():
        raise SystemExit(f"{a.lists}: no such manifest (benchmarks/run makes the 1k set)")
    tmp = Path(tempfile.mkdtemp(prefix="lg-ab-"))
    try:
        lua = lua_script(tmp / "check.lua", check_bodies(common.lines(a.urls)))
        sessions: list[dict[str, Any]] = []
        checkouts = {"a": a.a.resolve(), "b": a.b.resolve()}
        for first in ("a", "b"):
            ratios = session(checkouts, first, a, lua, tmp)
            sessions.append({"started_first": first, "b_to_a": ratios,
                             "median": round(statistics.median(ratios), 3)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    common.emit({
        "bench": "ab_service", "a": str(a.a), "b": str(a.b), "lists": a.lists,
        "wrk": {"threads": 1, "connections": a.connections, "seconds": a.seconds,
                "rounds": a.rounds},
        "sessions": sessions,
        "b_to_a": round(math.sqrt(sessions[0]["median"] * sessions[1]["median"]), 3),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
