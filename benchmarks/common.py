"""Helpers shared by the bench scripts: data paths, timing, pinning, child processes, PSS.

Every process a bench starts goes into its own process group and is killed with it in a
`finally`, so an error or a Ctrl-C leaves nothing running.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
SMALL_SET = DATA / "lg-1000-s1"  # the 1k set (gen_lists.py, made by benchmarks/run)
PYTHON = sys.executable


def exit_on_sigterm() -> None:
    """SIGTERM (the runner's timeout) unwinds like Ctrl-C, so `finally` blocks stop children."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def emit(doc: dict[str, Any]) -> None:
    """A bench's one output: a JSON document on stdout."""
    print(json.dumps(doc, indent=2))


def lines(path: str | Path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def messages(path: str | Path) -> list[str]:
    return [json.loads(line) for line in lines(path)]


def cores() -> int:
    return os.cpu_count() or 1


def pin_prefix(core: int) -> list[str]:
    """`taskset -c CORE` when there is such a core and taskset exists; else nothing."""
    if shutil.which("taskset") and cores() > core:
        return ["taskset", "-c", str(core)]
    return []


def pin_self(core: int) -> bool:
    if hasattr(os, "sched_setaffinity") and cores() > core:
        os.sched_setaffinity(0, {core})
        return True
    return False


def best_of(rounds: int, fn: Callable[[], float]) -> dict[str, Any]:
    """Run `fn` (returns a rate) `rounds` times; best and median."""
    rates = [fn() for _ in range(rounds)]
    return {"best": max(rates), "median": statistics.median(rates), "runs": rates}


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


# ---- child processes --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def started(cmd: Sequence[str], *, log: str | Path | None = None,
            env: dict[str, str] | None = None, cwd: str | Path | None = None,
            ) -> Iterator[subprocess.Popen[bytes]]:
    """Start `cmd` in a new process group; on exit SIGTERM the group, then SIGKILL it."""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log, "ab")) if log else subprocess.DEVNULL
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=cwd)
        try:
            yield proc
        finally:
            stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # The leader may be gone while forked workers linger: kill whatever is left of the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def http_get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (OSError, ValueError):
        return 0


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Poll `url` until 200; seconds waited. Raises if the process dies or time runs out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before ready")
        if http_get(url, 1.0) == 200:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready within {timeout:g}s")


def children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def process_tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        with contextlib.suppress(OSError):
            todo += children(p)
    return seen


def pss_kb(pid: int) -> int:
    """Proportional set size of one process: its private pages plus its share of shared ones."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used so far (/proc/PID/stat)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _TICK


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def serve_cmd(manifest: str | Path, port: int, workers: int, core: int | None = None,
              extra: Sequence[str] = ()) -> list[str]:
    prefix = pin_prefix(core) if core is not None else []
    return [*prefix, PYTHON, "-m", "linkguard", "serve", "--lists", str(manifest),
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), *extra]


def bare_app_cmd(port: int, lists: str | Path | None = None, core: int | None = None
                 ) -> list[str]:
    """bare_app.py: the bare handler, or with `lists` the ceiling (the engine in it)."""
    prefix = pin_prefix(core) if core is not None else []
    return [*prefix, PYTHON, str(HERE / "bare_app.py"), "--port", str(port),
            *(["--lists", str(lists)] if lists is not None else [])]


def serve_env(**settings: str) -> dict[str, str]:
    """The environment for `linkguard serve`: no admin token unless given, warnings only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKGUARD_")}
    env["LINKGUARD_LOG_LEVEL"] = "warning"
    env.update({f"LINKGUARD_{k.upper()}": v for k, v in settings.items()})
    return env
