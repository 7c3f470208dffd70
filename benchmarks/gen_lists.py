#!/usr/bin/env python3
"""The synthetic list set of the performance issue, deterministic and seeded, plus the corpora
the benchmarks check against it.

    gen_lists.py --size 1000000 --out benchmarks/.data   ->  benchmarks/.data/lg-1000000-s1/
        lists.toml      one `domains` list (block) and one `urls` prefix list (block)
        domains.txt     SIZE domains: a 5-14 char label over a dozen TLDs (co.uk among them),
                        a third with one extra subdomain label
        urls.txt        SIZE URLs over SIZE/5 hosts: 1-4 path segments, each a word from a 20k
                        vocabulary or a 6-12 char id (half each), a fifth ending in a file name
        check-urls.txt  (--check-urls N) URLs to check: ~10% hit a listed domain or URL, the
                        rest are clean URLs on other hosts with paths/queries like the lists'
        messages.txt    (--messages N) chat messages, JSON strings one a line: 70% no link, 25%
                        one, 5% several, some defanged, 20-200 characters

Everything comes from one `random.Random(seed)` per file, so the same arguments give the same
bytes on any machine. A directory is reused when its `.complete` stamp matches the arguments.
Prints one JSON object: the manifest path and the counts.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from pathlib import Path

RECIPE = 3  # bump when the output of the same arguments changes
TLDS = ("com", "net", "org", "info", "io", "co.uk", "de", "ru", "xyz", "top", "biz", "fr")
EXTENSIONS = ("html", "htm", "php", "jpg", "jpeg", "png", "gif", "mp4", "webm", "zip", "pdf")
LABEL_CHARS = string.ascii_lowercase + string.digits
ID_CHARS = string.ascii_letters + string.digits
SUBDOMAINS = ("www", "m", "cdn", "img", "mail", "login", "secure", "app", "static", "files")
ONSETS = ("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
          "z", "br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y")
CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "x", "nd", "st")


def vocabulary(seed: int, size: int = 20_000) -> list[str]:
    """`size` distinct pronounceable-ish words of 2-4 syllables, the same for a seed."""
    rng = random.Random(f"vocab-{seed}")
    seen: dict[str, None] = {}
    while len(seen) < size:
        word = "".join(rng.choice(ONSETS) + rng.choice(VOWELS)
                       for _ in range(rng.randint(1, 3))) + rng.choice(CODAS)
        if 3 <= len(word) <= 14:
            seen.setdefault(word)
    return list(seen)


def label(rng: random.Random, lo: int = 5, hi: int = 14) -> str:
    """A host label: a letter, then letters and digits."""
    n = rng.randint(lo, hi)
    return rng.choice(string.ascii_lowercase) + "".join(rng.choices(LABEL_CHARS, k=n - 1))


def ident(rng: random.Random) -> str:
    return "".join(rng.choices(ID_CHARS, k=rng.randint(6, 12)))


def segment(rng: random.Random, words: list[str]) -> str:
    return rng.choice(words) if rng.random() < 0.5 else ident(rng)


def path(rng: random.Random, words: list[str], lo: int = 1, hi: int = 4) -> str:
    """1-4 segments, a fifth of paths ending in a file name with an extension."""
    n = rng.randint(lo, hi)
    segs = [segment(rng, words) for _ in range(n)]
    if segs and rng.random() < 0.2:
        segs[-1] += "." + rng.choice(EXTENSIONS)
    return "/" + "/".join(segs) if segs else ""


def gen_domains(rng: random.Random, size: int) -> list[str]:
    out: dict[str, None] = {}
    while len(out) < size:
        host = label(rng) + "." + rng.choice(TLDS)
        if rng.random() < 1 / 3:
            host = (label(rng, 2, 8) if rng.random() < 0.7 else rng.choice(SUBDOMAINS)) + "." + host
        out.setdefault(host)
    return list(out)


def gen_urls(rng: random.Random, size: int, words: list[str]) -> tuple[list[str], list[str]]:
    """(entries as written in the file, the hosts they are on)."""
    hosts = list(dict.fromkeys(label(rng) + "." + rng.choice(TLDS)
                               for _ in range(max(1, size // 5))))
    out: dict[str, None] = {}
    while len(out) < size:
        host = rng.choice(hosts)
        entry = host + path(rng, words)
        r = rng.random()  # lists write the same URL several ways; all canonicalize alike
        if r < 0.05:
            entry = "http://" + entry
        elif r < 0.08:
            entry = "https://www." + entry
        elif r < 0.15:
            entry += "/"
        out.setdefault(entry)
    return list(out), hosts


def _query(rng: random.Random, words: list[str]) -> str:
    r = rng.random()
    if r < 0.4:
        return f"?id={rng.randint(1, 10**6)}"
    if r < 0.7:
        return f"?utm_source={rng.choice(words)}&utm_medium=social&utm_campaign={ident(rng)}"
    if r < 0.9:
        return f"?q={rng.choice(words)}+{rng.choice(words)}&page={rng.randint(1, 20)}"
    return f"?ref={ident(rng)}&lang={rng.choice(('en', 'de', 'fr', 'es'))}"


def check_urls(rng: random.Random, n: int, domains: list[str], url_entries: list[str],
               url_hosts: list[str], words: list[str]) -> list[str]:
    """URLs as clients send them: ~5% on a listed domain, ~5% under a listed URL, ~5% near
    misses on listed URL hosts, the rest clean hosts; some www., queries, fragments, a few
    percent-escapes and redirectors."""
    out = []
    for _ in range(n):
        scheme = "https://" if rng.random() < 0.8 else "http://"
        r = rng.random()
        if r < 0.05:  # a listed domain, maybe a subdomain of it, any path
            host = rng.choice(domains)
            if rng.random() < 0.3:
                host = rng.choice(SUBDOMAINS) + "." + host
            url = scheme + host + (path(rng, words, 0, 3) or "/")
        elif r < 0.10:  # under a listed URL: itself, deeper, or with a query
            entry = url_entries[rng.randrange(len(url_entries))]
            entry = entry.split("://", 1)[-1].removeprefix("www.").rstrip("/")
            if rng.random() < 0.3:
                entry = "www." + entry
            if rng.random() < 0.3:
                entry += path(rng, words, 1, 2)
            url = scheme + entry
        elif r < 0.15:  # a listed URL host, a path that is not listed
            url = scheme + rng.choice(url_hosts) + path(rng, words)
        else:
            host = label(rng) + "." + rng.choice(TLDS)
            if rng.random() < 0.3:
                host = rng.choice(SUBDOMAINS) + "." + host
            url = scheme + host + (path(rng, words, 0, 4) or "/")
        r = rng.random()
        if r < 0.25:
            url += _query(rng, words)
        elif r < 0.27:
            url += "#" + rng.choice(words)
        elif r < 0.29:
            url += "/" + rng.choice(words) + "%20" + rng.choice(words)
        elif r < 0.30:
            url = (f"https://l.{label(rng)}.com/redirect?u="
                   + url.replace(":", "%3A").replace("/", "%2F"))
        out.append(url)
    return out


FILLER = ("ok", "lol", "yes", "no", "thanks!", "see you at 10:30", "haha", "sure,", "hmm...",
          "brb", "what?", "idk", "great.", "e.g.", "v2.1", "3.5 stars", "cool :)", "👍", "omg",
          "gm", "np", "tomorrow?", "done.", "wait", "nice one", "¿qué?", "ça va", "20:00?")


def _defang(url: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return url.replace("http", "hxxp", 1)
    if r < 0.7:
        return url.replace(".", "[.]")
    if r < 0.85:
        return url.replace(".", "(dot)", 1)
    return url.replace("http", "hxxp", 1).replace(".", "[.]", 1)


def _link(rng: random.Random, links: list[str]) -> str:
    url = rng.choice(links)
    r = rng.random()
    if r < 0.25:  # schemeless, as people type them
        url = url.split("://", 1)[1]
    elif r < 0.35:
        url = _defang(url, rng)
    elif r < 0.40:
        url = f"[{rng.choice(('here', 'link', 'this'))}]({url})"
    return url


def messages(rng: random.Random, n: int, links: list[str], words: list[str]) -> list[str]:
    """Chat messages of 20-200 characters: 70% no link, 25% one, 5% 2-4 links."""
    out = []
    for _ in range(n):
        r = rng.random()
        k = 0 if r < 0.70 else 1 if r < 0.95 else rng.randint(2, 4)
        target = rng.randint(20, 200)
        parts: list[str] = []
        slots = set(rng.sample(range(1, 12), k)) if k else set()
        i = 0
        while sum(len(p) + 1 for p in parts) < target or any(s > i for s in slots):
            i += 1
            if i in slots:
                parts.append(_link(rng, links))
            elif rng.random() < 0.15:
                parts.append(rng.choice(FILLER))
            else:
                w = rng.choice(words)
                parts.append(w.capitalize() + "." if rng.random() < 0.08 else w)
        text = " ".join(parts)
        if k == 0 and len(text) > 200:
            text = text[:200].rstrip()
        out.append(text)
    return out


MANIFEST = """\
# Synthetic list set of benchmarks/gen_lists.py (seed {seed}, {size} entries per list).
[[list]]
name = "synthetic-domains"
path = "domains.txt"
format = "domains"
action = "block"
category = "malware"

[[list]]
name = "synthetic-urls"
path = "urls.txt"
format = "urls"
match = "prefix"
action = "block"
category = "csam"
overridable = false
"""


def generate(out: Path, size: int, seed: int, n_check: int, n_messages: int) -> dict[str, object]:
    d = out / f"lg-{size}-s{seed}"
    params = {"recipe": RECIPE, "size": size, "seed": seed, "check_urls": n_check,
              "messages": n_messages}
    stamp = d / ".complete"
    info = {"dir": str(d), "manifest": str(d / "lists.toml"), **params}
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        return {**info, "cached": True}
    t0 = time.perf_counter()
    d.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    words = vocabulary(seed)
    domains = gen_domains(random.Random(f"domains-{seed}-{size}"), size)
    url_entries, url_hosts = gen_urls(random.Random(f"urls-{seed}-{size}"), size, words)
    (d / "domains.txt").write_text("\n".join(domains) + "\n")
    (d / "urls.txt").write_text("\n".join(url_entries) + "\n")
    (d / "lists.toml").write_text(MANIFEST.format(seed=seed, size=size))
    checks: list[str] = []
    if n_check:
        checks = check_urls(random.Random(f"check-{seed}"), n_check, domains, url_entries,
                            url_hosts, words)
        (d / "check-urls.txt").write_text("\n".join(checks) + "\n")
    if n_messages:
        pool = checks or check_urls(random.Random(f"check-{seed}"), 10_000, domains,
                                    url_entries, url_hosts, words)
        msgs = messages(random.Random(f"messages-{seed}"), n_messages, pool[:50_000], words)
        (d / "messages.txt").write_text("\n".join(json.dumps(m) for m in msgs) + "\n")
    stamp.write_text(json.dumps(params))
    return {**info, "cached": False, "seconds": round(time.perf_counter() - t0, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / ".data")
    p.add_argument("--size", type=int, default=1_000_000, help="entries per list")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check-urls", type=int, default=0, help="URLs to check (0: none)")
    p.add_argument("--messages", type=int, default=0, help="chat messages (0: none)")
    a = p.parse_args(argv)
    print(json.dumps(generate(a.out, a.size, a.seed, a.check_urls, a.messages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
