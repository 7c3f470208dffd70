"""The URL parsers of the three browser engines, asked by the tests: what host does each open?

- Chromium: Debian's /usr/bin/chromium, driven by Playwright (never downloads a browser).
- Firefox: Debian's /usr/bin/firefox-esr, headless, through its built-in WebDriver BiDi
  (a websocket; aiohttp's client speaks it).
- WebKit (Safari's engine): Debian's WebKitGTK, through GObject introspection in Debian's own
  Python under Xvfb (tests/webkit_eval.py, a child process reading scripts on stdin).

Each runs `new URL(s)` in a page: the parser a click on a link runs. `.ci/run` installs all
three; a test asking for one that is absent is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FIREFOX = Path("/usr/bin/firefox-esr")
WEBKIT_PYTHON = Path("/usr/bin/python3")  # Debian's: python3-gi and gir1.2-webkit2-4.1 are its
WEBKIT_EVAL = Path(__file__).with_name("webkit_eval.py")
ENGINES = ("chromium", "firefox", "webkit")

Run = Callable[[str], str]  # a JavaScript expression that gives a string -> that string

# Every non-ASCII UTF-16 unit escaped, so lone surrogates cross every transport unchanged.
_JS_HOSTS = """(xs => JSON.stringify(xs.map(s => {
  try { return new URL(s).hostname } catch (e) { return null } }))
  .replace(/[^\\x00-\\x7f]/g, c => '\\\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')))"""
_JS_CODE_POINTS = """(([lo, hi, prefix, suffix]) => { const out = [];
  for (let cp = lo; cp < hi; cp++) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    try { out.push(new URL(prefix + String.fromCodePoint(cp) + suffix).hostname) }
    catch (e) { out.push(null) } }
  return JSON.stringify(out) })"""


def hosts(run: Run, urls: list[str], chunk: int = 2000) -> list[str | None]:
    """The hostname the engine gives each URL (None: it refuses the URL)."""
    out: list[str | None] = []
    for i in range(0, len(urls), chunk):
        out += json.loads(run(f"{_JS_HOSTS}({json.dumps(urls[i:i + chunk])})"))
    return out


def code_point_hosts(run: Run, prefix: str, suffix: str) -> dict[int, str | None]:
    """For every code point from U+0080 on (not surrogates): the hostname of
    prefix + code point + suffix."""
    out: dict[int, str | None] = {}
    for lo in range(0x80, 0x110000, 0x10000):
        hi = min(lo + 0x10000, 0x110000)
        found = json.loads(run(f"{_JS_CODE_POINTS}({json.dumps([lo, hi, prefix, suffix])})"))
        cps = [cp for cp in range(lo, hi) if not 0xD800 <= cp <= 0xDFFF]
        out.update(zip(cps, found, strict=True))
    return out


def installed(name: str) -> bool:
    if name == "webkit":
        return WEBKIT_PYTHON.exists() and shutil.which("xvfb-run") is not None and subprocess.run(
            [str(WEBKIT_PYTHON), "-c", "import gi; gi.require_version('WebKit2', '4.1')"],
            capture_output=True, check=False).returncode == 0
    return (CHROMIUM if name == "chromium" else FIREFOX).exists()


@contextlib.contextmanager
def engine(name: str) -> Iterator[Run]:
    if not installed(name):
        pytest.skip(f"{name} is not installed (Debian's packages; .ci/run installs them)")
    with {"chromium": _chromium, "firefox": _firefox, "webkit": _webkit}[name]() as run:
        yield run


@contextlib.contextmanager
def _chromium() -> Iterator[Run]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        try:
            yield lambda js: str(page.evaluate(js))
        finally:
            browser.close()


# Quiet start-up: no first-run pages, updates, telemetry or Safe Browsing fetches.
_FIREFOX_PREFS = {
    "browser.shell.checkDefaultBrowser": False, "browser.startup.page": 0,
    "browser.startup.homepage_override.mstone": "ignore", "browser.aboutwelcome.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.enabled": False,
    "datareporting.healthreport.uploadEnabled": False, "app.update.enabled": False,
    "app.normandy.enabled": False, "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False, "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False, "extensions.update.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/", "remote.prefs.recommended": True,
}


@contextlib.contextmanager
def _firefox() -> Iterator[Run]:
    import aiohttp
    profile = Path(tempfile.mkdtemp(prefix="lg-firefox-"))
    (profile / "user.js").write_text("".join(
        f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in _FIREFOX_PREFS.items()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(FIREFOX), "--headless", "--no-remote", f"--remote-debugging-port={port}",
         "--profile", str(profile), "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "MOZ_HEADLESS": "1"})
    loop = asyncio.new_event_loop()
    ids = iter(range(1, 1 << 62))

    async def connect() -> Any:
        session = aiohttp.ClientSession()
        deadline = time.monotonic() + 60
        while True:
            try:
                return session, await session.ws_connect(f"ws://127.0.0.1:{port}/session",
                                                         max_msg_size=0)
            except aiohttp.ClientError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    await session.close()
                    raise
                await asyncio.sleep(0.2)

    async def command(method: str, params: dict[str, Any]) -> Any:
        n = next(ids)
        await ws.send_json({"id": n, "method": method, "params": params})
        while True:
            answer = json.loads(await ws.receive_str())
            if answer.get("id") == n:
                if answer.get("type") == "error":
                    raise RuntimeError(f"{method}: {answer}")
                return answer["result"]

    def run(js: str) -> str:
        r = loop.run_until_complete(command("script.evaluate", {
            "expression": js, "target": {"context": context}, "awaitPromise": False}))
        if r.get("type") == "exception":
            raise RuntimeError(f"Firefox: {r['exceptionDetails']}")
        return str(r["result"]["value"])

    try:
        session, ws = loop.run_until_complete(connect())
        loop.run_until_complete(command("session.new", {"capabilities": {}}))
        tree = loop.run_until_complete(command("browsingContext.getTree", {}))
        context = tree["contexts"][0]["context"]
        yield run
        loop.run_until_complete(ws.close())
        loop.run_until_complete(session.close())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        loop.close()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def _webkit() -> Iterator[Run]:
    proc = subprocess.Popen(
        ["xvfb-run", "-a", str(WEBKIT_PYTHON), str(WEBKIT_EVAL)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=sys.stderr, text=True, start_new_session=True,
        env={**os.environ, "WEBKIT_DISABLE_COMPOSITING_MODE": "1"})
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def run(js: str) -> str:
        stdin.write(json.dumps(js) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError("tests/webkit_eval.py exited")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"WebKit: {answer['error']}")
        return str(answer["value"])

    try:
        yield run
    finally:
        stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        stdout.close()
