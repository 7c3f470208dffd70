"""Every error the service answers is JSON: {"error": {"code", "message"}}.

`error_for` (called around every request, app.Around) maps aiohttp's own HTTP errors (404
unknown route, 405, 413 from the body limit) to that shape and turns anything unexpected into a
logged 500, so no exception reaches aiohttp.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from linkguard.api import ApiError

__all__ = ["JSON_HEADERS", "ApiError", "Handler", "error_for", "error_response", "json_bytes",
           "json_response"]

log = logging.getLogger("linkguard.web")

_CODES = {400: "invalid_json", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 408: "request_timeout", 413: "payload_too_large",
          415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests",
          500: "internal_error", 503: "not_ready"}


# What orjson cannot write (a lone surrogate, an integer over 64 bits) the standard library
# writes, ASCII-escaped; compact, and never a cycle to check for (answers are built fresh).
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)
# What the standard library refuses, orjson must too: a dataclass or a datetime in an answer is
# a handler's mistake (answers are built by to_json), not a shape to publish.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
# As headers (aiohttp copies them), not content_type=, which it parses: 1.13 vs 1.69 us.
JSON_HEADERS = {"Content-Type": "application/json"}


def json_bytes(data: Any) -> bytes:
    # orjson writes a batch answer of 100 results in 18 us, the standard library in 190 us.
    try:
        return orjson.dumps(data, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _ENCODER.encode(data).encode("ascii")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json_bytes(data), status=status, headers=JSON_HEADERS)


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return json_response({"error": {"code": code, "message": message, **extra}}, status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_for(request: web.Request, exc: Exception) -> web.Response:
    """The JSON answer for an exception a handler raised; re-raises an HTTP redirect."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        resp = error_response(exc.status, _CODES.get(exc.status, "error"), _message(exc))
        for name in ("Allow", "WWW-Authenticate"):
            if name in exc.headers:
                resp.headers[name] = exc.headers[name]
        return resp
    log.error("unhandled error", exc_info=exc,
              extra={"fields": {"path": request.path, "method": request.method}})
    return error_response(500, "internal_error", "internal error")


def _message(e: web.HTTPException) -> str:
    if e.status == 404:
        return "no such route"
    if e.status == 405:
        return f"method not allowed; allowed: {e.headers.get('Allow', '')}"
    if e.status == 413:
        return "request body too large"
    return e.reason
