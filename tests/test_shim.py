"""The link shim: /v1/rewrite signs links, /go checks them again when they are clicked.

Signing and rotation, open-redirect attempts (none may ever produce a Location), allowed,
flagged and blocked clicks (also after a reload), the burst limit, metrics and the settings.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from aiohttp.test_utils import TestClient

from linkguard.config import ConfigError, Settings, load_settings
from linkguard.engine import Engine
from linkguard.web.app import create_app
from linkguard.web.shim import BurstLimiter, sign, web_url
from linkguard.web.state import EngineHolder
from tests.webfixtures import AUTH, settings_for

KEY = "k" * 32
OLD_KEY = "o" * 32
GOOD = "https://good.example.org/page?x=1"  # on no list
BAD = "https://evil.example.com/login"  # the phishing (block) list
FLAGGED = "https://casino.example.net/"  # the spam (flag) list, by keyword


async def client_for(aiohttp_client: Any, manifest: Path, **changes: Any) -> TestClient:
    changes.setdefault("shim_key", KEY)
    return await aiohttp_client(create_app(settings_for(manifest, **changes),
                                           engine=Engine.from_manifest(manifest)))


@pytest.fixture
async def client(aiohttp_client: Any, manifest: Path) -> TestClient:
    return await client_for(aiohttp_client, manifest)


def go_path(url: str, key: str = KEY) -> str:
    return f"/go?u={quote(url, safe='')}&s={sign(key.encode(), url)}"


async def click(client: TestClient, path: str) -> Any:
    return await client.get(path, allow_redirects=False)


def assert_no_redirect(resp: Any, body: str) -> None:
    """Nothing on the page may take the reader anywhere: no Location, no Refresh, no tag with a
    URL attribute, no script (the URL may be shown, escaped, as text)."""
    assert "Location" not in resp.headers and "Refresh" not in resp.headers
    assert not re.search(r"(?i)<[a-z]+[^>]*\s(href|src|action|http-equiv|formaction)\s*=", body)
    assert "<script" not in body.lower()
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


# --- signing ----------------------------------------------------------------------------------

def test_sign_is_hmac_sha256_base64url() -> None:
    s = sign(b"key-one-key-one-key-one", GOOD)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", s)
    assert s == sign(b"key-one-key-one-key-one", GOOD)
    assert s != sign(b"key-two-key-two-key-two", GOOD)
    assert s != sign(b"key-one-key-one-key-one", GOOD + "2")


@pytest.mark.parametrize("link, expected", [
    ("https://good.example.org/page?x=1", "https://good.example.org/page?x=1"),
    ("www.example.org", "http://www.example.org/"),
    ("example.org/a b", "http://example.org/a%20b"),
    ("HTTP://EXAMPLE.org:80/%7e", "http://example.org/%7e"),
    ("https://b\u00fccher.example/\u00e4#frag", "https://xn--bcher-kva.example/%C3%A4#frag"),
    ("example.com:8080/x", "http://example.com:8080/x"),
    ("javascript:alert(1)", None),
    ("JaVaScRiPt:alert(1)", None),
    ("data:text/html,<script>alert(1)</script>", None),
    ("ftp://example.org/", None),
    ("vbscript:msgbox", None),
    ("http://", None),
])
def test_web_url_is_what_a_browser_opens_and_only_http(link: str, expected: str | None) -> None:
    assert web_url(link) == expected
    if expected is not None:
        assert web_url(expected) == expected  # idempotent: /go can re-check what it signed


# --- /v1/rewrite ------------------------------------------------------------------------------

async def test_rewrite_wraps_links_left_in_the_text(client: TestClient) -> None:
    text = f"a {GOOD} b {BAD} c www.example.org d {FLAGGED} e hxxps://safe[.]example[.]org"
    resp = await client.post("/v1/rewrite", json={"text": text, "replacement": "[x]"})
    assert resp.status == 200
    body = await resp.json()
    assert body["verdict"] == "block" and body["removed"] == 1 and body["rewritten"] == 3
    base = f"http://{client.server.host}:{client.server.port}/go?u="
    by_url = {link["url"]: link for link in body["links"]}
    assert by_url[BAD]["shim"] is None
    # A defanged link was written not to be clickable: it is left exactly as written.
    assert by_url["https://safe.example.org"]["shim"] is None
    assert "hxxps://safe[.]example[.]org" in body["text"]
    for url, target in ((GOOD, GOOD), ("www.example.org", "http://www.example.org/"),
                        (FLAGGED, FLAGGED)):
        shim = by_url[url]["shim"]
        assert shim.startswith(base) and shim in body["text"]
        query = parse_qs(urlsplit(shim).query)
        assert query == {"u": [target], "s": [sign(KEY.encode(), target)]}
    assert "[x]" in body["text"] and BAD not in body["text"]
    # Offsets refer to the input text, as for /v1/sanitize.
    link = by_url[GOOD]
    assert text[link["start"]:link["end"]] == GOOD


async def test_rewrite_uses_public_base_url(aiohttp_client: Any, manifest: Path) -> None:
    client = await client_for(aiohttp_client, manifest, public_base_url="https://l.example.com/")
    body = await (await client.post("/v1/rewrite", json={"text": GOOD})).json()
    assert body["text"] == f"https://l.example.com/go?u={quote(GOOD, safe='')}&s=" + sign(
        KEY.encode(), GOOD)


async def test_rewritten_text_checks_as_its_targets(client: TestClient) -> None:
    """A shim link carries its target in ?u=, so /v1/check gives it the target's verdict."""
    body = await (await client.post("/v1/rewrite", json={"text": FLAGGED})).json()
    check = await (await client.post("/v1/check", json={"text": body["text"]})).json()
    assert check["verdict"] == "flag"


@pytest.mark.parametrize("body, status", [
    ({}, 422), ({"text": 5}, 422), ({"text": "a", "replacement": 5}, 422),
    ({"text": "a", "replacement": "x" * 257}, 422), ({"text": "x" * 70000}, 422),
])
async def test_rewrite_bad_input_is_4xx(client: TestClient, body: Any, status: int) -> None:
    resp = await client.post("/v1/rewrite", json=body)
    assert resp.status == status
    assert "error" in await resp.json()


async def test_rewrite_refuses_a_host_header_it_cannot_build_on(client: TestClient) -> None:
    resp = await client.post("/v1/rewrite", json={"text": GOOD},
                             headers={"Host": "evil.example/x?"})
    assert resp.status == 422


async def test_rewrite_without_lists_is_503(aiohttp_client: Any, manifest: Path) -> None:
    app = create_app(settings_for(manifest, shim_key=KEY),
                     engine_holder=EngineHolder(None, ("lists.toml:1: broken",)))
    client = await aiohttp_client(app)
    assert (await client.post("/v1/rewrite", json={"text": GOOD})).status == 503


# --- /go: allowed, flagged, blocked -------------------------------------------------------------

async def test_allowed_click_redirects_without_referrer(client: TestClient) -> None:
    resp = await click(client, go_path(GOOD))
    assert resp.status == 302
    assert resp.headers["Location"] == GOOD
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"


async def test_a_link_from_rewrite_round_trips(client: TestClient) -> None:
    body = await (await client.post("/v1/rewrite", json={"text": "www.example.org/a b"})).json()
    shim = next(link["shim"] for link in body["links"] if link["shim"])
    resp = await click(client, shim.split(str(client.server.port), 1)[1])
    assert resp.status == 302 and resp.headers["Location"] == "http://www.example.org/a"


async def test_blocked_click_is_451_naming_the_category_not_the_entry(
        client: TestClient) -> None:
    resp = await click(client, go_path(BAD))
    body = await resp.text()
    assert resp.status == 451
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "phishing" in body
    assert "evil.example.com" not in body  # neither the entry nor the URL
    assert_no_redirect(resp, body)


async def test_flagged_click_warns_and_links_on(client: TestClient) -> None:
    resp = await click(client, go_path(FLAGGED))
    body = await resp.text()
    assert resp.status == 200 and "Location" not in resp.headers
    assert "spam" in body and f'href="{FLAGGED}"' in body and 'rel="noreferrer noopener"' in body


async def test_a_link_listed_after_it_was_sent_is_blocked_at_click_time(
        client: TestClient, manifest: Path) -> None:
    body = await (await client.post("/v1/rewrite", json={"text": GOOD})).json()
    path = body["text"].split(str(client.server.port), 1)[1]
    assert (await click(client, path)).status == 302
    (manifest.parent / "phishing.txt").write_text("evil.example.com\ngood.example.org\n")
    assert (await client.post("/admin/reload", headers=AUTH)).status == 200
    resp = await click(client, path)
    assert resp.status == 451 and "Location" not in resp.headers


async def test_click_without_lists_is_503_never_a_redirect(aiohttp_client: Any,
                                                           manifest: Path) -> None:
    app = create_app(settings_for(manifest, shim_key=KEY),
                     engine_holder=EngineHolder(None, ("lists.toml:1: broken",)))
    client = await aiohttp_client(app)
    resp = await click(client, go_path(GOOD))
    assert resp.status == 503 and "Location" not in resp.headers


# --- /go: open-redirect attempts ----------------------------------------------------------------

def _attempts() -> list[tuple[str, str]]:
    k = KEY.encode()
    good_sig = sign(k, GOOD)
    crlf = "https://good.example.org/\r\nSet-Cookie: pwned=1"
    return [
        ("no signature", f"/go?u={quote(GOOD, safe='')}"),
        ("empty signature", f"/go?u={quote(GOOD, safe='')}&s="),
        ("bad signature", f"/go?u={quote(GOOD, safe='')}&s={'A' * 43}"),
        ("no url", f"/go?s={good_sig}"),
        ("nothing", "/go"),
        ("signature for another URL",
         f"/go?u={quote('https://evil.example.net/', safe='')}&s={good_sig}"),
        ("tampered u", f"/go?u={quote(GOOD + '.evil.example.net', safe='')}&s={good_sig}"),
        ("tampered u, host suffix", "/go?u=" + quote("https://good.example.org.evil.example/"
                                                     "page?x=1", safe="") + f"&s={good_sig}"),
        ("unknown key", go_path(GOOD, "u" * 32)),
        ("protocol-relative", go_path("//evil.example.net/")),
        ("protocol-relative, unsigned", "/go?u=//evil.example.net/&s=x"),
        ("backslashes", go_path("/\\evil.example.net/")),
        ("javascript:", go_path("javascript:alert(document.cookie)")),
        ("javascript:, unsigned", "/go?u=javascript:alert(1)&s=x"),
        ("data:", go_path("data:text/html,<script>alert(1)</script>")),
        ("CRLF in u, signed", go_path(crlf)),
        ("CRLF in u, unsigned", f"/go?u={quote(crlf, safe='')}&s={good_sig}"),
        ("not serialized as signed", go_path("https://GOOD.example.org/page?x=1")),
        ("two u",
         f"/go?u={quote(GOOD, safe='')}&u=https%3A%2F%2Fevil.example.net%2F&s={good_sig}"),
        ("two s", f"{go_path(GOOD)}&s=x"),
        ("non-ASCII signature", f"/go?u={quote(GOOD, safe='')}&s=%C3%A9%C3%A9"),
    ]


@pytest.mark.parametrize("name, path", _attempts(), ids=[a[0] for a in _attempts()])
async def test_open_redirect_attempts_never_redirect(client: TestClient, name: str,
                                                     path: str) -> None:
    resp = await click(client, path)
    body = await resp.text()
    assert resp.status == 403, name
    assert_no_redirect(resp, body)
    assert "Set-Cookie" not in resp.headers and "pwned" not in resp.headers.get("Set-Cookie", "")


async def test_a_signed_url_over_max_url_chars_is_refused(aiohttp_client: Any,
                                                          manifest: Path) -> None:
    client = await client_for(aiohttp_client, manifest, max_url_chars=64)
    url = "https://good.example.org/" + "a" * 64
    resp = await click(client, go_path(url))
    assert resp.status == 403
    assert_no_redirect(resp, await resp.text())


async def test_rewrite_leaves_links_too_long_for_a_shim_link(client: TestClient) -> None:
    """A /go link must fit aiohttp's 8190-byte request line; a longer one is left as written."""
    url = "https://good.example.org/" + "%E2%82%AC" * 900
    body = await (await client.post("/v1/rewrite", json={"text": f"see {url}"})).json()
    assert body["rewritten"] == 0 and body["text"] == f"see {url}"
    assert body["links"][0]["shim"] is None


async def test_unverified_page_shows_the_url_as_escaped_text(client: TestClient) -> None:
    url = 'https://a.example/"><script>alert(1)</script><img src=x onerror=alert(2)>'
    resp = await click(client, f"/go?u={quote(url, safe='')}&s=nope")
    body = await resp.text()
    assert resp.status == 403
    assert "<script>alert(1)" not in body and "<img" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert_no_redirect(resp, body)


# --- rotation -------------------------------------------------------------------------------

async def test_rotation_accepts_the_previous_key_only(aiohttp_client: Any,
                                                      manifest: Path) -> None:
    old = await client_for(aiohttp_client, manifest, shim_key=OLD_KEY)
    body = await (await old.post("/v1/rewrite", json={"text": GOOD})).json()
    old_link = body["text"].split(str(old.server.port), 1)[1]

    rotated = await client_for(aiohttp_client, manifest, shim_key=KEY, shim_previous_key=OLD_KEY)
    assert (await click(rotated, old_link)).status == 302  # links already sent keep working
    body = await (await rotated.post("/v1/rewrite", json={"text": GOOD})).json()
    assert sign(KEY.encode(), GOOD) in body["text"]  # new links use the new key
    new_link = body["text"].split(str(rotated.server.port), 1)[1]
    assert (await click(rotated, new_link)).status == 302

    later = await client_for(aiohttp_client, manifest, shim_key="n" * 32)
    assert (await click(later, old_link)).status == 403  # a key no longer configured
    assert (await click(later, new_link)).status == 403


async def test_default_key_is_shared_by_apps_of_one_service(aiohttp_client: Any,
                                                            manifest: Path) -> None:
    """No key configured: workers forked from one master share load_settings' secret."""
    # server.run replaces a setting or two: the secret must survive that.
    settings = dataclasses.replace(load_settings(None, {}), lists=str(manifest))
    assert settings.shim_key is None and settings.instance_secret
    engine = Engine.from_manifest(manifest)
    a = await aiohttp_client(create_app(settings, engine=engine))
    b = await aiohttp_client(create_app(settings, engine=engine))
    other = await aiohttp_client(create_app(
        load_settings(None, {"LINKGUARD_LISTS": str(manifest)}), engine=engine))
    body = await (await a.post("/v1/rewrite", json={"text": GOOD})).json()
    link = body["text"].split(str(a.server.port), 1)[1]
    assert (await click(b, link)).status == 302
    assert (await click(other, link)).status == 403  # another start, another key


# --- burst limit ------------------------------------------------------------------------------

async def test_burst_limit_per_link(aiohttp_client: Any, manifest: Path) -> None:
    client = await client_for(aiohttp_client, manifest, shim_burst_clicks=3,
                              shim_burst_seconds=60.0)
    for _ in range(3):
        assert (await click(client, go_path(GOOD))).status == 302
    resp = await click(client, go_path(GOOD))
    assert resp.status == 429 and "Location" not in resp.headers
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await click(client, go_path(GOOD + "&other"))).status == 302  # per link
    assert (await click(client, go_path(BAD))).status == 451


def test_burst_limiter_is_50_in_5_seconds_and_bounded() -> None:
    now = [1000.0]
    limiter = BurstLimiter(50, 5.0, max_links=3, clock=lambda: now[0])
    assert all(limiter.hit("a", "10.0.0.1") == 0.0 for _ in range(50))
    wait = limiter.hit("a", "10.0.0.1")
    assert wait == pytest.approx(0.1)
    assert limiter.hit("a", "10.0.0.2") == 0.0  # one client cannot spend another's budget
    now[0] += 0.1
    assert limiter.hit("a", "10.0.0.1") == 0.0 and limiter.hit("a", "10.0.0.1") > 0
    now[0] += 5.0
    assert all(limiter.hit("a", "10.0.0.1") == 0.0 for _ in range(50))  # a full bucket again
    for name in "bcdefg":
        limiter.hit(name, "10.0.0.1")
    assert len(limiter) == 3  # least recently clicked links forgotten


# --- metrics ----------------------------------------------------------------------------------

async def test_clicks_are_counted_per_verdict(aiohttp_client: Any, manifest: Path) -> None:
    client = await client_for(aiohttp_client, manifest, shim_burst_clicks=1)
    for path in (go_path(GOOD), go_path(GOOD), go_path(BAD), go_path(FLAGGED), "/go?u=x&s=y"):
        await click(client, path)
    text = await (await client.get("/metrics")).text()
    for verdict, n in (("allow", 1), ("rate_limited", 1), ("block", 1), ("flag", 1),
                       ("unverified", 1)):
        assert f'linkguard_shim_clicks_total{{verdict="{verdict}"}} {n}.0' in text, verdict


async def test_two_apps_may_share_one_metrics(manifest: Path) -> None:
    from linkguard.web.metrics import Metrics
    metrics = Metrics()
    create_app(settings_for(manifest), metrics=metrics)
    create_app(settings_for(manifest), metrics=metrics)  # no duplicate registration


# --- settings ---------------------------------------------------------------------------------

def test_shim_settings_from_env_and_files(tmp_path: Path) -> None:
    key_file = tmp_path / "shim.key"
    key_file.write_text(KEY + "\n")
    s = load_settings(None, {"LINKGUARD_SHIM_KEY_FILE": str(key_file),
                             "LINKGUARD_SHIM_PREVIOUS_KEY": OLD_KEY,
                             "LINKGUARD_PUBLIC_BASE_URL": "https://l.example.com",
                             "LINKGUARD_SHIM_BURST_CLICKS": "10",
                             "LINKGUARD_SHIM_BURST_SECONDS": "2.5"})
    assert s.resolved_shim_keys() == (KEY, OLD_KEY)
    assert (s.public_base_url, s.shim_burst_clicks, s.shim_burst_seconds) == (
        "https://l.example.com", 10, 2.5)
    public = s.public()
    assert OLD_KEY not in str(public) and "instance_secret" not in public
    assert OLD_KEY not in repr(s) and repr(s.instance_secret) not in repr(s)
    config = tmp_path / "serve.toml"
    config.write_text('shim_key_file = "shim.key"\n')
    assert load_settings(config, {}).resolved_shim_keys() == (KEY, None)


@pytest.mark.parametrize("values, message", [
    ({"shim_key": "short"}, "shim_key: must be at least 16"),
    ({"shim_key": KEY, "shim_key_file": "/nonexistent"}, "shim_key and shim_key_file"),
    ({"shim_key_file": "/nonexistent/key"}, "shim_key_file: cannot read"),
    ({"shim_previous_key": OLD_KEY}, "shim_previous_key: set only beside shim_key"),
    ({"shim_key": KEY, "shim_previous_key": "short"}, "shim_previous_key: must be"),
    ({"shim_burst_clicks": 0}, "shim_burst_clicks"),
    ({"shim_burst_seconds": 0.0}, "shim_burst_seconds"),
    ({"shim_burst_max_links": 0}, "shim_burst_max_links"),
    ({"console_session_seconds": -1.0}, "console_session_seconds"),
    ({"public_base_url": "l.example.com"}, "public_base_url"),
    ({"public_base_url": "javascript:alert(1)"}, "public_base_url"),
    ({"public_base_url": "https://l.example.com/?q=1"}, "public_base_url"),
    ({"public_base_url": "https://user@l.example.com/"}, "public_base_url"),
    ({"public_base_url": "https://l.example.com:99999/"}, "public_base_url"),
    ({"public_base_url": "https://l.example.com/a b"}, "public_base_url"),
])
def test_bad_shim_settings_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(None, {}, values)


def test_instance_secret_is_not_a_setting(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('instance_secret = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(config, {})
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(None, {}, {"instance_secret": b"x"})
    assert load_settings(None, {}) == Settings()  # a fresh secret does not make it different


# --- hostile input never gets a 5xx, and never a redirect it was not signed for ---------------

async def test_random_input_never_500_nor_an_unsigned_redirect(client: TestClient) -> None:
    import json
    import random
    rng = random.Random(6)  # deterministic

    def random_json(depth: int = 0) -> Any:
        kind = rng.randrange(6 if depth < 3 else 3)
        if kind == 0:
            return rng.choice([None, True, 0, 2**70, 1e308, "", []])
        if kind in (1, 2):
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        if kind == 3:
            return [random_json(depth + 1) for _ in range(rng.randrange(3))]
        return {rng.choice(["text", "replacement", "urls", "x"]): random_json(depth + 1)
                for _ in range(rng.randrange(3))}

    alphabet = "ab.:/?&=#%\\ \r\n\t\x00\u200b\u3002\U0001F600\"'<>jvscript" + "ABCDEF0123456789-_"
    for _ in range(300):
        u = "".join(rng.choice(alphabet) for _ in range(rng.randrange(50)))
        s = "".join(rng.choice(alphabet) for _ in range(rng.randrange(50)))
        if rng.random() < 0.3:
            s = sign(KEY.encode(), u)  # even signed: only an http(s) URL as we serialize it
        resp = await click(client, f"/go?u={quote(u, safe='')}&s={quote(s, safe='')}")
        assert resp.status in (302, 403, 429, 451, 200), (u, s)
        if resp.status == 302:
            assert resp.headers["Location"] == u and web_url(u) == u
            assert s == sign(KEY.encode(), u)
        body = json.dumps(random_json()).encode()
        resp = await client.post("/v1/rewrite", data=body,
                                 headers={"Content-Type": "application/json"})
        assert resp.status in (200, 400, 422), body


async def test_a_blocked_link_only_a_renderer_makes_takes_the_whole_text(client: TestClient
                                                                         ) -> None:
    """[x](http://evil\\.example\\.com) is evil.example.com once Markdown is rendered: the link has
    no span in the text, so /v1/rewrite (as /v1/sanitize) gives the replacement alone."""
    text = "hi [x](http://evil\\.example\\.com) and https://example.org/ bye"
    for path in ("/v1/rewrite", "/v1/sanitize"):
        resp = await client.post(path, json={"text": text})
        body = await resp.json()
        assert resp.status == 200 and body["verdict"] == "block", body
        assert body["text"] == "[link removed]" and body["removed"] == 1, body
