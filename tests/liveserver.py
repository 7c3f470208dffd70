"""The real `linkguard serve` as a subprocess on loopback, for tests that need the HTTP layer
itself (slow clients, raw sockets, worker crashes, the admin listener, schemathesis).

    with live_service(tmp_path, workers=2, LINKGUARD_HEADER_TIMEOUT="1") as svc:
        svc.request("POST", "/v1/check", {"text": "evil.example.com"})   # -> (200, {...})
        svc.connect()                                                    # a raw socket

Every setting travels in the environment, as an operator would set it. Nothing here asserts on
timing; `DEADLINE` only bounds the polling loops so a broken service fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.webfixtures import AUTH, TOKEN, write_lists

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 30.0


class LiveService:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, port: int,
                 admin_port: int | None) -> None:
        self.proc, self.log, self.port, self.admin_port = proc, log, port, admin_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, *, admin: bool = False,
                data: bytes | None = None, timeout: float = DEADLINE) -> tuple[int, Any]:
        """One request on a fresh connection; (status, JSON body or None)."""
        port = self.admin_port if admin else self.port
        if body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={**(headers or {})})
        if data is not None and "Content-Type" not in req.headers:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, _json(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, _json(e.read())

    def status(self) -> dict[str, Any]:
        code, body = self.request("GET", "/admin/lists", headers=AUTH,
                                  admin=self.admin_port is not None)
        assert code == 200, body
        return body  # type: ignore[no-any-return]

    def connect(self, admin: bool = False) -> socket.socket:
        port = self.admin_port if admin else self.port
        assert port is not None
        return socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def wait_for(predicate: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _ports(log: Path) -> tuple[int | None, int | None, bool]:
    """(public port, admin port, admin listener announced) from the log lines so far."""
    port = admin = None
    announced = False
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("event") == "listening":
                port = int(record["port"])
            elif record.get("event") == "admin_listening":
                admin, announced = int(record["port"]), True
    return port, admin, announced


@contextlib.contextmanager
def live_service(tmp_path: Path, *, workers: int = 1, manifest: Path | None = None,
                 token: bool = True, admin_listener: bool = False, wait_ready: bool = True,
                 **env_settings: str) -> Iterator[LiveService]:
    """`linkguard serve` on 127.0.0.1:<free port>; admin on its own free port if asked."""
    manifest = manifest or write_lists(tmp_path / "lists")
    log = tmp_path / f"serve-{time.monotonic_ns()}.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LINKGUARD_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"PYTHONPATH": str(ROOT), "LINKGUARD_DRAIN_TIMEOUT": "10", **env_settings})
    if token:
        env["LINKGUARD_ADMIN_TOKEN"] = TOKEN
    if admin_listener:
        env["LINKGUARD_ADMIN_PORT"] = "0"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "linkguard", "serve", "--lists", str(manifest),
             "--host", "127.0.0.1", "--port", "0", "--workers", str(workers)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        def ports() -> tuple[int, int | None] | None:
            if proc.poll() is not None:
                raise AssertionError(f"linkguard serve exited:\n{log.read_text()}")
            port, admin, announced = _ports(log)
            if port is None or (admin_listener and token and not announced):
                return None
            return port, admin
        port, admin = wait_for(ports, "the listening log lines")
        svc = LiveService(proc, log, port, admin)
        if wait_ready and token:
            wait_for(lambda: sum(w["state"] == "serving" for w in svc.status()["workers"])
                     == workers, f"{workers} serving workers")
        yield svc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # workers the master did not take down
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


__all__ = ["AUTH", "DEADLINE", "TOKEN", "LiveService", "live_service", "stop", "wait_for"]
