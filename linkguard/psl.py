"""The Public Suffix List, from the snapshot bundled with tldextract: never fetched, read once
per process on first use (`suffix_list_urls=()`, no cache directory)."""

from __future__ import annotations

import functools

import ada_url
import tldextract


@functools.cache
def extractor(private: bool = True) -> tldextract.TLDExtract:
    """`private`: include the list's private section (github.io, blogspot.com, ...)."""
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(),
                                 include_psl_private_domains=private)


@functools.cache
def _rules(private: bool) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(plain rules, wildcard parents, exceptions), all in ASCII (punycode) form."""
    plain: set[str] = set()
    wild: set[str] = set()
    exceptions: set[str] = set()
    for rule in extractor(private).tlds:
        bucket = plain
        if rule.startswith("*."):
            rule, bucket = rule[2:], wild
        elif rule.startswith("!"):
            rule, bucket = rule[1:], exceptions
        rule = rule.lower()
        if not rule.isascii():
            try:
                rule = ada_url.idna_to_ascii(rule).decode("ascii") or rule
            except ValueError:
                pass
        bucket.add(rule)
    return frozenset(plain), frozenset(wild), frozenset(exceptions)


def is_public_suffix(host: str, *, private: bool = True) -> bool:
    """Is this canonical (ASCII, lowercase) host itself a public suffix, such as `co.uk`?
    `private=False`: only the ICANN section counts (`github.io` is then an ordinary domain)."""
    plain, wild, exceptions = _rules(private)
    if host in plain:
        return True
    parent = host.partition(".")[2]
    return parent in wild and host not in exceptions


def registrable_domain(host: str) -> str | None:
    """The registrable domain (eTLD+1) of a host name, or None (PSL algorithm, with the default
    rule "*": an unlisted TLD is a public suffix of one label)."""
    host = host.lower()
    if not host or host.startswith(".") or host.endswith("."):
        return None
    result = extractor().extract_str(host)
    if not result.suffix:
        labels = host.split(".")
        return ".".join(labels[-2:]) if len(labels) >= 2 and all(labels) else None
    return f"{result.domain}.{result.suffix}".lower() if result.domain else None
