"""Canonicalize URLs exactly as a browser opens them, then derive the keys lists are matched on.

Why this module exists: a checker that parses a URL differently from the browser that will open
it can be bypassed (`http://evil.com\\@good.com/` is evil.com to a browser; `http://0x7f.1/` is
127.0.0.1). So parsing is delegated to ada-url, the WHATWG URL Standard parser behind Node.js, and
only what the standard leaves to us is done here, following Safe Browsing's canonicalization
(https://developers.google.com/safe-browsing/v4/urls-hashing#canonicalization). Where ada refuses
a host that Chromium opens (a fullwidth '%' escape, `http://x％65y.com/`; escapes in an IPv6
literal), the host is read as Chromium reads it (_chrome_reading). The steps, for one URL:

  "http://WWW.Evil.com.:80/a/%252e%252E/b//c?x=%41#frag"
    WHATWG (ada)  -> http://www.evil.com./a/%252e%252E/b//c?x=%41
    host          -> www.evil.com          (trailing root dot, repeated dots dropped;
                                            IPv4-mapped IPv6 [::ffff:102:304] -> 1.2.3.4)
    path          -> /b/c                  (percent-decoded until stable, dot segments
                                            resolved, // collapsed, re-escaped: bytes <= 0x20,
                                            >= 0x7f, '#' and '%')
                     and /a/../b/c         (decoding made the dot segment: the path decoded
                                            but not resolved again is matched too, as a
                                            server that does not resolve it serves it; so
                                            are the path decoded once, then resolved, and
                                            the path without its ";parameters":
                                            canonical_paths)
    query         -> x=A                   (decoded and re-escaped the same way; kept, as the
                                            v4 docs do; the Go client drops it)
    fragment, port, userinfo: dropped (they never change which page is served)

Match keys (CONTRACT.md, "Lists"), for http://a.b.example.co.uk/1/2.html?q=1 :
  domain keys   a.b.example.co.uk, b.example.co.uk, example.co.uk, co.uk, uk   (label boundaries)
  url keys      host without one leading "www." + each path prefix at a segment boundary
                example.co.uk, example.co.uk/1, example.co.uk/1/2.html (+ "?q=1" variants)
  SB expressions a.b.example.co.uk/1/2.html?q=1, a.b.example.co.uk/1/2.html, .../1/, .../
                 for at most 5 hosts x 6 paths (v4 docs, "Suffix/Prefix Expressions")
"""

from __future__ import annotations

import binascii
import re
from typing import Final
from urllib.parse import unquote, unquote_to_bytes

import ada_url

from linkguard.record import Record

# WHATWG URL Standard, "basic URL parser": leading/trailing C0 control or space are stripped.
_C0_SPACE = "".join(map(chr, range(0x21)))
# RFC 3986 scheme; a "scheme" holding a dot is a schemeless host with a port ("example.com:8080").
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_TAB_NEWLINE = {9: None, 10: None, 13: None}
_NUMBER = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")  # WHATWG "ends in a number" last labels
WEB_SCHEMES = frozenset({"http", "https"})
# Safe Browsing: escape bytes <= 0x20, >= 0x7f, '#' and '%' after unescaping (runs of them).
_TO_ESCAPE = re.compile(rb"[\x00-\x20#%\x7f-\xff]+")
# In the path, '?' and '\' too: a decoded "%3F" would start a query, and a decoded "%5C" would be
# a slash, when the canonical URL is read again (WHATWG section 4.4, special-scheme paths); Safe
# Browsing's list leaves them out, and its canonical form then does not read back as itself.
_TO_ESCAPE_IN_PATH = re.compile(rb"[\x00-\x20#%?\\\x7f-\xff]+")
# Bounds for hostile input: unescaping stops when stable, or after this many rounds (each round
# shortens the string, so the bound only matters for megabyte inputs).
_MAX_UNESCAPE_ROUNDS = 1024
MAX_PATH_SEGMENTS = 64     # url-prefix keys look at most this deep
MAX_EMBED_DEPTH = 3        # URLs inside a query, inside a query, ...
MAX_EMBEDDED = 32          # ... and how many of them one link may have checked in all
_SB_MAX_HOST_LABELS = 5    # v4 docs: "the last five components"
_SB_MAX_PATH_PREFIXES = 4  # v4 docs: "up to four" prefix paths from the root


class CanonicalURL(Record):
    """A URL as a browser opens it, in the parts matching reads (record.Record: one is made for
    every URL checked)."""

    _fields = ("text", "scheme", "host", "path", "query", "is_ip", "raw_query", "other_paths")

    def __init__(self, text: str, scheme: str, host: str, path: str, query: str | None,
                 is_ip: bool, raw_query: str | None, other_paths: tuple[str, ...] = ()
                 ) -> None:
        self.text: Final = text  # the canonical URL, as a string
        self.scheme: Final = scheme
        self.host: Final = host  # ASCII, lowercase; IPv4 dotted quad; IPv6 in brackets
        self.path: Final = path  # starts with "/", Safe Browsing escaped
        self.query: Final = query  # without "?"; None when the URL has no "?"
        self.is_ip: Final = is_ip
        # the query as WHATWG serialized it, for finding embedded URLs
        self.raw_query: Final = raw_query
        # Other readings of the path, matched too (canonical_paths): decoded but not resolved
        # again where decoding made a dot segment ("/u/abc/..%2Fx": `path` is /u/x, a server
        # may serve it from under /u/abc), and without path parameters (";jsessionid=...").
        # Mostly empty.
        self.other_paths: Final = other_paths

    def __str__(self) -> str:
        return self.text

    @property
    def url_host(self) -> str:
        """The host `urls` entries are keyed on: one leading "www." dropped on either side."""
        h = self.host
        return h[4:] if h.startswith("www.") and "." in h[4:] else h


def with_scheme(url: str) -> str | None:
    """The URL with "http://" in front when it has no scheme; None for a scheme that is not
    http(s) (javascript:, mailto:, ftp:)."""
    if url.startswith(("http://", "https://")):
        return url
    m = _SCHEME.match(url)
    if m is None or "." in m.group():
        return "http://" + url
    return url if m.group()[:-1].lower() in WEB_SCHEMES else None


_ESCAPE_RUN = re.compile(rb"(?:%[0-9A-Fa-f]{2})+")


def unquote_bytes(b: bytes) -> bytes:
    """urllib's unquote_to_bytes, a run of escapes at a time: it takes ~150 ns an escape, and a
    path in another script is all escapes (a 2 KB one of CJK took 185 us, now 33). Below a few
    escapes urllib's is faster."""
    if b.count(b"%") < 8:
        return unquote_to_bytes(b)
    return _ESCAPE_RUN.sub(_unhex, b)


def _unhex(m: re.Match[bytes]) -> bytes:
    return binascii.unhexlify(m[0].replace(b"%", b""))


def unquote_text(s: str) -> str:
    """urllib's unquote (UTF-8, errors replaced), as fast as unquote_bytes for ASCII text."""
    if s.isascii():
        return unquote_bytes(s.encode("ascii")).decode("utf-8", "replace")
    return unquote(s)


def _unescape_fully(s: str) -> bytes:
    b = s.encode("utf-8", "surrogateescape")
    for _ in range(_MAX_UNESCAPE_ROUNDS):
        if b"%" not in b:
            break
        u = unquote_bytes(b)
        if u == b:
            break
        b = u
    return b


def _escape(b: bytes, escape: re.Pattern[bytes] = _TO_ESCAPE) -> str:
    """Percent-escape the bytes `escape` matches, a run at a time (a path in another script is
    all escapes: byte by byte it cost ~50 ns each)."""
    return escape.sub(_hex_escapes, b).decode("ascii")


def _hex_escapes(m: re.Match[bytes]) -> bytes:
    return b"%" + m[0].hex("%").upper().encode("ascii")


def _resolve_path(b: bytes) -> bytes:
    """Collapse repeated slashes and resolve "." and ".." segments (RFC 3986 section 5.2.4)."""
    out: list[bytes] = []
    segments = b.split(b"/")
    for i, seg in enumerate(segments[1:], 1):
        last = i == len(segments) - 1
        if seg == b"..":
            if out:
                out.pop()
            if last:
                out.append(b"")
        elif seg == b".":
            if last:
                out.append(b"")
        elif seg or last:
            out.append(seg)
    return b"/" + b"/".join(out)


def resolve_path(path: str) -> str:
    """Dot segments and repeated slashes of an already unescaped path, one character per byte
    (Latin-1), nothing else (Safe Browsing's own canonicalizer escapes afterwards)."""
    return _resolve_path(path.encode("latin-1")).decode("latin-1")


_SLASHES = re.compile(rb"//+")
_PARAMS = re.compile(r";[^/]*")  # RFC 2396 section 3.3: a segment's parameters, to its end


def canonical_paths(path: str) -> tuple[str, tuple[str, ...]]:
    """The canonical path (decoded until stable, dot segments resolved, repeated slashes
    collapsed, re-escaped: Safe Browsing), and the path's other readings, as servers serve it,
    where they differ. An attacker picks the server, so each is matched:
    - decoded but not resolved again, where decoding makes a dot segment: a WSGI server decodes
      the path and hands it on, a router that splits it first reads names, so
      "/u/abc/..%2Fx" and "/u/abc/%252E%252E/x" are under /u/abc (canonically /u/x);
    - with "%25" in it, decoded once and then resolved (nginx, Apache): "%252e%252e" stays a
      name, a ".." that the one decoding makes is resolved;
    - with ';' in it, the path without its segments' parameters (a Java server drops them:
      "/gallery/77;jsessionid=A1" is page 77), read the ways above and as Tomcat does (drop,
      decode once, resolve); where dropping them makes a dot segment ("/u/x/..;/abc"), also
      resolved before it is decoded (Tomcat passing "%2F" through) and not resolved at all
      (Spring).
    WHATWG resolves "%2E%2E" itself, before any of them: ada has. An escaped "%3B" is no
    parameter."""
    canonical, served = _decoded_paths(path)
    if ";" not in path and "%25" not in path:  # (most paths: no other reading to collect)
        return canonical, () if served is None else (served,)
    readings = [served]
    if "%25" in path:
        readings.append(_decoded_once(path))
    if ";" in path:
        stripped = _PARAMS.sub("", path)
        dots = "/." in stripped or "//" in stripped  # made by dropping the parameters
        readings += _decoded_paths(stripped, unresolved=dots)
        if "%" in stripped:
            readings.append(_decoded_once(stripped))
        if dots:
            readings += _decoded_paths(resolve_path(stripped))
    return canonical, tuple(dict.fromkeys(p for p in readings if p is not None and p != canonical))


def _decoded_once(path: str) -> str:
    """The path decoded once, then resolved; what is still escaped is a name."""
    return _escape(_resolve_path(unquote_bytes(path.encode("utf-8", "surrogateescape"))),
                   _TO_ESCAPE_IN_PATH)


def _decoded_paths(path: str, unresolved: bool = False) -> tuple[str, str | None]:
    """(the canonical path, the path decoded but not resolved again, or None when decoding
    made no dot segment and `unresolved` does not ask for it anyway)."""
    if "%" not in path and "//" not in path and "/." not in path:
        return path, None  # already canonical: ada resolved dot segments and escaped the rest
    decoded = _unescape_fully(path)
    canonical = _escape(_resolve_path(decoded), _TO_ESCAPE_IN_PATH)
    if not unresolved and ("%" not in path or b"/." not in decoded):
        return canonical, None
    served = _escape(_SLASHES.sub(b"/", decoded), _TO_ESCAPE_IN_PATH)
    return canonical, None if served == canonical else served


def canonical_query(query: str) -> str:
    if "%" not in query and query.isascii() and _TO_ESCAPE.search(query.encode()) is None:
        return query
    return _escape(_unescape_fully(query))


def _canonical_host(host: str) -> tuple[str, bool] | None:
    if host.startswith("["):
        # IPv4-mapped IPv6 (RFC 4291 section 2.5.5.2) is the IPv4 host to every socket API.
        words = host[8:-1].split(":")
        if host.startswith("[::ffff:") and len(words) == 2:
            hi, lo = (int(w, 16) for w in words)
            return f"{hi >> 8}.{hi & 255}.{lo >> 8}.{lo & 255}", True
        return host, True
    if host.endswith(".") or host.startswith(".") or ".." in host:
        # A root dot names the same host (RFC 1034 section 3.1); Safe Browsing also drops
        # leading and repeated dots.
        collapsed = ".".join(label for label in host.split(".") if label)
        if not collapsed:
            return None
        if _NUMBER.fullmatch(collapsed.rpartition(".")[2]):
            # "1.2.3.4.." was a domain name to WHATWG (its last label was empty); without the
            # dots it is an IPv4 address, and matched as one. What does not parse as one
            # ("foo.09..") stays as the browser has it, so the canonical form reads back as
            # itself.
            try:
                return ada_url.normalize_url(f"http://{collapsed}/")[7:-1], True
            except ValueError:
                return host, False
        host = collapsed
    # WHATWG "ends in a number": a numeric last label made ada parse the host as IPv4.
    return host, host.rpartition(".")[2].isdigit()


# A URL that is already in canonical form, as WHATWG would serialize it and Safe Browsing would
# leave it: lowercase scheme and host, a host that is no IPv4 number (the last label starts with
# a letter) nor punycode, no userinfo or port, and a path and query made only of characters
# neither standard escapes or decodes (no '%', no "/.", no "//"; no "'" in the query, which
# WHATWG escapes there; no ';' in the path, whose parameters are another reading of it). Most
# chat links are like this, and skipping the full parse for them halves the cost of a check;
# tests prove both ways agree. (Possessive: no part can give back what the next one takes, and
# the regex engine then keeps no state to backtrack to.)
_PLAIN_URL = re.compile(
    r"(https?)://((?:[a-z0-9_-]++\.)*+[a-z][a-z0-9_-]*+)"
    r"((?:/(?![./])[A-Za-z0-9\-._~!$&'()*+,=:@]*+)*+)"
    r"(?:\?([A-Za-z0-9\-._~!$&()*+,;=:@/?]*+))?(?:#.*)?", re.DOTALL)


def canonicalize(url: str) -> CanonicalURL | None:
    """The canonical form of an http(s) URL, or None when no browser would open it."""
    m = _PLAIN_URL.fullmatch(url)
    if m is not None and "xn--" not in url:
        scheme, host, path, query = m.groups()
        if not path or m.end(3 if query is None else 4) != len(url):  # no path, or a fragment
            path = path or "/"
            url = f"{scheme}://{host}{path}" + ("" if query is None else "?" + query)
        return CanonicalURL(url, scheme, host, path, query, False, query)
    return _canonicalize(url)


def _full(url: str) -> str | None:
    """The URL as the parser is given it: C0 controls and spaces stripped from both ends, tabs
    and newlines dropped (WHATWG removes them anywhere, even inside the scheme), "http://" in
    front of a URL without a scheme; None for another scheme, or nothing."""
    s = url.strip(_C0_SPACE)
    if "\t" in s or "\n" in s or "\r" in s:
        s = s.translate(_TAB_NEWLINE)
    return with_scheme(s) if s else None


def _canonicalize(url: str) -> CanonicalURL | None:
    full = _full(url)
    if full is None:
        return None
    try:
        href = ada_url.normalize_url(full)
    except ValueError:
        chrome = _chrome_reading(full)
        if chrome is None:
            return None
        href = chrome
    # ada serialized it: scheme "://" [userinfo "@"] host [":" port] path ["?" query] ["#" frag]
    scheme, _, rest = href.partition("://")
    if scheme not in WEB_SCHEMES:
        return None
    end = rest.find("#")
    if end >= 0:
        rest = rest[:end]
        href = href[: len(scheme) + 3 + end]
    slash = rest.find("/")
    authority, path = rest[:slash], rest[slash:]
    query = None
    q = path.find("?")
    if q >= 0:
        path, query = path[:q], path[q + 1:]
    host = authority
    if "@" in host:
        host = host.rpartition("@")[2]
    if ":" in host and not host.endswith("]"):
        host = host[: host.rindex(":")]
    canon = _canonical_host(host)
    if canon is None:
        return None
    chost, is_ip = canon
    cpath, other_paths = canonical_paths(path)
    cquery = None if query is None else canonical_query(query)
    if chost is not authority or cpath is not path or cquery is not query:
        href = f"{scheme}://{chost}{cpath}" + ("" if cquery is None else "?" + cquery)
    return CanonicalURL(href, scheme, chost, cpath, cquery, is_ip, query, other_paths)


# Chromium reads one kind of host that WHATWG refuses as a host a resolver looks up. Its host
# canonicalizer (url/url_canon_host.cc, DoIDNHost) unescapes the host, maps it with UTS 46, then
# unescapes again what the mapping made ASCII ("if somebody does %00 as fullwidth, ICU will
# convert this to ASCII"), and it unescapes inside an IPv6 literal: Chromium opens
# http://x％65y.com/ (a fullwidth percent sign), http://x%EF%BC%8565y.com/ (the same, escaped)
# and http://[2001:db8::%31]/. WHATWG forbids '%' in a mapped host and in an IPv6 literal.
# The host is where Chromium's ParseServerInfo puts it: after the last '@' of the authority,
# before a port after the last ']' (an IPv6 literal without one is all host).
# (scheme, slashes and userinfo to the authority's last '@') (host and port) (the rest)
_AUTHORITY = re.compile(r"(https?:[/\\]*(?:[^/\\?#]*@)?)([^/\\?#]*)(.*)", re.DOTALL | re.IGNORECASE)
_NOT_AN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What a resolver can look up (a host with '*' or ' ' Chromium opens, and no DNS name has).
_RESOLVABLE = re.compile(r"[0-9a-z._-]*[0-9a-z][0-9a-z._-]*|\[[0-9a-f:.]+\]")


def _chrome_reading(url: str) -> str | None:
    """ada's serialization of `url` with the host Chromium reads in it, for a URL ada refused;
    None unless that host is one a resolver can look up and the URL then parses."""
    m = _AUTHORITY.fullmatch(url)
    if m is None:
        return None
    head, server, rest = m.groups()
    bracket = server.rfind("]")
    colon = server.rfind(":")
    if colon > (bracket if bracket >= 0 or not server.startswith("[") else len(server)):
        server, port = server[:colon], server[colon:]
    else:
        port = ""
    if _NOT_AN_ESCAPE.search(server):
        return None  # Chromium unescapes the host first, and fails on a '%' that is no escape
    try:
        name = unquote_to_bytes(server)
        if b"%" in name:
            return None  # ... or that an escape made ("%2565"): that is no host character
        if not name.isascii() and b"\x00" not in name:  # (ada's IDNA stops at a NUL)
            name = unquote_to_bytes(ada_url.idna.encode(name.decode("utf-8")))
    except ValueError:  # a lone surrogate, not UTF-8
        return None
    host = name.decode("latin-1").lower()
    if _RESOLVABLE.fullmatch(host) is None:
        return None
    try:
        return ada_url.normalize_url(f"{head}{host}{port}{rest}")
    except ValueError:
        return None


def whatwg_refuses(url: str) -> bool:
    """Whether ada (WHATWG) refuses the URL as canonicalize reads it; canonicalize may still
    give it a host, Chromium's (explain says which reading it took)."""
    try:
        ada_url.normalize_url(_full(url) or "")
    except ValueError:
        return True
    return False


# Safari's WebKit maps U+1E9E LATIN CAPITAL LETTER SHARP S to "ss" in a host, as UTS 46 did before
# Unicode 15.1; WHATWG (ada), Chromium and Firefox now map it to "ß". So Safari opens
# http://aẞets-login.com/ as assets-login.com, the others as xn--aets-login-... Of every code
# point inside a label, it is the only one WebKit maps to another host (tests/test_browsers.py).
_CAPITAL_SHARP_S = re.compile("\u1e9e|%[Ee]1%[Bb][Aa]%9[Ee]")


def webkit_reading(url: str) -> str | None:
    """The URL with its host as Safari reads it, where that differs from WHATWG's; else None.
    A link to it leads to both hosts (Engine checks the two)."""
    full = _full(url)
    m = None if full is None else _AUTHORITY.fullmatch(full)
    if m is None:
        return None
    head, server, rest = m.groups()
    if _CAPITAL_SHARP_S.search(server) is None:
        return None
    safari = f"{head}{_CAPITAL_SHARP_S.sub('ss', server)}{rest}"
    try:
        ada_url.normalize_url(safari)  # (not read as Chromium reads it: Safari does not)
    except ValueError:
        return None
    return safari


def canonical_host(name: str) -> str | None:
    """A host name or IP literal as a list entry gives it: `bücher.de` -> `xn--bcher-kva.de`."""
    c = canonicalize("http://" + name + "/")
    if c is None or c.path != "/" or c.query is not None:
        return None
    return c.host


# ---- match keys ------------------------------------------------------------------------------

def domain_keys(c: CanonicalURL) -> list[str]:
    """The host and every parent domain at a label boundary (an IP only as itself)."""
    h = c.host
    if c.is_ip:
        return [h]
    keys = [h]
    i = h.find(".")
    while i >= 0:
        keys.append(h[i + 1:])
        i = h.find(".", i + 1)
    return keys


def path_prefixes(path: str) -> list[str]:
    """"/a/b/c" -> ["", "/a", "/a/b", "/a/b/c"]; a trailing slash is not significant."""
    p = path.rstrip("/")
    out = [""]
    i = p.find("/", 1)
    while i > 0 and len(out) < MAX_PATH_SEGMENTS:
        out.append(p[:i])
        i = p.find("/", i + 1)
    if p:
        out.append(p)
    return out


def url_entry_key(c: CanonicalURL) -> str:
    """The key of a `urls` list entry: host (no www.), path without trailing slash, query."""
    return c.url_host + c.path.rstrip("/") + key_query(c.query)


def key_query(query: str | None) -> str:
    """A canonical query as URL keys hold it: "?" + query, with '+' as "%20" (servers read a
    query form-encoded: `q=bad+word` is `q=bad%20word`); "" for none, and for an empty one
    ("login.php?", as phishing feeds write them: servers see the same page)."""
    if not query:
        return ""
    return "?" + (query.replace("+", "%20") if "+" in query else query)


# ---- Safe Browsing expressions ---------------------------------------------------------------

def lookup_hosts(c: CanonicalURL) -> list[str]:
    """The exact host, then up to four suffixes formed from its last five labels."""
    if c.is_ip:
        return [c.host]
    labels = c.host.split(".")
    out = [c.host]
    start = max(1, len(labels) - _SB_MAX_HOST_LABELS)
    for i in range(start, len(labels) - 1):
        out.append(".".join(labels[i:]))
    return out


def lookup_paths(c: CanonicalURL) -> list[str]:
    """Path with query, path, then "/" and up to three more directory prefixes."""
    out = []
    if c.query:  # an empty query adds no expression (the Go client and Chrome agree)
        out.append(c.path + "?" + c.query)
    out.append(c.path)
    parts = c.path.split("/")[1:-1]
    prefix = "/"
    for i in range(min(len(parts), _SB_MAX_PATH_PREFIXES - 1) + 1):
        if prefix not in out:
            out.append(prefix)
        if i < len(parts):
            prefix += parts[i] + "/"
    return out


def expressions(c: CanonicalURL) -> list[str]:
    """Every Safe Browsing host-suffix/path-prefix expression of the URL (at most 30)."""
    return [h + p for h in lookup_hosts(c) for p in lookup_paths(c)]


# ---- URLs embedded in a query ----------------------------------------------------------------

_EMBEDDED = re.compile(r"(?i)(?:https?:|www\.|[/\\]{2})")  # [/\\]{2}: a Location opens it


def embedded_urls(c: CanonicalURL) -> list[str]:
    """Query values that are URLs themselves (`/go?u=https%3A%2F%2Fevil.com`), decoded until
    they read as one (a redirector may encode them several times), and that form decoded once
    more if it still reads as one and differs: what a redirector opens after its framework has
    decoded the query (`u=https:%2F%2Fevil.com` is https://evil.com, `u=https://a.com%40b.com`
    is b.com). Leading spaces and '+' go (a Location header loses them); `//host`, and the same
    with backslashes, is https://host. At most two forms a value, and MAX_EMBEDDED + 1 URLs (one
    more than any link has checked, so its caller knows there were more)."""
    if not c.query or _EMBEDDED.search(c.query) is None:
        return []  # the canonical query is fully decoded: no URL in it, none in any value
    out: list[str] = []
    seen: set[str] = set()
    # Each value, and each part taken whole: a redirector may read its query as one URL that
    # holds a '=' of its own (`/go?https://evil.com/x?a=b`: no name=value pair).
    values: list[str] = []
    for part in (c.raw_query or "").split("&"):
        value = part.partition("=")[2]
        values += (value, part) if value else (part,)
    for value in values:
        found = 0
        for _ in range(MAX_EMBED_DEPTH + 2):
            url = value.lstrip("+").strip(_C0_SPACE)
            if _EMBEDDED.match(url):
                url = "https:" + url if url[0] in "/\\" else url
                if url not in seen:
                    seen.add(url)
                    out.append(url)
                    if len(out) > MAX_EMBEDDED:
                        return out  # more than any tree checks: the caller flags the link
                found += 1
            elif found:
                break
            decoded = unquote(value.replace("+", " "))
            if found == 2 or decoded == value:
                break
            value = decoded
    return out
