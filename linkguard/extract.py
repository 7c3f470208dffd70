r"""Find link candidates in chat text the way chat clients linkify them, and then some.

    find_links("see hxxps://evil[.]com/x!")   -> [Candidate("https://evil.com/x", 4, 24)]
    find_links("(docs at Example.COM/a_(b)).") -> [Candidate("Example.COM/a_(b)", 9, 26)]
    find_links("ev\u200bil。com and me@example.com") -> [Candidate("evil.com", 0, 9)]
    find_links("ev\u200bil.com") -> [Candidate("evil.com", 0, 9, others=(("il.com", 9),))]

The reference is twitter-text's `extractUrl` (conformance: tests/test_extract.py), with these
differences, each because a blocker must see what a browser would open:
- TLDs come from the Public Suffix List (linkguard.psl: tldextract's bundled snapshot, read on
  first use, never fetched). A schemeless link needs one; with a scheme an unlisted but TLD-shaped last label is
  accepted too (a retired or private TLD still opens somewhere).
- Defanged and disguised forms: `hxxp`, `[:]`, `[://]`, `[.]`, `(.)`, `{.}`, `[dot]`, `(dot)`,
  the lookalike full stops U+3002 U+FF0E U+FF61 U+FE52 U+2024 (UTS-46 maps them to '.'),
  Default_Ignorable code points (zero-width, soft hyphen, bidi controls: UAX-44; UTS-46 ignores
  most) and fullwidth ASCII (its NFKC form, one code point for one).
- userinfo (`http://good.com@evil.com`), IPv4/IPv6 literals, percent-encoded hosts, '\' for
  '/', one slash or many after the scheme, a trailing root dot and `//host` in markup belong to the
  link (WHATWG URL parsing).
- Schemeless hosts may be Greek or Cyrillic too (UTS-39 confusables: "еvil.com" is one host).
- Square brackets in a path or query only when balanced: `[http://a.com/x](http://b.com)` and
  `[url=http://a.com/x]t[/url]` hold links to a.com/x, as Markdown and BBCode mean.
- A t.co slug over 40 characters is kept (twitter-text drops the link).
- The links other linkifiers (linkify-it, linkifyjs, Android's Linkify) and a browser make of
  the same text, where twitter-text's rules read on or refuse: other readings of a candidate, or
  candidates that are not `linked` (reported only when not allowed): _other_links,
  _android_links, _android_path.

How: a cheap pre-filter returns [] for text that cannot hold a link. The "view" is the text
itself, or, only when the text holds ignorable or fullwidth code points, a copy without the
ignorables (with a table mapping view offsets back) and fullwidth folded. A hint regex finds the
white-space delimited tokens worth a look; in those one compiled regex finds a scheme + host or a
schemeless host; Python picks the TLD and validates labels; small regexes take port, path, query.
"""

from __future__ import annotations

import bisect
import functools
import html
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import unquote

import ada_url

from linkguard.record import Record

__all__ = ["MAX_CANDIDATES", "Candidate", "find_links", "markup_links"]

MAX_CANDIDATES = 1000
_MAX_HOST = 1024  # raw host span, defang tokens included; DNS stops at 253, this bounds work


class Candidate(Record):
    """A link found in a text (record.Record: one is made for every link)."""

    _fields = ("url", "start", "end", "whole", "whole_end", "others", "linked")

    def __init__(self, url: str, start: int, end: int, whole: str | None = None,
                 whole_end: int = 0, others: tuple[tuple[str, int], ...] = (),
                 linked: bool = True) -> None:
        self.url: Final = url  # refanged, as a browser would receive it; the scheme may be absent
        # code-point span in the original text: what a renderer would linkify / strip
        self.start: Final = start
        self.end: Final = end
        # The link as a linkifier that takes the whole white-space delimited token makes it
        # (and as a browser opens the token pasted whole), when the token goes on past `end`
        # with more than closing punctuation: "http://good.com)@evil.com/" (WHATWG: host
        # evil.com), a path in a script twitter-text stops at ("http://a.com/日本/../x" opens
        # /x). Its span ends at `whole_end` (at most where the next link starts); -1: not
        # checked, over the budget.
        self.whole: Final = whole
        self.whole_end: Final = whole_end
        # Other links that clients make of the same text, each with the end of its span (at
        # most where the next link starts): without a scheme, the ASCII domain twitter-text
        # links in a host that starts in a script its validAsciiDomain does not take
        # ("приветevil.com", "Ｘevil.com", "пример.evil.com/x" hold "evil.com": a browser given
        # the whole opens another host), and the links of other linkifiers' rules
        # (_other_links) inside the span.
        self.others: Final = others
        # False: only other linkifiers' rules make this link (linkifyjs, linkify-it:
        # _other_links), not twitter-text's; it is reported only when it is not allowed.
        self.linked: Final = linked


# ---- patterns ------------------------------------------------------------------------------

# twitter-text latinAccentChars: letters allowed in schemeless hosts and in paths.
_LATIN = ("\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259"
          "\u025b\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff")
_LATIN_CHAR = re.compile(f"[{_LATIN}]")
_DOTS = "\u3002\uff0e\uff61\ufe52\u2024"  # lookalike full stops used as label separators
_DEFANGED = r"\[\.\]|\(\.\)|\{\.\}|(?i:\[dot\]|\(dot\)|\{dot\})"
_DOT = rf"(?:[.{_DOTS}]|{_DEFANGED})"  # a label separator: '.', a lookalike, a defang token
# twitter-text validDomainChars: with a scheme a label may be in any script; not ASCII
# punctuation (but '-' and '_', checked per label), space, controls, surrogates, non-characters.
_U = rf"[^\s\x00-\x2c\x2e\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x9f{_DOTS}\ud800-\udfff\ufffe\uffff]"
# twitter-text validAsciiDomain: a schemeless label is ASCII or accented Latin (and '_'); we add
# Greek and Cyrillic, the scripts of Latin's whole- and mixed-script confusables (UTS-39), so
# "\u0435vil.com" (Cyrillic e) is that host, not "vil.com".
_A = rf"[0-9A-Za-z_\-{_LATIN}\u0370-\u03ff\u0400-\u04ff]"
_TW_ASCII = re.compile(rf"[0-9A-Za-z_\-{_LATIN}]")  # twitter-text validAsciiDomain's labels
# A character of a label that _U takes and _A does not (CJK, Hangul, Thai, Arabic, ...).
_NOT_A = rf"[^\x00-\x9f\s{_LATIN}\u0370-\u03ff\u0400-\u04ff{_DOTS}\ud800-\udfff\ufffe\uffff]"

_U1 = re.compile(_U)
_ASCII_DOT_OR_DOTS = "." + _DOTS
_UL = rf"(?:{_U}|%[0-9A-Fa-f]{{2}})++"  # WHATWG percent-decodes a host: http://%65vil.com
# An IPv6 literal, escapes and all, its brackets too: Chromium unescapes it
# (http://[2001:db8::%31]/, http://%5B2001:db8::1]/; urls._chrome_reading)
_IP6 = (r"(?:\[|%5[Bb])(?=[^\]\s]{0,128}?(?::|%3[Aa]))"
        r"(?:[0-9A-Fa-f.:]|%(?!5[Dd])[0-9A-Fa-f]{2})++(?:\]|%5[Dd])")
_IP6_RE = re.compile(_IP6)

def _schemeful(userinfo_stops: str) -> str:
    """A scheme, its slashes, userinfo without `userinfo_stops` and a host (groups 1-4)."""
    return (
        r"(?P<scheme>(?i:h(?:tt|xx)ps?))"
        r"(?P<sep>(?::|\[:\])[/\\]{1,16}|\[://\])"  # WHATWG: http: takes any run of / and \
        # userinfo, up to the last '@' (WHATWG), perhaps defanged; the lookahead is a cheap guard
        rf"(?P<userinfo>(?=[^\s/\\?#]{{1,256}}@)"
        rf"(?:[^\s/\\?#{userinfo_stops}\ud800-\udfff]|{_DEFANGED}){{1,256}}(?:@|\[@\]))?"
        rf"(?P<shost>{_IP6}|{_UL}(?:{_DOT}{_UL})*+)")


_SCHEMELESS = rf"(?P<host>(?!_){_A}++(?:(?:{_DOT}{_A}++)++(?:{_DOT}{_U}++)?|{_DOT}{_U}++))"
_CANDIDATE = re.compile(
    # 1. With a scheme, not after [0-9A-Za-z@$#] (twitter-text validUrlPrecedingChars).
    r"(?<![0-9A-Za-z@$#\uff20\uff03])" + _schemeful(r"\"'<>()\[\]{}`")
    # 2. Without: `//host` after a markup delimiter is protocol-relative; any other host must
    # not follow [-_./] (twitter-text invalidUrlWithoutProtocolPrecedingChars), nor '@' (mail),
    # but for the one to three '_' that open Markdown emphasis at the start of a word, perhaps
    # inside other emphasis or brackets ("_evil.com_", "*__evil.com__*", "(___evil.com___)"),
    # and for a '.' after a label in a script _A does not take: twitter-text's validDomain
    # takes "日本.evil.com" whole, and without a scheme it extracts the ASCII domain in it.
    + rf"|(?:(?<![^\s(\"'=<\[])//|(?<![0-9A-Za-z@$#\uff20\uff03\-/{_LATIN}])"
    rf"(?:(?<!\.)|(?<={_NOT_A}\.))"
    r"(?<![^\s*~(\[\"'_]_)(?<![^\s*~(\[\"'_]__)(?<![^\s*~(\[\"']___)(?<!____))" + _SCHEMELESS
)
# Android's Linkify (android.util.Patterns.AUTOLINK_WEB_URL: Signal, and most apps on Android)
# tries each word boundary from the left (it drops a link right after '@', and reads on past
# it), without a scheme not right after "://": it links after '$' and '#' (`#https://evil.com`,
# `$evil.com`), and a host after '-', '.' or '/' where no host it links starts earlier
# (`x-.evil.com`, `m/evil.com`; `ttps://www.evil.com` holds evil.com; `東京-evil.com` is one
# host, as it takes any non-ASCII letter into a label). Its userinfo may hold parentheses and
# quotes (`https://(x)@evil.com`). A browser maps a host's letters as the view does, so its
# hosts are read as the scan reads them.
_ANDROID = re.compile(r"(?<!\w)(?P<scheme>(?i:https?|ftp|rtsp))(?P<sep>://)(?P<userinfo>)(?P<shost>)"
                      r"|(?<!\w)(?<!://)(?<![^\x00-\x7f\s][-.])(?!-)" + _SCHEMELESS)
# Where Android may link what the scan does not: in a token that holds a link to twitter-text,
# '$' or '#' glued before one, or an '@' (or more than closing punctuation after the link, which
# find_links sees); in one that holds none, also a host or an IPv4
# address after '/', or after a '-' or '.' that follows no letter or digit, a scheme, userinfo
# with a parenthesis or a quote, a TLD before '-' or '+', a dotted quad (not `e.g.`, `v2.1`,
# `3.5` or `/www.a`: nor does Android link those).
_ANDROID_HINT = re.compile(r"[$#](?:(?i:https?)://|[0-9A-Za-z][0-9A-Za-z-]*\.)|@")
_ANDROID_QUIET_HINT = re.compile(r"(?:[$#/]|(?<![^\W_])[-.])"
                                 r"(?=[0-9A-Za-z][\w-]*\.[^\W\d_]{2}|[0-9]{1,3}(?:\.[0-9]{1,3}){3})"
                                 r"|[$#](?i:https?:)|[@()'+]|://|\.[^\W\d_]{2,63}-"
                                 r"|[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")
# Telegram (TDLib's find_urls, behind its apps and its server) links "http://" and "https://"
# glued after anything (`xhttps://evil.com`, `@https://evil.com`), a host after userinfo with no
# scheme unless the two are an e-mail address (`bob@evil.com/x`, `x%40y@evil.com`: e-mail
# addresses to the others), and ends a link before a port over 65535 (`evil.com:99999/x` is
# evil.com: _telegram_port).
_TELEGRAM_HINT = re.compile(r"[0-9A-Za-z@$#](?i:https?)://|@[^\s@/]*\.")
_TELEGRAM_START = re.compile(r"(?<=[0-9A-Za-z@$#])(?=(?i:https?)://)|@(?=[^\s@/]*\.)")
# An e-mail address to Telegram (userinfo and a host that are not one are a link to it).
_TELEGRAM_MAIL = re.compile(r"(?i:(?:[a-z0-9_-]{0,26}[.+]){0,10}[a-z0-9_-]{1,35}@"
                            r"(?:(?:[a-z0-9][a-z0-9_-]{0,28})?[a-z0-9]\.){1,6}[a-z]{2,8})")
_TELEGRAM_QUERY = re.compile(r"[^.]*\.[^?#]*[?#]")  # userinfo that a link before it reads as a query
_FRAGMENT = re.compile(r"#[\w/]")  # (after an e-mail address, `bob@evil.com#1` is a link to it)
_NOT_TELEGRAM_USERINFO = "/[]{}()'`<>\"@\xab\xbb"  # (nor white space)
# A link that starts where it is matched (the scan's pattern, with no lookbehind).
_LINK_HERE = re.compile(_schemeful(r"\"'<>()\[\]{}`") + "|" + _SCHEMELESS)
# How other linkifiers (linkify-it, linkifyjs) read a link: no defang token or lookalike dot is
# a dot to them (`h[.]files-host.com/u/abc` and `b．files-host.com/u/abc` are
# files-host.com/u/abc), and linkifyjs links a host after anything but a letter, a digit, '@',
# '$' or '#': after '_', '/', a '.' that does not follow an ASCII letter or digit, a '-' that
# follows no letter or digit in any script (`東京-evil.com` is one host), nor a '-' (`x_.evil.com`
# is evil.com, `a,//evil.com/x` is //evil.com/x to linkify-it), with no '_' in a label, not
# starting with '-'; never an IPv4 address without a scheme (`/var/log/198.51.100.23/`).
_AL = _A.replace("_", "")
_LENIENT = re.compile(
    r"(?<![0-9A-Za-z@$#\uff20\uff03])(?P<scheme>(?i:https?))(?P<sep>:[/\\]{1,16})"
    r"(?P<userinfo>(?=[^\s/\\?#]{1,256}@)[^\s/\\?#\"'<>()\[\]{}`\ud800-\udfff]{1,256}@)?"
    rf"(?P<shost>{_IP6}|{_UL}(?:\.{_UL})*+)"
    rf"|(?<![0-9A-Za-z@$#\uff20\uff03{_LATIN}\u0370-\u03ff\u0400-\u04ff])"
    r"(?<![^\W_]-)(?<!--)(?<![0-9A-Za-z]\.)(?!-)"
    rf"(?P<host>{_AL}++(?:(?:\.{_AL}++)++(?:\.{_U}++)?|\.{_U}++))"
)
_SCHEME, _SEP, _USERINFO, _SHOST, _HOST = 1, 2, 3, 4, 5

_DOT_RE = re.compile(_DOT)
_DOT_SPLIT = re.compile(f"({_DOT})")
_DEFANG = re.compile(_DEFANGED)
_PORT = re.compile(r":[0-9]++")
# twitter-text validGeneralUrlPathChars and validUrlBalancedParens (one nested level, any number
# of inner groups), the `{.}` defang token, and brackets only balanced: "]" closes Markdown link
# text or a BBCode tag ("[url=http://a.com/x]t[/url]"), "[/" opens a BBCode closing tag.
_P = rf"[0-9A-Za-z\u0400-\u04ff!*';:=+,.$/\\%#\-\u2013_~@|&{_LATIN}]"  # '\' is '/' (WHATWG)
_PATH = re.compile(rf"[/\\](?:{_P}|\((?:{_P}|\({_P}++\))++\)|\[(?!/){_P}*+\]|\{{\.\}})*+")
_PATH_RUN = re.compile(rf"[/\\]{_P}*+")  # _PATH up to its first bracket: one run, matched fast
_PATH_STRIP = "!*';:,.$%~@|&\u2013"  # path chars that are not validUrlPathEndingChars
_Q = r"[0-9A-Za-z!?*'@();:&=+$/%#\-_.,~|]"  # twitter-text validUrlQueryChars
_QUERY = re.compile(rf"\?(?:{_Q}|\[(?!/){_Q}*+\])*+")
_QUERY_RUN = re.compile(rf"\?{_Q}*+")  # _QUERY up to its first bracket
_QUERY_STRIP = "!?*'@();:+$%.,~|"  # query chars that are not validUrlQueryEndingChars
_AFTER_ROOT_DOT = ("/", "\\", "?", "#")
_TCO_SLUG = re.compile(r"/[0-9A-Za-z]+")  # twitter-text validTcoUrl
# What ends a token without being part of a link taken whole: closing punctuation and quotes,
# Markdown emphasis, and their CJK forms.
_TOKEN_TAIL = ".,:;!?'\")]}>*_~\u3001\u3002\uff0c\uff01\uff1f\uff09\uff3d\u300d\u300f"
# What ends a token taken whole, before white space: in text, a quote, '<' or a backtick; in an
# HTML tag (or an autolink <...>), '>' too. And the same with '@'.
_WHOLE_STOP = re.compile(r"[\"<`]")
_WHOLE_STOP_OR_AT = re.compile(r"[\"<`@]")
_TAG_STOP = re.compile(r"[\"<>`]")
_TAG_STOP_OR_AT = re.compile(r"[\"<>`@]")
_AUTHORITY_END = re.compile(r"[/\\?#]")
_AUTHORITY_OR_STOP_OR_AT = re.compile(r"[/\\?#<`@]")

# Pre-filter on the raw text: a link needs a dot, a lookalike, a `[dot]` token or a colon.
_MAYBE = re.compile(rf"[:(\[{{\uff1a{_DOTS}](?:(?<![(\[{{])|(?i:dot)[)\]}}])")
# Default_Ignorable_Code_Point (UAX-44; UTS-39 flags them, UTS-46 maps most to nothing): not in
# the view, so `ev\u200bil.com` is evil.com, as a browser opens it.
_IGNORABLE_RANGES = ((0xAD, 0xAD), (0x34F, 0x34F), (0x61C, 0x61C), (0x115F, 0x1160),
                     (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
                     (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
                     (0xFFA0, 0xFFA0), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
_IGNORABLE = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _IGNORABLE_RANGES) + "]+")


def _compat_forms() -> tuple[dict[int, str], dict[int, str]]:
    """Compatibility forms that NFKC (and so IDNA, as a browser maps a host) turns into ASCII
    letters and digits: ({code point: one}, {code point: several}). Circled, mathematical and
    letterlike letters, Roman numerals, superscripts, ordinals (`https://evil.ⓒom/`, `𝐞𝐯𝐢𝐥.com`
    open evil.com); ligatures, squared and circled units and numbers (`netﬂix.com`,
    `https://evil.㏌/`, `⑲⑧.51.100.23`). Looked for in the Unicode blocks that hold them (about
    5,000 code points): ~2 ms at import. What this Python's Unicode tables do not know yet (the
    outlined letters of Unicode 16) is asked of ada-url, the browser's own mapping."""
    blocks = ((0x80, 0x300), (0x1D00, 0x1DC0), (0x2070, 0x2500), (0x2C7C, 0x2C7E),
              (0x3200, 0x3400), (0xA7F0, 0xA800), (0xFB00, 0xFB07), (0x10780, 0x107C0),
              (0x1CC00, 0x1CF00), (0x1D400, 0x1D800), (0x1F100, 0x1F200), (0x1FBF0, 0x1FC00))
    one: dict[int, str] = {}
    several: dict[int, str] = {}
    for lo, hi in blocks:
        for cp in range(lo, hi):
            c = chr(cp)
            n = unicodedata.normalize("NFKC", c)
            if n == c and unicodedata.category(c) == "Cn":  # unassigned here: ask the browser
                try:
                    n = ada_url.idna_to_ascii(c).decode("ascii")
                except ValueError:
                    continue
            if n.isascii() and n.isalnum():
                (one if len(n) == 1 else several)[cp] = n
    return one, several


# Fullwidth ASCII (U+FF0E stays: it is one of _DOTS) and the forms above that make one letter or
# digit, folded in the view one code point for one; those that make several are expanded after.
_FOLD: dict[int, int | str] = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F) if c != 0xFF0E}
_SINGLE, _EXPAND = _compat_forms()
_FOLD.update(_SINGLE)


def _char_class(code_points: Iterable[int]) -> str:
    """A regex class of the code points, as ranges: a class of a thousand single astral code
    points is tested one by one (~20 us a line of text), one of 79 ranges in ~1 us."""
    runs: list[list[int]] = []
    for c in sorted(code_points):
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return "[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "")
                         for a, b in runs) + "]"


_FOLDABLE = re.compile(_char_class(_FOLD.keys() | _EXPAND.keys()))
_EXPANDABLE = re.compile(_char_class(_EXPAND))
_SCHEME_NEXT = re.compile(r"(?i:h(?:tt|xx)ps?)(?::|\[:)")
# A scheme right after a letter or digit: no link if that character was written in ASCII
# (twitter-text validUrlPrecedingChars), a link if it was folded (`ａhttps://evil.com`).
_GLUED_SCHEME = re.compile(r"(?<=[0-9A-Za-z])" + _SCHEME_NEXT.pattern)
# In the view, what every candidate holds: a separator before a label character, a scheme's
# colon and slash, or a defang token. Candidates hold no white space, so only the token around
# a hint gets the full regex. One leading class: the regex engine skips ahead with a fast scan.
_HINT_ASCII = ".:([{"  # (what a hint starts with in ASCII text: _plain_links looks for these)
_HINT = re.compile(rf"[{re.escape(_HINT_ASCII)}{_DOTS}](?:(?<=[.{_DOTS}])(?={_U})|(?<=:)[/\\]"
                   rf"|(?<=\[):|(?<=[(\[{{])(?:\.|(?i:dot))[)\]}}])")
# What ends a token: white space, but for the C0 separators, NEL and U+2028/2029, which GFM's
# autolinker (cmark_isspace) and Discord's take into a link: "https://good.com\x1f@evil.com/"
# is one link there, to evil.com.
# (White space less those, spelt out: as fast as \s, where [^\S...] is 20% slower.)
_SPACE = re.compile(r"[\t-\r \xa0\u1680\u2000-\u200a\u202f\u205f\u3000]")

_NUMERIC = re.compile(r"(?i:0x[0-9a-f]*|[0-9]+)")  # WHATWG: a host ending in a number is IPv4
_OCTET = re.compile(r"25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]")
_ASCII_TLD = re.compile(r"(?i:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")  # RFC 1123 2.1: alphabetic
# Most hosts: ASCII labels of letters, digits and inner '-' (63 at most), an alphabetic last one.
_PLAIN_HOST = re.compile(r"(?:[0-9A-Za-z](?:[0-9A-Za-z-]{0,61}[0-9A-Za-z])?\.)+[A-Za-z]{2,63}")


@functools.cache
def _tlds() -> frozenset[str]:
    """The last label of every Public Suffix List rule, lower case, Unicode and punycode, from
    the project's one copy of the list (linkguard.psl: the bundled snapshot, never fetched)."""
    from linkguard import psl  # late: text without a link never loads the list

    out: set[str] = set()
    for rule in psl.extractor().tlds:
        tld = rule.rsplit(".", 1)[-1].lower()
        out.add(tld)
        if not tld.isascii():
            out.add("xn--" + tld.encode("punycode").decode("ascii"))
    return frozenset(out)


# ---- the view ------------------------------------------------------------------------------


Table = tuple[list[int], list[int]]  # (starts, shifts): see _orig


def _view(text: str) -> tuple[str, Table | None]:
    """The text without ignorables, with fullwidth ASCII and compatibility letters and digits
    folded, and the table of the view's offsets in the text without ignorables when a form was
    expanded into several letters (else None: spans keep their offsets)."""
    view = _IGNORABLE.sub("", text)
    if not _FOLDABLE.search(view):
        return view, None
    folded = view.translate(_FOLD)
    for m in _GLUED_SCHEME.finditer(folded):
        if view[m.start() - 1] != folded[m.start() - 1]:  # a folded character before a scheme
            folded = folded[:m.start() - 1] + " " + folded[m.start():]
    if not _EXPANDABLE.search(folded):
        return folded, None
    parts: list[str] = []
    starts: list[int] = []
    shifts: list[int] = []
    pos = shift = 0  # shift: an offset in `folded` less the same character's in the view
    for m in _EXPANDABLE.finditer(folded):
        if _SCHEME_NEXT.match(folded, m.end()):
            continue  # "ﬂhttps://": no letter of the text is glued to the scheme
        t = m.start()
        letters = _EXPAND[ord(folded[t])]
        parts += (folded[pos:t], letters)
        pos = t + 1
        v = t - shift  # where it starts in the view; each letter after the first is text[t]
        for i in range(1, len(letters)):
            starts.append(v + i)
            shifts.append(shift - i)
        shift -= len(letters) - 1
    parts.append(folded[pos:])
    return "".join(parts), (starts, shifts)


def _offsets(text: str) -> Table:
    """Where the view's offsets shift against the text's, for the ignorables the view leaves
    out: view[v] is text[v + shifts[i]] for the last i with starts[i] <= v (text[v] if there is
    none). Built only for a found link."""
    starts: list[int] = []
    shifts: list[int] = []
    removed = 0
    for m in _IGNORABLE.finditer(text):
        removed += m.end() - m.start()
        starts.append(m.end() - removed)
        shifts.append(removed)
    return starts, shifts


def _mapper(text: str, view: str, expanded: Table | None) -> Callable[[int], int] | None:
    """view offset -> text offset, or None when they are the same."""
    if expanded is None:
        if len(view) == len(text):
            return None
        starts, shifts = _offsets(text)
        return lambda v: _orig(v, starts, shifts)
    if not _IGNORABLE.search(text):
        return lambda v: _orig(v, *expanded)
    starts, shifts = _offsets(text)
    return lambda v: _orig(_orig(v, *expanded), starts, shifts)


def _orig(v: int, starts: list[int], shifts: list[int]) -> int:
    i = bisect.bisect_right(starts, v) - 1
    return v + shifts[i] if i >= 0 else v


# ---- hosts ---------------------------------------------------------------------------------


_NOT_IN_HOST = re.compile(r"[\x00-\x20%#/:<>?@\[\\\]^|\x7f]")  # WHATWG forbidden host code points


def _tld_len(label: str, whole: bool) -> int:
    """Length of the longest prefix of `label` that is a listed TLD, or 0. A prefix must be
    followed by '_' or a non-ASCII character: twitter-text's TLD lookahead (?=[^0-9a-z@+-]|$)
    is what cuts "example.comだよね" to example.com (text without spaces) and "_http://a.com_"
    to http://a.com (Markdown emphasis)."""
    tlds = _tlds()
    if label.isascii() and "_" not in label:
        return len(label) if whole and label.lower() in tlds else 0
    if whole and label.lower() in tlds:
        return len(label)
    return _cut_tld_len(label)


def _cut_tld_len(label: str) -> int:
    """Length of the longest TLD that starts `label` and is followed by '_' or a non-ASCII
    character in it (twitter-text's TLD lookahead), or 0. Only prefixes as long as a TLD can
    be are tried (a label of 1,000 letters in another script tried each: 8.6 ms)."""
    tlds = _tlds()
    return next((i for i in range(min(len(label) - 1, _longest_tld()), 0, -1)
                 if (label[i] == "_" or not label[i].isascii()) and label[:i].lower() in tlds), 0)


@functools.cache
def _longest_tld() -> int:
    return max(map(len, _tlds()))


def _tld_shaped(label: str) -> bool:
    """Could be a TLD the snapshot does not list: ASCII letters or an A-label (RFC 1123 2.1),
    or non-ASCII letters and marks (an IDN TLD such as .大众汽车)."""
    if label.isascii():
        return _ASCII_TLD.fullmatch(label) is not None
    return all(not c.isascii() and unicodedata.category(c)[0] in "LM" for c in label)


def _label_ok(label: str, registrable: bool) -> bool:
    """twitter-text validSubdomain / validDomainName (no '_' in the label before the TLD), and
    IDNA's 63-octet limit. TLDs need no check: they come from the list or _tld_shaped."""
    if not label or label[0] in "-_" or label[-1] in "-_" or (registrable and "_" in label):
        return False
    if label.isascii():
        return len(label) <= 63
    if label[:4].lower() == "xn--":
        return False  # an A-label is ASCII (twitter-text: "http://xn--はじめよう.com" is no link)
    # (Each code point takes at least one character of the A-label: a longer one is never
    # encoded, which takes Python's punycode ~2 ms for 1,000 code points.)
    return len(label) <= 59 and len(label.encode("punycode")) <= 59


def _host_end(view: str, start: int, end: int, schemeful: bool, lenient: bool = False
              ) -> tuple[int, int]:
    """(where the host at view[start:end] really ends, -1): the regex's greedy match may be cut
    back to its TLD. If it holds no host, (-1, the first label that may start one): a later
    label can still follow a lookalike dot or a defang token, and resuming past the labels
    already judged keeps the scan linear."""
    raw = view[start:end]
    if "%" in raw:
        # Only after a scheme. WHATWG decodes a host once, then parses it (IDNA maps or drops
        # what was escaped: http://evil%2Ecom, http://evil.com%E2%80%8B are evil.com): the
        # whole span is the host, and the canonicalizer, as a browser, decides if it is one.
        # One that decodes to what no host holds (a '%' left, http://%2565vil.com; a space,
        # http://evil.com%20/x) is the host before its first '%', as twitter-text and
        # linkify-it link it.
        if not _NOT_IN_HOST.search(unquote(raw)):
            return end, -1
        end = start + raw.index("%")
        raw = view[start:end]
        if not raw:
            return -1, start + 1
    # twitter-text: a TLD is not followed by [0-9A-Za-z@+-] ("name.al+x@foo.com" is mail).
    whole = view[end:end + 1] not in ("@", "+")
    if whole and _PLAIN_HOST.fullmatch(raw) and raw[raw.rfind(".") + 1:].lower() in _tlds():
        return end, -1  # the common case, as the general one below would find it
    if raw.isascii() and "[" not in raw and "(" not in raw and "{" not in raw:
        labels, seps = raw.split("."), None  # plain dots
    else:
        parts = _DOT_SPLIT.split(raw)
        labels, seps = parts[::2], parts[1::2]

    def offset(k: int) -> int:  # where label k starts
        return start + sum(map(len, labels[:k])) + (k if seps is None else sum(map(len, seps[:k])))

    last = len(labels) - 1
    if labels[last][:1].isdigit() and last < 4 and all(_NUMERIC.fullmatch(x) for x in labels):
        # An IPv4 address. Without a scheme only a plain dotted quad before a path or port, or
        # defanged ("198[.]51[.]100[.]23", as threat intel writes one): "1.2.3.4" alone is a
        # version number as often as an address.
        if schemeful or (not lenient and last == 3 and all(_OCTET.fullmatch(x) for x in labels) and (
                view.startswith("/", end) or _PORT.match(view, end)
                or (seps is not None and any(_DEFANG.fullmatch(x) for x in seps)))):
            return end, -1
        return -1, offset(last)
    found = -1
    for k in range(last, 0, -1):
        n = _tld_len(labels[k], whole or k < last)
        # Cutting a TLD out of a label is for text without spaces; after a lookalike dot it
        # would make "GO\u3002Loveです" a link. Closing '_' are cut still: "https://evil．com_"
        # is evil.com to GFM, which drops them (_gfm_end).
        if n and (n == len(labels[k]) or seps is None or seps[k - 1] not in _DOTS
                  or not labels[k][n:].strip("_")):
            found, labels[k] = k, labels[k][:n]
            break
    if found < 0 and schemeful and whole and last and _tld_shaped(labels[last]):
        found = last
    if found < 0:
        return -1, offset(last)  # the same labels hold no TLD for a later start either
    k = found - 1
    while k >= 0:
        if _label_ok(labels[k], k == found - 1):
            k -= 1
            continue
        if lenient and schemeful:
            return end, -1  # a browser opens it whole ("https://-x.evil.com/"), as it decides
        # A label no host may have: the host is the labels before it, up to a TLD that starts
        # it, as twitter-text's regex backtracks to ("https://evil.com_.good.com/" links
        # https://evil.com; the token taken whole is checked too).
        bad, found = k, -1
        for j in range(bad, 0, -1):
            if n := _tld_len(labels[j], True) if j < bad else _cut_tld_len(labels[j]):
                found, labels[j] = j, labels[j][:n]
                break
        if found < 0:
            return -1, offset(bad + 1)
        k = found - 1
    return offset(found) + len(labels[found]), -1


# ---- the scan ------------------------------------------------------------------------------


def _tail(view: str, pos: int) -> int:
    """End of the port, path and query after a host that ends at `pos`. (Each pattern starts
    with its one delimiter: looked for first, it saves most links a regex call or two.)"""
    if view.startswith(":", pos) and (m := _PORT.match(view, pos)):
        pos = m.end()
    end = pos
    # Most paths and queries hold no bracket: a run of path (query) characters is all of them.
    m = _PATH_RUN.match(view, pos) if view.startswith(("/", "\\"), pos) else None
    if m and view.startswith(("(", "[", "{"), m.end()):
        m = _PATH.match(view, pos)
    if m:
        # Trailing punctuation is no part of a path (twitter-text validUrlPathEndingChars)...
        end = pos + len(m[0].rstrip(_PATH_STRIP))
        pos = m.end()
    q = _QUERY_RUN.match(view, pos) if view.startswith("?", pos) else None
    if q and view.startswith("[", q.end()):
        q = _QUERY.match(view, pos)
    if q and (query := q[0].rstrip(_QUERY_STRIP)):
        return pos + len(query)  # ...unless a query follows: "/a.?b=1" goes on
    return end


def _candidate(view: str, m: re.Match[str], lenient: bool = False
               ) -> tuple[str | None, int, int]:
    """(url, start, end) in the view for the regex match `m`, or (None, 0, where to resume).
    `lenient`: a host after a scheme is taken whole whatever its labels (_other_links)."""
    schemeful = m[_SCHEME] is not None
    hs, he = m.span(_SHOST if schemeful else _HOST)
    if he - hs > _MAX_HOST and not (schemeful and "%" in view[hs:he]):
        return None, 0, he  # (a percent-encoded host is decoded whole: it may shrink a lot)
    ip6 = view[hs] == "[" or view[hs] == "%" and _IP6_RE.fullmatch(view, hs, he) is not None
    host_end, resume = (he, -1) if ip6 else _host_end(view, hs, he, schemeful, lenient)
    if host_end < 0:
        # After a scheme, the host may hold a schemeless one: "http://-x。example.com".
        return None, 0, (m.start() + 1 if schemeful else resume)
    if view.startswith(".", host_end) and view[host_end + 1:host_end + 2] in _AFTER_ROOT_DOT:
        host_end += 1  # a root dot; the canonicalizer drops it
    end = _tail(view, host_end)
    if view[m.start() - 1:m.start()] == "<" and (bar := view.find("|", host_end, end)) >= 0:
        end = bar  # Slack's <url|label>: the label is no part of the link (the token whole is)
    if view[m.start() - 1:m.start()] == "_":
        # Markdown emphasis, "_http://a.com/x_": the closing '_' is no part of the link (GFM
        # autolinks drop a trailing '_'; twitter-text would keep it). An '_' inside a word
        # after the link closes no emphasis: "_google.com_analytics" holds no link.
        end = max(host_end, len(view[host_end:end].rstrip("_")) + host_end)
        if not schemeful and view[end:end + 1] == "_" and view[end + 1:end + 2].isalnum():
            return None, 0, he
    raw_host = view[hs:host_end]
    host = raw_host if raw_host.isascii() and not (
        "[" in raw_host or "(" in raw_host or "{" in raw_host) else _DOT_RE.sub(".", raw_host)
    rest = view[host_end:end]
    if not schemeful:
        return host + (rest if host == raw_host else _DEFANG.sub(".", rest)), m.start(), end
    scheme = m[_SCHEME].lower()
    defanged = host != raw_host or "x" in scheme or m[_SEP][0] == "["
    if host.lower() == "t.co" and (slug := _TCO_SLUG.match(rest)):
        # twitter-text validTcoUrl: a t.co slug is alphanumeric, perhaps with a query.
        cut = host_end + slug.end()
        end = _tail(view, cut) if view.startswith("?", cut) else cut
        rest = view[host_end:end]
    scheme = "https" if scheme[-1] == "s" else "http"
    if defanged:
        rest = _DEFANG.sub(".", rest)
    userinfo = m[_USERINFO] or ""
    if userinfo and (defanged or userinfo.endswith("[@]")):
        userinfo = _DEFANG.sub(".", userinfo.replace("[@]", "@"))
    return f"{scheme}://{userinfo}{host}{rest}", m.start(), end


class _Next:
    """The next match of a pattern in view[:hi] at or after a position, or `hi`: one found for
    a position serves every position up to it, so candidates that come in order look through
    the view once (an authority's delimiter after each of 7,000 `www.a$[.]` in one token, each
    looked for to the token's end, took 2.9 s)."""

    def __init__(self, pattern: re.Pattern[str], view: str, hi: int) -> None:
        self.pattern, self.view, self.hi = pattern, view, hi
        self.lo = self.found = -1  # no match in view[lo:found]

    def at(self, pos: int) -> int:
        if not self.lo <= pos <= self.found:
            m = self.pattern.search(self.view, pos, self.hi)
            self.lo, self.found = pos, _found(m, self.hi)
        return self.found


def _userinfo_link(view: str, m: re.Match[str], token_end: int, stops: _Next
                   ) -> tuple[str, int, int] | None:
    """After a scheme, or a schemeless "www.", with no link by the rules above, a token whose
    authority holds an '@' is the link a browser opens ("http://a(b)@evil.com/", 300 characters
    before the '@', "www.good.com@evil.com/x" as a GFM www autolink: WHATWG's host follows the
    last '@'): the token taken whole. `stops`: _AUTHORITY_OR_STOP_OR_AT's in the view."""
    if m[_SCHEME] is not None:
        s = m.end(_SEP)
        scheme = "https" if m[_SCHEME][-1] in "sS" else "http"
    elif view[m.start():m.start() + 4].lower() == "www.":
        s, scheme = m.start(), "http"
    else:
        return None
    # The authority first: is there an '@' before its delimiter, or where any token taken
    # whole ends ('<', a backtick)? Found ahead once for a run of candidates that are no links
    # ("https://-", "www.a$[.]" repeated): the work stays linear in the text. Only with an '@'
    # in it is the token's end looked for.
    if (at := stops.at(s)) >= token_end or view[at] != "@":
        return None
    stop = max(s, _tail_start(view, _whole_end(view, m.start(), s, token_end)))
    if at >= stop:
        return None
    return f"{scheme}://{_DEFANG.sub('.', view[s:stop])}", m.start(), stop


def find_links(text: object) -> list[Candidate]:
    """Link candidates in `text`, in order of appearance, non-overlapping. Never raises."""
    if not isinstance(text, str):
        return []
    # Ignorable and fullwidth code points are not ASCII: plain text is its own view. The
    # pre-filter looks at the view, the text as the scan reads it ("evil{ｄot}com").
    plain = text.isascii()
    view, expanded = (text, None) if plain else _view(text)
    # (In ASCII text only ':' or a bracket starts a _MAYBE, and a ':' is one: string tests find
    # them for a fraction of the regex's ~70 instructions a character.)
    if "." not in view and ":" not in view and not (
            (not plain or "(" in view or "[" in view or "{" in view) and _MAYBE.search(view)):
        return []
    if plain and "://" in text and (plain_links := _plain_links(text)) is not None:
        return plain_links
    tokens: list[tuple[int, int, bool]] = []
    found = _scan(view, _CANDIDATE, tokens=tokens)
    if not tokens:  # no token looked at: no link, none for other linkifiers either
        return []
    orig = _mapper(text, view, expanded)
    out = _candidates(text, view, found, orig)
    # Where other linkifiers may read the text otherwise (_other_links): a token the scan
    # looked at that holds a break or a folded character, or a spot _OTHER_HINT finds in a
    # token with a failed host, no link or an '_' (positions in the text: _tokens finds the
    # token around each).
    breaks = _ASCII_BREAK if text.isascii() else _breaks()
    folded = view != text  # fullwidth or compatibility forms, read as ASCII in the view
    at = []
    android: list[tuple[int, int]] = []  # tokens where Android may link what the scan does not
    telegram: list[tuple[int, int]] = []  # and Telegram (and linkifyjs after an '@')
    glued = "@" in view or "$" in view or "#" in view
    glued_scheme = "@" in view or _glued_scheme(view)
    www_at = "@" in view and _WWW.search(view) is not None
    defang = "[" in view or "(" in view or "{" in view  # what every defang token holds
    gfm: list[tuple[int, int]] = []  # and GFM (cmark-gfm's) and Discord: text offsets
    # Tokens with a folded character, read as written too: twitter-text ends a link at it and
    # links what follows (`good.com/ａbc.evil.com` is good.com/ and bc.evil.com to it).
    written: list[tuple[int, int]] = []
    k = 0  # the first link found that ends after this token starts
    for start, end, quiet in tokens:
        while k < len(found) and found[k][2] <= start:
            k += 1
        lo, hi = (start, end) if orig is None else (orig(start), orig(end - 1) + 1)  # in the text
        if _ANDROID_QUIET_HINT.search(view, start, end) if quiet else \
                glued and _ANDROID_HINT.search(view, start, end) or \
                k < len(found) and found[k][2] < end and _tail_start(view, end) > found[k][2]:
            android.append((start, end))  # (the last: the token goes on past its first link)
        if glued_scheme and _TELEGRAM_HINT.search(view, start, end):
            telegram.append((start, end))
            gfm.append((lo, hi))
        elif www_at and view.find("@", start, end) >= 0 and _WWW.search(view, start, end) or \
                quiet and view.find("://", start, end) >= 0:  # (a host after a scheme failed)
            gfm.append((lo, hi))
        if (quiet or view.find("_", start, end) >= 0) and \
                (o := _OTHER_HINT.search(view, start, end)):
            at.append(o.start() if orig is None else orig(o.start()))
        elif defang and (d := _DEFANG.search(view, start, end)):
            at.append(d.start() if orig is None else orig(d.start()))  # h[.]files-host.com
        f = _FOLDABLE.search(text, lo, hi) if folded else None
        if f:
            written.append((lo, hi))
        if b := breaks.search(text, lo, hi):
            at.append(b.start())
        elif f:
            at.append(f.start())  # `evil.comｅ` is evil.com to twitter-text, evil.come folded
    links = _android_links(text, view, android, orig) if android else []
    for lo, hi in written:  # twitter-text's links in the text as written (see `written`)
        links += _scan(text, _CANDIDATE, lo=lo, hi=hi)
    if telegram:
        links += _telegram_links(view, telegram, orig)
    if "//" in view and view.count("//") > view.count("http://") + view.count("https://"):
        links += _relative_links(view, found, orig)  # (not for a "//" of http(s) links only)
    gfm_links = _gfm_links(text, gfm) if gfm else []
    if not at:
        return _merge(text, out, links, gfm_links) if links or gfm_links else out
    spans = [(lo, hi) for lo, hi in _tokens(text, sorted(at)) if _LINKISH.search(text, lo, hi)]
    if spans:
        return _other_links(text, out, breaks, spans, links, gfm_links)
    return _merge(text, out, links, gfm_links)


def _android_links(text: str, view: str, tokens: list[tuple[int, int]],
                   orig: Callable[[int], int] | None) -> list[tuple[str, int, int, int]]:
    """Android's links (_ANDROID) in these tokens of the view, in the text's offsets. One with a
    scheme is read in the text, as Android reads it (_android_end); one without as the scan
    reads it, with Android's path (_android_path)."""
    found: list[tuple[str, int, int, int]] = []

    def at(v: int) -> int:  # the text's offset of view[v]
        return v if orig is None else orig(v)

    for start, end in tokens:
        pos, token_end = start, at(end - 1) + 1
        while len(found) < MAX_CANDIDATES and (m := _ANDROID.search(view, pos, end)):
            s = m.start()
            if m[_SCHEME] is not None:
                pos = m.end()
                if (link_end := _android_end(text, at(s))) < 0:
                    continue
                if m[_SCHEME][0] in "hH" and text[at(s) - 1:at(s)] != "@":
                    found.append((text[at(s):link_end], at(s), link_end, token_end))
                while pos < end and at(pos) < link_end:
                    pos += 1
                continue
            url, _, pos = _candidate(view, m)
            resume = pos  # (past the labels the scan judged: linear in the token)
            if url is None and (h := _android_host(view, s, end)) > 0 and \
                    (e := _android_tail(view, s, [h])) > 0 and not _MAIL.match(view, e):
                url, pos = view[s:e], e  # `evil.com-`, `198.51.100.23`: no link to twitter-text
            if url is None:
                continue
            link_end = pos
            if _authority_end(url) or view.startswith(("/", "?"), pos):
                # Its path reads on (`/u/abc日本`) to the last word boundary, or ends sooner.
                run = _run_end(_ANDROID_PATH, view, pos)
                e = next((e for e in range(run, pos, -1) if _boundary(view, e)), pos)
                url, link_end = (url + view[pos:e], e) if e > pos else \
                    (_android_path(url, view, pos) or url, pos)
                pos = max(pos, run)
            elif _glued(view, pos):
                continue  # `x-.evil.com日本`: no word boundary after it
            pos = max(pos, resume)
            if s == 0 or view[s - 1] != "@":  # Linkify drops a link after '@'
                found.append((url, at(s), at(link_end - 1) + 1, token_end))
    return found


_INNER_SCHEME = re.compile("(?i:https?)://")
_URL_PORT = re.compile(r"(?:[A-Za-z]++://)?(?:[^/\\?#@]*@)?[^/\\?#@:\[]*+(:[0-9]*+)")


def _telegram_port(url: str) -> str | None:
    """The link `url` as Telegram ends it when its port is no port (over 65535, or more than
    five digits after leading zeros): before the port, so `evil.com:99999/x` is evil.com."""
    if not (m := _URL_PORT.match(url)) or len(m[1]) < 2:
        return None
    digits = m[1][1:].lstrip("0")
    return None if digits and len(digits) <= 5 and int(digits) <= 65535 else url[:m.start(1)]


def _glued_scheme(view: str) -> bool:
    """Does an "http://" or "https://" in the view follow a letter, a digit, '$' or '#'?"""
    i = view.find("://")
    while i >= 0:
        j = i - 5 if view[i - 1:i] in "sS" else i - 4
        if j > 0 and view[j:i].lower() in ("http", "https") and \
                (view[j - 1].isascii() and view[j - 1].isalnum() or view[j - 1] in "$#"):
            return True
        i = view.find("://", i + 3)
    return False


def _telegram_links(view: str, tokens: list[tuple[int, int]], orig: Callable[[int], int] | None
                    ) -> list[tuple[str, int, int, int]]:
    """Telegram's links (_TELEGRAM_HINT) in these tokens of the view, in the text's offsets: the
    link after a scheme glued to what precedes it, and a host after userinfo (unless the two are
    an e-mail address), each read as the scan reads a link that starts there. As Telegram, each
    reads on from where the last one ended. And linkifyjs's link of the host after an '@' that
    is no userinfo to Telegram (_LinkifyjsLinks), read on from the last of those. An '@' is
    judged before its link is read: linear in the token."""
    found: list[tuple[str, int, int, int]] = []
    for start, end in tokens:
        last = after_at = start  # where Telegram's last link ends, and linkifyjs's
        links_before = None  # (linkifyjs's, found at the first '@' that needs them)
        for m in _TELEGRAM_START.finditer(view, start, end):
            if (lo := m.end()) < last:
                continue
            u = _telegram_userinfo(view, last, m.start()) if m[0] == "@" else lo
            if u < 0:
                if lo < after_at:
                    continue
                links_before = links_before or _LinkifyjsLinks(view, start, end)
                if not links_before.host_after(m.start()):
                    continue
            if not (link := _LINK_HERE.match(view, lo, end)):
                continue
            url, s, e = _candidate(view, link)
            if url is None:
                continue
            if u < 0:
                after_at = e
            elif m[0] == "@" and _TELEGRAM_MAIL.fullmatch(view, u, e) and \
                    not (_authority_end(url) or ":" in url or _FRAGMENT.match(view, e)):
                continue  # an e-mail address, with no path, port or fragment after it
            else:
                last = e
            found.append((url, s, e, end))  # (its port read by _merge, as every link's)
            if len(found) == MAX_CANDIDATES:
                return _in_text(found, orig)
    return _in_text(found, orig)


def _telegram_userinfo(view: str, last: int, at: int) -> int:
    """Where userinfo before the '@' at view[at] starts to Telegram (none before view[last]),
    or -1: not empty, after no letter, digit, '/', '#' or '@' (no scheme), and no query of a
    link before it (`good.com?@evil.com`)."""
    u = at
    while u > last and view[u - 1] not in _NOT_TELEGRAM_USERINFO and not view[u - 1].isspace():
        u -= 1
    if u == at or u > last and (view[u - 1].isalnum() or view[u - 1] in "_/#@") \
            or _TELEGRAM_QUERY.match(view, u, at):
        return -1
    return u


# linkifyjs (Element, among others) links the host after an '@' unless the two are an e-mail
# address, or a link before it in the token goes on over it (`good.com/@evil.com`,
# `https://good.com">@evil.com`): `(x)@evil.com`, `u!*'@evil.com`, `x.@evil.com` and
# `see @evil.com` link evil.com, `bob@evil.com` is an address. Its local part is a run of
# letters, digits, single dots and symbols but _NOT_LOCAL that holds a letter, a digit or '~'
# and does not end in '.'. A link goes on over anything but white space after a scheme it
# knows, and after a host with a TLD and '/', '?' or '#'.
_NOT_LOCAL = "!\"(),:;<>@[]\uff08\uff09\u300c\u300d\u300e\u300f\uff1c\uff1e\u30fb"
_LINKIFYJS_LINK = re.compile(r"(?<![0-9A-Za-z])(?:(?i:https?|ftps?)://(?=[^\s(){}\[\]<>'\".,:;!?])"
                             r"|(?i:mailto|file):(?=[^\W_]|[/?]))"
                             r"|[^\W_](?=\.([^\W\d_]{2,63})(?::[0-9]*)?[/?#])")


class _LinkifyjsLinks:
    """Where linkifyjs's links start in a token of the view, to tell whether it links the host
    after an '@' there (found once a token: linear in it)."""

    def __init__(self, view: str, start: int, end: int) -> None:
        self.view = view
        self.spaces = [m.start() for m in _SPACE.finditer(view, start, end)]
        self.starts = [m.start() for m in _LINKIFYJS_LINK.finditer(view, start, end)
                       if m[1] is None or m[1].lower() in _tlds()]
        self.start = start

    def host_after(self, at: int) -> bool:
        """Does linkifyjs link the host after the '@' at view[at]?"""
        view = self.view
        if at and (view[at - 1].isalnum() or view[at - 1] == "~"):
            return False  # an e-mail address
        i = bisect.bisect_left(self.spaces, at)
        lo = self.spaces[i - 1] + 1 if i else self.start  # (where its white space ends)
        if (k := bisect.bisect_left(self.starts, lo)) < len(self.starts) and self.starts[k] < at:
            return False  # in a link that goes on over it
        if at == lo or view[at - 1] == ".":
            return True
        u = at  # the local part: back to a symbol it does not take or a second '.'
        while u > lo and (c := view[u - 1]) not in _NOT_LOCAL and \
                not (c == "." == view[u - 2:u - 1]):
            u -= 1
        return not any(c.isalnum() or c == "~" for c in view[u:at])


def _in_text(found: list[tuple[str, int, int, int]], orig: Callable[[int], int] | None
             ) -> list[tuple[str, int, int, int]]:
    """Links found in the view (url, start, end, token end), in the text's offsets."""
    if orig is None or not found:
        return found
    return [(url, orig(s), orig(e - 1) + 1, orig(t - 1) + 1) for url, s, e, t in found]


# Autolinker.js (older Rocket.Chat, among others) links "//host" after anything but a letter,
# a digit, '.', '@' or '#', and after a ':' that follows none of those (`://evil.com`,
# `x-//evil.com`): a protocol-relative link, which a browser opens with the page's scheme. The
# scan reads one only after white space, a bracket, a quote, '=' or '<'. anchorme.js makes an
# http link of the host after any "://" but a scheme it knows (`rtsp://evil.com/x`,
# `1://evil.com`; not `ftp://`), and Android's Linkify links rtsp:// (a media player opens it).
# bleach.linkify does so after a scheme glued to a letter, a digit, '_', '.' or '@'
# (`äftp://evil.com`, `.ftp://evil.com`).
_OPENED = ("http", "https", "ftp")


def _relative_at(view: str, i: int) -> bool:
    """Is the "//" at view[i] the start of a link to the host after it (_relative_links)?"""
    c = view[i - 1] if i else ""
    if c != ":":
        return not (c.isalnum() or c in ".@#")
    s = i - 1
    while s > 0 and i - s < 34 and view[s - 1].isascii() and (view[s - 1].isalnum() or
                                                            view[s - 1] in "+.-"):
        s -= 1
    while s < i - 1 and not view[s].isalpha():
        s += 1  # (a scheme starts with a letter: `-ftp://` is ftp://)
    return view[s:i - 1].lower() not in _OPENED or s > 0 and (view[s - 1].isalnum() or
                                                            view[s - 1] in "_.@")


def _relative_links(view: str, scanned: list[tuple[str, int, int, int]],
                    orig: Callable[[int], int] | None) -> list[tuple[str, int, int, int]]:
    """The links after a "//" that Autolinker or anchorme makes (_relative_at) outside the links
    the scan found (`scanned`: `x.co?//evil.com_京` is one link), each read as the scan reads a
    host there, in the text's offsets. Each reads on from where the last one ended (linear)."""
    found: list[tuple[str, int, int, int]] = []
    last = k = 0
    spaces = _Next(_SPACE, view, len(view))  # (where a link's token ends)
    i = view.find("//")
    while i >= 0 and len(found) < MAX_CANDIDATES:
        h = i + 2
        while k < len(scanned) and scanned[k][2] <= i:
            k += 1
        if h >= last and h < len(view) and not view[h].isspace() and view[h] != "/" and \
                not (k < len(scanned) and scanned[k][1] <= i) and _relative_at(view, i) and \
                (link := _LINK_HERE.match(view, h)) and link[_SCHEME] is None:
            url, s, e = _candidate(view, link)
            if url is not None:
                found.append((url, s, e, spaces.at(e)))
                last = e
        i = view.find("//", i + 1)
    return _in_text(found, orig)


# GFM (cmark-gfm's autolink extension: GitHub, GitLab, most Markdown renderers in Python and C)
# links a scheme after anything but a letter (`1https://`, `$https://`: twitter-text links none
# after a digit, '@', '$' or '#'), and "www." after white space or `*_~(` (and `[]`, and "WWW.",
# to micromark's: remark-gfm, react-markdown) whatever follows its dot (`www.(x)@evil.com`: a
# browser opens evil.com), each when the host's first character is no punctuation
# (_gfm_host_char); not in an attribute value (`href="https://...`: raw HTML, which it leaves
# as it is). Its link is the rest of the token, to a '<', less its closing punctuation
# (_gfm_end), so a token holds one. It is read in the tokens that hold an '@' or a glued scheme,
# and those where a host after a scheme failed.
_GFM_START = re.compile(r"(?<![A-Za-z])(?i:https?)://|(?<![^ \t\n\r*_~(\[\]])(?i:www)\.")
_WWW = re.compile(r"(?i:www)\.")


def _gfm_host_char(c: str) -> bool:
    """cmark-gfm's is_valid_hostchar: neither white space nor punctuation (ASCII's, or a
    Unicode P* code point; symbols are host characters)."""
    if c.isascii():
        return c.isalnum() or c < " " and c not in "\t\n\v\f\r"
    return not c.isspace() and unicodedata.category(c)[0] != "P"


def _gfm_www(text: str, i: int, stop: int) -> bool:
    """Does GFM link the "www." at text[i] (cmark-gfm's check_domain): a domain of host
    characters, '-', '_' and '.', with no '_' in its last two labels (unless it has more than
    ten dots)?"""
    dots = last = this = 0  # '.', and '_' in the label before the last '.' and after it
    j = i + 1
    while j < stop - 1:
        if text[j] == "\\" and j < stop - 2:
            j += 1
        c = text[j]
        if c == "_":
            this += 1
        elif c == ".":
            dots, last, this = dots + 1, this, 0
        elif c != "-" and not _gfm_host_char(c):
            break
        j += 1
    return dots > 0 and (dots > 10 or not (last or this))


# Discord (simple-markdown's url rule) links "http://" or "https://" after anything, and
# whatever follows it to white space or '<', but a closing `.,:;"')]`: `xhttps://(x)@evil.com`.
# In JSON and HTML it is read as a token taken whole is (_whole_end).
_DISCORD = re.compile(r"https?://[^\s<]*[^<.,:;\"')\]\s]")


def _gfm_links(text: str, tokens: list[tuple[int, int]]) -> list[tuple[str, int, int, int]]:
    """GFM's link in each of these tokens of the text, and Discord's."""
    found: list[tuple[str, int, int, int]] = []
    for lo, hi in tokens:
        stop = text.find("<", lo, hi)
        stop = hi if stop < 0 else stop
        for g in _GFM_START.finditer(text, lo, stop):
            s = g.start()
            if _in_tag(text, s):
                continue
            www = g[0][-1] == "."
            if www and _gfm_www(text, s, stop) or \
                    not www and g.end() < stop and _gfm_host_char(text[g.end()]):
                e = s + _gfm_end(text[s:stop])
                found.append((("http://" if www else "") + text[s:e], s, e, hi))
                break
        if (d := _DISCORD.search(text, lo, stop)) and \
                (d := _DISCORD.match(text, d.start(), _whole_end(text, d.start(), d.start(), stop))):
            found.append((d[0], d.start(), d.end(), hi))  # (JSON and HTML: as a token whole)
    return found


# A plain link, a token of its own: a lowercase scheme, plain ASCII labels (as _PLAIN_HOST), a
# path of letters, digits and `/.-` and a query of those and `=&_+`, ending in a letter or a
# digit, or in '/' after one (Android ends a link at a word boundary). Every linkifier makes
# the same link of it, the token whole, and nothing else of it: no closing punctuation, port,
# userinfo, fragment (twitter-text ends a link before it), defang token, '_' in the path
# (Markdown), '%' or "//" (another reading). Matched where a "://" is, not searched for: a
# search led by a class costs ~70 instructions a character in `re`. Possessive runs of one
# class each, the end checked behind; _plain_links holds the labels to _PLAIN_HOST's rules.
_PLAIN_LINK = re.compile(
    r"https?://((?:[0-9A-Za-z-]++\.)++[A-Za-z]{2,63}+)(?:/[0-9A-Za-z/.\-]*+)?"
    r"(?:\?[0-9A-Za-z=&.\-_+]*+)?(?<![^0-9A-Za-z/])(?<![^0-9A-Za-z]/)(?![^ \n])")


def _plain_links(text: str) -> list[Candidate] | None:
    """The links of an ASCII text whose every link is plain (_PLAIN_LINK), as the scan would
    find them; None for any other text. Outside the plain links, no hint (_HINT): the scan
    would look at nothing else, and every rule that reads a token beyond its link finds
    nothing in these (tests/test_extract.py checks both ways agree). Most chat links are
    plain: this skips the scan's work for them (~60k instructions a link)."""
    out: list[Candidate] = []
    pos = 0
    while (colon := text.find("://", pos)) >= 0:
        start = colon - 5 if colon >= 5 and text[colon - 1] == "s" else colon - 4
        if start < pos or start > 0 and text[start - 1] not in " \n" or \
                _hint_in(text, pos, start) or (m := _PLAIN_LINK.match(text, start)) is None:
            return None  # (a "://" is a hint: the scan looks at it)
        host = m[1]
        if host[0] == "-" or "-." in host or ".-" in host or \
                len(host) > 63 and max(map(len, host.split("."))) > 63 or \
                len(host) > _MAX_HOST or (host := host.lower()) == "t.co" or \
                host[host.rfind(".") + 1:] not in _tlds() or len(out) == MAX_CANDIDATES - 1:
            return None
        pos = m.end()
        out.append(Candidate(m[0], start, pos))
    if not out or _hint_in(text, pos, len(text)) or \
            text.count("//") > text.count("http://") + text.count("https://"):
        return None  # (find_links: "//" elsewhere may be a protocol-relative link)
    return out


def _hint_in(text: str, lo: int, hi: int) -> bool:
    """Does a _HINT start in the ASCII text[lo:hi]? Only at one of its ASCII characters, each
    found by a string search (a search of _HINT would try every character)."""
    for c in _HINT_ASCII:
        i = text.find(c, lo, hi)
        while i >= 0:
            if _HINT.match(text, i):
                return True
            i = text.find(c, i + 1, hi)
    return False


def _scan(view: str, pattern: re.Pattern[str], lenient: bool = False, lo: int = 0,
          hi: int | None = None, tokens: list[tuple[int, int, bool]] | None = None
          ) -> list[tuple[str, int, int, int]]:
    """(url, start, end, token end) of each link `pattern` finds in view[lo:hi], in order;
    each token looked at appended to `tokens`, with True when a host in it failed or it holds
    no link. `lenient` (_other_links): hosts as _candidate takes them so, and one link a token
    (other linkifiers take the rest of the token into it: `http://good.com/日本/evil.com`)."""
    found: list[tuple[str, int, int, int]] = []
    pos, hi = lo, len(view) if hi is None else hi
    stops = None  # (for _userinfo_link: made at the first candidate that fails)
    while hint := _HINT.search(view, pos, hi):
        pos, token_end = _token(view, pos, hint.start(), hi)
        token_start, before, failed = pos, len(found), False
        scheme = view.find("://", pos, token_end) if lenient else -1  # found once a token
        while m := pattern.search(view, pos, token_end):
            if 0 <= scheme < m.start() and m[_SCHEME] is None:
                break  # after a scheme in the token: other linkifiers take the token from it
            url, start, pos = _candidate(view, m, lenient)
            if url is None:
                stops = stops or _Next(_AUTHORITY_OR_STOP_OR_AT, view, hi)
                if (userinfo := _userinfo_link(view, m, token_end, stops)) is None:
                    failed = True
                    if lenient and m[_SCHEME] is not None:
                        break  # linkify-it and linkifyjs link it whole: http://intranet:80/x.com
                    continue
                url, start, pos = userinfo
            found.append((url, start, pos, token_end))
            if len(found) == MAX_CANDIDATES:
                return found
            if lenient:
                break
        if tokens is not None:
            tokens.append((token_start, token_end, failed or len(found) == before))
        pos = max(pos, token_end)
    return found


def _token(s: str, lo: int, p: int, hi: int) -> tuple[int, int]:
    """The token around s[p] in s[lo:hi]: from after the last ' ' or '\n' before it (other
    white space only makes it start earlier, which is still right) to the next white space."""
    space = _SPACE.search(s, p, hi)
    return (max(lo, s.rfind(" ", lo, p) + 1, s.rfind("\n", lo, p) + 1),
            space.start() if space else hi)


def _candidates(text: str, view: str, found: list[tuple[str, int, int, int]],
                orig: Callable[[int], int] | None) -> list[Candidate]:
    """Candidates in the text's offsets, each with its token taken whole: to the end of the
    token, or where _whole_end says it stops (a quote, '<', a tag's '>'), without closing
    punctuation. What follows the link is taken from the text as written (a browser
    does not read a fullwidth '＠' as '@'). Its span (`whole_end`) stops at the next link of
    the token, so spans never overlap. Tokens taken whole are checked up to whole_budget(text)
    characters in all; past that, `whole_end` is -1 (not checked: the message is flagged).
    `orig` maps view offsets to the text's (_mapper)."""
    if not found:
        return []
    budget = whole_budget(text)
    out = []
    quote = -1  # where the last search for the end of a token taken whole found it
    tails: dict[int, int] = {}  # a limit -> where its closing punctuation starts
    ahead = _Ahead(view)
    plain = text.isascii()
    for i, (url, start, end, token_end) in enumerate(found):
        # Other readings of the link, inside its span (which ends at text_end in the text).
        text_end = end if orig is None else orig(end - 1) + 1
        ascii = None if plain else _ascii_link(text, view, orig, url, start, end)
        others: tuple[tuple[str, int], ...] = () if ascii is None else ((ascii, text_end),)
        if url[-1] in "[]" and (cut := _without_brackets(url)):
            others += ((cut, text_end),)
        elif (url[-1] == "_" or view.startswith(";", end)) and \
                (cut := _gfm_cut(url, view, end)):
            others += ((cut, text_end),)  # `https://.../u/abc_,` is /u/abc to GFM
        elif url[-1] == "_" and end >= token_end:  # Markdown emphasis ends with the token
            others += ((url.rstrip("_"), text_end),)
        # Android's path (most links end with a letter or digit, and none of `|\[%`: there or
        # later to it too; '/', '?' and '#' at the end tell no entries apart)
        if (not _word(url.rstrip("/?#")[-1]) or "%" in url or "|" in url or "\\" in url
                or "[" in url) and not _glued(view, start) and (cut := _android_path(url, view, end)):
            others += ((cut, text_end),)
        if ":" in url[6:] and (cut := _telegram_port(url)):
            others += ((cut, text_end),)
        if "@" in url and (cut := _before_userinfo(url)):
            others += ((cut, text_end),)  # `https://evil.com@good.com` is evil.com to Autolinker
        if start == 0 and _LATIN_CHAR.match(url):
            # twitter-text takes the text's first character as the one before a link when it
            # can (its validUrlPrecedingChars come first): `éevil.com` opening a message is
            # evil.com to it (after another character, éevil.com)
            others += ((url[1:], text_end),)
        inner = _INNER_SCHEME.search(url, 1) if "://" in url[8:] else None
        if inner:  # Discord and linkify-it link the URL inside (`good.com/https://evil.com`)
            others += ((url[inner.start():], text_end),)
        if end >= token_end and orig is None:  # most links: the token ends with the link
            out.append(Candidate(url, start, end, others=others))
            continue
        # One forward scan for the whole text, however many links a token holds. The token
        # ends at any white space, as twitter-text's and most chat clients' links do (GFM's
        # autolink goes on past a no-break or ideographic space: not followed, as that joins
        # e-mail addresses to links in Japanese contact lines).
        if quote < end:
            quote = _whole_end(view, start, end, token_end)
        limit = quote
        # Without a scheme or "www." no linkifier takes more than the link: what follows may
        # be a path, not userinfo ("example.org,bob@example.com" is a list of two).
        if not url.startswith(("http://", "https://", "www.", "WWW.")) and \
                (at := view.find("@", end, limit)) >= 0:
            limit = at
        if (tail := tails.get(limit)) is None:
            tail = tails[limit] = _tail_start(view, limit)
        stop = max(end, tail)
        # (Not when the next link reads past this reading's end: it kept what this one leaves
        # out as closing punctuation, the '_' of `_good.com,x.com/r?to=//evil.com_`.)
        if i + 1 < len(found) and (after := found[i + 1][1]) < stop and \
                found[i + 1][2] <= stop and ahead.reading_stops_at(url, end, after, stop):
            stop = max(end, _tail_start(view, after))
        span_stop = min(stop, found[i + 1][1]) if i + 1 < len(found) else stop
        if orig is not None:
            rest = stop > end
            start, end = orig(start), orig(end - 1) + 1
            stop = orig(stop - 1) + 1 if rest else end
            span_stop = max(end, orig(span_stop - 1) + 1) if rest else end
        if stop <= end:
            out.append(Candidate(url, start, end, others=others))
        elif budget >= stop - end:
            budget -= stop - end
            whole = url + _DEFANG.sub(".", text[end:stop])
            if inner:  # (and taken whole: `good.com/https://evil｡com` is evil.com)
                others += ((whole[inner.start():], max(end, span_stop)),)
            if url[:4] == "http" and not _glued(text, start) and \
                    start + len(url) < (e := _android_end(text, start)) < stop:
                # Android's link reads on too, and ends sooner: `http://a.com.:80/u/abc=`
                others += ((text[start:e], max(end, span_stop)),)
            out.append(Candidate(url, start, end, whole, max(end, span_stop), others))
        else:
            out.append(Candidate(url, start, end, None, -1, others))
    return out


# Android's Linkify reads a path over any character but white space, controls, `"<>[\]^`{|}`
# and a '%' that starts no escape, and ends the link at a word boundary: after its last letter,
# digit or '_', unless the text ends there. `files-host.com/u/abc= ok`, `.../u/abc/)` and
# `.../u/abc|x` are /u/abc to it.
_NOT_ANDROID_PATH = r"\s\x00-\x1f\"<>\[\\\]^`{|}%\x7f-\xa0\ufdd0-\ufdef\ufff0-\uffff"
_ANDROID_PATH = re.compile(f"(?:[^{_NOT_ANDROID_PATH}]|%[0-9A-Fa-f]{{2}})*+")
_ANDROID_PUNCTUATION = re.compile(f"[^\\w{_NOT_ANDROID_PATH}]*+")  # path characters, no word one
_ESCAPE = re.compile("%[0-9A-Fa-f]{2}")
_LINE_TERMINATORS = ("\n", "\r", "\r\n", "\x85", "\u2028", "\u2029")  # before Java's `$`
# Android's link after a scheme, in the text as it reads it: userinfo, labels of letters in any
# script, digits and '-' or '_' inside (what host they are is the browser's to say), a port and
# a path, up to a word boundary: its regex backtracks to one (`https://files-host.com/u/abc=)`
# is /u/abc, `http://sub.evil.com:99999_` and `https://evil.com.:x` are evil.com).
_U_A = r"(?:[0-9A-Za-z$\-_.+!*'(),;?&=]|%[0-9A-Fa-f]{2})"
_L_A = r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\xa0\s\ufdd0-\ufdef\ufff0-\uffff]"  # a label's letter
_ANDROID_L = re.compile(_L_A)
_ANDROID_USERINFO = re.compile(rf"[A-Za-z]++://(?:{_U_A}{{1,64}}(?::{_U_A}{{1,25}})?@(?={_L_A}))?")
_ANDROID_PORT = re.compile(r":[0-9]{1,5}")
# Without a scheme, labels and a TLD at a word boundary (`evil.com-x`, `evil.com+` are evil.com),
# unless that is the start of an e-mail address, which Linkify links instead.
_ANDROID_HOST = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+([^\W\d_]{2,63})(?!\w)")
_MAIL = re.compile(r"[\w.+%'-]{0,256}+@[^\W_]")  # (Android's local part: 256 at most)
# A dotted quad alone is a link to it (to twitter-text it is as often a version number).
_OCTET_A = r"25[0-5]|2[0-4][0-9]|[01][0-9]{2}|[1-9][0-9]?"
_ANDROID_IP = re.compile(
    rf"(?:{_OCTET_A})\.(?:{_OCTET_A}|0)\.(?:{_OCTET_A}|0)\.(?:{_OCTET_A}|[0-9])(?![0-9])")


def _android_end(text: str, s: int) -> int:
    """Where Android's link that starts with the scheme at text[s] ends, or -1 (none: no
    host, or no scheme as written, `ｈttp://`)."""
    if not (scheme := _ANDROID_USERINFO.match(text, s)):
        return -1
    start = i = scheme.end()
    n, label = len(text), _ANDROID_L.match
    ends = []  # where its regex may end the link, in order
    while i < n:  # labels: a letter, then letters, '-' and '_' ending with a letter; '.'
        if label(text, i):
            i += 1
            ends.append(i)
        elif text[i] in "-_" and ends and ends[-1] == i:
            j = i
            while j < n and text[j] in "-_":
                j += 1
            if not (j < n and label(text, j)):
                break
            i = j
        elif text[i] == "." and ends and ends[-1] == i and i + 1 < n and not text[i + 1].isspace():
            i += 1
            if not label(text, i):
                ends.append(i)  # a last '.' (before a port, a path or other text)
                break
        else:
            break
    if not _IGNORABLE.sub("", text[start:ends[-1] if ends else start]):
        return -1  # no host, or one of characters a browser drops
    return _android_tail(text, start, ends)


def _android_host(view: str, s: int, end: int) -> int:
    """Where Android's host without a scheme at view[s] ends, or -1: labels and a TLD before a
    word boundary (`evil.com-x`), or a dotted quad. At most 253 characters are read."""
    stop = min(end, s + 254)
    if not (h := _ANDROID_HOST.match(view, s, stop) or _ANDROID_IP.match(view, s, stop)) or \
            h.lastindex and h[1].lower() not in _tlds() or _glued(view, h.end()):
        return -1
    return h.end()


def _android_tail(text: str, start: int, ends: list[int]) -> int:
    """Where Android's link ends, its host starting at text[start] and ending at one of `ends`
    (in order): after a port and a path, perhaps, at the last word boundary, or -1."""
    i = ends[-1]
    if port := _ANDROID_PORT.match(text, i):
        ends += range(i + 2, port.end() + 1)
        i = port.end()
    if text.startswith(("/", "?"), i):
        ends += range(i + 1, _run_end(_ANDROID_PATH, text, i) + 1)
    for e in reversed(ends):
        if _boundary(text, e):
            while e > start and _IGNORABLE.match(text, e - 1):
                e -= 1  # (dropped by the browser, and no part of the link's span)
            return e if e > start else -1
    return -1


def _word(c: str) -> bool:
    """A word character, to Android's `\\b`: a letter or digit in any script, or '_'."""
    return c.isalnum() or c == "_"


def _at_end(text: str, e: int) -> bool:
    """Is text[e:] the end of the text to Java's `$` (nothing, or one line terminator)?"""
    return e == len(text) or len(text) - e <= 2 and text[e:] in _LINE_TERMINATORS


def _boundary(text: str, e: int) -> bool:
    """May Android's link end before text[e]: a word boundary, or the end (Java's `$`)?"""
    return _at_end(text, e) or _word(text[e - 1]) != _word(text[e])


def _glued(view: str, i: int) -> bool:
    """Are view[i - 1] and view[i] both word characters (no word boundary: Android links no
    `_https://...`, `日本http://...`, nor the evil.com of `x-.evil.com日本`)?"""
    return 0 < i < len(view) and _word(view[i - 1]) and _word(view[i])


def _run_end(run: re.Pattern[str], s: str, pos: int) -> int:
    """Where `run` (a pattern that matches the empty string too) ends from s[pos]."""
    return m.end() if (m := run.match(s, pos)) else pos


def _android_path(url: str, view: str, end: int) -> str | None:
    """The link `url` (that ends at view[end]) as Android's Linkify ends its path, when that is
    shorter and opens another page."""
    authority = _authority_end(url)
    if authority is None or url[authority.start()] not in "/?" or \
            url[authority.start() - 1] == "." and not url.startswith(("http://", "https://")):
        return None  # (no path, or one after a root dot with no scheme: the link ends before)
    path = authority.start()
    if (stop := _run_end(_ANDROID_PATH, url, path)) == len(url):
        # It reads on in the text: past a word character (longer: the token taken whole), to
        # the text's end (whole), or to where it ends the link no later than twitter-text.
        after = _run_end(_ANDROID_PUNCTUATION, view, end)
        if _at_end(view, after) or _word(view[after]) or _ESCAPE.match(view, after):
            return None
    i = stop
    while i > path and not _word(url[i - 1]):
        i -= 1
    # (Not when only '/', '?' or '#' goes: no entry tells those apart.)
    return None if not url[i:].strip("/?#") else url[:i]


class _Ahead:
    """Does a token taken whole stop at the next link in it? Past that link, the reading holds
    it, and it is checked on its own, with its own token taken whole; reading on would only
    lend one link the other's verdict (`example.jpへ。phish.example.com` is a subdomain of the
    phishing host, and the clean link took its verdict and lost its text to sanitize), and
    cost the square of the links in a config line or a paragraph without spaces. It stops
    there unless what follows the link can still change what this reading opens:
    - a '%' anywhere after it: an escape may join what the next link's own text splits
      (`x.com%2eevil.com` is x.com.evil.com, the next link `2eevil.com`; `/x.com%2F..%2F77` and
      `%252e` are dot segments once decoded);
    - from the authority (the link is a host, perhaps a port), an '@' still in it, before the
      next link or after it (`https://good.com,evil.com@bad.com/` opens bad.com);
    - from a path, a dot segment (`/x日本https://a.com/../../u/abc` is /u/abc) or a query begun
      before the next link (`?x=日本&u=https%3A%2F%2Fevil.com` holds evil.com).
    The next '%', delimiter, '@' and dot segment are each looked for once, ahead of the links
    (the links come in order): one forward scan of the text."""

    def __init__(self, view: str) -> None:
        self.view, n = view, len(view)
        self.percent, self.delimiter = _Next(_PERCENT, view, n), _Next(_AUTHORITY_END, view, n)
        self.at, self.dot = _Next(_AT, view, n), _Next(_DOT_SEGMENT, view, n)

    def reading_stops_at(self, url: str, end: int, after: int, stop: int) -> bool:
        if self.percent.at(end) < stop:
            return False
        authority_end = end  # where the reading's authority ends: here if the link has a path
        if _authority_end(url) is None:
            authority_end = self.delimiter.at(end)
        if authority_end >= after:
            return self.at.at(end) >= min(authority_end, stop)
        if "?" in url or self.view.find("?", end, after) >= 0:
            return False
        return self.dot.at(after) >= stop


def _before_userinfo(url: str) -> str | None:
    """The link with a scheme `url` up to the '@' that ends its userinfo, as Autolinker.js ends
    it (it reads no userinfo), or None."""
    if (s := url.find("://")) < 0:
        return None
    authority = _authority_end(url)
    at = url.find("@", s + 3, authority.start() if authority else len(url))
    return url[:at] if at > s + 3 else None


def _authority_end(url: str) -> re.Match[str] | None:
    """The delimiter that ends the link's authority ('/', '\\', '?', '#'), or None: the link
    is a host, perhaps a port."""
    return _AUTHORITY_END.search(url, url.find("//") + 2 if "//" in url else 0)


def _found(m: re.Match[str] | None, default: int) -> int:
    return m.start() if m else default


_AT = re.compile("@")
_PERCENT = re.compile("%")
_DOT_SEGMENT = re.compile(r"[/\\]\.")


# ---- other linkifiers' links -------------------------------------------------------------

# Where other linkifiers end a link and the scan above reads on: lookalike dots (no linkifier
# reads one as a dot: `b．files-host.com/u/abc` is files-host.com/u/abc), Default_Ignorable code points
# (dropped from the view: `ev\u200bil.com` is evil.com to a browser, `il.com` to twitter-text
# and linkifyjs; `x\u200bhttps://evil.com/` is a link to them, glued in the view), '\'
# (`https://site.net/gallery/77\x` is /gallery/77 to twitter-text and linkify-it, /77/x to a
# browser given the whole), fullwidth and other non-ASCII punctuation (folded or taken into a
# label by the view: `https://evil.com＠x`, `https://evil.com’x.good.com` are evil.com to
# linkify-it) but for the lookalike dots, and the C0 separators, NEL, U+2028/2029.
@functools.cache
def _breaks() -> re.Pattern[str]:
    """One break character (~6 ms to find them, on the first text that is not ASCII)."""
    punctuation = (c for c in range(0x80, 0x10000) if unicodedata.category(chr(c))[0] == "P")
    fullwidth = (c for c in range(0xFF01, 0xFF5F) if not chr(c).isalnum())
    ignorables = (c for a, b in _IGNORABLE_RANGES for c in range(a, b + 1))
    cps = {*map(ord, _ASCII_BREAKS), 0x85, 0x2028, 0x2029, *map(ord, _DOTS), *punctuation,
           *fullwidth, *ignorables}
    return re.compile(_char_class(cps))


_ASCII_BREAKS = "\\\x1c\x1d\x1e\x1f"
_ASCII_BREAK = re.compile(f"[{re.escape(_ASCII_BREAKS)}]")
_LINKISH = re.compile(rf"[.:(\[{{{_DOTS}]")  # what a token with a link holds (as _MAYBE)
# In the view, what other linkifiers may link where the scan does not: a label ending in '-' or
# '_' before a dot (`x_.evil.com`), or starting with one after a '.' or '/' (`https://-x.evil.com`),
# or a label after [-_./] that follow no letter or digit (`".evil.com`, `a,//evil.com`), or
# after '-' or '_' (`my_evil.com` is evil.com to linkifyjs).
# (One leading class: the regex engine skips ahead to it. A leading lookbehind took 6 us a
# message, this 1.3. A label is 63 characters at most: unbounded, 64 KB of `a-a-a-...` took
# 1.8 s.)
_OTHER_HINT = re.compile(r"[-_./](?:(?<=[-_])\.[0-9A-Za-z]|(?<=[./])[-_][0-9A-Za-z]"
                         r"|(?<![0-9A-Za-z:/][./])[-_./]{0,8}[0-9A-Za-z][0-9A-Za-z-]{0,62}\.)")


def _other_links(text: str, out: list[Candidate], breaks: re.Pattern[str],
                 tokens: list[tuple[int, int]], android: list[tuple[str, int, int, int]],
                 gfm: list[tuple[str, int, int, int]]) -> list[Candidate]:
    """`out` (find_links' candidates), with the links other linkifiers make of these tokens of
    the text: read with their breaks (above) as spaces, and with their rules for a host
    (_LENIENT: linkifyjs links `evil.com` in `x_.evil.com`, `x.evil.com` in `-x.evil.com`;
    after a scheme, a browser opens `https://-x.evil.com/` whole). One inside or across a
    candidate's link is another reading of it (`others`); one elsewhere is a candidate of its
    own, not `linked`."""
    plain = breaks.sub(" ", text)  # one for one: the text's offsets
    # The fullwidth '-' and '_' map to label characters (IDNA): in a host after a scheme they
    # are in it to twitter-text and linkifyjs (`http://x－evil.com/` is host x-evil.com), and
    # end it to linkify-it (`http://198.51.100.23－` is that address): both readings.
    kept, links = _in_host_after_scheme(text)
    kept = [i for i in kept if plain[i] == " "]
    if kept:
        chars = list(plain)
        for i in kept:
            chars[i] = text[i]
        plain = "".join(chars)
    found: list[tuple[str, int, int, int]] = []
    for lo, hi in tokens:
        for url, start, end, token_end in _scan(plain, _LENIENT, lenient=True, lo=lo, hi=hi):
            if url[-1] in "[]":  # twitter-text ends a link before brackets at its end
                url = _without_brackets(url) or url
            found.append((url, start, end, token_end))
        if len(found) >= MAX_CANDIDATES:
            # Not all read: the message must be flagged (a token whose reading was not
            # checked, as past the budget), even where these links fold into others.
            found = found[:MAX_CANDIDATES]
            if out:
                out = [*out[:-1], out[-1]._replace(whole=None, whole_end=-1)]
            break
    found += links[:MAX_CANDIDATES]
    return _merge(text, out, found + android, gfm)


def _merge(text: str, out: list[Candidate], found: list[tuple[str, int, int, int]],
           gfm: list[tuple[str, int, int, int]]) -> list[Candidate]:
    """`out` with the links other linkifiers make (`found`, and GFM's and Discord's `gfm`, which
    end as those linkifiers end them: no port reading; url, start, end, token end, in the
    text's offsets). One inside or across a candidate's link is another reading of it
    (`others`); one elsewhere is a candidate of its own, not `linked`."""
    if not found and not gfm:
        return out
    # (a port that is none opens nothing: Telegram's link ends before it)
    found = [((_telegram_port(u) or u) if ":" in u[6:] else u, s, e, t) for u, s, e, t in found]
    found = sorted(found + gfm, key=lambda f: f[1])  # (GFM's links as it ends them)
    extra: dict[int, list[tuple[str, int]]] = {}
    clip: dict[int, int] = {}
    new: list[Candidate] = []
    starts = [c.start for c in out]
    for url, start, end, _token_end in found:
        i = bisect.bisect_right(starts, start) - 1  # the last candidate starting at or before
        j = i if i >= 0 and start < out[i].end else i + 1
        if j < len(out) and out[j].start < end:  # across the link of candidate j
            c = out[j]
            if url != c.url and url != c.whole and all(url != o for o, _ in c.others):
                limit = out[j + 1].start if j + 1 < len(out) else len(text)
                extra.setdefault(j, []).append((url, min(max(end, c.end), limit)))
            continue
        if new and new[-1].end > start:  # across the last one of these: another reading
            if url != new[-1].url and all(url != o for o, _ in new[-1].others):
                limit = out[j].start if j < len(out) else len(text)
                reading = (url, min(max(end, new[-1].end), limit))
                new[-1] = new[-1]._replace(others=(*new[-1].others, reading))
            continue
        new.append(Candidate(url, start, end, linked=False))
        if i >= 0 and out[i].whole_end > start:  # in candidate i's token taken whole
            clip[i] = min(clip.get(i, start), start)  # its span stops here, as at any link
    if extra or clip:
        out = [c._replace(others=c.others + tuple(extra.get(i, ())),
                          whole_end=clip.get(i, c.whole_end))
               if i in extra or i in clip else c for i, c in enumerate(out)]
    if new:  # at the cap, those find_links found come first (the message is flagged anyway)
        out = sorted(out + new[:MAX_CANDIDATES - len(out)], key=lambda c: c.start)
    return out


def _without_brackets(url: str) -> str | None:
    """The link as twitter-text ends it, without square brackets at the end of its path
    (`https://files-host.com/u/abc[]` is /u/abc, `.../abc[1]` is /abc[1: '[' and ']' end no
    path there; the scan keeps them balanced, for Markdown and BBCode), or None."""
    authority = _authority_end(url)
    if authority is None or _QUERY_OR_FRAGMENT.search(url, authority.start()):
        return None
    return url.rstrip(_PATH_STRIP + "[]")


_QUERY_OR_FRAGMENT = re.compile("[?#]")
_FULLWIDTH_LABEL_CHAR = re.compile("[\uff0d\uff3f]")
_SCHEME_AND_HOST = re.compile("((?i:https?|ftp)://)[0-9A-Za-z.\\-\uff0d\uff3f]{0,256}")


def _in_host_after_scheme(text: str) -> tuple[list[int], list[tuple[str, int, int, int]]]:
    """The fullwidth '-' and '_' in the host of a link with a scheme (a run of letters,
    digits, '.', '-' and those right after `://`, as twitter-text takes a host: not after a
    port or a ','): where they are in the host to twitter-text and linkifyjs (after an
    http(s) or ftp scheme that follows no letter, digit or '/': `「https://x－evil.com/」` is
    host x-evil.com, `good.com/http://a－evil.com` ends before it), and linkify-it's and
    twitter-text's links up to them (after any http(s) scheme: `good.com,https://evil.com－`
    is https://evil.com). Each scheme's run is read once: linear in the text."""
    kept: list[int] = []
    links: list[tuple[str, int, int, int]] = []
    for m in _SCHEME_AND_HOST.finditer(text):
        at = [f.start() for f in _FULLWIDTH_LABEL_CHAR.finditer(text, m.end(1), m.end())]
        if not at:
            continue
        before = text[m.start() - 1] if m.start() else " "
        glued = before.isascii() and before.isalnum() or before in "@$#"
        if m[1][0] in "hH" and not glued:
            links += [(text[m.start():i], m.start(), i, i) for i in at]
        if not glued and before != "/":
            kept += at
    return kept, links


def _tokens(text: str, positions: list[int]) -> list[tuple[int, int]]:
    """The white-space delimited tokens of `text` that hold these positions (sorted), merged;
    linear in the text however many positions."""
    out: list[tuple[int, int]] = []
    end = 0
    for p in positions:
        if p < end:
            continue
        start, end = _token(text, end, p, len(text))
        if out and out[-1][1] >= start:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _ascii_link(text: str, view: str, orig: Callable[[int], int] | None, url: str,
                start: int, end: int) -> str | None:
    """Candidate.ascii for the link view[start:end] (`url`): after the characters, as written
    in the text (a folded fullwidth 'Ｘ' is not ASCII), that twitter-text's validAsciiDomain
    does not take, and the dots between them; None when there are none, or nothing after."""
    if url.startswith(("http://", "https://")):
        return None
    p = start
    while p < end and not _TW_ASCII.match(text[orig(p) if orig else p]):
        if view[p] not in _ASCII_DOT_OR_DOTS and not _U1.match(view[p]):
            return None
        p += 1
    if p == start or p >= end:
        return None
    tail = url[len(_DOT_RE.sub(".", view[start:p])):]
    # validAsciiDomain is labels and a TLD: "Σελίδα.gr" holds no ASCII domain, only a TLD
    # (a port, if any, is digits: no dot).
    authority_end = _AUTHORITY_END.search(tail)
    return tail if "." in tail[:authority_end.start() if authority_end else len(tail)] else None


def _whole_end(view: str, start: int, pos: int, token_end: int) -> int:
    """Where the token of the link at `start` taken whole from `pos` ends: before a quote, a
    '<' or a backtick (JSON, HTML, code: no linkifier takes those), and, when the link is in
    an HTML tag or an autolink `<...>`, before the '>' that closes it. GFM's autolink ends at
    white space or '<' only, so a '"' whose next '@' comes before another stop (after a run
    of '"') does not end it either: "https://good.com"@evil.com/" and
    "https://good.com>x@evil.com/" are one link there, and a browser opens evil.com. In JSON
    another quote comes first."""
    stops, stops_or_at = (_TAG_STOP, _TAG_STOP_OR_AT) if _in_tag(view, start) else \
        (_WHOLE_STOP, _WHOLE_STOP_OR_AT)
    while stop := stops.search(view, pos, token_end):
        s = stop.start()
        if view[s] != '"':
            return s
        run = s + 1
        while run < token_end and view[run] == '"':
            run += 1
        # The next '@' or stop after it (not the next '@' anywhere: linear in the token).
        if not (at := stops_or_at.search(view, run, token_end)) or view[at.start()] != "@":
            return s
        pos = at.end()
    return token_end


_ATTRIBUTE_VALUE_START = re.compile(r"""=\s*["']?$""")
_TAG_OPEN = re.compile(r"<[A-Za-z]")


def _in_tag(view: str, start: int) -> bool:
    """Is the link at `start` an autolink `<https://...>`, or an attribute value
    (`href=https://`, `href = "https://`, `src='https://`) in an HTML tag: a '<' and a letter
    before it, within 8 KB (a '>' or '<' between them may be in another attribute's value)?
    Then a '>' after it closes that tag. A '<' in prose ("x<y https://...") makes no tag of a link
    that is no attribute value."""
    if start > 0 and view[start - 1] == "<":
        return True
    if not _ATTRIBUTE_VALUE_START.search(view, max(0, start - 8), start):
        return False
    return _TAG_OPEN.search(view, max(0, start - 8192), start) is not None


def _tail_start(view: str, limit: int) -> int:
    """Where the closing punctuation that ends view[:limit] starts."""
    i = limit
    while i > 0 and view[i - 1] in _TOKEN_TAIL:
        i -= 1
    return i


# GFM's autolink (cmark-gfm's autolink_delim) ends a link at the end of its token or at a '<',
# then drops from its end any of `?!.,:*_~'"`, a ';' with the character reference it closes
# (`&amp;`) and a ')' that has no '(' in the link (GFM spec, "extended autolink path
# validation"). twitter-text keeps a closing '_' and an unclosed reference (`&amp`).
_GFM_TRAILING = "?!.,:*_~'\""
_GFM_TAIL = re.compile(rf"(?:[{re.escape(_GFM_TRAILING)});]|&[A-Za-z]+;)*+")


def _gfm_end(link: str) -> int:
    """Where GFM's autolink ends `link`, the rest of a token from the link's start."""
    opening, closing = link.count("("), link.count(")")
    end = len(link)
    while end > 0:
        c = link[end - 1]
        if c == ")":
            if closing <= opening:
                break
            closing -= 1
        elif c == ";":
            i = end - 2
            while i > 0 and link[i].isascii() and link[i].isalpha():
                i -= 1
            if i < end - 2 and link[i] == "&":
                end = i
                continue
        elif c not in _GFM_TRAILING:
            break
        end -= 1
    return end


def _gfm_cut(url: str, view: str, end: int) -> str | None:
    """The link `url` (that ends at view[end]) as GFM's autolink ends it, when GFM makes it
    (after a scheme, or "www.") and that is shorter. (marked, a GFM renderer in JavaScript,
    ends its token at any white space, a no-break space too, and takes "WWW.": both count.)"""
    if not url.lower().startswith(("http://", "https://", "www.")) or \
            "://" in url and not _gfm_host_char(url[url.index("://") + 3]):
        return None
    tail = _run_end(_GFM_TAIL, view, end)
    if tail < len(view) and not view[tail].isspace() and view[tail] != "<":
        return None  # GFM's link reads on (the token taken whole)
    cut = _gfm_end(url + view[end:tail])
    return url[:cut] if cut < len(url) else None


def whole_budget(text: str) -> int:
    """How many characters of tokens taken whole one text may have checked. Each link of a
    token reads to its end, so a token of n links costs n^2/2 link lengths: 50 hosts in a
    config line, or 30 links in a paragraph without spaces, must fit (2 * len + 8192 flagged
    them); a 64 KB text of links takes ~10 ms more at most."""
    return 4 * len(text) + 32768


# What a Markdown or HTML renderer decodes in a link before a browser sees it: character
# references (&#46; &period;), CommonMark backslash escapes (evil\.com), and in an attribute
# value (quoted or not) or a <...> link destination, C0 controls and spaces at either end
# (stripped), tabs and newlines (dropped) and spaces inside (%20).
# Not inside a code span: CommonMark decodes nothing there, and makes no link.
_ENTITY = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9A-Fa-f]+;?|[A-Za-z][A-Za-z0-9]{1,31};)")
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_URL_ATTRIBUTES = "href|src|srcset|action|formaction|data|poster|cite|background|ping|xlink:href"
# A start tag: its name, then values quoted after an '=' (they may hold '>') or anything but
# '>' (an unquoted value may hold a quote). At most one quote a tag is left open: linear.
_TAG = re.compile(r"""<[A-Za-z][^\s/>]*(?:=\s*"[^"]*"|=\s*'[^']*'|[^>])*>?""")
_ATTRIBUTE = re.compile(rf"""(?<![\w:-])((?:{_URL_ATTRIBUTES})\s*=\s*)"""
                        r"""(?:(["'])(.*?)\2|([^ \t\n\r\x0c>]+))""", re.IGNORECASE | re.DOTALL)
_URL_ATTRIBUTE_HINT = re.compile(rf"(?:{_URL_ATTRIBUTES})\s*=")  # on the text lower-cased
_BACKTICKS = re.compile(r"`+")


def markup_links(text: object, found: list[Candidate] | None = None, depth: int = 0) -> list[str]:
    """Links a Markdown or HTML renderer would make that are not in `find_links(text)`:
    `[x](http://evil\\.com)`, `[x](http://evil&#46;com)`, `<a href=http://ev&#10;il.com/>`,
    `[x](<http://good.com @evil.com>)`: the links in the text as the renderer decodes it (each
    also as its token taken whole), and every link destination and URL attribute value as a
    whole (a destination may hold what ends a token: `[x](http://good.com"@evil.com/)` is
    evil.com). They have no span in the text (what a renderer shows is not what was typed); a
    message that holds one is judged by it all the same. `found`: find_links(text), when the
    caller has it. An iframe's srcdoc is read as a message of its own (`depth` levels in)."""
    if not isinstance(text, str):
        return []
    # What every reading below needs: ']' (a Markdown link or reference), '<' (an autolink, a
    # tag), '@' (userinfo after "//"), "/www." in any case, '`' (a code span), '\\' (escapes),
    # '&' (character references). Most messages hold none: a few substring tests (a regex
    # search for them all costs more), before any of the work below, its closure too.
    if not ("]" in text or "<" in text or "@" in text or "`" in text or "\\" in text
            or "&" in text or ("/w" in text or "/W" in text) and "/www." in text.lower()):
        return []
    return _markup_links(text, found, depth)


def _markup_links(text: str, found: list[Candidate] | None, depth: int) -> list[str]:
    # Destinations and attribute values from the text as it is: which backtick opens a code
    # span depends on raw HTML and escapes around it, and a link inside one is no loss.
    attributes = ("<" in text and "=" in text
                  and _URL_ATTRIBUTE_HINT.search(text.lower()) is not None)
    targets = _targets(text, attributes)
    if "<" in text and ("\\" in text or "&" in text) and _STYLE_HINT.search(text):  # CSS escapes
        targets += [u for css in _css_texts(text) if (d := _css_unescape(css)) != css
                    for u in _urls(find_links(d))]
    if "//" in text and "@" in text:
        targets += ["https://" + m[1] for m in _RELATIVE_USERINFO.finditer(text)]
    if "/" in text and "/www." in text.lower() and _WWW_AFTER_SLASH.search(text):
        found = find_links(text) if found is None else found
        targets += _urls(find_links(" ".join(_outside(text, found))))
    if "<" in text and depth < _MAX_SRCDOC_DEPTH and _SRCDOC_HINT.search(text):
        for m in _SRCDOC.finditer(text):
            inner = html.unescape(m[2] if m[1] is not None else m[3])
            inner_links = find_links(inner)
            targets += _urls(inner_links) + markup_links(inner, inner_links, depth + 1)
    decoded = text
    if "`" in decoded:
        decoded = _without_code_spans(decoded)
    if "\\" in decoded and _MD_ESCAPE.search(decoded):
        decoded = _MD_ESCAPE.sub(r"\1", decoded)
    href = None
    if "&" in decoded and _ENTITY.search(decoded):
        # A renderer may also copy a link's text, references and all, into its href (marked's
        # GFM autolinks: <www.evil.c&NewLine;om>), and the browser then decodes them and drops
        # the tabs and newlines they make: that reading too, where it differs.
        href = _ENTITY.sub(lambda m: html.unescape(m[0]).translate(_TAB_NEWLINE), decoded)
        decoded = _ENTITY.sub(lambda m: html.unescape(m[0]), decoded)
    if decoded == text and not targets:
        return []
    seen = {c.url for c in (find_links(text) if found is None else found)}
    out = [] if decoded == text else _urls(find_links(decoded))
    if href is not None and href != decoded:
        out += _urls(find_links(href))
    return list(dict.fromkeys(u for u in (*out, *targets) if u not in seen))


def _urls(links: list[Candidate]) -> list[str]:
    """Each link's URL, its token taken whole and its other readings."""
    return [u for c in links for u in (c.url, c.whole, *(o for o, _ in c.others)) if u is not None]


# Where a Markdown link destination (CommonMark 6.3: <...>, or no ASCII space or control, with
# balanced or escaped parentheses) or a URL attribute value (quoted, or up to a space or '>')
# holds an absolute, protocol-relative or www. URL.
_D = r"(?:[^ \x00-\x1f\x7f()\\]|\\.)"  # a destination character (no ASCII space or control)
_MD_DESTINATION = re.compile(
    rf"\]\([ \t\n]*(?:<((?:[^<>\n\\]|\\.)*)>|((?:{_D}|\((?:{_D}|\({_D}*\))*\))+))")
_MD_REFERENCE = re.compile(
    rf"^ {{0,3}}\[[^\]\n]+\]:[ \t]*\n?[ \t]*(?:<((?:[^<>\n\\]|\\.)*)>|((?:{_D}|[()])+))",
    re.MULTILINE)
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}:[^ \x00-\x1f\x7f<>]*)>")
_TARGET = re.compile(r"(?i:https?:|www\.|[/\\]{2})")


def _targets(text: str, attributes: bool) -> list[str]:
    """The URLs of the link destinations (inline, reference definitions, autolinks) and (if
    `attributes`) URL attribute values of the tags of `text`, decoded."""
    values = []  # decoded: character references, and a destination's backslash escapes
    for hint, destination in (("](", _MD_DESTINATION), ("]:", _MD_REFERENCE)):
        if hint in text:  # group 1: <...>, group 2: bare
            values += [html.unescape(_MD_ESCAPE.sub(r"\1", m[1] if m[1] is not None else m[2]))
                       for m in destination.finditer(text)]
    if "<" in text:
        values += [html.unescape(m[1]) for m in _AUTOLINK.finditer(text)]
    if attributes:
        for tag in _TAG.finditer(text):
            for m in _ATTRIBUTE.finditer(tag[0]):
                value = html.unescape(m[3] if m[2] is not None else m[4])
                name = m[1].lower()
                if name.startswith("srcset"):  # "url 1x, url 2x": the first word of each
                    values += [c.split()[0] for c in value.split(",") if c.split()]
                elif name.startswith("ping"):  # URLs separated by white space
                    values += value.split()
                else:
                    values.append(value)
    out = []
    for value in values:
        url = _as_url(value)
        if _TARGET.match(url):
            out.append("https:" + url if url[0] in "/\\" else
                       "http://" + url if url[:4].lower() == "www." else url)
    return out


# linkify-it (markdown-it's linkifier) links a protocol-relative URL with userinfo after a
# space or any punctuation but '_', ':' and '/': `x;//user@evil.com/x` is //user@evil.com/x,
# which the browser opens at evil.com (twitter-text reads an e-mail address there, no link).
_RELATIVE_USERINFO = re.compile(r"//(?<![\w:/]//)([^\s@/\\\[\]()]{1,256}@[^\s<>\"'`]+)")

# marked (a GFM renderer) links "www." after anything, '/' too, where the GFM spec and the
# other linkifiers do not: `ttps://www.evil.com`, `a/www.evil.com` are links to it. Not
# inside a link found in the text (`https://good.com/www.evil.com` is good.com's path).
# (The common "http(s)://www." is a link already, and not looked at again.)
_WWW_AFTER_SLASH = re.compile(r"/(?<!https://)(?<!http://)(www\.[^\s<>\"'`]+)", re.IGNORECASE)

def _outside(text: str, found: list[Candidate]) -> list[str]:
    """The "www." that follow a '/' outside the links found in `text`, each to its token's end
    (at most MAX_CANDIDATES of them; the links are in order of their starts)."""
    starts = [c.start for c in found]
    ends = list(itertools.accumulate((c.end for c in found), max))
    out = []
    for m in _WWW_AFTER_SLASH.finditer(text):
        i = bisect.bisect_right(starts, m.start(1)) - 1
        if i < 0 or ends[i] <= m.start(1):
            out.append(m[1])
            if len(out) >= MAX_CANDIDATES:
                break
    return out


# An iframe's srcdoc is a document of its own: the browser decodes the attribute, then parses
# the value as HTML, so what it holds is decoded twice (<iframe srcdoc="<a
# href=&amp;#104;ttp://evil.com>">), and a srcdoc in it three times. Read like a message, to
# this depth.
_MAX_SRCDOC_DEPTH = 3
_SRCDOC_HINT = re.compile("(?i)srcdoc")
_SRCDOC = re.compile(r"""(?<![\w:-])srcdoc\s*=\s*(?:(["'])(.*?)\1|([^\s>]+))""",
                     re.IGNORECASE | re.DOTALL)

# CSS in a style attribute or a <style> element: a url() or an @import string may hold CSS
# escapes (CSS Syntax 4.3.7: a backslash, 1-6 hex digits and one white space; or a backslash and
# any other character; an escaped newline is nothing), which the browser decodes before it
# loads the URL: url(//evil\2e com/x) is //evil.com/x. The CSS is decoded whole and read for
# links. A <style> element's text is raw (no character references); an attribute's is not.
_STYLE_HINT = re.compile("(?i)style")
_STYLE = re.compile(r"""<style\b[^>]*>(.*?)(?:</style\s*>|$)"""
                    r"""|(?<![\w:-])style\s*=\s*(?:(["'])(.*?)\2|([^\s>]+))""",
                    re.IGNORECASE | re.DOTALL)
_CSS_ESCAPE = re.compile(r"\\(?:([0-9A-Fa-f]{1,6})[ \t\n\r\x0c]?|(\n)|(.))", re.DOTALL)


def _css_texts(text: str) -> list[str]:
    return [m[1] if m[1] is not None else html.unescape(m[3] if m[2] is not None else m[4])
            for m in _STYLE.finditer(text)]


def _css_unescape(css: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m[1] is None:
            return "" if m[2] else m[3]
        cp = int(m[1], 16)
        return "\ufffd" if cp == 0 or 0xD800 <= cp <= 0xDFFF or cp > 0x10FFFF else chr(cp)
    return _CSS_ESCAPE.sub(one, css)


def _without_code_spans(text: str) -> str:
    """The text with its CommonMark code spans blanked: a run of n backticks opens one that the
    next run of exactly n closes (no closer: the run is literal). Runs are paired through an
    index by length, so the work is linear (a regex backtracks quadratically on a long run)."""
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text)]
    by_length: dict[int, list[int]] = {}
    for i, (a, b) in enumerate(runs):
        by_length.setdefault(b - a, []).append(i)
    out: list[str] = []
    pos = i = 0
    while i < len(runs):
        a, b = runs[i]
        same = by_length[b - a]
        k = bisect.bisect_right(same, i)
        if k == len(same):
            i += 1
            continue
        j = same[k]
        out += (text[pos:a], " ")
        pos = runs[j][1]
        i = j + 1
    out.append(text[pos:])
    return "".join(out)


def _as_url(value: str) -> str:
    """A decoded destination or attribute value as a browser parses it as a URL (WHATWG basic
    URL parser): C0 controls and spaces stripped from both ends (a value that starts
    "\x01http://" opens), tabs and newlines dropped; a space left inside is %20."""
    return value.strip(_C0_SPACE).translate(_TAB_NEWLINE).replace(" ", "%20")


_C0_SPACE = "".join(map(chr, range(0x21)))


_TAB_NEWLINE = {9: None, 10: None, 13: None}  # WHATWG drops them from anywhere in a URL
