"""Safe Browsing v4 canonicalization, for `hashes` lists and `explain`.

Why a second canonicalizer: `urls.canonicalize` answers "what will a browser open?" and refuses what
a browser refuses (`http://ho%23st/` is no link at all). A `hashes` list holds digests of Safe
Browsing expressions made by tools that canonicalize the Safe Browsing way, which keeps such hosts
(escaped), keeps other schemes (`ftp://`), keeps IPv6 literals as written and reads IPv4 hosts the
inet_aton way. To meet those digests, linkguard computes the same strings here.

The algorithm is the v4 docs' (https://developers.google.com/safe-browsing/v4/urls-hashing
#canonicalization), as google/safebrowsing's urls.go implements it:

  " http://u@WWW.%C3%9Cmlat.com.:81/a/./b/%252E%252E/c?x=%2541#frag "
   1. cut the fragment, trim, drop tab/CR/LF
                          -> "http://u@WWW.%C3%9Cmlat.com.:81/a/./b/%252E%252E/c?x=%2541"
   2. unescape until stable, escape once (bytes <= 0x20, >= 0x7f, '#', '%'; uppercase hex)
                          -> "http://u@WWW.%C3%9Cmlat.com.:81/a/./b/../c?x=A"
   3. scheme (none: http), query after the first '?', host up to the first '/'
   4. host: userinfo and port dropped; the browser's reading where a browser accepts the host
      (UTS-46 IDNA, IPv4 number forms), else Safe Browsing's own: dots collapsed and trimmed,
      plain Punycode, inet_aton-style IPv4, lowercase. IPv6 literals stay as written, lowercase
                                             -> www.xn--mlat-zra.com
   5. path: dot segments resolved, '//' collapsed (the query is left alone) -> /a/c
  -> "http://www.xn--mlat-zra.com/a/c?x=A"

  expressions("http://a.b.c/1/2.html?param=1")
  -> a.b.c/1/2.html?param=1  a.b.c/1/2.html  a.b.c/  a.b.c/1/   (and the same under b.c)
     the exact host plus suffixes of its last five labels x the path with and without the query
     plus up to four directory prefixes: at most 5 x 6 = 30 (docs, "Suffix/Prefix Expressions")

Where linkguard differs from the Go client, on purpose (tests/test_safebrowsing.py lists each case):
  - the query is kept, as the docs keep it (`http://www.google.com/q?r?s`); Go drops it;
  - escapes use uppercase hex (docs); Go writes `%1b`;
  - host suffixes come from the last five labels (docs, and the contract's "at most 30"); Go uses
    seven;
  - a last segment "." or ".." keeps the trailing slash (`/a/b/..` -> `/a/`), as RFC 3986 section
    5.2.4, browsers and Chrome's Safe Browsing client resolve it; Go's path.Clean gives `/a`;
  - unescaping always runs to completion, in linear time; Go gives up after 1024 rounds;
  - a URL whose host is empty after cleaning (`http://.../`) fails; Go returns `http:///`;
  - the scheme is lowercased; every trailing `:port` is dropped (`a:1:2` -> `a`), so the result is
    stable; a host the browser accepts is read as the browser reads it (`WWW.ÜMLAT.com` is mapped
    before Punycode; Go would Punycode it unmapped).
"""

from __future__ import annotations

import ipaddress
import re

from linkguard import urls

# Go's strings.TrimSpace: ASCII whitespace and Unicode White_Space (not Python's str.strip set,
# which also holds U+001C..U+001F).
_TRIM = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
        "\u200a\u2028\u2029\u202f\u205f\u3000"
# Docs: "remove tab (0x09), CR (0x0d), and LF (0x0a) characters from the URL".
_DROP_TAB_CR_LF = str.maketrans("", "", "\t\r\n")
# Docs: "percent-escape all characters that are <= ASCII 32, >= 127, '#', or '%'. The escapes
# should use uppercase hex characters." Applied to bytes decoded as Latin-1.
_ESCAPES = {b: f"%{b:02X}" for b in (*range(0x21), *range(0x7F, 0x100), ord("#"), ord("%"))}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_AN_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}")
_HEX_PAIR = {bytes((a, b)): int(bytes((a, b)), 16) for a in _HEX for b in _HEX}
# A lone surrogate outside U+DC80..U+DCFF stands for no byte (surrogateescape uses that range).
_LONE_SURROGATE = re.compile(r"[\ud800-\udc7f\udd00-\udfff]")
_ESCAPED_BYTE = re.compile(r"[\udc80-\udcff]")
# RFC 3986 scheme characters; what follows a ':' decides whether they were a scheme (urls.go
# getScheme: "www.abc.com:80/" has a port, not a scheme).
_SCHEME_CHARS = re.compile(r"[A-Za-z0-9+.\-]*")
_PORT_AHEAD = re.compile(r":[0-9]+(?:/|\Z)")
# Trailing dots and ":port"s, matched on the reversed host: anchored at the end without the
# backtracking a search for "(:[0-9]+)+$" does on ":1:1:1...x".
_PORTS_AND_DOTS_REVERSED = re.compile(r"(?:\.|[0-9]*:)+")
# IPv4 per urls.go parseIPAddress: a part is what Go's strconv.ParseUint(s, 0, 32) reads within
# the characters Go's possibleIPRegexp allows: hex, octal (leading 0) or decimal.
_IP_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
# urls.go: "The Windows resolver allows a 4-part dotted decimal IP address to have a space followed
# by any old rubbish, so long as the total length of the string doesn't get above 15 characters."
_WINDOWS_IP = re.compile(r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}) ")
# urls.go isUnicode: "For legacy reasons, 0x80 is not considered a Unicode character."
_UNICODE_BYTE = re.compile(rb"[\x81-\xff]")
# RFC 1035 section 2.3.4: a DNS name is at most 253 characters, a label at most 63. Longer ones
# cannot be looked up, so no list names them; the bounds keep Punycode's quadratic encoder cheap.
_MAX_IDN_HOST = 253
_MAX_IDN_LABEL = 63


def canonical_url(url: str) -> str | None:
    """The Safe Browsing canonical URL (`http://www.google.com/q?r?s`), or None without a host."""
    c = _canonicalize(url)
    return None if c is None else str(c)


def expressions(url: str) -> list[str]:
    """The host-suffix x path-prefix expressions of `canonical_url(url)` (at most 30), or []."""
    c = _canonicalize(url)
    if c is None:
        return []
    # An empty query ("/q?") adds no expression of its own: Go and Chrome check the query
    # variant only when there is a query.
    return urls.expressions(c._replace(query=c.query or None))


def parse_ip_address(host: str) -> str | None:
    """An inet_aton-style IPv4 host as a dotted quad (`0x12.0x43.0x44.0x01` -> `18.67.68.1`,
    `276.2.3` -> `20.2.0.3`), or None. Every part but the last is one byte, masked; the last fills
    the remaining bytes (urls.go parseIPAddress, canonicalNum)."""
    if len(host) <= 15 and len(_to_bytes(host)) <= 15 and (m := _WINDOWS_IP.match(host)):
        host = m.group(1)
    parts = host.split(".")
    if len(parts) > 4:
        return None
    quad: list[int] = []
    for i, part in enumerate(parts):
        n = _parse_uint32(part)
        if n is None:
            return None
        width = 5 - len(parts) if i == len(parts) - 1 else 1
        quad += [(n >> (8 * k)) & 0xFF for k in reversed(range(width))]
    return ".".join(map(str, quad))


# ---- the URL --------------------------------------------------------------------------------

def _canonicalize(url: str) -> urls.CanonicalURL | None:
    s = url.split("#", 1)[0].strip(_TRIM).translate(_DROP_TAB_CR_LF)
    # One character per byte from here on. Go parses the escaped string; parsing the bytes and
    # escaping each part is the same, as escaping never touches ':', '/', '?', '@', '[' or ']'.
    raw = _unescape_fully(_to_bytes(s)).decode("latin-1")
    scheme, rest = _split_scheme(raw)
    rest, question, query = rest.partition("?")
    if scheme:
        if not rest.startswith("//"):
            return None  # "mailto:x@y.com": a scheme without an authority names no host
        rest = rest[2:]
    else:
        scheme = "http"  # urls.go: "If missing, we assume that it is an http"
    hostish, slash, path = rest.partition("/")
    host = _canonical_host(hostish)
    if host is None:
        return None
    # The path is unescaped already: only dot segments and repeated slashes are left to do. Docs: "Do not apply these path canonicalizations to the query parameters".
    path = slash + path
    if "//" in path or "/." in path:
        path = urls.resolve_path(path)
    path = _escape(path) or "/"
    q = _escape(query) if question else None
    text = f"{scheme}://{host}{path}" + ("" if q is None else "?" + q)
    return urls.CanonicalURL(text=text, scheme=scheme, host=host, path=path, query=q,
                             is_ip=_is_ip(host), raw_query=None)


def _split_scheme(s: str) -> tuple[str, str]:
    """urls.go getScheme: scheme characters up to a ':' that does not start a port."""
    m = _SCHEME_CHARS.match(s)
    i = m.end() if m else 0
    if i == len(s) or s[i] != ":" or _PORT_AHEAD.match(s, i):
        return "", s
    if i and not s[0].isalpha():
        return "", s  # a scheme starts with a letter
    return s[:i].lower(), s[i + 1:]


# ---- the host -------------------------------------------------------------------------------

def _canonical_host(hostish: str) -> str | None:
    """The host (unescaped, one character per byte) without userinfo and port, as the browser
    reads it when it accepts it, else by Safe Browsing's lenient rules."""
    # Leading dots go first, then trailing dots and every port, an empty one too, so that what
    # is left reads back as itself ("a:1.", "a:1:2" and "a:" are host "a"; Go would keep "a:1",
    # "a:1" and "a:", and read "a:1" as "a" the next time).
    host = hostish.rpartition("@")[2].lstrip(".")
    if host.startswith("[") and "]" not in host:
        return None  # an unterminated IP literal (urls.go parseHost)
    if tail := _PORTS_AND_DOTS_REVERSED.match(host[::-1]):
        host = host[: len(host) - tail.end()]
    if not host:
        return None  # Go would go on with an empty host and give "http:///"
    # IPv6 literals are kept as written ("[::192.9.5.5]", TestCanonicalHost); a browser would
    # compress them. A backslash is a slash to a browser, but host text to Safe Browsing.
    if not host.startswith("[") and "\\" not in host:
        # Dots collapsed first, as Safe Browsing reads the host: "1..2" is 1.0.0.2 to both.
        host = ".".join(label for label in host.split(".") if label)
        browser_host = urls.canonical_host(_escape(host))
        # An empty label left ("5256.256.\u3002\u3002" maps to "5256.256...") means the browser
        # read dots that Safe Browsing drops: its reading is not Safe Browsing's.
        if browser_host is not None and "" not in browser_host.split("."):
            return browser_host
    return _lenient_host(host.encode("latin-1"))


def _lenient_host(raw: bytes) -> str | None:
    """urls.go parseHost for a host no browser opens: `%01%80.com`, `w!eird<>ho$^.com`."""
    if len(raw) <= _MAX_IDN_HOST and _UNICODE_BYTE.search(raw):
        raw = _punycode(raw)
    raw = b".".join(label for label in raw.split(b".") if label)  # docs: collapse and trim dots
    if not raw:
        return None
    # bytes.lower() is ASCII-only, as Go's ToLower is on these ASCII or escaped hosts.
    escaped = _escape(raw.decode("latin-1"))
    return parse_ip_address(escaped) or _escape(raw.lower().decode("latin-1"))


def _punycode(raw: bytes) -> bytes:
    """Go's idna.ToASCII (the Punycode profile: no mapping, no validation) label by label; an
    invalid byte reads as U+FFFD, as in Go. A label longer than DNS allows stays as it is."""
    text = raw.decode("utf-8", "surrogateescape")
    labels = []
    for label in text.split("."):
        if not label.isascii() and len(label) <= _MAX_IDN_LABEL:
            label = "xn--" + _ESCAPED_BYTE.sub("\ufffd", label).encode("punycode").decode()
        labels.append(label)
    return ".".join(labels).encode("utf-8", "surrogateescape")


def _is_ip(host: str) -> bool:
    """urls.go: net.ParseIP(strings.Trim(host, "[]")) -- no suffixes are formed from an IP."""
    bare = host.strip("[]")
    if "%" in bare:
        return False  # a zone ("fe80::1%25en0") is not an address to net.ParseIP
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return False
    return True


def _parse_uint32(part: str) -> int | None:
    if not _IP_PART.fullmatch(part):
        return None
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:], 16
    elif part.startswith("0"):
        digits, base = part, 8
    else:
        digits, base = part, 10
    if len(digits.lstrip("0")) > 11:
        return None  # over 32 bits in any base; also keeps int() off megabyte strings
    n = int(digits, base)
    return n if n < 1 << 32 else None


# ---- escaping -------------------------------------------------------------------------------

def _to_bytes(s: str) -> bytes:
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # Go holds UTF-8 bytes, where a lone surrogate can only have arrived as U+FFFD.
        return _LONE_SURROGATE.sub("\ufffd", s).encode("utf-8", "surrogateescape")


def _escape(raw: str) -> str:
    """Escape text holding one character per byte (bytes decoded as Latin-1)."""
    return raw.translate(_ESCAPES)


def _unescape_fully(s: bytes) -> bytes:
    """Percent-unescape until no escape is left ("%252541" -> "A"), in one pass.

    Docs: "repeatedly percent-unescape the URL until it has no more percent-escapes". Two escapes
    never overlap ('%' is no hex digit), so decoding each one as soon as it is complete reaches
    the same result as repeated full passes, in linear time however deep the nesting. `out` never
    holds an escape; only its last two bytes can start one with what follows.
    """
    if _AN_ESCAPE.search(s) is None:
        return s
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        if s[i] == 0x25:
            byte = _HEX_PAIR.get(s[i + 1:i + 3])
            if byte is None:
                out.append(0x25)
                i += 1
            else:
                out.append(byte)
                i += 3
        elif 0x25 in out[-2:]:
            out.append(s[i])  # may complete "%4" + "1", or a '%' decoded just before
            i += 1
        else:
            j = s.find(b"%", i)
            j = n if j < 0 else j
            out += s[i:j]  # no '%' in it, none at the end of `out`: no escape can form
            i = j
            continue
        # The last byte may end an escape begun before it ("%%341" -> "%4" + "1" -> "A").
        while len(out) >= 3 and out[-3] == 0x25 and out[-2] in _HEX and out[-1] in _HEX:
            out[-3:] = bytes((_HEX_PAIR[bytes(out[-2:])],))
    return bytes(out)
