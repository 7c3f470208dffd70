"""Browser parity beyond WHATWG: the hosts Chromium opens where the WHATWG parser refuses them.

linkguard parses with ada (WHATWG) and, where ada refuses a URL, reads its host as Chromium does
(`urls._chrome_reading`). The table (tests/data/chromium_hosts.tsv) runs everywhere. Where
Debian's Chromium is installed (`.ci/run` installs it), the table is checked against it, and a
seeded sweep of crafted hosts compares every host Chromium opens with the one linkguard matches.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ada_url
import pytest

from linkguard import urls
from tests.corpora import corpus_json, read_tsv

CHROMIUM = Path("/usr/bin/chromium")
TABLE = read_tsv("chromium_hosts.tsv")
# A host a resolver can look up: Chromium also opens hosts such as "x%20y.com", which no DNS
# name is, so no list can name them.
_RESOLVABLE = re.compile(r"[0-9a-z._-]*[0-9a-z][0-9a-z._-]*|\[[0-9a-f:.]+\]")


def _host(url: str) -> str | None:
    c = urls.canonicalize(url)
    return c.host if c else None


def _as_matched(chromium_host: str) -> str | None:
    """A host as linkguard matches it (root dot dropped, IPv4-mapped IPv6 as IPv4)."""
    return _host(f"http://{chromium_host}/")


@pytest.mark.parametrize(("url", "host"), TABLE, ids=lambda v: repr(v)[:50])
def test_chromium_hosts_table(url: str, host: str) -> None:
    assert _host(url) == (None if host == "-" else _as_matched(host))


def test_a_host_read_as_chromium_reads_it_reads_back_as_itself() -> None:
    for url, host in TABLE:
        c = urls.canonicalize(url)
        if c is not None:
            again = urls.canonicalize(c.text)
            assert again is not None and again.text == c.text, url


# ---- against Chromium itself ------------------------------------------------------------------

chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is absent (Debian's chromium package; .ci/run installs it)")


@pytest.fixture(scope="module")
def chromium_hosts() -> Iterator[Any]:
    """A function: URLs -> the hostname Chromium's URL parser gives each (None: refused).
    `new URL()` in a page runs the parser a link's navigation runs (url/ in Chromium)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()

        def hosts(inputs: list[str]) -> list[str | None]:
            return list(page.evaluate(
                "xs => xs.map(s => { try { return new URL(s).hostname } catch (e) { return null } })",
                inputs))
        yield hosts
        browser.close()


@chromium
def test_the_table_says_what_chromium_says(chromium_hosts: Any) -> None:
    found = chromium_hosts([url for url, _ in TABLE])
    said = {url: (h if h is not None and _RESOLVABLE.fullmatch(h) else "-")
            for (url, _), h in zip(TABLE, found, strict=True)}
    assert said == dict(TABLE)


def _crafted_urls(n: int, seed: int = 7) -> list[str]:
    """Hosts made of the pieces the two parsers read differently: percent signs (ASCII,
    fullwidth, escaped), hex digits in both widths, dots, brackets, delimiters in both widths,
    letters of other scripts, invisible characters."""
    pieces = ["％", "%", "%EF%BC%85", "%ef%bc%85", "6", "5", "2", "E", "e", "Ｅ", "６", "５",
              "２", "3", "1", "4", "A", "Ａ", "ｅ", "v", "i", "l", ".", "．", "。", "%2E", "％２Ｅ",
              "com", "ｃｏｍ", "ü", "ß", "\u00ad", "\u200b", "[", "]", "［", "］", ":", "：", "@",
              "＠", "%40", "％４０", "%3A", "％３Ａ", "%5B", "%5D", "％５Ｂ", "％５Ｄ", "0x", "０ｘ",
              "7f", "::", "db8", "2001", "%25", "％２５", "%00", "％００", "-", "－", "_", "xn--",
              "/", "／", "%2F", "％２Ｆ", "\\", "＼", "?", "？", "#", "＃", " ", "%20", "*"]
    rnd = random.Random(seed)
    out = set()
    while len(out) < n:
        host = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 8)))
        out.add(rnd.choice(["http://", "https://", "http:\\\\", "http:", "HTTP://u@"]) + host
                + rnd.choice(["", "/", "/a", ":80/", ":８０/", "?q", "#f", ".com/", "%2Ecom/"]))
    return sorted(out)


def _whatwg_absolute_urls() -> list[str]:
    return [c["input"] for c in corpus_json("whatwg-url/urltestdata.json")
            if isinstance(c, dict) and c["input"].lower().startswith(("http://", "https://"))]


@chromium
def test_every_host_chromium_opens_is_the_host_linkguard_matches(chromium_hosts: Any) -> None:
    """Both ways: where Chromium opens a host a resolver can look up, linkguard matches that
    host (else a listed host gets past); where linkguard reads a host ada refuses, Chromium
    opens that host (else linkguard reads a link no browser opens)."""
    inputs = _crafted_urls(20_000) + _whatwg_absolute_urls()
    opened = chromium_hosts(inputs)
    assert sum(h is not None and _RESOLVABLE.fullmatch(h) is not None for h in opened) > 2_000
    missed, invented = [], []
    for url, host in zip(inputs, opened, strict=True):
        mine = _host(url)
        if host is not None and _RESOLVABLE.fullmatch(host):
            if mine != _as_matched(host):
                missed.append((url, host, mine))
        elif mine is not None and _refused_by_ada(url) and (
                host is None or _as_matched(host) != mine):
            invented.append((url, mine))
    assert missed == [] and invented == []


def _refused_by_ada(url: str) -> bool:
    full = urls.with_scheme(url.strip(urls._C0_SPACE).translate(urls._TAB_NEWLINE))
    try:
        ada_url.normalize_url(full or "")
    except ValueError:
        return True
    return False
