"""Every bug found, by fuzzing, property tests or review, stays fixed."""

from __future__ import annotations

import pytest

from linkguard import Engine, extract, urls
from tests.corpora import ROOT, read_tsv


@pytest.mark.parametrize(("bug", "kind", "value", "expected"), read_tsv("regressions.tsv"),
                         ids=lambda v: v if isinstance(v, str) and "-" in v[:30] else None)
def test_regression(bug: str, kind: str, value: str, expected: str) -> None:
    if kind == "canonical":
        c = urls.canonicalize(value)
        assert (c.text if c else "-") == expected
        if c is not None:
            again = urls.canonicalize(c.text)
            assert again is not None and again.text == c.text
            assert urls._canonicalize(value) == c
    elif kind == "extract":  # the links found, space-separated ("-": none)
        found = " ".join(c.url for c in extract.find_links(value)) or "-"
        assert found == expected
    else:
        engine = Engine.from_manifest(ROOT / "lists" / "lists.toml")
        assert engine.check_url(value).action.value == expected
