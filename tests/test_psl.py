"""The bundled Public Suffix List: the list's own registrable-domain tests, offline."""

from __future__ import annotations

import pytest

from linkguard import psl
from tests.corpora import corpus_json


def _cases() -> list[pytest.param]:
    data = corpus_json("public-suffix/psl_tests.json")
    return [pytest.param(c["domain"], c["registrable_domain"], id=f"line{c['line']}")
            for c in data["cases"] if c["domain"] is not None]


@pytest.mark.parametrize(("domain", "registrable"), _cases())
def test_registrable_domain(domain: str, registrable: str | None) -> None:
    assert psl.registrable_domain(domain) == registrable


@pytest.mark.parametrize(("host", "expected"), [
    ("com", True), ("co.uk", True), ("uk", True), ("github.io", True), ("xn--fiqs8s", True),
    ("example.com", False), ("example.co.uk", False), ("foo.kobe.jp", True),
    ("city.kobe.jp", False), ("example", False),
])
def test_is_public_suffix(host: str, expected: bool) -> None:
    assert psl.is_public_suffix(host) is expected


@pytest.mark.parametrize("host", ["github.io", "blogspot.com"])
def test_private_suffixes_can_be_left_out(host: str) -> None:
    assert psl.is_public_suffix(host) and not psl.is_public_suffix(host, private=False)


def test_never_fetches() -> None:
    assert psl.extractor().suffix_list_urls == ()
