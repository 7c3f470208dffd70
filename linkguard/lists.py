"""The one place lists are parsed: the `lists.toml` manifest and the four list formats.

Every entry goes through the canonicalizer the URLs it is matched against go through, and every
problem is reported as `file:line: reason`. A list file yields keys for one index:

  format    line                                   key (index)
  domains   example.com | 0.0.0.0 a.com b.com       "example.com"                (domain)
            ||example.com^ | 1.2.3.4 | bücher.de    "xn--bcher-kva.de"
  urls      files-host.com/u/abc123/               "files-host.com/u/abc123"    (prefix|exact)
            http://www.site.net/gallery/77?p=2     "site.net/gallery/77?p=2"
  keywords  Casino-Bonus                           "casino-bonus"               (keyword)
  hashes    <64 or 32 lowercase hex chars>         the digest's bytes           (sha256|md5)
"""

from __future__ import annotations

import enum
import hashlib
import multiprocessing
import os
import re
import time
import tomllib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import unquote

from linkguard import psl, urls
from linkguard.verdict import Action

MAX_LINE_CHARS = 8192     # a longer line is an error, not a key
MAX_REPORTED_SKIPS = 100  # a non-strict list keeps this many skip reasons for operators
# Lists this large in all are read on two cores (load_lists): a second process costs ~0.3 s to
# start and ~0.2 s a million keys to hand back, so smaller sets are read in this one.
PARALLEL_BYTES = 16 << 20
_NAME = re.compile(r"[a-z0-9-]+")
# A host that is plainly ASCII and cannot be an IPv4 number (WHATWG "ends in a number") nor
# punycode is its own canonical form: the fast path that keeps a 1M-entry load to seconds.
_PLAIN_HOST = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\.)*[a-z_-]*[a-z_][a-z0-9_-]*")
_HOSTS_SINKS = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1", "255.255.255.255"})
# The preamble every hosts file carries; these name the machine itself, not a site.
_HOSTS_PREAMBLE = frozenset({
    "localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
    "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
    "ip6-allhosts", "0.0.0.0",
})


class Format(enum.StrEnum):
    DOMAINS = "domains"
    URLS = "urls"
    KEYWORDS = "keywords"
    HASHES = "hashes"


class ListLoadError(Exception):
    """Loading failed; `errors` holds every problem as `file:line: reason`, `by_list` the same
    grouped by list name ("" for the manifest itself)."""

    def __init__(self, errors: dict[str, list[str]] | list[str]) -> None:
        self.by_list = {"": list(errors)} if isinstance(errors, list) else dict(errors)
        self.errors = tuple(e for errs in self.by_list.values() for e in errs)
        super().__init__("\n".join(self.errors))


class EntryError(ValueError):
    """A line that does not parse; the message is the reason."""


@dataclass(frozen=True, slots=True)
class ListSpec:
    name: str
    path: Path
    format: Format
    action: Action
    category: str
    match: str = "prefix"
    hash: str = "sha256"
    overridable: bool = True
    strict: bool = True
    max_drop: float = 0.5  # a reload that loses more than this share of the entries is refused

    def __reduce__(self) -> tuple[type[ListSpec], tuple[object, ...]]:
        return ListSpec, _fields(self)

    @property
    def index(self) -> str:
        """Which index the list's keys go to: domain, prefix, exact, keyword, sha256 or md5."""
        return {Format.DOMAINS: "domain", Format.URLS: self.match,
                Format.KEYWORDS: "keyword", Format.HASHES: self.hash}[self.format]


@dataclass(frozen=True, slots=True)
class ParsedList:
    spec: ListSpec
    keys: frozenset[str | bytes]
    entries: int
    skipped: int
    problems: tuple[str, ...]  # why lines were skipped (first MAX_REPORTED_SKIPS)
    sha256: str
    loaded_at: float

    def __reduce__(self) -> tuple[type[ParsedList], tuple[object, ...]]:
        return ParsedList, _fields(self)


def _fields(obj: ListSpec | ParsedList) -> tuple[object, ...]:
    """The fields of a list or its spec, in order: what pickle needs to build it again in the
    other process of load_lists. A frozen class compiled by mypyc (setup.py) cannot be rebuilt
    field by field, as pickle otherwise does."""
    return tuple(getattr(obj, f.name) for f in fields(obj))


# ---- manifest ------------------------------------------------------------------------------

_MANIFEST_KEYS = {"name", "path", "format", "match", "hash", "action", "category",
                  "overridable", "strict", "max_drop"}


def _choice(value: object, allowed: set[str], what: str) -> str:
    if value not in allowed:
        raise EntryError(f"{what} must be one of {', '.join(sorted(allowed))}, not {value!r}")
    return str(value)


def _spec(raw: dict[str, object], base: Path, seen: set[str]) -> ListSpec:
    unknown = set(raw) - _MANIFEST_KEYS
    if unknown:
        raise EntryError(f"unknown setting {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise EntryError(f"name must match [a-z0-9-]+, not {name!r}")
    if name in seen:
        raise EntryError(f"duplicate list name {name!r}")
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise EntryError(f"list {name!r}: path must be a non-empty string")
    fmt = Format(_choice(raw.get("format"), set(Format), f"list {name!r}: format"))
    if "match" in raw and fmt is not Format.URLS:
        raise EntryError(f"list {name!r}: match applies to urls lists only")
    if "hash" in raw and fmt is not Format.HASHES:
        raise EntryError(f"list {name!r}: hash applies to hashes lists only")
    for flag in ("overridable", "strict"):
        if not isinstance(raw.get(flag, True), bool):
            raise EntryError(f"list {name!r}: {flag} must be true or false")
    max_drop = raw.get("max_drop", 0.5)
    if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) \
            or not 0 <= max_drop <= 1:
        raise EntryError(f"list {name!r}: max_drop must be a number from 0 to 1")
    category = raw.get("category", name)
    if not isinstance(category, str):
        raise EntryError(f"list {name!r}: category must be a string")
    return ListSpec(
        name=name, path=base / path, format=fmt,
        action=Action(_choice(raw.get("action"), set(Action), f"list {name!r}: action")),
        category=category,
        match=_choice(raw.get("match", "prefix"), {"prefix", "exact"}, f"list {name!r}: match"),
        hash=_choice(raw.get("hash", "sha256"), {"sha256", "md5"}, f"list {name!r}: hash"),
        overridable=bool(raw.get("overridable", True)), strict=bool(raw.get("strict", True)),
        max_drop=float(max_drop),
    )


def _line_of(text: str, name: object, nth: int) -> int:
    """The manifest line to blame: the nth list's `name =` line, else its `[[list]]` header."""
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if line.strip().startswith("[[list]]")]
    if nth >= len(headers):
        return 1
    end = headers[nth + 1] if nth + 1 < len(headers) else len(lines)
    pattern = re.compile(r"\s*name\s*=")
    for i in range(headers[nth], end):
        if isinstance(name, str) and pattern.match(lines[i]):
            return i + 1
    return headers[nth] + 1


def read_manifest(path: str | Path) -> tuple[ListSpec, ...]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8").removeprefix("\ufeff")  # a BOM, as list files
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as e:
        raise ListLoadError([f"{path}:0: cannot read manifest: {e}"]) from None
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        raise ListLoadError([f"{path}:{line[1] if line else 0}: {e}"]) from None
    raw_lists = data.get("list", [])
    errors: list[str] = []
    if set(data) - {"list"}:
        errors.append(f"{path}:1: unknown top-level setting {', '.join(sorted(set(data) - {'list'}))}")
    if not isinstance(raw_lists, list) or not raw_lists:
        errors.append(f"{path}:1: no [[list]] tables")
        raw_lists = []
    specs: list[ListSpec] = []
    for i, raw in enumerate(raw_lists):
        if not isinstance(raw, dict):  # `list = [1]`: TOML, but no table
            errors.append(f"{path}:1: list must be [[list]] tables, not {raw!r}")
            continue
        try:
            specs.append(_spec(raw, path.parent, {s.name for s in specs}))
        except EntryError as e:
            errors.append(f"{path}:{_line_of(text, raw.get('name'), i)}: {e}")
    if errors:
        raise ListLoadError(errors)
    return tuple(specs)


# ---- lines ---------------------------------------------------------------------------------

def domain_key(token: str) -> str:
    """A host as a domains entry gives it, canonical; raises EntryError."""
    host = token if _PLAIN_HOST.fullmatch(token) and "xn--" not in token else _slow_host(token)
    # An ICANN suffix (com, co.uk) would block every site under it: an operator's mistake. A
    # private-section one (a hosting service such as 000webhostapp.com) may be meant.
    if psl.is_public_suffix(host, private=False):
        raise EntryError(f"{host!r} is a public suffix: it would match every site under it")
    return host


def _slow_host(token: str) -> str:
    if any(c in token for c in "/?#@\\") or (":" in token and not token.startswith("[")
                                               and token.count(":") < 2):
        raise EntryError(f"not a host name: {token!r}")
    if token.count(":") >= 2 and not token.startswith("["):
        token = f"[{token}]"  # a bare IPv6 literal, as hosts files write it
    host = urls.canonical_host(token)
    if host is None:
        raise EntryError(f"not a valid host name: {token!r}")
    if "*" in host:  # as written or as decoded (%2a, fullwidth): "*.evil.com", "evil.*"
        raise EntryError("wildcards are not supported (an entry already covers every subdomain)")
    return host


def _domain_line(line: str) -> list[str]:
    if line.startswith("||"):
        if not line.endswith("^"):
            raise EntryError("only plain ||host^ adblock rules are supported")
        return [domain_key(line[2:-1])]
    if line.startswith("[") and line.endswith("]") and "adblock" in line.lower():
        return []  # the "[Adblock Plus 2.0]" header
    if line.startswith(("@@", "!")) or "##" in line or "#@#" in line:
        raise EntryError("not a host rule (adblock exceptions and cosmetic rules do not apply)")
    tokens = line.split()
    if len(tokens) > 1:
        if all(t.lower() in _HOSTS_PREAMBLE for t in tokens[1:]):
            return []  # "127.0.0.1 localhost", "fe80::1%lo0 localhost": the machine itself
        if tokens[0] not in _HOSTS_SINKS:
            raise EntryError(f"hosts-file line must start with a sink address, not {tokens[0]!r}")
        return [domain_key(t.lower()) for t in tokens[1:] if t.lower() not in _HOSTS_PREAMBLE]
    return [domain_key(line.lower())]


_SPACE = re.compile(r"\s")
_UNDECODABLE = re.compile(r"[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


def _url_line(line: str, prefix: bool) -> list[str]:
    if _SPACE.search(line):
        raise EntryError("a URL entry cannot contain white space")
    full = urls.with_scheme(line)  # with a scheme, an entry already canonical skips the parse
    c = urls.canonicalize(full) if full is not None else None
    if c is None:
        raise EntryError(f"not a URL a browser would open: {line!r}")
    if "*" in c.host:  # a browser would look up the name "*.site.net" itself
        raise EntryError("wildcards are not supported (a URL entry is one host's pages; list "
                         "the domain in a domains list)")
    key = urls.url_entry_key(c)
    if prefix and c.path.rstrip("/").count("/") >= urls.MAX_PATH_SEGMENTS:
        raise EntryError(f"a URL prefix deeper than {urls.MAX_PATH_SEGMENTS - 1} path segments "
                         "(a URL is matched by its first ones)")
    return [key]


def _hash_line(line: str, algorithm: str) -> list[bytes]:
    size = hashlib.new(algorithm).digest_size * 2
    if len(line) != size or not re.fullmatch(r"[0-9a-fA-F]+", line):
        raise EntryError(f"not a {algorithm} hex digest ({size} hex characters)")
    return [bytes.fromhex(line)]


def parse_line(spec: ListSpec, line: str) -> list[str] | list[bytes]:
    """The keys of one stripped, non-comment line; raises EntryError with the reason."""
    if len(line) > MAX_LINE_CHARS:
        raise EntryError(f"line longer than {MAX_LINE_CHARS} characters")
    if not line.isascii() and _UNDECODABLE.search(line):
        raise EntryError("not valid UTF-8")
    if "\x00" in line:
        raise EntryError("contains a NUL byte")
    if spec.format is Format.DOMAINS:
        return _domain_line(line)
    if spec.format is Format.URLS:
        return _url_line(line, spec.index == "prefix")
    if spec.format is Format.KEYWORDS:  # decoded as the URL text it is looked for in
        return [unquote(urls.canonical_query(line)).lower()]
    return _hash_line(line, spec.hash)


def _strip(raw: str) -> str:
    line = raw.strip()
    if not line or line[0] == "#":
        return ""
    if "#" in line:
        for sep in (" #", "\t#"):  # a trailing comment; a URL's '#' follows no white space
            line = line.split(sep, 1)[0]
        line = line.rstrip()
    return line


def iter_entries(spec: ListSpec, text: str) -> Iterator[tuple[int, str, list[str] | list[bytes] | EntryError]]:
    """(line number, line, keys or the error) for every entry line of a list file."""
    for n, raw in enumerate(text.split("\n"), 1):
        line = _strip(raw)
        if line and not (spec.format is Format.DOMAINS and line.startswith("!")):
            try:
                yield n, line, parse_line(spec, line)
            except EntryError as e:
                yield n, line, e


def read_list_file(spec: ListSpec) -> tuple[bytes, str]:
    """The file's bytes and text. A file that changes while it is read (a download still being
    written) is refused rather than loaded half."""
    try:
        with spec.path.open("rb") as f:
            before = os.fstat(f.fileno())
            data = f.read()
        after = spec.path.stat()
    except OSError as e:
        raise ListLoadError({spec.name: [f"{spec.path}:0: cannot read list: {e.strerror or e}"]}) \
            from None
    if (before.st_size, before.st_mtime_ns, before.st_ino) != \
            (after.st_size, after.st_mtime_ns, after.st_ino) or len(data) != before.st_size:
        reason = "the file changed while it was read (still being written?); try again"
        raise ListLoadError({spec.name: [f"{spec.path}:0: {reason}"]})
    # A byte-order mark (Windows editors write one) is no part of the first line.
    return data, data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")


def load_list(spec: ListSpec) -> ParsedList:
    """Parse one list. Strict: any bad line fails the load, listing every bad line."""
    data, text = read_list_file(spec)
    keys: set[str | bytes] = set()
    add = keys.add
    entries = skipped = 0
    problems: list[str] = []
    for n, _line, result in iter_entries(spec, text):
        if isinstance(result, EntryError):
            skipped += 1
            if spec.strict or len(problems) < MAX_REPORTED_SKIPS:
                problems.append(f"{spec.path}:{n}: {result}")
            continue
        entries += len(result)
        for key in result:
            add(key)
    if spec.strict and problems:
        raise ListLoadError({spec.name: problems})
    return ParsedList(spec, frozenset(keys), entries, skipped, tuple(problems),
                      hashlib.sha256(data).hexdigest(), time.time())


def _load(spec: ListSpec) -> ParsedList | dict[str, list[str]]:
    """load_list, with its errors as data (what a second process hands back)."""
    try:
        return load_list(spec)
    except ListLoadError as e:
        return e.by_list


def _load_all(specs: Sequence[ListSpec]) -> list[ParsedList | dict[str, list[str]]]:
    return [_load(spec) for spec in specs]


def _size(spec: ListSpec) -> int:
    try:
        return spec.path.stat().st_size
    except OSError:
        return 0  # (load_list reports it)


def load_lists(specs: Sequence[ListSpec], parallel: bool = False
               ) -> list[ParsedList | ListLoadError]:
    """load_list of each spec, in order: the list, or why it did not load. `parallel`, and two
    or more lists holding PARALLEL_BYTES or more in all: all but the largest are read in a
    second process while this one reads the largest. At start-up the master serves nothing and
    the second core is idle (the benchmark's 2M lines: 9.4 s on one core); a reload, built in a
    thread of the master, leaves it to the workers. The process is forked (a spawned one would
    run the caller's main module again), so `parallel` only in a process with no other thread,
    whose locks a child would inherit held: the master's first load. If it cannot run, this
    one reads them all."""
    sizes = [_size(spec) for spec in specs]
    if not parallel or len(specs) < 2 or sum(sizes) < PARALLEL_BYTES:
        results = _load_all(specs)
    else:
        largest = max(range(len(specs)), key=sizes.__getitem__)
        others = [spec for i, spec in enumerate(specs) if i != largest]
        try:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
                theirs = pool.submit(_load_all, others)
                mine = _load(specs[largest])
                results = theirs.result()
        except (BrokenProcessPool, OSError):
            mine, results = _load(specs[largest]), _load_all(others)
        results.insert(largest, mine)
    return [ListLoadError(r) if isinstance(r, dict) else r for r in results]
