"""The admin sub-app, mounted at /admin only when a token is configured (else /admin/* is 404).

    POST /admin/reload   {} or {"lists": [names], "force": bool}
                                                    -> {"ok", "lists_version", ...}; 422 + errors
    GET  /admin/lists                               -> lists, last reload, every worker's version
    POST /admin/explain  {"url"}                    -> engine.explain(url)

Every request needs `Authorization: Bearer <token>`, compared in constant time; except under
/admin/ui, the HTML console (console.py), which has its own login form and session cookie.
A client address that keeps sending wrong tokens is made to wait (429 + Retry-After, TokenBackoff).
With `admin_port` set, this app is served on its own listener (app.create_admin_root), not under
the public one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from linkguard import api
from linkguard.web import keys
from linkguard.web.app import _engine, _settings, read_json
from linkguard.web.errors import ApiError, Handler, error_response, json_response
from linkguard.web.state import ControlUnavailable

log = logging.getLogger("linkguard.admin")


class TokenBackoff:
    """Wrong admin tokens, per client address. The first `free` cost nothing; after that the
    address must wait `first_wait` seconds, doubling with each further wrong token up to
    `max_wait`, and every request from it meanwhile is answered 429 + Retry-After without looking
    at its token (so guessing cannot go faster than the waits allow). A right token clears the
    address; an address quiet for `forget_after` starts afresh. Memory is bounded: at most
    `max_clients` addresses, the one that failed least recently forgotten first. IPv6 clients
    count per /64 (one host usually holds a whole /64). Per process: with N workers an address
    gets N times the attempts, still at most a few per `max_wait` each."""

    def __init__(self, *, free: int = 5, first_wait: float = 1.0, max_wait: float = 300.0,
                 forget_after: float = 3600.0, max_clients: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.first_wait, self.max_wait = free, first_wait, max_wait
        self.forget_after, self.max_clients, self.clock = forget_after, max_clients, clock
        # address -> (wrong tokens in a row, waiting until, last wrong token); oldest first
        self._clients: OrderedDict[str, tuple[int, float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def wait(self, client: str) -> float:
        """Seconds `client` must still wait (0: it may try)."""
        entry = self._clients.get(client)
        if entry is None:
            return 0.0
        now = self.clock()
        if now - entry[2] > self.forget_after:
            del self._clients[client]
            return 0.0
        return max(0.0, entry[1] - now)

    def failed(self, client: str) -> None:
        now = self.clock()
        failures, _, last = self._clients.pop(client, (0, 0.0, now))
        if now - last > self.forget_after:
            failures = 0
        failures += 1
        over = failures - self.free
        until = now + min(self.first_wait * 2.0 ** min(over - 1, 32), self.max_wait) \
            if over > 0 else 0.0
        self._clients[client] = (failures, until, now)  # newest last
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)


def client_address(request: web.Request) -> str:
    """The peer address the backoff counts by: IPv4 as is, IPv6 as its /64."""
    remote = request.remote or ""
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


ADMIN_BACKOFF = web.AppKey("admin_backoff", TokenBackoff)


def create_admin_app(token: str, around: Middleware) -> web.Application:
    """/admin: `around` is what the app it is added to does around each request (app.Around)."""
    admin = web.Application(middlewares=[around, _auth_middleware])
    admin[keys.ADMIN_TOKEN] = token.encode("utf-8")
    admin[ADMIN_BACKOFF] = TokenBackoff()
    admin.router.add_post("/reload", reload)
    admin.router.add_get("/lists", lists)
    admin.router.add_post("/explain", explain)
    from linkguard.web.console import create_console_app  # /admin/ui: the HTML console
    admin.add_subapp("/ui", create_console_app())
    return admin


@web.middleware
async def _auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    from linkguard.web.console import is_console_request
    if is_console_request(request):  # the console logs in with the token, then uses a session
        return await handler(request)
    seconds = backoff_seconds(request)
    if seconds:
        response = error_response(429, "too_many_requests", "too many wrong admin tokens from "
                                  f"this address; try again in {seconds} s")
        response.headers["Retry-After"] = str(seconds)
        return response
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token_matches(request, given if scheme.lower() == "bearer" else None):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token")
    return await handler(request)


def backoff_seconds(request: web.Request) -> int:
    """How long this client must wait before it may present a token again (0: it may now).
    One budget per address for the bearer header and the console's login form."""
    wait = keys.config(request)[ADMIN_BACKOFF].wait(client_address(request))
    if wait <= 0:
        return 0
    keys.config(request)[keys.METRICS].auth_failures.labels("429").inc()
    return math.ceil(wait)


def token_matches(request: web.Request, given: str | None) -> bool:
    """Is `given` the admin token? Records the outcome for the back-off and the metrics."""
    # surrogateescape: bytes that are not UTF-8 still compare (and fail), never raise.
    # Digests of both sides: the comparison takes the same time whatever the lengths.
    presented = hashlib.sha256((given or "").strip().encode("utf-8", "surrogateescape")).digest()
    expected = hashlib.sha256(keys.config(request)[keys.ADMIN_TOKEN]).digest()
    ok = given is not None and hmac.compare_digest(presented, expected)
    backoff = keys.config(request)[ADMIN_BACKOFF]
    if ok:
        backoff.succeeded(client_address(request))
    else:
        backoff.failed(client_address(request))
        keys.config(request)[keys.METRICS].auth_failures.labels("401").inc()
    return ok


async def reload(request: web.Request) -> web.Response:
    data = api.as_object(await read_json(request, allow_empty=True), "body")
    names = data.get("lists")
    if names is not None:
        if (not isinstance(names, list) or not names
                or not all(isinstance(n, str) and n for n in names)):
            raise ApiError(422, "invalid_request", "lists: expected a non-empty array of names")
        names = list(dict.fromkeys(names))
    force = data.get("force", False)
    if not isinstance(force, bool):
        raise ApiError(422, "invalid_request", "force: expected true or false")
    try:
        result = await keys.config(request)[keys.CONTROL].reload(names, force)
    except ControlUnavailable as e:
        raise ApiError(503, "unavailable", str(e)) from None
    if not result.ok:
        raise ApiError(422, "reload_failed",
                       "reload failed; the previous lists keep serving", errors=list(result.errors),
                       lists_version=result.lists_version)
    return json_response({**result.to_json(), "lists": names})


async def lists(request: web.Request) -> web.Response:
    try:
        return json_response(await keys.config(request)[keys.CONTROL].status())
    except ControlUnavailable as e:
        raise ApiError(503, "unavailable", str(e)) from None


async def explain(request: web.Request) -> web.Response:
    data = api.as_object(await read_json(request), "body")
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise ApiError(422, "invalid_request", "url: expected a non-empty string")
    settings = _settings(request)
    if len(url) > settings.max_url_chars:  # (as /v1/check says it of its urls)
        raise ApiError(422, "url_too_long",
                       f"url: longer than {settings.max_url_chars} characters")
    url = api.string(data, "url", settings) or ""
    # In a thread, as the console's: explain re-reads the files of the lists that match (seconds
    # for a list of millions), and this worker answers checks meanwhile (the engine is immutable).
    return json_response(await asyncio.to_thread(_engine(request).explain, url))
