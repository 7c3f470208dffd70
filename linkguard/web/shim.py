"""The link shim: links are checked again when they are clicked (the link shim and console section of README.md).

A link clean when a message was sent can be listed an hour later (the IWF list grows by about a
thousand URLs a day), so renderers can send links through the shim, like Facebook's l.php,
Microsoft Safe Links and Mimecast:

    POST /v1/rewrite {"text", "replacement"?}
        -> the /v1/sanitize answer (blocked links replaced), and every link left in the text
           rewritten to <public_base_url>/go?u=<url>&s=<signature>; "rewritten" counts them and
           each link carries its "shim" URL (null when not rewritten)
    GET /go?u=<url>&s=<signature>
        signed, allowed by the lists loaded now -> 302 to <url>, Referrer-Policy: no-referrer
        signed, flagged now                     -> 200 warning page, the link to go on
        signed, blocked now                     -> 451 page naming the category, never the entry
        unsigned, badly signed, not http(s)     -> 403 page showing the URL as text; no redirect,
                                                   no link, ever (but /v1/rewrite signs any link
                                                   it is sent: only /go is for the public)
        over the burst limit (link, client)     -> 429; no lists loaded -> 503

    sign("https://a.example/x")
      = base64url(HMAC-SHA256(key, "linkguard-shim-v1\\0" + "https://a.example/x"))  (43 chars)

The signed URL is the one a browser would open (WHATWG-serialized by ada-url, the parser the
engine uses), so the redirect target is exactly what was signed and checked: ASCII, no spaces,
no control characters, http or https. Rotation: the previous key is still accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
import weakref
from base64 import urlsafe_b64encode
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import ada_url
from aiohttp import web
from prometheus_client import Counter

from linkguard.config import Settings
from linkguard.verdict import Action, LinkVerdict, Sanitized
from linkguard.web import keys
from linkguard.web.admin import client_address
from linkguard.web.app import (
    Around,
    _check_link_count,
    _engine,
    _observe,
    read_text_and_replacement,
)
from linkguard.web.errors import ApiError, json_response
from linkguard.web.metrics import Metrics
from linkguard.web.pages import Markup, escape, page, render

audit_log = logging.getLogger("linkguard.audit")

_DOMAIN = b"linkguard-shim-v1\0"  # domain separation: the key signs nothing but shim links
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")  # RFC 3986 section 3.1
_C0_SPACE = "".join(map(chr, range(0x21)))  # WHATWG URL: stripped at both ends
# What a Host header may hold (RFC 9110 section 7.2: uri-host [":" port]); anything else and we
# will not build links on it.
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_SHOWN_URL_CHARS = 2048  # a warning page shows at most this much of a URL
# aiohttp (like most servers) refuses a request line over 8190 bytes: a longer /go link could
# never be clicked, so such a link is left as it was written (the send-time check still holds).
MAX_SHIM_PATH = 8000


# --- signing --------------------------------------------------------------------------------

def sign(key: bytes, url: str) -> str:
    mac = hmac.new(key, _DOMAIN + url.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def web_url(url: str) -> str | None:
    """The URL a browser opens for a link (http:// added to a schemeless one), WHATWG-serialized;
    None unless it is http or https."""
    s = url.strip(_C0_SPACE).translate({9: None, 10: None, 13: None})
    m = _SCHEME.match(s)
    if m is None or "." in m.group():  # "example.com:8080/x" is a host and a port
        s = "http://" + s
    elif m.group()[:-1].lower() not in ("http", "https"):
        return None  # javascript:, data:, ftp:, ...
    try:
        href = ada_url.normalize_url(s)
    except ValueError:
        return None
    if not href.startswith(("http://", "https://")) or not _printable_ascii(href):
        return None
    return href


def _printable_ascii(s: str) -> bool:
    return s.isascii() and all(0x21 <= ord(c) <= 0x7E for c in s)


class BurstLimiter:
    """At most `clicks` clicks on one link by one client within `seconds`, counted in this
    process. Per client too: the link in a message is the same for everyone who got it (and
    /v1/rewrite gives it to anyone), so a per-link budget is one client could spend for all.

    GCRA (the generic cell rate algorithm, a token bucket of `clicks` refilled at
    clicks/seconds): one float per link, the time its bucket is full again. At most `max_links`
    links are remembered (least recently clicked forgotten first); a link not clicked for
    `seconds` has a full bucket anyway, so forgetting it changes nothing.

        clicks=50, seconds=5: 50 clicks at once pass, the 51st waits 0.1 s
    """

    def __init__(self, clicks: int, seconds: float, max_links: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = seconds / clicks
        # A hair of slack: 50 sums of 0.1 must not come out over 4.9 by a rounding error.
        self.tolerance = seconds - self.interval + self.interval * 1e-6
        self.max_links, self.clock = max_links, clock
        self._tat: OrderedDict[bytes, float] = OrderedDict()

    def hit(self, link: str, client: str) -> float:
        """Count a click: 0.0 if it may pass, else the seconds until one may."""
        key = hashlib.sha256(f"{client}\0{link}".encode("utf-8", "surrogatepass")).digest()
        now = self.clock()
        tat = max(self._tat.get(key, now), now)
        if tat - now > self.tolerance:
            return tat - now - self.tolerance
        self._tat[key] = tat + self.interval
        self._tat.move_to_end(key)
        while len(self._tat) > self.max_links:
            self._tat.popitem(last=False)
        return 0.0

    def __len__(self) -> int:
        return len(self._tat)


# One click counter per Metrics object (several apps may share one in tests).
_CLICKS: weakref.WeakKeyDictionary[Metrics, Counter] = weakref.WeakKeyDictionary()


def _click_counter(metrics: Metrics) -> Counter:
    counter = _CLICKS.get(metrics)
    if counter is None:
        # Multiprocess-safe like every counter of metrics.py: with PROMETHEUS_MULTIPROC_DIR set
        # each process writes its own file and /metrics sums them.
        counter = _CLICKS[metrics] = Counter(
            "linkguard_shim_clicks_total",
            "Clicks on /go links by result: allow, block, flag (the verdict now), unverified "
            "(no or bad signature), rate_limited, not_ready", ["verdict"],
            registry=metrics.registry)
    return counter


@dataclass
class Shim:
    keys: tuple[bytes, ...]  # the first signs; every one verifies
    base_url: str | None  # None: the origin of each /v1/rewrite request
    limiter: BurstLimiter
    clicks: Counter

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> Shim:
        current, previous = settings.resolved_shim_keys()
        if current is None:
            # No key configured: derive one from the secret the master made before forking (all
            # workers agree), or, in an app built by hand, from a random one of its own.
            secret = settings.instance_secret or secrets.token_bytes(32)
            keys_: tuple[bytes, ...] = (hmac.new(secret, b"linkguard shim key",
                                                 hashlib.sha256).digest(),)
        else:
            keys_ = tuple(k.encode("utf-8") for k in (current, previous) if k is not None)
        base = settings.public_base_url.rstrip("/") if settings.public_base_url else None
        limiter = BurstLimiter(settings.shim_burst_clicks, settings.shim_burst_seconds,
                               settings.shim_burst_max_links)
        return cls(keys_, base, limiter, _click_counter(metrics))

    def link(self, base: str, url: str) -> str:
        return f"{base}/go?u={quote(url, safe='')}&s={sign(self.keys[0], url)}"

    def verify(self, url: str, signature: str) -> bool:
        given = signature.encode("utf-8", "surrogateescape")
        ok = False
        for key in self.keys:  # every key, always: no early exit to time
            ok |= hmac.compare_digest(sign(key, url).encode("ascii"), given)
        return ok


SHIM = web.AppKey("shim", Shim)


def setup_shim(app: web.Application, settings: Settings, metrics: Metrics, around: Around
               ) -> None:
    """Register /v1/rewrite and /go on the public app."""
    app[SHIM] = Shim.from_settings(settings, metrics)
    around.add(app, "POST", "/v1/rewrite", rewrite)
    around.add(app, "GET", "/go", go)


# --- POST /v1/rewrite -----------------------------------------------------------------------

async def rewrite(request: web.Request) -> web.Response:
    text, replacement = await read_text_and_replacement(request)
    shim = keys.config(request)[SHIM]
    base = shim.base_url or _request_origin(request)
    engine = _engine(request)
    verdict = engine.check_text(text)
    _check_link_count(request, verdict)
    _observe(request, verdict)

    def shim_link(link: LinkVerdict) -> str | None:
        target = _shimmable(text, link)
        if target is None or len(shim_url := shim.link(base, target)) - len(base) > MAX_SHIM_PATH:
            return None
        return shim_url

    cut = engine.replace_links(text, verdict, replacement, shim_link)
    shims: list[str | None]
    if cut is None:  # a blocked link only a renderer makes: the whole text goes
        new_text, shims, removed, rewritten = replacement, [None] * len(verdict.links), 1, 0
    else:
        new_text, replaced = cut
        shims = [None if link.action is Action.BLOCK else r
                 for link, r in zip(verdict.links, replaced, strict=True)]
        rewritten = sum(s is not None for s in shims)
        removed = sum(r is not None for r in replaced) - rewritten
    body = Sanitized(new_text, verdict, removed).to_json()
    for item, link_shim in zip(body["links"], shims, strict=True):
        item["shim"] = link_shim
    body["rewritten"] = rewritten
    return json_response(body)


def _shimmable(text: str, link: LinkVerdict) -> str | None:
    """The URL to sign for a link left in the text, or None to leave it as written.

    Only a link written as a plain URL is rewritten: a defanged or disguised one
    (`hxxp://a[.]com`, a zero-width space inside) was written so as not to be clickable, and
    rewriting it would make it so."""
    assert link.start is not None and link.end is not None
    if text[link.start:link.end] != link.verdict.url:
        return None
    return web_url(link.verdict.url)


def _request_origin(request: web.Request) -> str:
    host = request.host
    if not _HOST.fullmatch(host):
        raise ApiError(422, "invalid_request",
                       "cannot build shim links on this request's Host header; "
                       "configure public_base_url")
    return f"{request.scheme}://{host}"


# --- GET /go --------------------------------------------------------------------------------

async def go(request: web.Request) -> web.Response:
    shim = keys.config(request)[SHIM]
    query = request.rel_url.query
    us, ss = query.getall("u", []), query.getall("s", [])
    url = us[0] if len(us) == 1 else None
    limit = keys.config(request)[keys.SETTINGS].max_url_chars
    if (url is None or len(ss) != 1 or len(url) > limit
            or not shim.verify(url, ss[0]) or web_url(url) != url):
        # web_url(url) == url: a signed URL is always one we serialized; anything else (a key
        # that leaked and signed "javascript:...") is still never a redirect.
        shim.clicks.labels("unverified").inc()
        return _unverified(url)

    engine = keys.config(request)[keys.HOLDER].engine
    if engine is None:  # never let a click through unchecked
        shim.clicks.labels("not_ready").inc()
        return _notice(503, "This link cannot be checked right now",
                       Markup("<p>The link checker is starting or its lists failed to load. "
                              "Try again in a minute.</p>"), headers={"Retry-After": "60"})

    wait = shim.limiter.hit(url, client_address(request))
    if wait:
        shim.clicks.labels("rate_limited").inc()
        return _notice(429, "Too many clicks on this link",
                       _paragraph(f"This link was opened too often in a short time. "
                                f"Try again in {wait:.0f} seconds." if wait >= 1 else
                                "This link was opened too often in a short time. "
                                "Try again in a moment."),
                       headers={"Retry-After": str(max(1, round(wait)))})

    verdict = engine.check_url(url)
    shim.clicks.labels(verdict.action.value).inc()
    if verdict.action is Action.ALLOW:
        return web.Response(status=302, headers={
            "Location": url, "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
            "Content-Type": "text/plain; charset=utf-8"}, text="")
    _audit(verdict.action.value, verdict.lists, verdict.category, verdict.canonical or url)
    category = verdict.category or "unsafe"
    if verdict.action is Action.BLOCK:
        # 451 (RFC 7725): unavailable for legal reasons; the page names the category only.
        return _notice(451, "This link is blocked", Markup(
            f"<p>This link leads to a page listed as <strong>{escape(category)}</strong>. It "
            "was checked when you clicked it, and it cannot be opened from here.</p>"),
            kind="blocked")
    return _notice(200, "This link was flagged", Markup(
        f"<p>This link is listed as <strong>{escape(category)}</strong>. "
        "Open it only if you trust where it leads:</p>"
        f"<code class=\"url\">{escape(url)}</code>"
        f"<p><a href=\"{escape(url)}\" rel=\"noreferrer noopener\">Continue to the link</a></p>"
    ), kind="flagged")


def _paragraph(text: str) -> Markup:
    return Markup(f"<p>{escape(text)}</p>")


def _unverified(url: str | None) -> web.Response:
    # The URL is shown as text to copy, never as a link: nothing here may take anyone anywhere.
    shown = (f"<p class=\"muted\">The link it carries:</p>"
             f"<code class=\"url\">{escape(_shorten(url))}</code>") if url else ""
    return _notice(403, "This link could not be verified", Markup(
        "<p>This link did not come from this service, or it was changed after it was made, so "
        "it is not opened automatically. If you trust it, copy it into your browser.</p>"
        + shown), kind="unverified")


def _notice(status: int, heading: str, body: Markup, *, kind: str = "",
            headers: dict[str, str] | None = None) -> web.Response:
    return page(heading, render("notice.html", kind=kind, heading=heading, body=body), status,
                headers)


def _shorten(url: str) -> str:
    return url if len(url) <= _SHOWN_URL_CHARS else url[:_SHOWN_URL_CHARS] + "…"


def _audit(verdict: str, lists: tuple[str, ...], category: str | None, url: str) -> None:
    audit_log.info("click %s", verdict, extra={"fields": {
        "event": "click", "route": "/go", "verdict": verdict, "lists": list(lists),
        "category": category,
        "url_sha256": hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()}})
