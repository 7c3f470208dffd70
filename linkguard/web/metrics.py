"""Prometheus metrics (prometheus-client).

One `Metrics` object per process, registered in its own registry so tests can build many apps.
With several worker processes prometheus-client's multiprocess mode is on (the master sets
PROMETHEUS_MULTIPROC_DIR before forking, see `enable_multiprocess`): every process writes its
samples to mmap files in that directory, and whichever worker answers /metrics merges them all.
Counters and histograms are summed over every process, including workers that have exited (so
totals do not drop when a reload replaces a generation). The list and reload gauges are written
by the process that builds engines (the master) and merged as `mostrecent`.
"""

from __future__ import annotations

import os
import time
from collections import Counter as Counter_
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

if TYPE_CHECKING:
    from linkguard.engine import Engine
    from linkguard.verdict import TextVerdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def enable_multiprocess(directory: Path) -> None:
    """Switch this process (and its future forks) to multiprocess mode, writing into `directory`.

    prometheus-client picks its value class from the environment when it is first imported; we
    set the variable and re-pick, so the switch holds whatever was imported before."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # samples of an earlier run would be summed in
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def mark_process_dead(pid: int) -> None:
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("linkguard_http_requests_total", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("linkguard_http_request_duration_seconds",
                                 "HTTP request latency by route", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.verdicts = Counter("linkguard_link_verdicts_total",
                                "Links that matched a list, by list, category and verdict",
                                ["list", "category", "verdict"], registry=r)
        self.messages = Counter("linkguard_message_verdicts_total",
                                "Checked messages by verdict", ["verdict"], registry=r)
        self.entries = Gauge("linkguard_list_entries", "Entries loaded per list", ["list"],
                             multiprocess_mode="mostrecent", registry=r)
        self.reload_time = Gauge("linkguard_last_reload_timestamp_seconds",
                                 "Unix time of the last load or reload attempt",
                                 multiprocess_mode="mostrecent", registry=r)
        self.reload_ok = Gauge("linkguard_last_reload_success",
                               "1 if the last load or reload succeeded, else 0",
                               multiprocess_mode="mostrecent", registry=r)
        self.reloads = Counter("linkguard_reloads_total", "Load and reload attempts by result",
                               ["result"], registry=r)
        self.client_timeouts = Counter("linkguard_client_timeouts_total",
                                       "Slow clients dropped, by phase: header, body or send",
                                       ["phase"], registry=r)
        self.auth_failures = Counter("linkguard_admin_auth_failures_total",
                                     "Admin requests refused: 401 wrong token, 429 backing off",
                                     ["status"], registry=r)
        self._known_lists: set[str] = set()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def client_timeout(self, phase: str) -> None:
        self.client_timeouts.labels(phase).inc()

    def observe_messages(self, verdicts: Iterable[TextVerdict]) -> None:
        """Count messages and matched links, one increment per label set: in multiprocess mode
        each increment is a file write, and a batch holds up to a thousand messages."""
        messages: Counter_[str] = Counter_()
        links: Counter_[tuple[str, str, str]] = Counter_()
        for verdict in verdicts:
            messages[verdict.action.value] += 1
            for link in verdict.links:
                v = link.verdict
                for name in v.lists:
                    links[(name, v.category or "", v.action.value)] += 1
        for action, n in messages.items():
            self.messages.labels(action).inc(n)
        for labels, n in links.items():
            self.verdicts.labels(*labels).inc(n)

    def observe_load(self, engine: Engine | None, ok: bool, at: float | None = None) -> None:
        """A load or reload attempt finished; `engine` is what serves now."""
        self.reload_time.set(at if at is not None else time.time())
        self.reload_ok.set(1 if ok else 0)
        self.reloads.labels("success" if ok else "failure").inc()
        if engine is None:
            return
        names = set()
        for info in engine.lists:
            self.entries.labels(info.name).set(info.entries)
            names.add(info.name)
        # A list gone from the manifest reads 0 (a mostrecent gauge cannot be deleted
        # across processes).
        for gone in self._known_lists - names:
            self.entries.labels(gone).set(0)
        self._known_lists |= names

    def render(self) -> bytes:
        if multiprocess_dir():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


