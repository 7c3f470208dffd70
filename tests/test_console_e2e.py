"""End to end: the real `linkguard serve` on the shipped lists, driven in headless Chromium.

Starts the service as the README does (plus an admin token in the environment) on a free
loopback port, then with Playwright logs in to the console, reloads, tests a message, follows
shim links, and keeps a screenshot in artifacts/console.png. Chromium is Debian's (`.ci/run`
installs it); Playwright drives it at /usr/bin/chromium and never downloads a browser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.liveserver import _ports, stop, wait_for

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
TOKEN = "e2e-admin-token-4f1c9b"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DEADLINE = 60.0

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is absent (Debian's chromium package; .ci/run installs it)")


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "serve.log"
    env = {**os.environ, "LINKGUARD_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    env.pop("LINKGUARD_LISTS", None)  # the shipped lists, as after the README's command
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "linkguard", "serve", "--port", "0"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    try:
        port = wait_for(lambda: _ports(log)[0] or (
            proc.poll() is not None and pytest.fail(f"serve exited:\n{log.read_text()}")),
            "the listening log line")
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ready(base), "/readyz")
        yield base
    finally:
        stop(proc)


def _rewrite(base: str, text: str) -> dict[str, Any]:
    req = urllib.request.Request(base + "/v1/rewrite", data=json.dumps({"text": text}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, Any] = json.load(resp)
    return result


def test_console_and_shim_in_chromium(service: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = service
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            context.set_default_timeout(30_000)
            page = context.new_page()
            # A CSP violation (say, a stylesheet whose hash is wrong) or a script error is a
            # problem; a 403/404 answer (/favicon.ico, the unsigned /go page) is logged too.
            problems: list[str] = []
            page.on("console", lambda m: m.type == "error" and not m.text.startswith(
                "Failed to load resource") and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))

            # No session: the console sends us to its login form.
            page.goto(base + "/admin/ui/")
            expect(page).to_have_url(base + "/admin/ui/login")
            page.fill("#token", TOKEN)
            page.click("#login")
            expect(page).to_have_url(base + "/admin/ui/")
            expect(page.locator("#lists")).to_contain_text("demo-phishing")
            expect(page.locator("#workers")).to_contain_text("serving")
            session = next(c for c in context.cookies() if c["name"] == "linkguard_session")
            assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"

            # Reload every list: the result, and the reload in the history.
            page.click("#reload")
            expect(page.locator("#notice")).to_contain_text("Reload succeeded")
            expect(page.locator("#history-table tbody tr")).to_have_count(2)  # start + reload

            # Test a message: canonical forms, verdicts, explain output.
            page.fill("#q", "log in at hxxps://phish[.]example[.]com/login "
                            "or https://www.example.org/")
            page.click("#test-button")
            expect(page.locator("#test-verdict")).to_contain_text("block")
            expect(page.locator(".explain-canonical").first).to_have_text(
                "https://phish.example.com/login")
            expect(page.locator("#test-links")).to_contain_text("https://www.example.org/")
            page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)

            # Log out: back to the login form, and the console is closed again.
            page.click("#logout")
            expect(page).to_have_url(base + "/admin/ui/login")
            page.goto(base + "/admin/ui/")
            expect(page).to_have_url(base + "/admin/ui/login")

            # The shim: an allowed link redirects; a flagged one warns first; an unsigned one
            # never leaves the page.
            target = base + "/healthz"
            flagged = base + "/healthz?free-crypto-giveaway"
            links = {link["url"]: link["shim"] for link in
                     _rewrite(base, f"{target} and {flagged}")["links"]}
            assert links[target].startswith(base + "/go?u=")
            page.goto(links[target])
            expect(page).to_have_url(target)
            expect(page.locator("body")).to_contain_text('"status":"ok"')
            response = page.goto(links[flagged])
            assert response is not None and response.status == 200
            expect(page.locator("h1")).to_contain_text("flagged")
            page.click("text=Continue to the link")
            expect(page).to_have_url(flagged)
            unsigned = base + "/go?u=https%3A%2F%2Fevil.example%2F&s=forged"
            response = page.goto(unsigned)
            assert response is not None and response.status == 403
            page.wait_for_timeout(500)  # nothing may navigate away, even later
            expect(page).to_have_url(unsigned)
            expect(page.locator("code.url")).to_have_text("https://evil.example/")

            assert not problems, problems
        finally:
            browser.close()
    assert (ARTIFACTS / "console.png").stat().st_size > 10_000
