"""Reload under load: does a reload of large lists drop requests or stall latency?

    python benchmarks/reload_under_load.py [--entries 1000000] [--workers 2] [--connections 16]

1. writes a synthetic `domains` list of --entries names (deterministic --seed) into a temp dir;
2. starts `linkguard serve --workers N` on a free loopback port with an admin token;
3. drives steady POST /v1/check load on loopback: wrk (if installed) in back-to-back 1 s runs,
   each reporting its latency quantiles, or else an aiohttp client with bounded concurrency that
   times every request;
4. after --reload-after seconds appends an entry to the list and POSTs /admin/reload; the reload
   window runs from that request until the old worker generation has exited;
5. prints JSON: requests, failed requests, p50/p99 overall and during the reload window, the
   reload duration, and checks that the new entry is blocked afterwards.

Target: zero failed requests, and p99 <= 50 ms during the reload window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "benchmark-admin-token"
ALLOW_TEXT = ("see https://www.wikipedia.org/wiki/Hyperlink and docs.python.org/3/library/ "
              "or <https://news.example.org/a?b=c> \U0001F600 tomorrow")
TLDS = ("com", "net", "org", "info", "io", "de", "co.uk", "xyz", "ru", "fr")

LUA = r"""
local bodies = {ALLOW, BLOCK}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  -- 1 request in 100 carries a blocked link (audit-logged); the rest are allowed
  return wrk.format(nil, nil, nil, bodies[(n % 100 == 0) and 2 or 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for i = 1, 999 do q[i] = latency:percentile(i / 10) end
  io.write(string.format(
    'LGJSON {"requests":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"max_us":%d,"quantiles_us":[%s]}\n',
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout, latency.max,
    table.concat(q, ",")))
end
"""


def add_load_args(p: argparse.ArgumentParser) -> None:
    """The options this script and soak.py share."""
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (lists, server log)")


def run_in_tempdir(args: argparse.Namespace, prefix: str,
                   run: Callable[[argparse.Namespace, str, Path], dict[str, Any]]
                   ) -> dict[str, Any]:
    """run(args, client, tmp) with the load client picked and a temp dir; prints the result."""
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        result = run(args, client, tmp)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--reload-after", type=float, default=3.0, help="seconds of load first")
    p.add_argument("--tail", type=float, default=3.0, help="seconds of load after the reload")
    add_load_args(p)
    result = run_in_tempdir(p.parse_args(), "linkguard-bench-", run)
    ok = result["failed_requests"] == 0 and result["reload"]["ok"]
    return 0 if ok else 1


def run(args: argparse.Namespace, client: str, tmp: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    blocked = write_lists(tmp, args.entries, args.seed)
    list_seconds = time.perf_counter() - t0
    server = Server(tmp, args.workers)
    try:
        startup = server.start()
        url = f"http://127.0.0.1:{server.port}/v1/check"
        block_text = f"look at https://{blocked}/login now"
        assert server.check(block_text) == "block", "the synthetic list is not loaded"
        memory_before = server.memory()

        load = WrkLoad(url, args.connections, tmp, block_text) if client == "wrk" else \
            PythonLoad(url, args.connections, block_text)
        load.start()
        time.sleep(args.reload_after)

        new_entry = f"fresh-{args.seed}.example.net"
        with (tmp / "big.txt").open("a") as f:
            f.write(new_entry + "\n")
        reload_start = time.monotonic()
        status, body = server.admin("POST", "/admin/reload", {})
        reload_answered = time.monotonic()
        server.wait_old_generation_gone()
        reload_end = time.monotonic()
        time.sleep(args.tail)
        samples = load.stop()
        after = server.check(f"https://{new_entry}/")
        memory_after = server.memory()
    finally:
        server.stop()

    window = (reload_start, reload_end)
    return {
        "entries": args.entries, "workers": args.workers, "connections": args.connections,
        "client": client, "cpus": os.cpu_count(),
        "write_list_s": round(list_seconds, 2), "startup_s": round(startup, 2),
        "requests": samples.requests(), "failed_requests": samples.failed(),
        "failures": samples.failure_kinds(),
        "overall": samples.stats(None),
        "reload_window": samples.stats(window),
        "outside_reload_window": samples.stats(window, outside=True),
        "reload": {"ok": status == 200, "status": status,
                   "duration_s": round(reload_answered - reload_start, 3),
                   "build_s": body.get("duration_s"),
                   "window_s": round(reload_end - reload_start, 3),
                   "new_entry_blocked_after": after == "block"},
        "memory_pss_mb": {"before_reload": memory_before, "after_reload": memory_after},
    }


def write_lists(directory: Path, entries: int, seed: int) -> str:
    """`entries` distinct domain names, like a large phishing/malware feed; returns one of them."""
    rng = random.Random(seed)
    letters = string.ascii_lowercase + string.digits
    chosen = ""
    with (directory / "big.txt").open("w") as f:
        f.write("# synthetic benchmark list\n")
        for i in range(entries):
            label = "".join(rng.choices(letters, k=rng.randint(6, 14)))
            sub = f"{''.join(rng.choices(string.ascii_lowercase, k=4))}." if i % 5 == 0 else ""
            name = f"{sub}{label}{i:x}.{TLDS[i % len(TLDS)]}"  # the index keeps them distinct
            f.write(name + "\n")
            if i == entries // 2:
                chosen = name
    (directory / "lists.toml").write_text(
        '[[list]]\nname = "big"\npath = "big.txt"\nformat = "domains"\naction = "block"\n'
        'category = "malware"\n')
    return chosen


class Server:
    def __init__(self, tmp: Path, workers: int) -> None:
        self.tmp, self.workers, self.port = tmp, workers, 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        with socket.socket() as s:  # a free port; the service binds it right away
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "LINKGUARD_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        with (self.tmp / "serve.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "linkguard", "serve", "--lists",
                 str(self.tmp / "lists.toml"), "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)], env=env, stderr=log, stdout=subprocess.DEVNULL)
        while True:
            if self.proc.poll() is not None:
                raise SystemExit("linkguard serve exited:\n" +
                                 (self.tmp / "serve.log").read_text()[-3000:])
            try:
                if self.get("/readyz")[0] == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.1)

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.request(method, path, body, {"Authorization": f"Bearer {TOKEN}"})

    def check(self, text: str) -> str:
        return str(self.request("POST", "/v1/check", {"text": text})[1]["verdict"])

    def wait_old_generation_gone(self) -> None:
        while any(w["state"] != "serving" for w in self.admin("GET", "/admin/lists")[1]["workers"]):
            time.sleep(0.05)

    def memory(self) -> dict[str, float]:
        """Proportional set size: shared (copy-on-write) pages are split between sharers."""
        assert self.proc is not None
        pids = {"master": [self.proc.pid],
                "workers": [w["pid"] for w in self.admin("GET", "/admin/lists")[1]["workers"]]}
        return {role: round(sum(_pss_kb(pid) for pid in ps) / 1024, 1) for role, ps in pids.items()}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- results -----------------------------------------------------------------------------------

class Samples:
    """Latency samples (start, end, latency_s, weight) and failures (start, end, kind). A sample
    or failure counts in a window when [start, end] overlaps it: a timed request has start ==
    end; a wrk run's quantiles span the whole run, each weighing its share of the requests."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float, float, float]] = []
        self.failures: list[tuple[float, float, str]] = []

    def requests(self) -> int:
        return round(sum(p[3] for p in self.points)) + len(self.failures)

    def failed(self) -> int:
        return len(self.failures)

    def failure_kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for *_, kind in self.failures:
            out[kind] = out.get(kind, 0) + 1
        return out

    def stats(self, window: tuple[float, float] | None, outside: bool = False) -> dict[str, Any]:
        def inside(start: float, end: float) -> bool:
            overlaps = window is None or (start <= window[1] and end >= window[0])
            return overlaps != outside

        pts = sorted((lat, w) for start, end, lat, w in self.points if inside(start, end))
        fails = sum(1 for start, end, _ in self.failures if inside(start, end))
        total = sum(w for _, w in pts)

        def quantile(q: float) -> float | None:
            acc = 0.0
            for lat, w in pts:
                acc += w
                if acc >= q * total:
                    return round(lat * 1000, 2)
            return None

        return {"requests": round(total) + fails, "failed": fails,
                "p50_ms": quantile(0.50), "p99_ms": quantile(0.99),
                "max_ms": round(pts[-1][0] * 1000, 2) if pts else None}


class _Load:
    """Load generated in a thread from start() to stop(), its samples collected."""

    def __init__(self) -> None:
        self.samples = Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Samples:
        self._stop.set()
        self._thread.join()
        return self.samples

    def _loop(self) -> None:
        raise NotImplementedError


class WrkLoad(_Load):
    """Back-to-back 1 s wrk runs, so the reload window can be cut out of the timeline. Each run's
    latency quantiles (0.1 % steps) become weighted samples at the run's midpoint; a run counts in
    the window when it overlaps it."""

    def __init__(self, url: str, connections: int, tmp: Path, block_text: str) -> None:
        super().__init__()
        self.url, self.connections = url, connections
        self.script = tmp / "check.lua"
        self.script.write_text(LUA.replace("ALLOW", _lua_str({"text": ALLOW_TEXT}))
                               .replace("BLOCK", _lua_str({"text": block_text})))

    def _loop(self) -> None:
        threads = min(2, self.connections)
        while not self._stop.is_set():
            start = time.monotonic()
            out = subprocess.run(["wrk", "-t", str(threads), "-c", str(self.connections), "-d", "1s",
                                  "--timeout", "10s", "-s", str(self.script), self.url],
                                 capture_output=True, text=True, check=False)
            end = time.monotonic()
            line = next((x for x in out.stdout.splitlines() if x.startswith("LGJSON ")), None)
            if line is None:
                raise SystemExit(f"wrk failed: {out.stderr or out.stdout}")
            r = json.loads(line[len("LGJSON "):])
            for kind in ("connect", "read", "write", "status", "timeout"):
                self.samples.failures += [(start, end, kind)] * r[kind]
            good = max(0, r["requests"] - r["status"])  # non-2xx answers count in requests
            weight = good / len(r["quantiles_us"])
            self.samples.points += [(start, end, q / 1e6, weight) for q in r["quantiles_us"]]


def _lua_str(body: dict[str, str]) -> str:
    return json.dumps(json.dumps(body))  # a JSON string literal is a valid Lua string literal


class PythonLoad(_Load):
    """Without wrk: `connections` aiohttp tasks posting back to back; every request is timed."""

    def __init__(self, url: str, connections: int, block_text: str) -> None:
        super().__init__()
        self.url, self.connections, self.block_text = url, connections, block_text

    def _loop(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        import aiohttp
        allow = json.dumps({"text": ALLOW_TEXT}).encode()
        block = json.dumps({"text": self.block_text}).encode()
        headers = {"Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async def one(n: int) -> None:
                i = 0
                while not self._stop.is_set():
                    i += 1
                    t = time.monotonic()
                    try:
                        async with session.post(self.url, data=block if i % 100 == n % 100
                                                else allow, headers=headers) as resp:
                            await resp.read()
                            ok = resp.status == 200
                    except (TimeoutError, aiohttp.ClientError) as e:
                        self.samples.failures.append((t, t, type(e).__name__))
                        continue
                    if ok:
                        self.samples.points.append((t, t, time.monotonic() - t, 1.0))
                    else:
                        self.samples.failures.append((t, t, f"status_{resp.status}"))

            await asyncio.gather(*(one(n) for n in range(self.connections)))


if __name__ == "__main__":
    raise SystemExit(main())
