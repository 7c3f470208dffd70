"""Browser parity beyond WHATWG: every host Chromium, Firefox or WebKit (Safari) opens is checked.

linkguard parses with ada (WHATWG); where ada refuses a URL, it reads the host as Chromium does
(`urls._chrome_reading`), and where Safari opens another host than ada reads, it checks that one
too (`urls.webkit_reading`, the Engine's readings). The table (tests/data/browser_hosts.tsv) runs
everywhere. Where the browsers are installed (`.ci/run` installs them: tests/browsers.py), each
column of the table is checked against its engine, and seeded sweeps compare every host each
engine opens with the hosts linkguard checks, both ways: for URLs, for every code point in a
label, and for a message's markup (URL attributes, srcdoc documents, CSS), as the engine's own
HTML and CSS parsers read it.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from linkguard import Action, Engine, extract, urls
from tests import browsers
from tests.corpora import corpus_json, read_tsv

TABLE = read_tsv("browser_hosts.tsv")
# A host a resolver can look up: the engines also open hosts such as "x%20y.com", which no DNS
# name is, so no list can name them.
_RESOLVABLE = re.compile(r"[0-9a-z._-]*[0-9a-z][0-9a-z._-]*|\[[0-9a-f:.]+\]")


def _resolvable(host: str | None) -> str | None:
    return host if host is not None and _RESOLVABLE.fullmatch(host) else None


def _read(url: str | None) -> str | None:
    """The host linkguard matches for `url`."""
    c = urls.canonicalize(url) if url is not None else None
    return c.host if c else None


def _as_matched(host: str) -> str | None:
    """A host as linkguard matches it (root dot dropped, IPv4-mapped IPv6 as IPv4)."""
    return _read(f"http://{host}/")


def _checked(url: str) -> set[str]:
    """Every host linkguard checks for a link to `url`: its canonical one, and Safari's."""
    return {h for h in (_read(url), _read(urls.webkit_reading(url))) if h is not None}


@pytest.mark.parametrize("row", TABLE, ids=lambda r: repr(r[0])[:50])
def test_browser_hosts_table(row: list[str]) -> None:
    url, *opened = row
    assert _checked(url) == {_as_matched(h) for h in opened if h != "-"}


@pytest.mark.parametrize("row", [r for r in TABLE if r[0] != "http://bücher％2Ede/"],
                         ids=lambda r: repr(r[0])[:50])
def test_a_link_in_text_is_checked_at_every_host_a_browser_opens(row: list[str]) -> None:
    """The same rows as links in a message. (Left out: bücher％2Ede, which the text scan folds
    to bücher%2Ede, bücher.de; Chromium opens xn--bcher.de-9db, under a TLD that is none.)"""
    url, *opened = row
    checked = set().union(*(_checked(c.url) for c in extract.find_links(f"see {url} now")))
    assert checked >= {_as_matched(h) for h in opened if h != "-"}


def test_a_host_read_as_a_browser_reads_it_reads_back_as_itself() -> None:
    for url, *_ in TABLE:
        for reading in (url, urls.webkit_reading(url)):
            c = urls.canonicalize(reading) if reading else None
            if c is not None:
                again = urls.canonicalize(c.text)
                assert again is not None and again.text == c.text, url


# ---- against the engines themselves ------------------------------------------------------------

@pytest.fixture(scope="module", params=browsers.ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[str, browsers.Run]]:
    with browsers.engine(request.param) as run:
        yield request.param, run


def test_the_table_says_what_each_engine_says(engine: tuple[str, browsers.Run]) -> None:
    name, run = engine
    column = 1 + browsers.ENGINES.index(name)
    said = [_resolvable(h) or "-" for h in browsers.hosts(run, [row[0] for row in TABLE])]
    assert said == [row[column] for row in TABLE]


def _crafted_urls(n: int, seed: int = 7) -> list[str]:
    """Hosts made of the pieces the parsers read differently: percent signs (ASCII, fullwidth,
    escaped), hex digits in both widths, dots, brackets, delimiters in both widths, letters of
    other scripts and both sharp s, invisible characters."""
    pieces = ["％", "%", "%EF%BC%85", "%ef%bc%85", "6", "5", "2", "E", "e", "Ｅ", "６", "５",
              "２", "3", "1", "4", "A", "Ａ", "ｅ", "v", "i", "l", ".", "．", "。", "%2E", "％２Ｅ",
              "com", "ｃｏｍ", "ü", "ß", "ẞ", "%E1%BA%9E", "\u00ad", "\u200b", "[", "]", "［",
              "］", ":", "：", "@", "＠", "%40", "％４０", "%3A", "％３Ａ", "%5B", "%5D", "％５Ｂ",
              "％５Ｄ", "0x", "０ｘ", "7f", "::", "db8", "2001", "%25", "％２５", "%00", "％００",
              "-", "－", "_", "xn--", "/", "／", "%2F", "％２Ｆ", "\\", "＼", "?", "？", "#", "＃",
              " ", "%20", "*"]
    rnd = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        host = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 8)))
        out.add(rnd.choice(["http://", "https://", "http:\\\\", "http:", "HTTP://u@"]) + host
                + rnd.choice(["", "/", "/a", ":80/", ":８０/", "?q", "#f", ".com/", "%2Ecom/"]))
    return sorted(out)


def _corpus_urls() -> list[str]:
    """Absolute http(s) inputs of the WHATWG URL tests, and the IDNA tests' names as hosts."""
    whatwg = [c["input"] for c in corpus_json("whatwg-url/urltestdata.json")
              if isinstance(c, dict) and c["input"].lower().startswith(("http://", "https://"))]
    idna = [f"http://{c['input']}/x" for c in corpus_json("whatwg-url/IdnaTestV2.json")
            if isinstance(c, dict) and c.get("input")]
    return whatwg + idna


def test_every_host_an_engine_opens_is_checked(engine: tuple[str, browsers.Run]) -> None:
    """Both ways: every host the engine opens that a resolver can look up is one linkguard
    checks (else a listed host gets past); and a host that only the engine's own reading gives
    (Chromium's where ada refuses, Safari's) is the host that engine opens (else linkguard
    reads a link that no browser opens)."""
    name, run = engine
    inputs = _crafted_urls(20_000) + _corpus_urls()
    opened = browsers.hosts(run, inputs)
    assert sum(_resolvable(h) is not None for h in opened) > 2_000
    missed, invented = [], []
    for url, host in zip(inputs, opened, strict=True):
        if _resolvable(host) and _as_matched(str(host)) not in _checked(url):
            missed.append((url, host, _checked(url)))
        own = (_read(url) if name == "chromium" and urls.whatwg_refuses(url) else
               _read(urls.webkit_reading(url)) if name == "webkit" else None)
        if own is not None and (host is None or own != _as_matched(host)):
            invented.append((url, host, own))
    assert missed == [] and invented == []


_URL_ATTRIBUTES = ("href", "src", "action", "formaction", "data", "poster", "cite", "background",
                   "ping", "xlink:href", "srcset")
# Each URL attribute of every element, as the engine's HTML parser gives it (character
# references decoded), parsed as a URL against the page that shows the message; and the same
# in the document of an iframe's srcdoc, three levels in.
_JS_MARKUP_HOSTS = """(xs => JSON.stringify(xs.map(h => {
  const out = [];
  const walk = (html, depth) => {
    for (const el of new DOMParser().parseFromString(html, 'text/html').querySelectorAll('*')) {
      for (const a of el.attributes) {
        const n = a.name.toLowerCase();
        if (!NAMES.includes(n)) continue;
        const vals = n === 'ping' ? a.value.split(/\\s+/) : n === 'srcset'
          ? a.value.split(',').map(s => s.trim().split(/\\s+/)[0]) : [a.value];
        for (const v of vals) {
          try { const u = new URL(v, 'https://chat.example/');
                if (u.protocol === 'http:' || u.protocol === 'https:') out.push(u.hostname) }
          catch (e) {} } }
      if (depth < 3 && el.localName === 'iframe' && el.hasAttribute('srcdoc'))
        walk(el.getAttribute('srcdoc'), depth + 1) } };
  walk(h, 0);
  return out })))""".replace("NAMES", json.dumps(_URL_ATTRIBUTES))


def _markup(n: int, seed: int = 11) -> list[str]:
    """HTML a renderer may show: a URL attribute of a tag, its value written with character
    references (numeric, named, without ';'), controls, spaces, backslashes, userinfo, quoted
    three ways, perhaps in an iframe's srcdoc, or in one in another's; to evil.com or, as near
    misses, good.com."""
    tags = [("a", "href"), ("A", "HREF"), ("img", "src"), ("img", "srcset"), ("iframe", "src"),
            ("form", "action"), ("button", "formaction"), ("object", "data"), ("video", "poster"),
            ("blockquote", "cite"), ("a", "ping"), ("area", "href"), ("embed", "src"),
            ("base", "href"), ("table", "background"), ("svg><a", "xlink:href")]
    refs = {":": ["&#58;", "&#x3a;", "&colon;", "&#0058;", "&#58"], "/": ["&#47;", "&sol;", "&#x2f;"],
            ".": ["&#46;", "&period;", "&#x2E;", "&#46"], "e": ["&#101;", "&#x65;", "&#101"],
            "h": ["&#104;", "&#x68"], "o": ["&#111;", "&#x6F;"]}
    shapes = ["http://{}/x", "https://{}", "//{}/x", "\\\\{}/x", "/\\{}/x", "http:{}/x",
              "http:\\\\{}", "HTTP://{}", " http://{}", "\thttp://{}", "http://user@{}/x",
              "http://good.example@{}/", "\x01http://{}", "\u00a0http://{}"]
    rnd = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        host = rnd.choice(["evil.com", "EVIL.com", "www.evil.com", "good.com", "evil.com.good.com"])
        value = rnd.choice(shapes).format(host)
        value = "".join(rnd.choice(refs[c]) if c in refs and rnd.random() < 0.3 else c
                        for c in value)
        if rnd.random() < 0.2:
            i = rnd.randrange(len(value))
            value = value[:i] + rnd.choice(["&Tab;", "&NewLine;", "&#9;", "&#10;", "&#13;",
                                            "&#0;", "&shy;", "&#8203;"]) + value[i:]
        tag, attr = rnd.choice(tags)
        quote = rnd.choice(['"', "'", ""])
        if not quote and any(c in value for c in " \t\n\x01\u00a0>"):
            quote = '"'
        if attr == "srcset" and rnd.random() < 0.5:
            value = f"http://good.example/a.png 1x, {value} 2x"
        html = (f"<{tag}" + rnd.choice(["", ' class="c"', " title=x"])
                + rnd.choice([" ", "\n", "/"]) + attr + rnd.choice(["=", " = "])
                + f"{quote}{value}{quote}>x</a>")
        for _ in range(rnd.choice([0, 0, 0, 1, 1, 2])):  # inside an iframe's srcdoc
            html = '<iframe srcdoc="' + html.replace("&", "&amp;").replace('"', "&quot;") + '">'
        out.add(rnd.choice(["", "see ", "<p>", "[x](y) "]) + html)
    return sorted(out)


def _plain(html: str) -> str:
    """The text decoded (as often as a srcdoc in a srcdoc is), without white space, controls or
    invisible characters (linkguard drops them from a host on purpose: README, "Bypass
    sweeps")."""
    for _ in range(4):
        html = unescape(html)
    return re.sub(r"[\s\x00-\x20\u00ad\u200b]", "", html).lower()


def test_every_url_an_engine_finds_in_markup_is_checked(
        engine: tuple[str, browsers.Run], tmp_path: Path) -> None:
    """The rendering service's case: a message shown as HTML. Every http(s) URL that the
    engine's HTML parser puts in a URL attribute, to a listed host, blocks the message; one
    to good.com only, with no "evil" in the text even once its references are decoded and its
    white space and invisible characters dropped, does not. (Where the text holds an evil.com the parser does not open,
    in `<a title=x/href=//evil.com>` or `//evil.com.good.c&#10;om`, it is blocked: such a
    message is no accident.)"""
    listed, wrong = _verdicts(engine[1], _JS_MARKUP_HOSTS, _markup(10_000), tmp_path,
                              lambda s: "evil" not in _plain(s))
    assert listed > 3_000 and wrong == []


def _verdicts(run: browsers.Run, js: str, snippets: list[str], tmp_path: Path,
              near_miss: Callable[[str], bool]) -> tuple[int, list[Any]]:
    """How many snippets the engine reads as loading from evil.com (`js` gives the hosts of
    each), and the verdicts that disagree: such a snippet not blocked, or a `near_miss` one
    (the engine reads no evil.com in it) blocked."""
    (tmp_path / "bad.txt").write_text("evil.com\n")
    (tmp_path / "lists.toml").write_text('[[list]]\nname = "bad"\npath = "bad.txt"\n'
                                         'format = "domains"\naction = "block"\n')
    check = Engine.from_manifest(tmp_path / "lists.toml").check_text
    found: list[list[str]] = []
    for i in range(0, len(snippets), 2000):
        found += json.loads(run(f"{js}({json.dumps(snippets[i:i + 2000])})"))
    listed = [any(h == "evil.com" or h.endswith(".evil.com") for h in hosts) for hosts in found]
    wrong = [(s, hosts, check(s).action)
             for s, hosts, bad in zip(snippets, found, listed, strict=True)
             if (check(s).action is Action.BLOCK) != bad and (bad or near_miss(s))]
    return sum(listed), wrong


# Every url() of the CSS in a style attribute or a <style> element, as the engine's CSS parser
# serializes it (escapes decoded; url("...") with '"' and '\' escaped), against the page.
_JS_CSS_HOSTS = r"""(xs => JSON.stringify(xs.map(h => {
  const d = new DOMParser().parseFromString(h, 'text/html');
  let css = [...d.querySelectorAll('[style]')].map(el => el.style.cssText).join(' ');
  for (const st of d.querySelectorAll('style'))
    if (st.sheet) css += [...st.sheet.cssRules].map(r => r.cssText).join(' ');
  const out = [];
  for (const m of css.matchAll(/url\("((?:[^"\\]|\\.)*)"\)/g)) {
    const v = m[1].replace(/\\([0-9a-fA-F]{1,6}) ?|\\(.)/g,
                           (_, hex, c) => hex ? String.fromCodePoint(parseInt(hex, 16)) : c);
    try { const u = new URL(v, 'https://chat.example/');
          if (u.protocol === 'http:' || u.protocol === 'https:') out.push(u.hostname) }
    catch (e) {} }
  return out })))"""


def _css(n: int, seed: int = 13) -> list[str]:
    """CSS that loads a URL, in a style attribute or a <style> element, the URL written with CSS
    escapes (hex, with or without the space after, zero-padded; a backslash before a
    character), perhaps with HTML references in an attribute; to evil.com or good.com."""
    rnd = random.Random(seed)

    def escaped(url: str, attribute: bool) -> str:
        out = ""
        for c in url:
            r = rnd.random()
            if r < 0.15:
                out += "\\" + rnd.choice([f"{ord(c):x} ", f"{ord(c):X} ", f"{ord(c):06x}",
                                          f"{ord(c):x}" + rnd.choice(["\t", "\n"])])
            elif r < 0.22 and not c.isalnum():
                out += "\\" + c
            elif attribute and r < 0.26:
                out += f"&#{ord(c)};"
            else:
                out += c
        return out.replace("\\", "&#92;") if attribute and rnd.random() < 0.2 else out

    out: set[str] = set()
    while len(out) < n:
        url = rnd.choice(["//{}/x.png", "http://{}/x", "https://www.{}/x.png", "HTTP://{}"]).format(
            rnd.choice(["evil.com", "EVIL.com", "good.com"]))
        attribute = rnd.random() < 0.6
        value = escaped(url, attribute)
        q = rnd.choice(["", "'", '"'] if not attribute else ["", "'"])
        rule = rnd.choice([f"background:url({q}{value}{q})", f"background-image:url({q}{value}{q})",
                           f"list-style:url({q}{value}{q})", f"cursor:url({q}{value}{q}),auto",
                           f"background:image-set('{value}' 1x)"])
        if attribute:
            out.add(f'<div style="{rule}">x</div>')
        else:
            out.add(rnd.choice([f"<style>p{{{rule}}}</style>",
                                f"<style>@import \"{value}\";</style>",
                                f"<style>@import url({q}{value}{q});</style>"]))
    return sorted(out)


def test_every_url_an_engine_loads_from_css_is_checked(
        engine: tuple[str, browsers.Run], tmp_path: Path) -> None:
    """A message's CSS may load an image from a listed host (a CSAM image shown in the chat),
    its URL written with CSS escapes: url(//evil\\2e com/x). Every url() the engine's CSS parser
    reads to a listed host blocks the message; one to good.com only does not."""
    listed, wrong = _verdicts(engine[1], _JS_CSS_HOSTS, _css(4_000), tmp_path,
                              lambda s: "good.com" in _plain(s))
    assert listed > 1_500 and wrong == []


def test_no_code_point_in_a_label_opens_a_host_that_is_not_checked(
        engine: tuple[str, browsers.Run]) -> None:
    """Every code point from U+0080 on, inside a label (http://ev<cp>il.com/): this found
    U+1E9E, the one that WebKit maps to another host than the others do."""
    _, run = engine
    opened = browsers.code_point_hosts(run, "http://ev", "il.com/")
    missed = [(hex(cp), host) for cp, host in opened.items() if _resolvable(host)
              and _as_matched(str(host)) not in _checked(f"http://ev{chr(cp)}il.com/")]
    assert sum(_resolvable(h) is not None for h in opened.values()) > 100_000
    assert missed == []
