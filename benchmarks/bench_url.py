#!/usr/bin/env python3
"""URL check cost (issue target 1), four loops in one process:

  floor   ada_url.normalize_url(u) + one pyahocorasick iter() over the result, per URL: what
          "parse once, one automaton pass" costs in Python, whatever the automaton holds
  big     Engine.check_url(u) with the big list set loaded (2M entries in a full run), over the
          big set's traffic (--urls)
  small   Engine.check_url(u) with the small set loaded (1k entries), over the small set's
          traffic (--small-urls): the same recipe (as many URLs on listed domains, under listed
          URLs, near misses on listed URL hosts, clean hosts) against the small set, so the two
          do the same work and differ only in list size
  small_same_urls  the small set over the big set's traffic (not a target: there the big set's
          hits and near misses are clean URLs to the small set, which skip the hit's work)

The loops run interleaved, round after round, so a noisy neighbour hurts all alike; the best
round of each is reported (the median too). Targets: big/floor >= 0.5, big/small >= 0.9.

    bench_url.py --big DIR/lists.toml --small DIR/lists.toml --urls DIR/check-urls.txt
                 --small-urls SMALLDIR/check-urls.txt
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections import Counter

import ada_url
import ahocorasick
import common

from linkguard import Engine
from linkguard.web.supervisor import huge_pages


def floor_automaton(manifest: str) -> ahocorasick.Automaton:
    """An automaton of the small set's keys (its size does not change a per-URL iter's cost
    much, and a 2M-key one would take 1.7 GB and half a minute to build)."""
    engine = Engine.from_manifest(manifest)
    a = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for i, p in enumerate(engine.parsed):
        for key in p.keys:
            a.add_word(key, 1 << i)
    a.make_automaton()
    return a


def floor_loop(urls: list[str], automaton: ahocorasick.Automaton) -> int:
    normalize, it = ada_url.normalize_url, automaton.iter
    hits = 0
    for u in urls:
        for _end, _v in it(normalize(u)):
            hits += 1
    return hits


def engine_loop(urls: list[str], engine: Engine) -> int:
    check = engine.check_url
    blocked = 0
    for u in urls:
        if check(u).action.severity:
            blocked += 1
    return blocked


def timed(fn, *args) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    t0, c0 = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--big", required=True)
    p.add_argument("--small", required=True)
    p.add_argument("--urls", required=True, help="the big set's traffic")
    p.add_argument("--small-urls", required=True, help="the small set's traffic")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--limit", type=int, default=0, help="check only the first N URLs")
    a = p.parse_args(argv)

    urls, small_urls = common.lines(a.urls), common.lines(a.small_urls)
    if a.limit:
        urls, small_urls = urls[:a.limit], small_urls[:a.limit]
    t0 = time.perf_counter()
    big = Engine.from_manifest(a.big)
    load_big = time.perf_counter() - t0
    small = Engine.from_manifest(a.small)
    automaton = floor_automaton(a.small)
    gc.collect()
    gc.freeze()  # as the service's master does after loading: the collector skips the index
    huge_pages()  # and so does this: the index on 2 MiB pages

    verdicts = Counter(big.check_url(u).action.value for u in urls)
    verdicts_small = Counter(small.check_url(u).action.value for u in small_urls)
    loops = {"floor": (floor_loop, urls, automaton), "big": (engine_loop, urls, big),
             "small": (engine_loop, small_urls, small),
             "small_same_urls": (engine_loop, urls, small)}
    wall: dict[str, list[float]] = {k: [] for k in loops}
    cpu: dict[str, list[float]] = {k: [] for k in loops}
    for fn, us, arg in loops.values():
        fn(us[:2000], arg)  # warm up
    for _ in range(a.rounds):
        for name, (fn, us, arg) in loops.items():
            w, c = timed(fn, us, arg)
            wall[name].append(len(us) / w)
            cpu[name].append(len(us) / c)

    def fig(name: str) -> dict[str, float]:
        runs = sorted(wall[name])
        return {"best": round(runs[-1]), "median": round(statistics.median(runs)),
                "best_per_cpu_second": round(max(cpu[name]))}

    floor, bigf, smallf, samef = fig("floor"), fig("big"), fig("small"), fig("small_same_urls")
    common.emit({
        "bench": "url_check",
        "urls": len(urls), "rounds": a.rounds, "verdicts_big": dict(verdicts),
        "verdicts_small": dict(verdicts_small),
        "big_load_seconds": round(load_big, 2),
        "floor_urls_per_s": floor, "check_url_big_urls_per_s": bigf,
        "check_url_small_urls_per_s": smallf,
        "check_url_small_same_urls_per_s": samef,
        "ratio_big_to_floor": round(bigf["best"] / floor["best"], 3),
        "ratio_big_to_small": round(bigf["best"] / smallf["best"], 3),
        "ratio_big_to_floor_median": round(bigf["median"] / floor["median"], 3),
        "ratio_big_to_small_median": round(bigf["median"] / smallf["median"], 3),
        "ratio_big_to_small_same_urls": round(bigf["best"] / samef["best"], 3),
        "load_average_at_end": common.load_average(),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
