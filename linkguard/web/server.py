"""`linkguard serve`: settings -> one listening socket (two with `admin_port`) -> the master,
which forks the workers."""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from linkguard.config import ConfigError, Settings, load_settings

log = logging.getLogger("linkguard.serve")

BACKLOG = 1024


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT. Exit status: 0 stopped, 1 cannot listen, 2 bad configuration."""
    overrides = {name: getattr(args, name, None) for name in ("lists", "host", "port", "workers")}
    try:
        settings = load_settings(getattr(args, "config", None), os.environ, overrides)
    except ConfigError as e:
        print(f"linkguard serve: {e}", file=sys.stderr)
        return 2
    if settings.lists is None:
        from linkguard.cli import default_manifest  # $LINKGUARD_LISTS, else the shipped set
        settings = dataclasses.replace(settings, lists=str(default_manifest()))

    # Imported here, not at module level: the CLI imports this module for every subcommand.
    from linkguard.web.logs import configure_logging
    configure_logging(settings.log_level)
    try:
        sock = bind(settings.host, settings.port)
    except OSError as e:
        log.error("cannot listen", extra={"fields": {"host": settings.host,
                                                     "port": settings.port, "error": str(e)}})
        return 1
    host, port = sock.getsockname()[:2]
    _always_info("listening", {"event": "listening", "host": host, "port": port,
                               "url": f"http://{_url_host(host)}:{port}",
                               "settings": settings.public()})
    if _is_shipped(Path(settings.lists or "")):
        # A fresh machine's default; in production a sign that --lists or LINKGUARD_LISTS is
        # missing (an empty LINKGUARD_LISTS= unsets it, as it does every optional setting).
        log.warning("serving the demo lists shipped with linkguard: set --lists or "
                    "LINKGUARD_LISTS for real ones", extra={"fields": {"lists": settings.lists}})
    admin_off = settings.admin_token is None and settings.admin_token_file is None
    if admin_off:
        log.info("no admin token configured: the admin API is off")
    admin_sock = None
    if settings.admin_port is not None and not admin_off:
        # The admin API on its own listener; the public one then has no /admin at all.
        admin_host = settings.admin_listen_host()
        try:
            admin_sock = bind(admin_host, settings.admin_port)
        except OSError as e:
            sock.close()
            log.error("cannot listen", extra={"fields": {"host": admin_host, "admin": True,
                                                         "port": settings.admin_port,
                                                         "error": str(e)}})
            return 1
        host, port = admin_sock.getsockname()[:2]
        _always_info("admin API listening", {
            "event": "admin_listening", "host": host, "port": port,
            "url": f"http://{_url_host(host)}:{port}/admin/"})
    elif settings.admin_port is not None:
        log.info("admin_port is set but no admin token is: the admin API is off")

    metrics_dir = _metrics_dir()
    try:
        return _serve(settings, sock, admin_sock, metrics_dir)
    finally:
        sock.close()
        if admin_sock is not None:
            admin_sock.close()
        if metrics_dir.owned:
            shutil.rmtree(metrics_dir.path, ignore_errors=True)


def _serve(settings: Settings, sock: socket.socket, admin_sock: socket.socket | None,
           metrics_dir: _MetricsDir) -> int:
    from linkguard.web.metrics import Metrics, enable_multiprocess
    enable_multiprocess(metrics_dir.path)
    from linkguard.web.supervisor import Master
    return Master(settings, sock, Metrics(), admin_sock).run()


def bind(host: str, port: int) -> socket.socket:
    """One listening socket, bound before any fork; every worker accepts on it."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # SO_REUSEADDR: a restart can bind while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


@dataclasses.dataclass
class _MetricsDir:
    path: Path
    owned: bool


def _metrics_dir() -> _MetricsDir:
    """prometheus-client's multiprocess directory: the operator's, else a private temp dir. A
    private one holds `.lock`, flock()ed for as long as its master or any of its workers lives
    (they share the open file). The private dirs whose lock nobody holds (a master killed with
    SIGKILL could not remove its own) are removed first, so restarts after crashes do not pile
    them up. A lock, not a pid: a live master in another PID namespace sharing /tmp is not
    mistaken for a dead one."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        return _MetricsDir(Path(given), False)
    for old in Path(tempfile.gettempdir()).glob("linkguard-metrics-*"):
        try:
            if old.is_symlink() or old.stat().st_uid != os.getuid():
                continue
            fd = os.open(old / ".lock", os.O_RDONLY)  # none: not one of these; left alone
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass  # its master or a worker of it holds the lock: in use
        finally:
            os.close(fd)
    # Locked before it gets the name the scan above looks for: no instant without its lock.
    tmp = Path(tempfile.mkdtemp(prefix=".linkguard-metrics-new-"))
    fd = os.open(tmp / ".lock", os.O_CREAT | os.O_WRONLY, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held until every process of this service has exited
    path = tmp.with_name("linkguard-metrics-" + tmp.name.rsplit("-", 1)[-1])
    tmp.rename(path)
    return _MetricsDir(path, True)


def _is_shipped(manifest: Path) -> bool:
    """The demo lists shipped in the package, or a copy of them (the source tree's `lists/`
    beside an installed package): the same manifest and list files, byte for byte."""
    from linkguard.cli import SHIPPED_MANIFEST
    try:
        return all((manifest.parent / f.name).read_bytes() == f.read_bytes()
                   for f in SHIPPED_MANIFEST.parent.iterdir() if f.is_file())
    except OSError:
        return False


def _always_info(msg: str, fields: dict[str, object]) -> None:
    """An info line written whatever log_level is: with port 0 the listening lines are the only
    place the port is said (at a higher level they would set off alerts on every start)."""
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, msg, (), None,
                            extra={"fields": fields})
    for handler in logging.getLogger().handlers:
        handler.handle(record)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
