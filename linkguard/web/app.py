"""The app factory and the public routes.

    POST /v1/check        {"text", "urls"}            -> TextVerdict.to_json()
    POST /v1/check/batch  {"messages": [{"id", ...}]} -> {"results": [{"id", ...}]}
    POST /v1/sanitize     {"text", "replacement"}     -> Sanitized.to_json()
    POST /v1/rewrite      {"text", "replacement"}     -> sanitize + links via /go (shim.py)
    GET  /go?u=&s=                                    -> time-of-click check (shim.py)
    GET  /healthz /readyz /metrics /openapi.json
    /admin/...            admin.py (only when a token is configured)

Handlers are thin: read and decode the body (`read_json`), hand it to linkguard/api.py (bounds,
checks, the answer; compiled), serialize. A check of one message runs coalesced with those of
the other requests read in the same turn of the event loop (`Coalescer`). Bad input is a 4xx
(errors.py); with no engine loaded the verdict routes answer 503, never allow.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

from aiohttp import ClientPayloadError, web
from aiohttp.web_protocol import RequestPayloadError

from linkguard import api
from linkguard.config import Settings
from linkguard.engine import Engine
from linkguard.verdict import Action, TextVerdict
from linkguard.web import keys
from linkguard.web.errors import (
    JSON_HEADERS,
    ApiError,
    Handler,
    error_for,
    error_response,
    json_bytes,
    json_response,
)
from linkguard.web.guard import guard_of
from linkguard.web.logs import audit_links
from linkguard.web.metrics import CONTENT_TYPE, Metrics
from linkguard.web.state import Control, EngineHolder, InProcessControl, ServingState

access_log = logging.getLogger("linkguard.access")

T = TypeVar("T")
R = TypeVar("R")


def create_app(settings: Settings, *, engine: Engine | None = None,
               engine_holder: EngineHolder | None = None, control: Control | None = None,
               metrics: Metrics | None = None, serving: ServingState | None = None,
               ) -> web.Application:
    """Build the app. Without `control` it reloads in-process (tests, embedding); without an
    engine it loads `settings.lists` at startup. `linkguard serve` passes the master's control."""
    metrics = metrics or Metrics()
    holder = engine_holder or EngineHolder(engine)
    if control is None:
        in_process = InProcessControl(holder, settings.lists or "", metrics)
        if holder.engine is not None:
            metrics.observe_load(holder.engine, True)
        control = in_process

    app, around = _base_app(settings, holder, control, metrics, serving or ServingState())
    app[keys.OPENAPI] = resources.files("linkguard.web").joinpath("openapi.json").read_bytes()
    if holder.engine is None and not holder.errors and isinstance(control, InProcessControl):
        app.cleanup_ctx.append(_load_at_startup)

    verdicts = VerdictRoutes(settings, holder, metrics)
    around.add(app, "POST", "/v1/check", verdicts.check, direct=True)
    around.add(app, "POST", "/v1/check/batch", verdicts.check_batch, direct=True)
    around.add(app, "POST", "/v1/sanitize", verdicts.sanitize, direct=True)
    around.add(app, "GET", "/healthz", healthz, allow_head=True)
    around.add(app, "GET", "/readyz", readyz, allow_head=True)
    around.add(app, "GET", "/metrics", metrics_handler)
    around.add(app, "GET", "/openapi.json", openapi)
    from linkguard.web.shim import setup_shim  # POST /v1/rewrite, GET /go (the link shim)
    setup_shim(app, settings, metrics, around)

    token = settings.resolved_admin_token()
    if token and settings.admin_port is None:  # else: create_admin_root, on its own listener
        from linkguard.web.admin import create_admin_app
        app.add_subapp("/admin", create_admin_app(token, around.middleware))
    return app


def create_admin_root(settings: Settings, *, engine_holder: EngineHolder, control: Control,
                      metrics: Metrics, serving: ServingState) -> web.Application:
    """The app of the admin listener (`admin_port`): /admin/... and nothing else, sharing the
    public app's engine holder, control and metrics. The public app then has no /admin."""
    from linkguard.web.admin import create_admin_app
    token = settings.resolved_admin_token()
    assert token, "the admin listener needs a token"
    app, around = _base_app(settings, engine_holder, control, metrics, serving)
    app.add_subapp("/admin", create_admin_app(token, around.middleware))
    return app


def _base_app(settings: Settings, holder: EngineHolder, control: Control, metrics: Metrics,
              serving: ServingState) -> tuple[web.Application, Around]:
    """What the public app and the admin listener's app share: limits, state, and what every
    request gets around its handler (`Around`: add the routes through it)."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.HOLDER] = holder
    app[keys.CONTROL] = control
    app[keys.METRICS] = metrics
    app[keys.SERVING] = serving
    app[keys.DIRECT] = {}
    around = Around(settings, metrics, serving)
    around.add(app, "*", "/{path:(?s:.*)}", _unmatched, label="unmatched")
    return app, around


async def _load_at_startup(app: web.Application) -> AsyncIterator[None]:
    control = app[keys.CONTROL]
    assert isinstance(control, InProcessControl)
    await control.load()
    yield


# --- public routes -----------------------------------------------------------------------------

class VerdictRoutes:
    """POST /v1/check, /v1/check/batch and /v1/sanitize, bound to the app's state when it is
    built: a request looks up no app key (`request.app[key]` is five Python calls in aiohttp,
    and these routes took six a request). A check of one message, and its answer, run in
    their `Coalescer`, beside those of the other requests that came in the same turn."""

    def __init__(self, settings: Settings, holder: EngineHolder, metrics: Metrics) -> None:
        self.settings, self.holder, self.metrics = settings, holder, metrics
        self._coalesce = Coalescer()

    async def check(self, request: web.Request) -> web.Response:
        body = await read_json(request, settings=self.settings)
        verdict, answer = await self._coalesce.run(self._check, body)
        _count(self.metrics, request, (verdict,))
        return web.Response(body=answer, headers=JSON_HEADERS)

    def _check(self, body: Any) -> tuple[TextVerdict, bytes]:
        verdict = api.check(self.holder.engine, body, self.settings)
        return verdict, json_bytes(verdict.to_json())

    async def check_batch(self, request: web.Request) -> web.Response:
        # Not coalesced: a batch keeps the engine busy on its own messages.
        body = await read_json(request, settings=self.settings)
        results, verdicts = api.check_batch(self.holder.engine, body, self.settings)
        _count(self.metrics, request, verdicts)
        return json_response({"results": results})

    async def sanitize(self, request: web.Request) -> web.Response:
        text_and_replacement = await read_text_and_replacement(request, self.settings)
        verdict, answer = await self._coalesce.run(self._sanitize, text_and_replacement)
        _count(self.metrics, request, (verdict,))
        return web.Response(body=answer, headers=JSON_HEADERS)

    def _sanitize(self, text_and_replacement: tuple[str, str]) -> tuple[TextVerdict, bytes]:
        result = api.ready(self.holder.engine).sanitize(*text_and_replacement)
        api.check_link_count(result.verdict, self.settings)
        return result.verdict, json_bytes(result.to_json())


class Coalescer:
    """Runs the calls that requests make in one turn of the event loop back to back, in one
    callback early in the next turn, and hands each request its own result or exception.

    Under load a turn reads several requests (about six of wrk's sixteen connections here), and
    aiohttp runs their handlers one after the other. A check run inside each handler found the
    engine's code and data pushed out of the CPU's caches by aiohttp's since the check before,
    and cost 2-3x what it costs in a loop; run together, one check warms the caches for the
    next (benchmarks/run, target 3a).

    Waiting costs two more turns of the loop before the answer (+11% instructions for a request
    alone), so while requests come one a turn each call runs at once: the first call of a turn
    runs at once unless the turn before had more than one, the others of its turn wait. A turn
    that ran its call at once ends with one callback, after the answer is written."""

    def __init__(self) -> None:
        self._pending: list[tuple[Callable[[Any], Any], Any, asyncio.Future[Any]]] = []
        self._gather = False  # the last turn had more than one call: gather this turn's too
        self._ran = False  # a call of this turn ran at once

    async def run(self, fn: Callable[[T], R], arg: T) -> R:
        loop = asyncio.get_running_loop()
        if not self._pending and not self._ran:  # the turn's first call
            loop.call_soon(self._end_turn)
            if not self._gather:
                self._ran = True
                return fn(arg)
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((fn, arg, future))
        return await future

    def _end_turn(self) -> None:
        pending, self._pending = self._pending, []
        self._gather = len(pending) + self._ran > 1
        self._ran = False
        for fn, arg, future in pending:
            if future.cancelled():  # its request was cancelled (the server is stopping)
                continue
            try:
                future.set_result(fn(arg))
            except Exception as e:  # noqa: BLE001 -- raised in the request that made the call
                future.set_exception(e)


async def read_text_and_replacement(request: web.Request, settings: Settings | None = None
                                    ) -> tuple[str, str]:
    """The body of /v1/sanitize and /v1/rewrite: {"text", "replacement"?}, bounded.
    `settings`: the app's, where the caller has them."""
    settings = settings or _settings(request)
    return api.text_and_replacement(await read_json(request, settings=settings), settings)


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    holder = keys.config(request)[keys.HOLDER]
    if holder.engine is None:
        return error_response(503, "not_ready", "lists are not loaded",
                              errors=[_position(e) for e in holder.errors])
    return json_response({"status": "ready", "lists_version": holder.engine.version})


_POSITION = re.compile(r"(.*?:\d+): ")


def _position(error: str) -> str:
    """`file:line` of a list error without its reason: /readyz is public, and a reason may quote
    the line (a list entry, perhaps mistyped). The admin API and `linkguard lists validate`
    give the whole of it."""
    match = _POSITION.match(error)
    where = match.group(1) if match else "lists"
    return f"{where}: not loaded (see /admin/lists or linkguard lists validate)"


async def metrics_handler(request: web.Request) -> web.Response:
    return web.Response(body=keys.config(request)[keys.METRICS].render(),
                        headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=keys.config(request)[keys.OPENAPI], content_type="application/json")


# --- parsing and bounds ------------------------------------------------------------------------

async def read_body(request: web.Request, settings: Settings | None = None) -> bytes:
    """The body, bounded: 413 over the size limit, 408 not received within body_timeout, 400
    when the client goes away. aiohttp keeps it, so `request.post()` after this reads no more.
    `settings`: the app's, where the caller has them."""
    settings = settings or _settings(request)
    limit = settings.max_body_bytes
    try:
        # Bounded in size by client_max_size (also when chunked), and in time: a body sent
        # slowly (slowloris) must not hold the connection and its buffer for ever. A body
        # already received whole (most are: one packet) needs no timer, and no look at its
        # Content-Length first: read() refuses it over client_max_size all the same.
        if request.content.is_eof():
            body = await request.read()
        else:
            if request.content_length is not None and request.content_length > limit:
                raise ApiError(413, "payload_too_large", f"request body over {limit} bytes")
            async with asyncio.timeout(settings.body_timeout):
                body = await request.read()
    except TimeoutError:  # (counted in the metrics by Around)
        raise ApiError(408, "request_timeout", f"request body not received within "
                       f"{settings.body_timeout:g}s") from None
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "payload_too_large", f"request body over {limit} bytes") from None
    except (ConnectionError, ClientPayloadError) as e:  # the client went away mid-body
        raise ApiError(400, "invalid_body", f"could not read the request body: {e}") from None
    except RequestPayloadError:  # not as its Content-Encoding says (aiohttp decompresses it)
        encoding = request.headers.get("Content-Encoding", "")
        raise ApiError(400, "invalid_body", "could not decode the request body as its "
                       f"Content-Encoding {encoding!r} says") from None
    return body


async def read_json(request: web.Request, *, allow_empty: bool = False,
                    settings: Settings | None = None) -> Any:
    """The body as JSON: 413 over the size limit, 415 not JSON, 400 not parseable.
    An empty body reads as {} where `allow_empty` (POST /admin/reload means "all lists")."""
    body = await read_body(request, settings)
    if allow_empty and not body.strip():
        return {}
    ctype = request.content_type
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type must be application/json, got {ctype!r}")
    # The standard library reads it, not orjson (2x faster): orjson reads an integer over 64
    # bits as a float, so a message id of 2**70 would be refused (tests/test_schemathesis.py).
    try:
        text = body.decode("utf-8")  # RFC 8259 section 8.1: JSON text is UTF-8
    except UnicodeDecodeError as e:
        raise ApiError(400, "invalid_json", f"body is not UTF-8 (byte {e.start})") from None
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ApiError(400, "invalid_json", "JSON nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and ints over Python's digit limit
        raise ApiError(400, "invalid_json", f"invalid JSON: {e}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # NaN, Infinity: not JSON


def _settings(request: web.Request) -> Settings:
    return keys.config(request)[keys.SETTINGS]


def _engine(request: web.Request) -> Engine:
    """The engine serving now; 503 without one (never "allow" without lists)."""
    return api.ready(keys.config(request)[keys.HOLDER].engine)


def _check_link_count(request: web.Request, verdict: TextVerdict) -> None:
    api.check_link_count(verdict, _settings(request))


def _observe(request: web.Request, *verdicts: TextVerdict) -> None:
    _count(keys.config(request)[keys.METRICS], request, verdicts)


def _count(metrics: Metrics, request: web.Request, verdicts: Sequence[TextVerdict]) -> None:
    """Messages and links in the metrics; blocked and flagged links in the audit log."""
    metrics.observe_messages(verdicts)
    for verdict in verdicts:
        if verdict.action is not Action.ALLOW:  # (the worst of its links': none to log)
            audit_links(request.path, verdict.links)


# --- around every request: errors, metrics, draining, access log -------------------------------

class Around:
    """What every request gets around its handler: the slow-client guard told when it starts
    and ends (guard.py), any exception as a JSON answer (errors.py), its metrics, "Connection:
    close" when its body was not read or this process is draining, and the access log.

    The app's routes get it as their handler (`add`), a path no route takes through a
    catch-all route (`_unmatched`), and the /admin sub-app (with its console) as its first
    middleware. The app itself has none: with one, aiohttp runs every request through two
    more coroutines (the middleware and its own `_fix_request_current_app`), 14k instructions
    of a /v1/check's 377k (callgrind, benchmarks' bodies)."""

    def __init__(self, settings: Settings, metrics: Metrics, serving: ServingState) -> None:
        self.metrics, self.serving, self.logged = metrics, serving, settings.access_log
        self._labels: dict[web.AbstractRoute, str] = {}  # a sub-app's route -> its metrics label

    def add(self, app: web.Application, method: str, path: str, handler: Handler, *,
            allow_head: bool = False, label: str | None = None, direct: bool = False) -> None:
        """Route `method` `path` to `handler`, around it all the above; `label`: in metrics
        and the access log (the path). `direct`: also served past the router, where the
        server is set up so (`route_directly`); for a handler that reads nothing of the app
        through the request (`request.app`, `match_info`: a request served so has neither)."""
        around = functools.partial(self._serve, handler, label or path)
        if allow_head:
            app.router.add_route("HEAD", path, around)
        app.router.add_route(method, path, around)
        if direct:
            app[keys.DIRECT][method, path] = around

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        return await self._serve(handler, None, request)

    async def _serve(self, handler: Handler, label: str | None, request: web.Request
                     ) -> web.StreamResponse:
        t0 = time.perf_counter()
        guard = guard_of(request.transport)  # the slow-client guard of this connection (guard.py)
        if guard is not None:
            guard.request_started()
        try:
            response = await handler(request)
        except Exception as e:  # noqa: BLE001 -- every error is a JSON answer (errors.py)
            response = error_for(request, e)
        finally:
            body_unread = not request.content.is_eof()
            if guard is not None:
                guard.request_finished(body_unread=body_unread)
        elapsed = time.perf_counter() - t0
        if label is None:
            label = self._label(request.match_info.route)
        status = response.status
        self.metrics.observe_request(label, request.method, status, elapsed)
        if body_unread or status == 408:
            # Answered before its body arrived (a 413, a 408 for a slow body: read_body):
            # aiohttp reads and drops the rest for a while, then closes. Kept alive, the
            # connection's next head would be one the guard cannot tell from that body, so it
            # would have no deadline.
            response.force_close()
            if status == 408:
                self.metrics.client_timeout("body")
        if self.serving.draining:
            # This process is being replaced: answer, then close, so the client's next request
            # opens a fresh connection to a current worker (closing idle keep-alive connections
            # instead would race with a request already on the wire).
            response.force_close()
        if self.logged:
            access_log.info("request", extra={"fields": {
                "method": request.method, "route": label, "status": status,
                "ms": round(elapsed * 1000, 3)}})
        return response

    def _label(self, route: web.AbstractRoute) -> str:
        if (label := self._labels.get(route)) is None:
            resource = route.resource
            label = resource.canonical if resource is not None else "unmatched"
            if resource is not None:  # (aiohttp makes a new route for every unmatched request)
                self._labels[route] = label
        return label


def route_directly(server: web.Server, app: web.Application) -> None:
    """Have `server` (the app's, `AppRunner.server`, before it serves) hand a request for a
    route added with `direct=True` (the verdict routes) straight to its handler, and every
    other request to the app as before.

    aiohttp's Application resolves every request through its router and builds its match
    info: 20k of the 370k instructions a /v1/check costs (callgrind, the benchmark's bodies).
    A request takes the direct way only when its method and its raw target are exactly the
    route's (no query, no escapes: else the router decides, and finds the same handler) and
    it has no `Expect` header (the app answers that with 100 Continue, or 417)."""
    direct = app[keys.DIRECT]
    if not direct:  # (the admin listener's app)
        return
    through_app = server.request_handler

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        handler = direct.get((request.method, request.raw_path))
        if handler is None or "Expect" in request.headers:
            return await through_app(request)
        return await handler(request)  # type: ignore[arg-type]  # the app's Request

    server.request_handler = handle


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """A path no route of the app takes: 404, or 405 when a route takes it with another method
    (aiohttp's own answers, which `Around` writes as JSON)."""
    own = request.match_info.route.resource
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not own:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()
