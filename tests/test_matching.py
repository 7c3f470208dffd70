"""Matching rules of every list format, each positive row beside its near-misses."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkguard import Engine, psl
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
    verdict = one_list_engine(tmp_path, kind, entry).check_url(url)
    assert verdict.action.value == {"match": "block", "miss": "allow"}[expected], verdict
    if expected == "match":
        assert verdict.lists == ("l",) and verdict.category == "test"


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
PATH = st.lists(st.sampled_from(["u", "abc", "abcd", "x", "77", ""]), max_size=3).map(
    lambda segs: "/" + "/".join(segs))
QUERY = st.sampled_from(["", "?id=1", "?id=2"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(HOST, min_size=1, max_size=5), st.lists(st.tuples(HOST, PATH, QUERY), max_size=5),
       st.lists(st.tuples(HOST, PATH, QUERY), max_size=5), st.tuples(HOST, PATH, QUERY))
def test_index_agrees_with_entry_by_entry_matching(tmp_path_factory: pytest.TempPathFactory,
                                                   domains: list[str], prefixes: list[tuple[str, str, str]],
                                                   exacts: list[tuple[str, str, str]],
                                                   url: tuple[str, str, str]) -> None:
    """The index's answer (hash probes, the host walk that stops at the first miss) is the
    answer of testing every entry on its own, as `explain` does."""
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
    u = "http://" + "".join(url)
    expected = sorted({m["list"] for m in engine.explain(u)["matches"]})
    assert sorted(engine.check_url(u).lists) == expected
