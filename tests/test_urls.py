"""Canonicalization: browser parity (WHATWG corpus), the matching extras, and hostile rows."""

from __future__ import annotations

import re

import ada_url
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkguard import urls
from tests.corpora import corpus_json, read_tsv


def _whatwg_http_cases() -> list[pytest.param]:
    cases = []
    for i, c in enumerate(corpus_json("whatwg-url/urltestdata.json")):
        if isinstance(c, str):
            continue
        inp, base = c["input"], c.get("base")
        if c.get("failure"):
            # Only absolute inputs: a relative one fails for want of a base, not of a host.
            if base is None and inp.strip().lower().startswith(("http:", "https:")):
                cases.append(pytest.param(inp, None, id=f"whatwg{i}-fail"))
        elif c["protocol"] in ("http:", "https:"):
            cases.append(pytest.param(c["href"] if base else inp, c["hostname"], id=f"whatwg{i}"))
    return cases


def _expected_host(hostname: str | None) -> str | None:
    """What linkguard matches on: WHATWG's host, then the contract's extras (root dot dropped,
    IPv4-mapped IPv6 as IPv4). A host of only dots names nothing."""
    if hostname is None:
        return None
    if hostname.startswith("[::ffff:") and hostname.count(":") == 3:
        hi, lo = (int(x, 16) for x in hostname[8:-1].split(":"))
        return f"{hi >> 8}.{hi & 255}.{lo >> 8}.{lo & 255}"
    collapsed = ".".join(p for p in hostname.split(".") if p)
    if re.fullmatch(r"[0-9]+|0[xX][0-9a-fA-F]*", collapsed.rpartition(".")[2]):
        # "1.2.3.4.." is a domain to WHATWG, an IPv4 address once the dots are dropped
        try:
            return str(ada_url.parse_url(f"http://{collapsed}/", attributes=("hostname",))
                       ["hostname"])
        except ValueError:
            return hostname
    return collapsed or None


@pytest.mark.parametrize(("url", "hostname"), _whatwg_http_cases())
def test_whatwg_host_parity(url: str, hostname: str | None) -> None:
    c = urls.canonicalize(url)
    assert (c.host if c else None) == _expected_host(hostname)


@pytest.mark.parametrize(("url", "expected"), read_tsv("canonical.tsv"),
                         ids=lambda v: repr(v)[:60])
def test_canonical_table(url: str, expected: str) -> None:
    c = urls.canonicalize(url)
    assert (str(c) if c else "-") == expected


@pytest.mark.parametrize(("url", "keys"), [
    ("http://a.b.evil.com/x", ["a.b.evil.com", "b.evil.com", "evil.com", "com"]),
    ("http://notevil.com/", ["notevil.com", "com"]),
    ("http://1.2.3.4/", ["1.2.3.4"]),
    ("http://[2001:db8::1]/", ["[2001:db8::1]"]),
])
def test_domain_keys_are_label_boundaries(url: str, keys: list[str]) -> None:
    c = urls.canonicalize(url)
    assert c is not None and urls.domain_keys(c) == keys


@pytest.mark.parametrize(("path", "prefixes"), [
    ("/", [""]),
    ("/u/abc", ["", "/u", "/u/abc"]),
    ("/u/abc/", ["", "/u", "/u/abc"]),
    ("/u/abcd/x", ["", "/u", "/u/abcd", "/u/abcd/x"]),
])
def test_path_prefixes_at_segment_boundaries(path: str, prefixes: list[str]) -> None:
    assert urls.path_prefixes(path) == prefixes


def test_path_prefixes_are_bounded() -> None:
    assert len(urls.path_prefixes("/a" * 10_000)) == urls.MAX_PATH_SEGMENTS + 1


@pytest.mark.parametrize(("url", "embedded"), [
    ("http://t.example/r?u=https%3A%2F%2Fevil.com%2Fx%3Fa%3D1%26b%3D2&z=1",
     ["https://evil.com/x?a=1&b=2"]),
    ("http://t.example/r?u=https%253A%252F%252Fevil.com", ["https://evil.com"]),
    ("http://t.example/r?next=www.evil.com/x", ["www.evil.com/x"]),
    ("http://t.example/r?u=http://evil.com/", ["http://evil.com/"]),
    ("http://t.example/r?q=hello+world", []),
    ("http://t.example/r?q=httpsfoo", []),
    ("http://t.example/r", []),
])
def test_embedded_urls(url: str, embedded: list[str]) -> None:
    c = urls.canonicalize(url)
    assert c is not None and urls.embedded_urls(c) == embedded


def test_thousand_levels_of_percent_encoding_terminate() -> None:
    url = "http://evil.com/" + "%25" * 1 + "25" * 1000 + "41"
    c = urls.canonicalize(url)
    assert c is not None and c.path == "/A"


@given(st.text())
def test_canonicalize_never_raises(text: str) -> None:
    urls.canonicalize(text)


@given(st.text())
def test_canonicalize_is_idempotent(text: str) -> None:
    c = urls.canonicalize(text)
    if c is not None:
        again = urls.canonicalize(c.text)
        assert again is not None and again.text == c.text


@given(st.builds(lambda h, p: f"http://{h}/{p}",
                 st.from_regex(r"[a-z0-9-]{1,10}(\.[a-z0-9-]{1,10}){0,3}\.[a-z]{2,4}", fullmatch=True),
                 st.text()))
def test_canonical_url_is_what_ada_opens(url: str) -> None:
    """The host is always the WHATWG host: nothing a browser opens is read differently."""
    c = urls.canonicalize(url)
    try:
        expected = ada_url.parse_url(url, attributes=("hostname",))["hostname"].strip(".")
    except ValueError:
        assert c is None
        return
    assert c is not None and c.host == ".".join(p for p in expected.split(".") if p)


PLAIN_CHARS = "abcXYZ019-._~!$&'()*+,;=:@/?#%\\ \tü"


@settings(max_examples=1500)
@given(st.sampled_from(["http://", "https://", "HTTP://", "http:/"]),
       st.from_regex(r"[a-z0-9_.-]{0,12}(xn--)?[a-z0-9_.-]{0,5}", fullmatch=True),
       st.text(alphabet=PLAIN_CHARS, max_size=30))
def test_fast_path_agrees_with_the_full_parse(scheme: str, host: str, rest: str) -> None:
    """canonicalize() skips the WHATWG parse for URLs already in canonical form: it must give
    exactly what the full parse gives, on any input."""
    url = scheme + host + rest
    assert urls.canonicalize(url) == urls._canonicalize(url)


@pytest.mark.parametrize(("url", "hostname"), _whatwg_http_cases())
def test_whatwg_full_parse_agrees_too(url: str, hostname: str | None) -> None:
    c = urls._canonicalize(url)
    assert (c.host if c else None) == _expected_host(hostname)
