"""Metrics counted in-process and published later (linkguard.web.metrics): what a scrape shows
equals what publishing every sample at once would show, and nothing counted is lost."""

from __future__ import annotations

import asyncio
import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from linkguard.web.metrics import _LATENCY_BUCKETS, Metrics


def _samples(text: bytes, prefix: str) -> list[str]:
    return sorted(line for line in text.decode().splitlines()
                  if line.startswith(prefix) and "_created" not in line)


def test_bulk_histogram_equals_one_observe_per_sample() -> None:
    # Bounds themselves included: a sample equal to a bound counts in that bucket (le).
    rng = random.Random(4)
    seconds = [*_LATENCY_BUCKETS, 0.0, 99.0] + [rng.expovariate(200) for _ in range(500)]
    metrics = Metrics()
    for s in seconds:
        metrics.observe_request("/v1/check", "POST", 200, s)
    reference = CollectorRegistry()
    hist = Histogram("linkguard_http_request_duration_seconds", "x", ["route"],
                     buckets=_LATENCY_BUCKETS, registry=reference)
    for s in seconds:
        hist.labels("/v1/check").observe(s)
    name = "linkguard_http_request_duration_seconds"
    got = _samples(metrics.render(), name)
    want = _samples(generate_latest(reference), name)
    assert [g.rsplit(" ", 1)[0] for g in got] == [w.rsplit(" ", 1)[0] for w in want]
    for g, w in zip(got, want):
        assert abs(float(g.rsplit(" ", 1)[1]) - float(w.rsplit(" ", 1)[1])) < 1e-9, (g, w)


def test_counts_are_published_by_the_timer_and_by_a_scrape() -> None:
    async def scenario() -> None:
        metrics = Metrics(flush_interval=0.05)
        metrics.observe_request("/v1/check", "POST", 200, 0.001)
        published = 'linkguard_http_requests_total{method="POST",route="/v1/check",status="200"}'

        def value() -> float:
            text = generate_latest(metrics.registry).decode()  # what is published, no flush
            return next((float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                         if line.startswith(published)), 0.0)

        assert value() == 0.0  # counted, not yet published
        await asyncio.sleep(0.2)
        assert value() == 1.0  # the timer published it
        metrics.observe_request("/v1/check", "POST", 200, 0.001)
        assert f"{published} 2.0" in metrics.render().decode()  # a scrape publishes first
        await asyncio.sleep(0.2)
        assert value() == 2.0  # and the timer does not count it again

    asyncio.run(scenario())


def test_without_an_event_loop_counts_are_published_at_once() -> None:
    metrics = Metrics()
    metrics.observe_request("/v1/check", "POST", 422, 0.002)
    text = generate_latest(metrics.registry).decode()
    assert 'linkguard_http_requests_total{method="POST",route="/v1/check",status="422"} 1.0' \
        in text
