"""The admin console (/admin/ui): login, session cookie, CSRF, and what the page shows.

Cookies are `Secure`; aiohttp's test client keeps those for https only, so `Browser` carries
them by hand, as a browser on http://127.0.0.1 does.
"""

from __future__ import annotations

import dataclasses
import re
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from linkguard.config import load_settings
from linkguard.engine import Engine
from linkguard.web import console
from linkguard.web.app import create_app
from tests.webfixtures import AUTH, TOKEN, settings_for

UI = "/admin/ui/"


class Browser:
    """A test client with a cookie jar that, like a browser on loopback, keeps Secure cookies."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def _keep(self, resp: Any) -> None:
        for header in resp.headers.getall("Set-Cookie", []):
            self.set_cookie_headers.append(header)
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} \
            if self.cookies else {}

    async def get(self, path: str) -> tuple[Any, str]:
        resp = await self.client.get(path, headers=self._headers(), allow_redirects=False)
        self._keep(resp)
        return resp, await resp.text()

    async def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]]
                   ) -> tuple[Any, str]:
        resp = await self.client.post(path, data=data, headers=self._headers(),
                                      allow_redirects=False)
        self._keep(resp)
        return resp, await resp.text()

    async def login(self, token: str = TOKEN) -> tuple[Any, str]:
        _, page = await self.get(UI + "login")
        return await self.post(UI + "login", {"csrf": csrf_of(page), "token": token})

    async def page(self) -> str:
        resp, page = await self.get(UI)
        assert resp.status == 200, page
        return page


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, page
    return m.group(1)


@pytest.fixture
async def browser(client: TestClient) -> Browser:
    b = Browser(client)
    resp, _ = await b.login()
    assert resp.status == 303 and resp.headers["Location"] == UI
    return b


def cookie_attributes(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


# --- no session -------------------------------------------------------------------------------

async def test_no_admin_token_no_console(aiohttp_client: Any, manifest: Path) -> None:
    client = await aiohttp_client(create_app(settings_for(manifest, admin_token=None)))
    for path in ("/admin/ui", UI, UI + "login"):
        assert (await client.get(path, allow_redirects=False)).status == 404


@pytest.mark.parametrize("path", ["/admin/ui", UI, UI + "nope"])
async def test_no_session_redirects_to_the_login_form(client: TestClient, path: str) -> None:
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == UI + "login"


@pytest.mark.parametrize("path", ["reload", "test", "logout"])
async def test_no_session_posts_are_refused(client: TestClient, path: str) -> None:
    resp = await client.post(UI + path, data={"csrf": "x", "q": "a.com"}, allow_redirects=False)
    assert resp.status == 403 and "Log in again" in await resp.text()


async def test_the_rest_of_admin_still_needs_the_bearer_token(browser: Browser) -> None:
    """A console session is no bearer token; and only /admin/ui/... skips the bearer check."""
    for path in ("/admin/lists", "/admin/uix", "/admin/ui/../lists", "/admin/UI/"):
        resp, _ = await browser.get(path)
        assert resp.status == 401, path
    resp = await browser.client.get("/admin/lists", headers=AUTH)
    assert resp.status == 200


# --- login ------------------------------------------------------------------------------------

async def test_login_page_and_its_cookie(client: TestClient) -> None:
    b = Browser(client)
    resp, page = await b.get(UI + "login")
    assert resp.status == 200 and 'type="password"' in page and 'name="csrf"' in page
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "<script" not in page
    assert resp.headers["Cache-Control"] == "no-store"
    (header,) = b.set_cookie_headers
    assert header.startswith(console.LOGIN_COOKIE + "=")
    assert {"secure", "httponly", "samesite", "path", "max-age"} <= cookie_attributes(header)
    assert "SameSite=Strict" in header and "Path=/admin/ui" in header


async def test_login_sets_a_secure_strict_session_cookie(client: TestClient) -> None:
    b = Browser(client)
    resp, _ = await b.login()
    assert resp.status == 303 and resp.headers["Location"] == UI
    session = next(h for h in b.set_cookie_headers if h.startswith(console.SESSION_COOKIE + "="))
    assert {"secure", "httponly", "samesite", "path", "max-age"} <= cookie_attributes(session)
    assert "SameSite=Strict" in session and "Path=/admin/ui" in session
    assert "Max-Age=3600" in session
    value = b.cookies[console.SESSION_COOKIE]
    assert TOKEN not in value
    sid, expires, mac = value.split(".")
    assert len(sid) >= 24 and abs(int(expires) - time.time() - 3600) < 60 and len(mac) == 64
    assert console.LOGIN_COOKIE not in b.cookies  # spent
    assert "Reload" in await b.page()


async def test_two_logins_get_different_session_ids(client: TestClient) -> None:
    a, b = Browser(client), Browser(client)
    await a.login()
    await b.login()
    assert a.cookies[console.SESSION_COOKIE].split(".")[0] != \
        b.cookies[console.SESSION_COOKIE].split(".")[0]


async def test_wrong_token_is_refused_then_backs_off(client: TestClient) -> None:
    """The admin API's back-off, per address: the form and the bearer header share it."""
    from linkguard.web.admin import TokenBackoff
    free = TokenBackoff().free
    b = Browser(client)
    for _ in range(free):  # free wrong tokens here, one more with the bearer header
        resp, page = await b.login("wrong-token")
        assert resp.status == 401 and "Wrong token" in page
    assert (await client.get("/admin/lists", headers={"Authorization": "Bearer x"})).status == 401
    resp, page = await b.login()  # at once, even with the right token: wait first
    assert resp.status == 429 and "try again in" in page and int(resp.headers["Retry-After"]) > 0
    assert console.SESSION_COOKIE not in b.cookies
    assert (await client.get("/admin/lists", headers=AUTH)).status == 429


async def test_a_right_token_clears_the_back_off(client: TestClient) -> None:
    b = Browser(client)
    resp, _ = await b.login("wrong-token")
    assert resp.status == 401
    resp, _ = await b.login()
    assert resp.status == 303 and console.SESSION_COOKIE in b.cookies


@pytest.mark.parametrize("form", [
    {"token": TOKEN},                       # no CSRF token
    {"token": TOKEN, "csrf": ""},
    {"token": TOKEN, "csrf": "0" * 64},     # a wrong one
])
async def test_login_without_the_right_csrf_token_is_403(client: TestClient,
                                                         form: dict[str, str]) -> None:
    b = Browser(client)
    await b.get(UI + "login")
    resp, _ = await b.post(UI + "login", form)
    assert resp.status == 403 and console.SESSION_COOKIE not in b.cookies


@pytest.mark.parametrize("charset", ["bogus", "hex", "utf-16"])
async def test_a_form_in_an_unknown_charset_is_403(client: TestClient, charset: str) -> None:
    # Read as no form (as a malformed one is): the CSRF page, never a 500.
    await client.get(UI + "login")
    resp = await client.post(UI + "login", data=f"csrf=x&token={TOKEN}".encode(), headers={
        "Content-Type": f"application/x-www-form-urlencoded; charset={charset}"})
    assert resp.status == 403


async def test_login_csrf_token_is_bound_to_its_cookie(client: TestClient) -> None:
    a, b = Browser(client), Browser(client)
    _, page = await a.get(UI + "login")
    await b.get(UI + "login")
    resp, _ = await b.post(UI + "login", {"csrf": csrf_of(page), "token": TOKEN})
    assert resp.status == 403
    a.cookies.clear()  # the form without its cookie
    resp, _ = await a.post(UI + "login", {"csrf": csrf_of(page), "token": TOKEN})
    assert resp.status == 403


@pytest.mark.parametrize("tamper", [
    lambda v: v + "0",
    lambda v: v.replace(v.split(".")[1], str(int(v.split(".")[1]) + 86400)),  # longer life
    lambda v: ("y" if v[0] == "x" else "x") + v[1:],                         # another id
    lambda v: v.split(".", 1)[0],
    lambda v: "",
    lambda v: "a.b.c",
    lambda v: "a.\u00b2.c",                                                   # not ASCII digits
])
async def test_a_tampered_session_cookie_is_no_session(browser: Browser, tamper: Any) -> None:
    browser.cookies[console.SESSION_COOKIE] = tamper(browser.cookies[console.SESSION_COOKIE])
    resp, _ = await browser.get(UI)
    assert resp.status == 303 and resp.headers["Location"] == UI + "login"


async def test_sessions_expire(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    later = time.time() + 3601
    monkeypatch.setattr(console.time, "time", lambda: later)
    resp, _ = await browser.get(UI)
    assert resp.status == 303


async def test_logout_ends_the_session_in_the_browser(browser: Browser) -> None:
    resp, _ = await browser.post(UI + "logout", {"csrf": csrf_of(await browser.page())})
    assert resp.status == 303 and resp.headers["Location"] == UI + "login"
    assert console.SESSION_COOKIE not in browser.cookies
    assert (await browser.get(UI))[0].status == 303


async def test_a_session_works_on_every_worker_of_one_service(aiohttp_client: Any,
                                                              manifest: Path) -> None:
    """Workers are separate apps forked from one master: they share load_settings' secret."""
    settings = load_settings(None, {"LINKGUARD_ADMIN_TOKEN": TOKEN,
                                    "LINKGUARD_LISTS": str(manifest)})
    engine = Engine.from_manifest(manifest)
    a = Browser(await aiohttp_client(create_app(settings, engine=engine)))
    b = Browser(await aiohttp_client(create_app(settings, engine=engine)))
    await a.login()
    b.cookies = dict(a.cookies)
    assert "Reload" in await b.page()
    other = Browser(await aiohttp_client(create_app(
        load_settings(None, {"LINKGUARD_ADMIN_TOKEN": TOKEN, "LINKGUARD_LISTS": str(manifest)}),
        engine=engine)))
    other.cookies = dict(a.cookies)
    assert (await other.get(UI))[0].status == 303  # another start of the service


async def test_changing_the_admin_token_ends_sessions(aiohttp_client: Any,
                                                      manifest: Path) -> None:
    settings = load_settings(None, {"LINKGUARD_ADMIN_TOKEN": TOKEN,
                                    "LINKGUARD_LISTS": str(manifest)})
    a = Browser(await aiohttp_client(create_app(settings)))
    await a.login()
    changed = dataclasses.replace(settings, admin_token="another-token-entirely")
    assert changed.instance_secret == settings.instance_secret
    b = Browser(await aiohttp_client(create_app(changed)))
    b.cookies = dict(a.cookies)
    assert (await b.get(UI))[0].status == 303


# --- CSRF on the console's forms ----------------------------------------------------------------

@pytest.mark.parametrize("path", ["reload", "test", "logout"])
@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "wrong"])
async def test_forms_without_the_right_csrf_token_are_403(browser: Browser, path: str,
                                                          csrf: str | None) -> None:
    form = {"q": "https://evil.example.com/"} if csrf is None else \
        {"q": "https://evil.example.com/", "csrf": csrf}
    resp, page = await browser.post(UI + path, form)
    assert resp.status == 403 and "CSRF" in page
    assert console.SESSION_COOKIE in browser.cookies  # nothing happened


async def test_a_csrf_token_from_another_session_is_403(client: TestClient) -> None:
    a, b = Browser(client), Browser(client)
    await a.login()
    await b.login()
    resp, _ = await b.post(UI + "reload", {"csrf": csrf_of(await a.page())})
    assert resp.status == 403


async def test_a_json_or_multipart_body_is_no_form_to_trust(browser: Browser) -> None:
    resp = await browser.client.post(UI + "reload", json={"csrf": "x"},
                                     headers=browser._headers())
    assert resp.status == 403


# --- the page -------------------------------------------------------------------------------

async def test_the_page_shows_lists_workers_and_history(browser: Browser) -> None:
    page = await browser.page()
    for text in ("phishing", "domains", "block", "spam", "keywords", "flag", "ready"):
        assert text in page
    status = await (await browser.client.get("/admin/lists", headers=AUTH)).json()
    for item in status["lists"]:
        assert item["sha256"][:12] in page and item["loaded_at"][:19].replace("T", " ") in page
    assert status["lists_version"] in page
    assert f"<td>{status['workers'][0]['pid']}</td>" in page
    assert 'id="history-table"' in page or "No reloads yet" in page


async def test_reload_button_shows_the_result_and_the_history(browser: Browser) -> None:
    page = await browser.page()
    resp, page = await browser.post(UI + "reload", {"csrf": csrf_of(page)})
    assert resp.status == 200 and "Reload succeeded" in page
    assert page.count("<span class=\"pill ok\">ok</span>") >= 1
    resp, page = await browser.post(UI + "reload", [("csrf", csrf_of(page)),
                                                    ("lists", "phishing"), ("lists", "phishing")])
    assert resp.status == 200 and "Reloaded phishing" in page
    history = page.split('id="history-table"', 1)[1]
    assert history.index("phishing") < history.index("all")  # newest first


async def test_a_failed_reload_shows_every_file_line_reason(browser: Browser,
                                                            manifest: Path) -> None:
    bad = manifest.parent / "phishing.txt"
    bad.write_text("evil.example.com\n*.wild.example.com\n<script>alert(1)</script>.com\n")
    resp, page = await browser.post(UI + "reload", {"csrf": csrf_of(await browser.page())})
    assert resp.status == 422 and "the previous lists keep serving" in page
    assert f"{bad}:2: " in page and f"{bad}:3: " in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    lists_section = page.split('id="lists"', 1)[1].split("</section>", 1)[0]
    assert f"{bad}:2: " in lists_section  # the list's last error
    assert "failed" in page.split('id="history-table"', 1)[1]


async def test_force_is_passed_to_the_reload(browser: Browser, manifest: Path) -> None:
    (manifest.parent / "phishing.txt").write_text("evil.example.com\n" * 1 + "a.example.net\n"
                                                  "b.example.net\nc.example.net\n")
    resp, page = await browser.post(UI + "reload", {"csrf": csrf_of(await browser.page())})
    assert resp.status == 200
    (manifest.parent / "phishing.txt").write_text("evil.example.com\n")  # lost 75%
    resp, page = await browser.post(UI + "reload", {"csrf": csrf_of(page)})
    assert resp.status == 422 and "max_drop" in page
    resp, page = await browser.post(UI + "reload", {"csrf": csrf_of(page), "force": "1"})
    assert resp.status == 200 and "Reload succeeded" in page


async def test_testing_a_url_shows_canonical_verdict_and_explain(browser: Browser) -> None:
    page = await browser.page()
    resp, page = await browser.post(UI + "test", {"csrf": csrf_of(page),
                                                  "q": "HTTPS://WWW.Evil.Example.COM./a/../x"})
    assert resp.status == 200
    assert "https://www.evil.example.com/x" in page  # canonical
    assert 'class="pill block"' in page.split('id="test-verdict"', 1)[1]
    # explain: the matching entry with its list and line (admins may see entries).
    assert "<td>phishing</td><td>1</td><td><code>evil.example.com</code></td>" in page
    assert "&quot;keys&quot;" in page  # the explain output itself
    assert "HTTPS://WWW.Evil.Example.COM./a/../x</textarea>" in page  # kept in the box


async def test_testing_a_message_explains_each_link(browser: Browser) -> None:
    page = await browser.page()
    text = "see hxxps://evil[.]example[.]com/x, www.example.org and casino.example.net"
    resp, page = await browser.post(UI + "test", {"csrf": csrf_of(page), "q": text})
    assert resp.status == 200
    verdict = page.split('id="test-verdict"', 1)[1]
    assert 'class="pill block"' in verdict.split("</h3>", 1)[0]
    table = page.split('id="test-links"', 1)[1].split("</table>", 1)[0]
    for canonical in ("https://evil.example.com/x", "http://www.example.org/",
                      "http://casino.example.net/"):
        assert canonical in table
    assert page.count("<h3>explain ") == 3


async def test_testing_no_link_says_why(browser: Browser) -> None:
    page = await browser.page()
    _, page = await browser.post(UI + "test", {"csrf": csrf_of(page), "q": "javascript:alert(1)"})
    assert "no browser would open this URL" in page
    _, page = await browser.post(UI + "test", {"csrf": csrf_of(page), "q": "no links here"})
    assert "No links found" in page


async def test_everything_shown_is_escaped(browser: Browser) -> None:
    page = await browser.page()
    q = '"><script>alert(1)</script></textarea><img src=x onerror=alert(1)> http://a.example/<b>'
    resp, page = await browser.post(UI + "test", {"csrf": csrf_of(page), "q": q})
    assert resp.status == 200
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>" not in page
    assert "&lt;/textarea&gt;" in page
    assert "'unsafe-inline'" not in resp.headers["Content-Security-Policy"]


async def test_an_oversized_query_is_refused(browser: Browser) -> None:
    page = await browser.page()
    resp, _ = await browser.post(UI + "test", {"csrf": csrf_of(page), "q": "a" * 70000})
    assert resp.status == 422


# --- reload history (/admin/lists "history", which the console shows) -------------------------

async def test_admin_lists_keeps_a_bounded_reload_history(client: TestClient,
                                                          manifest: Path) -> None:
    from linkguard.web.state import RELOAD_HISTORY
    for _ in range(RELOAD_HISTORY + 3):
        assert (await client.post("/admin/reload", headers=AUTH)).status == 200
    bad = manifest.parent / "phishing.txt"
    bad.write_text("".join(f"*.w{i}.example.com\n" for i in range(30)))
    assert (await client.post("/admin/reload", headers=AUTH)).status == 422
    status = await (await client.get("/admin/lists", headers=AUTH)).json()
    history = status["history"]
    assert len(history) == RELOAD_HISTORY
    newest = history[0]
    assert newest["ok"] is False and newest["error_count"] == 30 and len(newest["errors"]) == 20
    assert newest["errors"][0].startswith(f"{bad}:1: ")
    assert all(h["ok"] for h in history[1:])
    assert status["last_reload"]["errors"] and len(status["last_reload"]["errors"]) == 30


async def test_random_forms_never_500(browser: Browser) -> None:
    import random
    rng = random.Random(9)
    csrf = csrf_of(await browser.page())
    alphabet = "ab.:/?&=%\\ \r\n\x00\u200b\U0001F600\"'<>[]hxps"
    for i in range(60):
        fields = [(rng.choice(["q", "lists", "force", "token", "x"]),
                   "".join(rng.choice(alphabet) for _ in range(rng.randrange(30))))
                  for _ in range(rng.randrange(4))]
        if i % 4:
            fields.append(("csrf", csrf))
        resp, _ = await browser.post(UI + rng.choice(["test", "reload", "login"]), fields)
        assert resp.status in (200, 303, 401, 403, 422, 429), fields
