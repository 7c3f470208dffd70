"""The real `linkguard serve --workers 2` as a subprocess (tests/liveserver.py), over loopback:
verdicts, a reload that reaches every worker, a crashed worker re-forked, a clean stop, the old
lists' memory returned."""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.corpora import ROOT
from tests.liveserver import DEADLINE, LiveService, live_service, wait_for
from tests.webfixtures import AUTH, TOKEN, write_lists


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LiveService]:
    with live_service(tmp_path, workers=2) as svc:
        yield svc


def test_serve_reload_reaches_every_worker(service: LiveService, tmp_path: Path) -> None:
    status, body = service.request("POST", "/v1/check", {"text": "go to evil.example.com now"})
    assert status == 200 and body["verdict"] == "block"
    assert body["links"][0]["lists"] == ["phishing"]
    status, body = service.request("POST", "/v1/check", {"text": "https://bad.example.org"})
    assert body["verdict"] == "allow"

    first = wait_for(lambda: (s := service.status()) and
                     sum(w["state"] == "serving" for w in s["workers"]) == 2 and s,
                     "two serving workers")
    old_version = first["lists_version"]
    assert all(w["lists_version"] == old_version for w in first["workers"])

    # A failed reload changes nothing and lists every error as file:line: reason.
    phishing = tmp_path / "lists" / "phishing.txt"
    phishing.write_text("bad.example.org\nnot a host!\n")
    status, body = service.request("POST", "/admin/reload", {}, AUTH)
    assert status == 422 and body["error"]["errors"][0].startswith(f"{phishing}:2: ")
    assert service.status()["lists_version"] == old_version

    phishing.write_text("bad.example.org\n")
    status, body = service.request("POST", "/admin/reload", {"lists": ["phishing"]}, AUTH)
    assert status == 200 and body["ok"] is True
    new_version = body["lists_version"]
    assert new_version != old_version

    # The old generation drains and exits; every worker left serves the new version.
    after = wait_for(lambda: (s := service.status()) and
                     all(w["state"] == "serving" for w in s["workers"]) and s,
                     "the old generation to exit")
    assert after["lists_version"] == new_version
    assert len(after["workers"]) == 2
    assert all(w["lists_version"] == new_version for w in after["workers"])
    assert not {w["pid"] for w in after["workers"]} & {w["pid"] for w in first["workers"]}
    for _ in range(6):  # new connections each time: the kernel spreads them over both workers
        status, body = service.request("POST", "/v1/check", {"text": "https://bad.example.org"})
        assert body["verdict"] == "block" and body["lists_version"] == new_version

    # A worker that dies is re-forked by the master.
    victim = after["workers"][0]["pid"]
    os.kill(victim, signal.SIGKILL)
    healed = wait_for(lambda: (s := service.status()) and
                      victim not in {w["pid"] for w in s["workers"]} and
                      sum(w["state"] == "serving" for w in s["workers"]) == 2 and s,
                      "the master to re-fork the worker")
    assert all(w["lists_version"] == new_version for w in healed["workers"])

    status, metrics = 200, urllib.request.urlopen(
        f"http://127.0.0.1:{service.port}/metrics", timeout=DEADLINE).read().decode()
    assert 'linkguard_last_reload_success 1.0' in metrics
    assert 'linkguard_reloads_total{result="failure"} 1.0' in metrics
    assert 'route="/v1/check",status="200"' in metrics

    # SIGTERM stops everything cleanly.
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(DEADLINE) == 0
    for w in healed["workers"]:
        with pytest.raises(ProcessLookupError):
            os.kill(w["pid"], 0)
    log = service.log.read_text()
    assert "Traceback" not in log and '"level": "error"' in log  # the killed worker, reported


def test_serve_not_ready_until_lists_load(tmp_path: Path) -> None:
    manifest = write_lists(tmp_path / "lists", phishing="evil.example.com\nnot a host!\n")
    with live_service(tmp_path, workers=2, manifest=manifest) as service:
        status, body = service.request("GET", "/readyz")
        phishing = tmp_path / "lists" / "phishing.txt"
        assert status == 503 and body["error"]["errors"][0].startswith(f"{phishing}:2: ")
        status, body = service.request("POST", "/v1/check", {"text": "evil.example.com"})
        assert status == 503 and body["error"]["code"] == "not_ready"  # never a silent allow
        assert service.status()["ready"] is False

        phishing.write_text("evil.example.com\n")
        status, body = service.request("POST", "/admin/reload", {}, AUTH)
        assert status == 200
        assert service.request("GET", "/readyz")[0] == 200
        status, body = service.request("POST", "/v1/check", {"text": "evil.example.com"})
        assert status == 200 and body["verdict"] == "block"


def _proc_mb(pid: int, name: str, *fields: str) -> float:
    """The sum of `fields` (kB figures) of /proc/PID/`name`, in MB."""
    with open(f"/proc/{pid}/{name}", encoding="ascii") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith(fields)) / 1024


def _many_hosts(n: int = 300_000) -> str:
    """A phishing list of n hosts, _host(0) to _host(n - 1): an index of ~60 MB."""
    return "".join(f"{_host(i)}\n" for i in range(n))


def _host(i: int) -> str:
    return f"h{i}.example{i % 7}.com"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_reload_returns_the_old_lists_memory(tmp_path: Path) -> None:
    # Lists big enough that one index (~60 MB here) stands far above allocator noise. After
    # a reload the master holds the new index only: the old one is freed, not kept beside it
    # (and shared, unused, with every worker forked later).
    manifest = write_lists(tmp_path / "lists", phishing=_many_hosts())
    with live_service(tmp_path, manifest=manifest) as svc:
        master = svc.proc.pid
        loaded = _proc_mb(master, "status", "VmRSS:")
        for _ in range(2):
            status, body = svc.request("POST", "/admin/reload", {}, AUTH)
            assert status == 200 and body["ok"] is True
        after = _proc_mb(master, "status", "VmRSS:")
    assert after - loaded < 20, f"master RSS {loaded:.0f} MB loaded, {after:.0f} MB after reloads"


def _collapses_huge_pages() -> bool:
    """MADV_COLLAPSE: Linux 6.1+, with transparent huge pages not switched off."""
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    release = tuple(int(n) for n in re.findall(r"\d+", platform.release())[:2])
    return thp.exists() and "[never]" not in thp.read_text() and release >= (6, 1)


@pytest.mark.skipif(not _collapses_huge_pages(), reason="needs MADV_COLLAPSE (Linux 6.1+, THP)")
def test_the_index_is_shared_on_huge_pages(tmp_path: Path) -> None:
    # The master moves the index (~60 MB here) to 2 MiB pages before it forks: the workers
    # share them, and a probe of its tables is then one TLB miss the fewer.
    manifest = write_lists(tmp_path / "lists", phishing=_many_hosts())
    with live_service(tmp_path, manifest=manifest) as svc:
        workers = [w["pid"] for w in svc.status()["workers"]]
        huge = {pid: _proc_mb(pid, "smaps_rollup", "AnonHugePages:")
                for pid in (svc.proc.pid, *workers)}
    assert all(mb >= 8 for mb in huge.values()), f"MB on huge pages, by process: {huge}"


def _private_mb(pid: int) -> float:
    return _proc_mb(pid, "smaps_rollup", "Private_Clean:", "Private_Dirty:")


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="reads /proc")
def test_a_worker_matching_listed_hosts_copies_none_of_the_index(tmp_path: Path) -> None:
    # The workers share the master's index copy-on-write; a lookup that wrote to the keys it
    # matched (an incref) would copy their pages into the worker, one by one, until each
    # worker held its own index. 60k checks of listed hosts, spread over the ~20 MB of keys.
    n = 300_000
    manifest = write_lists(tmp_path / "lists", phishing=_many_hosts(n))
    with live_service(tmp_path, manifest=manifest) as svc:
        (worker,) = [w["pid"] for w in svc.status()["workers"]]

        def check(numbers: range) -> None:
            messages = [{"id": str(i), "text": f"https://{_host(i)}/"} for i in numbers]
            status, body = svc.request("POST", "/v1/check/batch", {"messages": messages})
            assert status == 200 and body["results"][0]["verdict"] == "block", body

        check(range(0, 2000, 4))  # the worker's own buffers, before the first measure
        before = _private_mb(worker)
        for start in range(1, n, n // 120):
            check(range(start, start + n // 120, n // 120 // 500))
        after = _private_mb(worker)
    assert after - before < 8, f"worker private memory {before:.0f} -> {after:.0f} MB"


def test_a_worker_forked_after_its_secret_files_change_still_starts(tmp_path: Path) -> None:
    """Secret files are read once, at start: a worker re-forked after the admin token file was
    deleted (tmp cleanup, a rotation) starts with the same token, instead of failing for ever
    (with --workers 1, no worker at all)."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")
    with live_service(tmp_path, token=False, LINKGUARD_ADMIN_TOKEN_FILE=str(token_file)) as svc:
        first = wait_for(lambda: (s := svc.status()) and
                         [w for w in s["workers"] if w["state"] == "serving"], "a serving worker")
        token_file.unlink()
        os.kill(first[0]["pid"], signal.SIGKILL)
        wait_for(lambda: (s := svc.status()) and [w for w in s["workers"]
                 if w["state"] == "serving" and w["pid"] != first[0]["pid"]],
                 "the master to re-fork the worker")
        status, body = svc.request("POST", "/v1/check", {"text": "go to evil.example.com now"})
        assert status == 200 and body["verdict"] == "block"


def test_concurrent_reloads_are_all_answered_and_built_once(tmp_path: Path) -> None:
    """A reload, and seven more once its build has started: the seven wait for it and are one
    build (they asked before it started), and each is answered, although the first reload's
    hand-over drains the workers that hold them for longer than drain_timeout (1 s here; a
    build takes ~2 s). (Sent all eight at once, they may all be one build: right, but then
    nothing waits through a hand-over.)"""
    manifest = write_lists(tmp_path / "lists", phishing="".join(
        f"host{i}.example.com\n" for i in range(200_000)))
    with live_service(tmp_path, workers=2, manifest=manifest,
                      LINKGUARD_DRAIN_TIMEOUT="1") as svc:

        def reload(_: object = None) -> tuple[int, object]:
            return svc.request("POST", "/admin/reload", {}, AUTH)

        def builds() -> list[dict[str, object]]:
            return [r for r in svc.log_records() if r.get("event") == "reload_start"]

        with ThreadPoolExecutor(8) as pool:
            first = pool.submit(reload)
            wait_for(builds, "the first build to start")
            answers = [*pool.map(reload, range(7)), first.result()]
        assert [status for status, _ in answers] == [200] * 8, answers
        assert 2 <= len(builds()) <= 3, builds()  # the seven as one build (two on a slow machine)


def test_a_stopping_service_refuses_new_connections(tmp_path: Path) -> None:
    """SIGTERM: while the workers drain (an idle keep-alive connection holds them up to
    drain_timeout), a new connection is refused at once, not left in a backlog nobody accepts
    from until the stop resets it; the connection already open still gets its answer."""
    with live_service(tmp_path, workers=2) as svc, svc.connect() as kept:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        svc.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: any(r.get("event") == "stopping" for r in svc.log_records()),
                 "the master to start stopping")

        def refused() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", svc.port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    return s.recv(4096) == b""
            except ConnectionError:
                return True
            except TimeoutError:
                return False  # accepted by the kernel, answered by nobody

        wait_for(refused, "new connections to be refused", deadline=5)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        kept.close()
        assert svc.proc.wait(DEADLINE) == 0


def test_serving_the_demo_lists_is_a_warning(tmp_path: Path) -> None:
    """The shipped demo lists make a fresh machine work; in production they mean --lists or
    LINKGUARD_LISTS is missing (an empty LINKGUARD_LISTS= unsets it): said at start."""
    demo = shutil.copytree(ROOT / "lists", tmp_path / "demo")  # a copy (a source tree's) too
    with live_service(tmp_path, manifest=demo / "lists.toml") as svc:
        assert any(r.get("level") == "warning" and "demo lists" in r.get("msg", "")
                   for r in svc.log_records())
    (demo / "demo-phishing.txt").write_text("phish.example.org\n")  # its own lists now
    for manifest in (demo / "lists.toml", None):
        with live_service(tmp_path, manifest=manifest) as svc:
            assert not any("demo lists" in r.get("msg", "") for r in svc.log_records())


def test_the_port_is_logged_at_any_log_level(tmp_path: Path) -> None:
    """With port 0 the listening lines are the only place the ports are said: written at
    log_level=error too (live_service finds the ports in them, or times out)."""
    with live_service(tmp_path, admin_listener=True, LINKGUARD_LOG_LEVEL="error") as svc:
        assert svc.admin_port is not None
        assert svc.request("GET", "/healthz")[0] == 200
        # info lines still: at error level they would set off alerts on every start
        assert {r["level"] for r in svc.log_records() if "listening" in r["msg"]} == {"info"}


def test_a_killed_masters_metrics_directory_is_removed_by_the_next(tmp_path: Path) -> None:
    def dirs() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("linkguard-metrics-*"))

    before = dirs()
    with live_service(tmp_path / "a") as first:
        [stale] = dirs() - before
        with live_service(tmp_path / "b") as second:
            live = dirs() - before - {stale}
            workers = [w["pid"] for w in first.status()["workers"]]
            first.proc.kill()  # SIGKILL: nothing is cleaned up; its workers exit by themselves
            first.proc.wait(DEADLINE)
            wait_for(lambda: not any(_alive(pid) for pid in workers), "its workers to exit")
            assert stale.exists() and len(live) == 1
            with live_service(tmp_path / "c"):
                assert not stale.exists()
                assert live <= dirs()  # a live master's stays
            assert second.request("GET", "/metrics")[0] == 200


def test_a_stop_during_a_reload_answers_it_and_does_not_wait_for_the_build(tmp_path: Path) -> None:
    """SIGTERM while a reload builds (here for ever: its list file is a FIFO nobody writes):
    the admin who asked is answered "stopping", and the workers drain as they would without
    it, not for reload_timeout (60 s here; 900 by default)."""
    with live_service(tmp_path, LINKGUARD_DRAIN_TIMEOUT="1",
                      LINKGUARD_RELOAD_TIMEOUT="60") as svc:
        phishing = tmp_path / "lists" / "phishing.txt"
        phishing.unlink()
        os.mkfifo(phishing)
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(svc.request, "POST", "/admin/reload", {}, AUTH)
            wait_for(lambda: any(r.get("event") == "reload_start" for r in svc.log_records()),
                     "the build to start")
            svc.proc.send_signal(signal.SIGTERM)
            assert svc.proc.wait(DEADLINE) == 0
            status, body = answer.result(DEADLINE)
        assert status == 422 and body["error"]["errors"] == ["the service is stopping"]


def _alive(pid: int) -> bool:
    """Running (a zombie has exited: its files are closed, but it stays until reaped, and an
    orphan's reaper, PID 1, may be slow or never come, as in some containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
