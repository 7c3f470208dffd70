#!/usr/bin/env python3
"""Message check cost (issue target 2): `Engine.check_text` over a chat corpus, big set loaded.

The corpus (gen_lists.py --messages): 70% of messages without a link, 25% with one, 5% with
several, some defanged, 20-200 characters. Best and median of several rounds, messages/s on one
core (the runner pins this process). Target: >= 40k messages/s.

    bench_text.py --lists DIR/lists.toml --messages DIR/messages.txt
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections import Counter

import common

from linkguard import Engine
from linkguard.web.supervisor import huge_pages


def loop(engine: Engine, msgs: list[str]) -> int:
    check = engine.check_text
    links = 0
    for m in msgs:
        links += len(check(m).links)
    return links


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lists", required=True)
    p.add_argument("--messages", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--limit", type=int, default=0)
    a = p.parse_args(argv)

    msgs = common.messages(a.messages)
    if a.limit:
        msgs = msgs[:a.limit]
    engine = Engine.from_manifest(a.lists)
    gc.collect()
    gc.freeze()  # as the service's master does after loading: the collector skips the index
    huge_pages()  # and so does this: the index on 2 MiB pages

    per_msg: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    for m in msgs:
        v = engine.check_text(m)
        n = sum(1 for link in v.links if link.start is not None)
        per_msg["0" if n == 0 else "1" if n == 1 else "2+"] += 1
        verdicts[v.action.value] += 1

    wall, cpu = [], []
    for _ in range(a.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        loop(engine, msgs)
        wall.append(len(msgs) / (time.perf_counter() - t0))
        cpu.append(len(msgs) / (time.process_time() - c0))
    wall.sort()
    common.emit({
        "bench": "message_check",
        "messages": len(msgs), "rounds": a.rounds,
        "links_found_per_message": {k: round(v / len(msgs), 4) for k, v in sorted(per_msg.items())},
        "verdicts": dict(verdicts),
        "mean_chars": round(sum(map(len, msgs)) / len(msgs), 1),
        "check_text_msgs_per_s": {"best": round(wall[-1]), "median": round(statistics.median(wall)),
                                  "best_per_cpu_second": round(max(cpu))},
        "load_average_at_end": common.load_average(),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
