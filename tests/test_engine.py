"""The public Python API: precedence, messages, spans, sanitize, explain, reload."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from linkguard import Action, Engine, urls
from linkguard.engine import ListLoadError
from tests.corpora import ROOT

SHIPPED = ROOT / "lists" / "lists.toml"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_manifest(SHIPPED)


def test_core_never_imports_aiohttp() -> None:
    code = ("import sys, linkguard, linkguard.cli; "
            "linkguard.Engine.from_manifest(sys.argv[1]).check_text('x.com'); "
            "assert not [m for m in sys.modules if m.startswith(('aiohttp', 'linkguard.web'))]")
    subprocess.run([sys.executable, "-c", code, str(SHIPPED)], check=True)


def _manifest(tmp_path: Path, lists: list[tuple[str, str, str, str, str]]) -> Path:
    """lists: (name, format, action, overridable, entries)"""
    body = ""
    for name, fmt, action, overridable, entries in lists:
        (tmp_path / f"{name}.txt").write_text(entries, encoding="utf-8")
        body += (f'[[list]]\nname = "{name}"\npath = "{name}.txt"\nformat = "{fmt}"\n'
                 f'action = "{action}"\ncategory = "{name}-cat"\noverridable = {overridable}\n')
    (tmp_path / "lists.toml").write_text(body, encoding="utf-8")
    return tmp_path / "lists.toml"


@pytest.mark.parametrize(("lists", "url", "action", "names"), [
    # 1. a non-overridable block beats an allow list
    ([("csam", "domains", "block", "false", "evil.com\n"),
      ("allow", "domains", "allow", "true", "evil.com\n")], "http://evil.com/", "block", ["csam"]),
    # 2. an allow list carves an exception out of an overridable block
    ([("phish", "domains", "block", "true", "evil.com\n"),
      ("allow", "domains", "allow", "true", "good.evil.com\n")],
     "http://good.evil.com/", "allow", ["allow"]),
    ([("phish", "domains", "block", "true", "evil.com\n"),
      ("allow", "domains", "allow", "true", "good.evil.com\n")],
     "http://bad.evil.com/", "block", ["phish"]),
    # 3. block beats flag; both lists named when they agree
    ([("spam", "keywords", "flag", "true", "casino\n"),
      ("phish", "domains", "block", "true", "casino.com\n")],
     "http://casino.com/", "block", ["phish"]),
    ([("spam", "keywords", "flag", "true", "casino\n"),
      ("phish", "domains", "block", "true", "casino.com\n")],
     "http://casino.net/", "flag", ["spam"]),
    ([("a", "domains", "block", "true", "evil.com\n"),
      ("b", "urls", "block", "true", "evil.com/x\n")], "http://evil.com/x/y", "block", ["a", "b"]),
    ([("a", "domains", "block", "true", "evil.com\n")], "http://good.com/", "allow", []),
])
def test_precedence(tmp_path: Path, lists: list[tuple[str, str, str, str, str]], url: str,
                    action: str, names: list[str]) -> None:
    verdict = Engine.from_manifest(_manifest(tmp_path, lists)).check_url(url)
    assert (verdict.action.value, list(verdict.lists)) == (action, names)
    assert verdict.category == (f"{names[0]}-cat" if names else None)


def test_message_verdict_is_the_worst_link(engine: Engine) -> None:
    v = engine.check_text("ok http://example.org/ then free-crypto-giveaway.example.org "
                          "and phish.example.com/login")
    assert [link.action.value for link in v.links] == ["allow", "flag", "block"]
    assert v.action is Action.BLOCK and v.lists_version == engine.version


def test_spans_in_code_points_and_utf16(engine: Engine) -> None:
    text = "😀 ünï phish.example.com/x 😀 ok"
    (link,) = engine.check_text(text).links
    assert text[link.start:link.end] == "phish.example.com/x"
    assert text.encode("utf-16-le")[2 * link.start_utf16:2 * link.end_utf16].decode("utf-16-le") \
        == "phish.example.com/x"
    assert (link.start, link.start_utf16) == (6, 7)


def test_defanged_link_is_blocked_with_its_whole_span(engine: Engine) -> None:
    text = "go to hxxps://phish[.]example[.]com/login now"
    (link,) = engine.check_text(text).links
    assert link.action is Action.BLOCK
    assert text[link.start:link.end] == "hxxps://phish[.]example[.]com/login"


def test_client_marked_urls_have_no_span(engine: Engine) -> None:
    v = engine.check_text("no links here", urls=["http://phish.example.com/"])
    (link,) = v.links
    assert link.action is Action.BLOCK and link.start is None and link.end_utf16 is None


def test_embedded_url_is_a_link_of_its_own(engine: Engine) -> None:
    text = "see https://redirect.example.org/go?u=https%3A%2F%2Fphish.example.com%2Fx ok"
    outer, inner = engine.check_text(text).links
    assert inner.verdict.canonical == "https://phish.example.com/x" and inner.start is None
    assert inner.action is Action.BLOCK
    assert outer.action is Action.BLOCK and outer.verdict.lists == ("demo-phishing",)
    assert text[outer.start:outer.end].startswith("https://redirect.example.org/go?u=")


def test_embedding_depth_is_bounded(engine: Engine) -> None:
    url = "http://phish.example.com/"
    for _ in range(10):
        url = "http://r.example.org/?u=" + url.replace("%", "%25").replace(":", "%3A") \
            .replace("/", "%2F").replace("?", "%3F").replace("=", "%3D")
    # Each level holds two forms (decoded until it reads as a URL, and once more): a tree of
    # at most 1 + 2 + 4 + 8 verdicts, however deep the chain.
    links = engine.check_text("", urls=[url]).links
    assert 4 <= len(links) <= 15


def test_sanitize_replaces_only_blocked_links(engine: Engine) -> None:
    text = "a phish.example.com/x b free-crypto-giveaway.example.org c example.org d"
    out = engine.sanitize(text)
    assert out.text == ("a [link removed] b free-crypto-giveaway.example.org c example.org d")
    assert out.removed == 1 and out.verdict.action is Action.BLOCK
    assert engine.sanitize(text, replacement="").text.startswith("a  b ")
    assert engine.sanitize("nothing here").text == "nothing here"


def test_verdicts_are_immutable(engine: Engine) -> None:
    v = engine.check_text("phish.example.com")
    with pytest.raises(AttributeError):
        v.action = Action.ALLOW  # type: ignore[misc]
    with pytest.raises(AttributeError):
        v.links[0].verdict.action = Action.ALLOW  # type: ignore[misc]
    with pytest.raises(AttributeError):
        v.links[0].start = 0  # type: ignore[misc]
    assert v.action is Action.BLOCK and v.links[0].start == 0


def test_verdicts_are_values(engine: Engine) -> None:
    # Equal, hashed and pickled by their fields (README, Python API), in both builds.
    a, b = engine.check_text("phish.example.com"), engine.check_text("phish.example.com")
    assert a is not b and a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert pickle.loads(pickle.dumps(a)) == a
    assert a != engine.check_text("example.org phish.example.com")
    assert a.links[0].verdict == engine.check_url("phish.example.com")
    assert repr(a.links[0].verdict).startswith("UrlVerdict(url='phish.example.com', ")


def test_explain_names_list_line_and_entry(engine: Engine) -> None:
    out = engine.explain("HTTP://A.Phish.Example.COM./x")
    assert out["canonical"] == "http://a.phish.example.com/x"
    assert "phish.example.com" in out["keys"]["domain"]
    assert [(m["list"], m["line"], m["entry"]) for m in out["matches"]] == [
        ("demo-phishing", 2, "phish.example.com")]
    assert engine.explain("javascript:alert(1)")["canonical"] is None
    # a host no browser opens has a Safe Browsing form all the same (for hash-list tooling)
    out = engine.explain("http://host%23.com/a")
    assert out["canonical"] is None and out["safe_browsing_canonical"] == "http://host%23.com/a"


def test_explain_follows_embedded_urls_as_far_as_a_check_does(engine: Engine) -> None:
    def depth(out: dict[str, Any]) -> int:
        return 1 + max(map(depth, out["embedded"]), default=0)

    def count(out: dict[str, Any]) -> int:
        return len(out["embedded"]) + sum(map(count, out["embedded"]))

    nested = engine.explain("http://a.com/?u=" * 500 + "http://phish.example.com/")
    assert depth(nested) == urls.MAX_EMBED_DEPTH + 1
    inner = "&".join(f"v{i}=http://b{i}.com/" for i in range(40))
    fanned = engine.explain("http://a.com/?" + "&".join(
        f"u{i}=" + quote(f"http://c{i}.com/?{inner}") for i in range(40)))
    assert count(fanned) == urls.MAX_EMBEDDED
    assert engine.explain("http://a.com/?u=http://phish.example.com/")["embedded"][0][
        "matches"][0]["list"] == "demo-phishing"


def test_a_host_safari_reads_otherwise_leads_to_both_hosts(tmp_path: Path) -> None:
    """U+1E9E is "ss" to Safari (WebKit) and "ß" to ada, Chromium and Firefox: a link to
    aẞets-login.com leads to assets-login.com on iOS, so it is checked there too. The reading
    is reported after the link, with no span, and explain marks it."""
    engine = Engine.from_manifest(_manifest(tmp_path, [
        ("phish", "domains", "block", "true", "assets-login.com\n")]))
    url = "http://a\u1e9eets-login.com/x"
    v = engine.check_text(f"see {url} now")
    assert [(link.verdict.url, link.start, link.verdict.action) for link in v.links] == [
        (url, 4, Action.BLOCK), ("http://assets-login.com/x", None, Action.BLOCK)]
    assert engine.sanitize(f"see {url} now").text == "see [link removed] now"
    assert engine.check_url(url).canonical == "http://xn--aets-login-53a.com/x"
    assert engine.check_url(url).action is Action.BLOCK
    assert engine.check_url("http://a\u00dfets-login.com/x").action is Action.ALLOW  # ß: all
    out = engine.explain(url)
    assert out["matches"] == [] and out["verdict"]["verdict"] == "block"
    [safari] = out["embedded"]
    assert safari["url"] == "http://assets-login.com/x" and "reading" in safari
    assert [m["entry"] for m in safari["matches"]] == ["assets-login.com"]
    redirect = engine.explain("http://a.com/?u=http://assets-login.com/")["embedded"][0]
    assert "reading" not in redirect


def test_explain_says_when_a_host_is_read_as_chromium_reads_it(engine: Engine) -> None:
    out = engine.explain("http://phish.example％２Ｅcom/x")  # a fullwidth escape of '.'
    assert out["canonical"] == "http://phish.example.com/x" and "Chromium" in out["reading"]
    assert out["matches"][0]["entry"] == "phish.example.com"
    assert "reading" not in engine.explain("http://phish.example.com/x")


@pytest.mark.parametrize(("levels", "action"), [(3, Action.BLOCK), (4, Action.FLAG)])
def test_a_link_nested_deeper_than_a_check_follows_is_flagged(engine: Engine, levels: int,
                                                               action: Action) -> None:
    """Three redirects deep are followed; a fourth is not looked at, so the link is never
    simply allowed. explain shows each level's verdict as the check gave it."""
    url = "http://phish.example.com/"
    for i in range(levels):
        url = f"http://r{i}.example.org/?u=" + quote(url, safe="")
    assert engine.check_url(url).action is action
    out = engine.explain(url)
    verdicts = []
    while out:
        verdicts.append(out["verdict"]["verdict"])
        out = out["embedded"][0] if out["embedded"] else None
    assert verdicts == [action.value] * 4


def test_explain_finds_hashed_entries(engine: Engine) -> None:
    out = engine.explain("http://x.hashed-demo.example.com/a")
    assert [(m["list"], m["line"]) for m in out["matches"]] == [("demo-csam-hashed", 2)]


def test_partial_reload_rereads_only_named_lists(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [("a", "domains", "block", "true", "a.com\n"),
                                    ("b", "domains", "block", "true", "b.com\n")])
    first = Engine.from_manifest(manifest)
    (tmp_path / "a.txt").write_text("a2.com\n")
    (tmp_path / "b.txt").write_text("b2.com\n")
    second = Engine.from_manifest(manifest, previous=first, reload=["b"])
    assert second.check_url("http://a.com/").action is Action.BLOCK
    assert second.check_url("http://b2.com/").action is Action.BLOCK
    assert second.check_url("http://b.com/").action is Action.ALLOW
    assert second.version != first.version
    assert first.check_url("http://b.com/").action is Action.BLOCK  # the old one is untouched


def test_failed_reload_lists_every_error_and_builds_nothing(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [("a", "domains", "block", "true", "a.com\n")])
    first = Engine.from_manifest(manifest)
    (tmp_path / "a.txt").write_text("ok.com\nbad/one\n")
    with pytest.raises(ListLoadError) as e:
        Engine.from_manifest(manifest, previous=first, reload=["a", "nope"])
    assert e.value.errors == (f"{manifest}:0: no list named 'nope'",
                              f"{tmp_path}/a.txt:2: not a host name: 'bad/one'")
    assert first.check_url("http://a.com/").action is Action.BLOCK


def test_list_info_never_holds_entries(engine: Engine) -> None:
    for info in engine.lists:
        assert set(info.to_json()) == {"name", "format", "action", "category", "overridable",
                                       "path", "entries", "skipped", "sha256", "loaded_at"}


def test_reload_that_loses_most_entries_is_refused_unless_forced(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [("iwf", "domains", "block", "false",
                                     "".join(f"d{i}.example.com\n" for i in range(100)))])
    first = Engine.from_manifest(manifest)
    (tmp_path / "iwf.txt").write_text("".join(f"d{i}.example.com\n" for i in range(10)))
    with pytest.raises(ListLoadError, match=r"iwf.txt:0: would drop 90% of the entries "
                                            r"\(100 -> 10; max_drop is 50%\)"):
        Engine.from_manifest(manifest, previous=first)
    forced = Engine.from_manifest(manifest, previous=first, force=True)
    assert forced.lists[0].entries == 10
    (tmp_path / "iwf.txt").write_text("".join(f"d{i}.example.com\n" for i in range(60)))
    assert Engine.from_manifest(manifest, previous=first).lists[0].entries == 60


def test_max_drop_is_validated(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [("a", "domains", "block", "true", "a.com\n")])
    manifest.write_text(manifest.read_text() + "max_drop = 2\n")
    with pytest.raises(ListLoadError, match="max_drop must be a number from 0 to 1"):
        Engine.from_manifest(manifest)


@pytest.mark.parametrize("text", [
    "ALLOWED_HOSTS=" + ",".join(f"host{i}.example.com" for i in range(50)),
    "Please allowlist: " + ", ".join(f"site{i}.example.org" for i in range(50)),
    "".join(f"資料はhttps://docs{i}.example.org/page{i}をご覧ください。" for i in range(30)),
    "CORS_ALLOWED_ORIGINS=" + ",".join(f"https://app{i}.staging.example.com" for i in range(49)),
    "NO_PROXY=" + ",".join(f"host{i}.internal.staging.example.com" for i in range(300)),
    "".join(f"请访问docs{i}.example.org/page{i}" + "查看资料" * 60 + "。" for i in range(22)),
])
def test_a_token_of_many_links_is_checked_whole(engine: Engine, text: str) -> None:
    """Each link's token taken whole is checked, up to the next link where that one's own
    reading covers the rest (and within a budget where it cannot): a config line of hosts or
    origins, or a paragraph with no spaces, is not flagged for its length."""
    assert engine.check_text(text).action is Action.ALLOW


def test_a_token_past_the_whole_reading_budget_is_flagged(engine: Engine) -> None:
    """www. links read on to an '@' that may end up in their authority: each reads to it."""
    text = ",".join(f"www.host{i}.example.com" for i in range(300)) + ",x@y.example.com"
    assert engine.check_text(text).action is Action.FLAG
    assert engine.check_text(text.replace("@", "-")).action is Action.ALLOW


def test_at_the_cap_the_links_found_come_before_other_linkifiers_links(engine: Engine) -> None:
    """Past 1,000 links the message is flagged; a blocked link among the first 1,000 that
    find_links makes is still blocked and cut, whatever other linkifiers' links come before."""
    text = "x_.a.example.co " * 5 + "b.example.co " * 994 + "phish.example.com"
    assert engine.check_text(text).action is Action.BLOCK
    assert engine.sanitize(text).text.endswith(" [link removed]")


def test_past_1000_links_other_linkifiers_make_the_message_is_flagged(engine: Engine) -> None:
    """One link to us, 1,001 to twitter-text (a zero-width space ends each): the links past the
    1,000th are not checked, so the message is flagged, never simply allowed."""
    text = "https://a.example.co/" + "\u200bb.example.co/" * 999 + "\u200bphish.example.com/"
    assert engine.check_text(text).action is Action.FLAG


def test_a_message_with_more_links_than_are_checked_is_never_allowed(engine: Engine) -> None:
    from linkguard.extract import MAX_CANDIDATES
    padded = " ".join(f"ok{i}.example.org" for i in range(MAX_CANDIDATES)) + " phish.example.com"
    verdict = engine.check_text(padded)
    assert len(verdict.links) == MAX_CANDIDATES and verdict.action is Action.FLAG
    assert engine.check_text(" ".join(f"ok{i}.example.org" for i in range(10))).action \
        is Action.ALLOW
