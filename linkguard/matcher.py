"""The index: built once from parsed lists, immutable, answering "which lists match this URL?".

Domain, URL-prefix, exact-page and hashed entries are exact keys, so a URL is matched by a
bounded number of hash-table probes of its own keys (host suffixes at label boundaries, path
prefixes at segment boundaries, at most 30 Safe Browsing expressions), never by scanning
entries: the cost depends on the URL, not on the list size. One table per index maps a key to
a bitmask of the lists holding it, so a key shared by several lists is stored once; masks are
interned, and a str key costs ~100 bytes (a pyahocorasick trie costs ~450 bytes a key and its
build holds the GIL for seconds per million keys).

Keywords are substrings, the one case that needs a scan: an Aho-Corasick automaton (pyahocorasick)
finds every term in one pass over the decoded URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import ada_url
import ahocorasick

from linkguard import urls
from linkguard.lists import ParsedList
from linkguard.urls import CanonicalURL

INDEXES = ("domain", "prefix", "exact", "keyword", "sha256", "md5")


def keyword_text(c: CanonicalURL) -> str:
    """Host, path and query, percent-decoded and lowercased; IDN hosts also in Unicode. A query
    with '+' is there twice, the second time with '+' read as a space (form encoding). Readings
    are joined by a newline, which no term holds: a term never spans two of them."""
    text = c.host + urls.unquote_text(c.path if c.query is None else c.path + "?" + c.query)
    if c.raw_query is not None and "+" in c.raw_query:  # as sent: %2B is a plus, not a space
        text += "\n" + urls.unquote_text(urls.canonical_query(c.raw_query.replace("+", "%20")))
    if "xn--" in c.host:
        try:
            text = ada_url.idna_to_unicode(c.host) + "\n" + text
        except ValueError:
            pass
    return text.lower()


class Matcher:
    __slots__ = ("host", "host_keys", "keyword", "list_bits", "md5", "n_lists", "prefix_lists",
                 "sha256", "url", "url_queries")

    def __init__(self, lists: Sequence[ParsedList]) -> None:
        """Index `lists`; bit i of a mask stands for lists[i]."""
        tables: dict[str, dict[object, int]] = {name: {} for name in INDEXES}
        interned: dict[int, int] = {}
        self.prefix_lists = 0
        for i, parsed in enumerate(lists):
            bit = 1 << i
            index = parsed.spec.index
            if index == "prefix":
                self.prefix_lists |= bit
            # prefix and exact entries share one table: a URL's full-path key is looked up in
            # both senses at once, its shorter prefixes only for the prefix lists' bits.
            table = tables["exact" if index == "prefix" else index]
            get = table.get
            for key in parsed.keys:
                mask = get(key, 0) | bit
                table[key] = interned.setdefault(mask, mask)
        self.url: dict[str, int] = tables["exact"]  # type: ignore[assignment]
        self.url_queries = any("?" in k for k in self.url)
        self.n_lists = len(lists)
        self.list_bits = (1 << self.n_lists) - 1
        self.host = _host_table(tables["domain"], self.url, self.n_lists)  # type: ignore[arg-type]
        # Below the last label the walk probes a set, and reads the table only for a host the
        # set holds. Forked workers share the index, so a lookup must not write to it. A dict
        # whose keys are all str reads every key it meets for its hash (a cache miss a probe);
        # one that holds any other key keeps the hashes, but a hit increfs the key (a write:
        # the worker copies its page). A set keeps the hashes and compares str keys without an
        # incref. 2M set: a miss 234 -> 210 ns, a hit 465 -> 689 ns (two tables); PSS of two
        # workers after 400k checks 534 MB, where a table with a None key (as before) reached
        # 673 MB and grew on (499 MB at start).
        self.host_keys = frozenset(self.host)
        self.sha256: dict[bytes, int] = tables["sha256"]  # type: ignore[assignment]
        self.md5: dict[bytes, int] = tables["md5"]  # type: ignore[assignment]
        self.keyword: ahocorasick.Automaton | None = None
        if tables["keyword"]:
            automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for term, mask in tables["keyword"].items():
                automaton.add_word(term, mask)
            automaton.make_automaton()
            self.keyword = automaton

    def match(self, c: CanonicalURL) -> int:
        """The mask of every list that matches the canonical URL."""
        mask = 0
        if self.host:
            # Walk the host from its last label down: every parent of every key is in the table,
            # so the first miss ends the walk. A clean host costs a probe or two of the table,
            # however many labels it has and however big the lists are.
            get = self.host.get
            keys = self.host_keys
            host = c.host
            url_start = len(host) - len(c.url_host)
            lengths = 0
            i = -1 if c.is_ip else host.rfind(".")
            value = get(host[i + 1:])  # the last label: few, always in cache
            while value is not None:
                mask |= value
                if i + 1 == url_start:
                    lengths = value >> self.n_lists
                if i < 0:
                    break
                i = host.rfind(".", 0, i)
                key = host[i + 1:]
                value = get(key) if key in keys else None
            mask &= self.list_bits
            if lengths:
                mask |= self._url_mask(c, lengths)
        if self.keyword is not None:
            for _end, value in self.keyword.iter(keyword_text(c)):
                mask |= value
        if self.sha256 or self.md5:
            for expr in urls.expressions(c):
                mask |= self._hash_mask(expr.encode())
        if c.other_paths:  # rare: urls.canonical_paths
            for path in c.other_paths:
                mask |= self.match(c._replace(path=path, other_paths=()))
        return mask

    def _url_mask(self, c: CanonicalURL, lengths: int) -> int:
        """Exact: host + whole path. Prefix: host + each path prefix at a segment boundary
        (the whole path included). With a query, the same keys with "?query" appended.

        `lengths` has bit n set when some URL key of this host is n characters long (mod 64):
        a key of another length is in no list, so it is neither built nor looked up. Most
        probes of a URL on a listed host are misses, each a cache miss or two in a table of
        millions; this test costs a shift."""
        get = self.url.get
        host = c.url_host
        path = c.path.rstrip("/")
        query = urls.key_query(c.query) if self.url_queries else ""
        h, q = len(host), len(query)
        mask = get(host + path, 0) if lengths >> (h + len(path) & 63) & 1 else 0
        if q and lengths >> (h + len(path) + q & 63) & 1:
            mask |= get(host + path + query, 0)
        partial = 0
        if path:
            if lengths >> (h & 63) & 1:
                partial = get(host, 0)
            if q and lengths >> (h + q & 63) & 1:
                partial |= get(host + query, 0)
            i = path.find("/", 1)
            n = 1
            while i > 0 and n < urls.MAX_PATH_SEGMENTS:
                if lengths >> (h + i & 63) & 1:
                    partial |= get(host + path[:i], 0)
                if q and lengths >> (h + i + q & 63) & 1:
                    partial |= get(host + path[:i] + query, 0)
                i = path.find("/", i + 1)
                n += 1
        return mask | (partial & self.prefix_lists)

    def _hash_mask(self, expression: bytes) -> int:
        mask = 0
        if self.sha256:
            mask |= self.sha256.get(hashlib.sha256(expression).digest(), 0)
        if self.md5:
            mask |= self.md5.get(hashlib.md5(expression, usedforsecurity=False).digest(), 0)
        return mask

    def sizes(self) -> dict[str, int]:
        return {"host": len(self.host), "url": len(self.url), "sha256": len(self.sha256),
                "md5": len(self.md5),
                "keyword": len(self.keyword) if self.keyword is not None else 0}


def _host_table(domains: dict[str, int], url: dict[str, int], n_lists: int) -> dict[str, int]:
    """One table for hosts: domain entries' masks and every parent of every host (mask 0), so a
    walk from the last label down can stop at the first miss. IP literals have no parents. A
    host with URL entries also has, above the list bits, the lengths of its URL keys (bit
    n_lists + len % 64 for each): nonzero says it has some (Matcher._url_mask)."""
    host = dict(domains)
    for key in url:
        h = key.partition("/")[0].partition("?")[0]
        host[h] = host.get(h, 0) | 1 << (n_lists + (len(key) & 63))
    for key in list(host):
        if key.startswith("[") or key.rpartition(".")[2].isdigit():
            continue
        i = key.find(".")
        while i >= 0 and key[i + 1:] not in host:
            host[key[i + 1:]] = 0
            i = key.find(".", i + 1)
    return host


def lookup_keys(c: CanonicalURL) -> dict[str, list[str]]:
    """Every key a URL is looked up by, per index (for `explain`)."""
    host, query = c.url_host, urls.key_query(c.query)
    prefix = [host + p for p in urls.path_prefixes(c.path)]
    exact = [host + c.path.rstrip("/")]
    if query:
        prefix += [k + query for k in prefix]
        exact.append(exact[0] + query)
    keys = {"domain": urls.domain_keys(c), "prefix": prefix, "exact": exact,
            "keyword": [keyword_text(c)], "expressions": urls.expressions(c)}
    for path in c.other_paths:  # the path's other readings are matched too (Matcher.match)
        other = lookup_keys(c._replace(path=path, other_paths=()))
        for index, more in other.items():
            keys[index] += [k for k in more if k not in keys[index]]
    return keys


def entry_matches(index: str, key: str | bytes, c: CanonicalURL,
                  keys: dict[str, list[str]], digests: Iterable[tuple[str, bytes]]) -> bool:
    """Does one list entry's key match the URL? (The slow, obvious form of Matcher.match.)"""
    if index == "keyword":
        return isinstance(key, str) and any(key in text for text in keys["keyword"])
    if index in ("sha256", "md5"):
        return any(algorithm == index and digest == key for algorithm, digest in digests)
    return key in keys[index]
