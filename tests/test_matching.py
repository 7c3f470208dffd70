"""Matching rules of every list format, each positive row beside its near-misses."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkguard import Engine, psl, urls
from linkguard.matcher import entry_matches, lookup_keys
from tests.corpora import read_tsv


def one_list_engine(tmp_path: Path, kind: str, entry: str) -> Engine:
    fmt, _, option = kind.partition(":")
    m = re.fullmatch(r"(sha256|md5)\((.*)\)", entry)
    if m:
        entry = hashlib.new(m[1], m[2].encode()).hexdigest()
    extra = {"urls": f'match = "{option or "prefix"}"', "hashes": f'hash = "{option or "sha256"}"'}
    (tmp_path / "l.txt").write_text(entry + "\n", encoding="utf-8")
    (tmp_path / "lists.toml").write_text(
        f'[[list]]\nname = "l"\npath = "l.txt"\nformat = "{fmt}"\n{extra.get(fmt, "")}\n'
        'action = "block"\ncategory = "test"\n', encoding="utf-8")
    return Engine.from_manifest(tmp_path / "lists.toml")


@pytest.mark.parametrize(("kind", "entry", "url", "expected"), read_tsv("matching.tsv"),
                         ids=lambda v: v[:40])
def test_matching_table(tmp_path: Path, kind: str, entry: str, url: str, expected: str) -> None:
    engine = one_list_engine(tmp_path, kind, entry)
    verdict = engine.check_url(url)
    assert verdict.action.value == {"match": "block", "miss": "allow"}[expected], verdict
    if expected == "match":
        assert verdict.lists == ("l",) and verdict.category == "test"
        # explain finds the entry that made the verdict, in the URL or one embedded in it
        assert "l" in _explained_lists(engine.explain(url)), engine.explain(url)


def _explained_lists(node: dict[str, Any]) -> list[str]:
    return [m["list"] for m in node["matches"]] + [
        name for inner in node["embedded"] for name in _explained_lists(inner)]


@pytest.mark.parametrize(("kind", "entry", "text", "expected", "sanitized"),
                         read_tsv("text_matching.tsv"), ids=lambda v: v[:40])
def test_text_matching_table(tmp_path: Path, kind: str, entry: str, text: str, expected: str,
                             sanitized: str) -> None:
    engine = one_list_engine(tmp_path, kind, entry)
    verdict = engine.check_text(text)
    assert verdict.action.value == {"match": "block", "miss": "allow"}[expected], verdict
    assert engine.sanitize(text).text == (text if sanitized == "-" else sanitized)


LABEL = st.sampled_from(["a", "b", "evil", "www", "x1", "com", "net", "co", "uk"])
HOST = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
# Long segments too: the index skips URL keys by length mod 64 (Matcher._url_mask), so keys of
# lengths 64 apart must still be found.
PATH = st.lists(st.sampled_from(["u", "abc", "abcd", "x", "77", "", "w" * 25, "y" * 60]),
                max_size=3).map(lambda segs: "/" + "/".join(segs))
QUERY = st.sampled_from(["", "?id=1", "?id=2"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(HOST, min_size=1, max_size=5), st.lists(st.tuples(HOST, PATH, QUERY), max_size=5),
       st.lists(st.tuples(HOST, PATH, QUERY), max_size=5), st.data())
def test_index_agrees_with_entry_by_entry_matching(tmp_path_factory: pytest.TempPathFactory,
                                                   domains: list[str], prefixes: list[tuple[str, str, str]],
                                                   exacts: list[tuple[str, str, str]],
                                                   data: st.DataObject) -> None:
    """The index's answer (hash probes, the host walk that stops at the first miss, the length
    filter) is the answer of testing every entry of every list on its own. The URL is random,
    or an entry of a list with perhaps more after it (at, under or beside the entry; path
    parameters and dot segments made by decoding, which give a path other readings)."""
    tmp = tmp_path_factory.mktemp("lists")
    lists = {"d": ("domains", "", domains),
             "p": ("urls", 'match = "prefix"', ["".join(e) for e in prefixes]),
             "e": ("urls", 'match = "exact"', ["".join(e) for e in exacts])}
    body = ""
    for name, (fmt, extra, entries) in lists.items():
        (tmp / f"{name}.txt").write_text("".join(f"{e}\n" for e in entries
                                                 if not psl.is_public_suffix(e, private=False)))
        body += (f'[[list]]\nname = "{name}"\npath = "{name}.txt"\nformat = "{fmt}"\n{extra}\n'
                 'action = "block"\nstrict = false\n')
    (tmp / "lists.toml").write_text(body)
    engine = Engine.from_manifest(tmp / "lists.toml")
    listed = [e for _, _, entries in lists.values() for e in entries]
    base = data.draw(st.tuples(HOST, PATH, QUERY).map("".join) | st.sampled_from(listed))
    u = "http://" + base + data.draw(st.sampled_from(["", "/", "/u", "/abc/x", "/" + "y" * 60,
                                                      "?id=1", "x", ";x", ";j=1/abc", "/..%2Fabc",
                                                      "/%252E%252E/u", "/..;/abc",
                                                      "/x/..%2F..%2Fu?id=1"]))
    c = urls.canonicalize(u)
    assert c is not None
    keys = lookup_keys(c)
    expected = sorted(p.spec.name for p in engine.parsed
                      if any(entry_matches(p.spec.index, k, c, keys, ()) for k in p.keys))
    assert sorted(engine.check_url(u).lists) == expected


def test_url_keys_of_every_length_are_found(tmp_path: Path) -> None:
    """The index skips URL keys by their length mod 64 (Matcher._url_mask). One entry per host,
    so that a host's lengths are those of its one key, of every length from 1 to ~200: paths,
    queries and whole hosts. Each URL at, under and beside an entry gets the answer of testing
    every entry on its own."""
    ks = range(1, 140)
    hosts = [f"{'x' * (k % 60 + 1)}.{'y' * (k // 60 + 1)}.h{k}.com" for k in ks]
    lists = {"p": ("prefix", [f"p{k}.com/{'a' * k}" for k in ks]),
             "e": ("exact", [f"e{k}.com/{'b' * k}" for k in ks]),
             "pq": ("prefix", [f"pq{k}.com/{'c' * k}?id=1" for k in ks]),
             "eq": ("exact", [f"eq{k}.com/{'d' * k}?id=1" for k in ks]),
             "h": ("prefix", [f"{h}/" for h in hosts]),
             "hq": ("prefix", [f"q.{h}/?id=1" for h in hosts])}
    body = ""
    for name, (match, entries) in lists.items():
        (tmp_path / f"{name}.txt").write_text("".join(f"{e}\n" for e in entries))
        body += (f'[[list]]\nname = "{name}"\npath = "{name}.txt"\nformat = "urls"\n'
                 f'match = "{match}"\naction = "block"\n')
    (tmp_path / "lists.toml").write_text(body)
    engine = Engine.from_manifest(tmp_path / "lists.toml")
    by_host: dict[str, list[tuple[str, str]]] = {}  # the oracle's candidates: a key's own host
    for p in engine.parsed:
        for key in p.keys:
            assert isinstance(key, str)
            by_host.setdefault(key.partition("/")[0].partition("?")[0], []).append(
                (p.spec.name, key))
    for _, entries in lists.values():
        for entry in entries:
            path, _, query = entry.partition("?")
            for extra in ("", "/", "/c", "/c/d", "x", "/" + "c" * 64):
                for q in {"", "?id=1", "?id=2", f"?{query}" if query else ""}:
                    u = f"http://{path}{extra}{q}"
                    c = urls.canonicalize(u)
                    assert c is not None
                    keys = lookup_keys(c)
                    expected = tuple(sorted({name for name, k in by_host.get(c.url_host, ()) if
                                             entry_matches("prefix" if name in ("p", "pq", "h", "hq")
                                                           else "exact", k, c, keys, ())}))
                    assert tuple(sorted(engine.check_url(u).lists)) == expected, u
    for k, host in zip(ks, hosts):  # the oracle is not empty-handed
        assert engine.check_url(f"http://p{k}.com/{'a' * k}/c/d").lists == ("p",)
        assert engine.check_url(f"http://e{k}.com/{'b' * k}").lists == ("e",)
        assert engine.check_url(f"http://pq{k}.com/{'c' * k}/x?id=1").lists == ("pq",)
        assert engine.check_url(f"http://eq{k}.com/{'d' * k}?id=1").lists == ("eq",)
        assert engine.check_url(f"http://{host}/x/y").lists == ("h",)
        assert engine.check_url(f"http://q.{host}/x/y?id=1").lists == ("hq",)
