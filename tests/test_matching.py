"""Matching rules of every list format, each positive row beside its near-misses."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from linkguard import Engine
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
