"""Prometheus metrics (prometheus-client).

One `Metrics` object per process, registered in its own registry so tests can build many apps.
With several worker processes prometheus-client's multiprocess mode is on (the master sets
PROMETHEUS_MULTIPROC_DIR before forking, see `enable_multiprocess`): every process writes its
samples to mmap files in that directory, and whichever worker answers /metrics merges them all.
Counters and histograms are summed over every process, including workers that have exited (so
totals do not drop when a reload replaces a generation). The list and reload gauges are written
by the process that builds engines (the master) and merged as `mostrecent`.

The per-request series (requests, latency, message and link verdicts) are counted in plain
dicts and published to prometheus-client at most `flush_interval` seconds later, and before
every scrape: in multiprocess mode each increment is a locked write to an mmap file, and four of
them per request cost more than the check itself (35 us of 183 us a request, benchmarks/run).
A worker publishes its last counts when it drains; one killed outright loses at most a second.
"""

from __future__ import annotations

import asyncio
import bisect
import operator
import os
import time
from collections import Counter as Counter_
from collections import defaultdict
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

from linkguard.verdict import tally

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
    def __init__(self, flush_interval: float = 1.0) -> None:
        self.flush_interval = flush_interval
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
        # Not yet published: each request as it came (counted when published, mostly in C);
        # messages per action and matched links per label set (counted by verdict.tally).
        self._requests: list[tuple[str, str, int, float]] = []
        self._messages: dict[str, int] = {}
        self._links: dict[tuple[str, str, str], int] = {}
        self._flush_at: asyncio.TimerHandle | None = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests.append((route, method, status, seconds))
        if self._flush_at is None:
            self._schedule_flush()

    def client_timeout(self, phase: str) -> None:
        self.client_timeouts.labels(phase).inc()

    def observe_messages(self, verdicts: Iterable[TextVerdict]) -> None:
        """Count messages and matched links (published by `flush`)."""
        tally(verdicts, self._messages, self._links)
        if self._flush_at is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: publish now
            self.flush()
            return
        self._flush_at = loop.call_later(self.flush_interval, self.flush)

    def flush(self) -> None:
        """Publish what was counted since the last flush."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        requests, self._requests = self._requests, []
        for (route, method, status), n in Counter_(map(_LABELS, requests)).items():
            self.requests.labels(route, method, str(status)).inc(n)
        latency: defaultdict[str, list[float]] = defaultdict(list)
        for route, _, _, seconds in requests:
            latency[route].append(seconds)
        for route, samples in latency.items():
            _observe_many(self.latency.labels(route), _bucket_counts(samples))
        for action, n in self._messages.items():
            self.messages.labels(action).inc(n)
        for labels, n in self._links.items():
            self.verdicts.labels(*labels).inc(n)
        self._messages.clear()
        self._links.clear()

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
        self.flush()
        if multiprocess_dir():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)




_LABELS = operator.itemgetter(0, 1, 2)  # a logged request's (route, method, status)


def _bucket_counts(samples: list[float]) -> list[float]:
    """How many samples each latency bucket holds (le: a sample equal to a bound is in its
    bucket), +Inf's last, and then their sum: as `_observe_many` takes them."""
    samples.sort()
    below = [bisect.bisect_right(samples, bound) for bound in _LATENCY_BUCKETS]
    return [float(n - m) for n, m in zip([*below, len(samples)], [0, *below])] + [sum(samples)]


def _observe_many(child: Histogram, counts: list[float]) -> None:
    """Add bucket counts and a sum to a histogram child at once: as many `observe` calls would,
    but one write per bucket that changed. prometheus-client has no public call for this; its
    children keep `_buckets` (one value per upper bound, +Inf last, not cumulative) and `_sum`,
    and tests/test_metrics.py checks the result against `observe`."""
    for bucket, n in zip(child._buckets, counts[:-1]):
        if n:
            bucket.inc(n)
    child._sum.inc(counts[-1])
