"""The admin sub-app, mounted at /admin only when a token is configured (else /admin/* is 404).

    POST /admin/reload   {} or {"lists": [names], "force": bool}
                                                    -> {"ok", "lists_version", ...}; 422 + errors
    GET  /admin/lists                               -> lists, last reload, every worker's version
    POST /admin/explain  {"url"}                    -> engine.explain(url)

Every request needs `Authorization: Bearer <token>`, compared in constant time; except under
/admin/ui, the HTML console (console.py), which has its own login form and session cookie.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from linkguard.web import keys
from linkguard.web.app import _engine, _object, _string, read_json
from linkguard.web.errors import ApiError, Handler, json_response
from linkguard.web.state import ControlUnavailable

log = logging.getLogger("linkguard.admin")


def create_admin_app(token: str) -> web.Application:
    admin = web.Application(middlewares=[_auth_middleware])
    admin[keys.ADMIN_TOKEN] = token.encode("utf-8")
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
    expected = request.config_dict[keys.ADMIN_TOKEN]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # surrogateescape: header bytes that are not UTF-8 still compare (and fail), never raise.
    presented = given.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token")
    return await handler(request)


async def reload(request: web.Request) -> web.Response:
    data = _object(await read_json(request, allow_empty=True), "body")
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
        result = await request.config_dict[keys.CONTROL].reload(names, force)
    except ControlUnavailable as e:
        raise ApiError(503, "unavailable", str(e)) from None
    if not result.ok:
        raise ApiError(422, "reload_failed",
                       "reload failed; the previous lists keep serving", errors=list(result.errors),
                       lists_version=result.lists_version)
    return json_response({**result.to_json(), "lists": names})


async def lists(request: web.Request) -> web.Response:
    try:
        return json_response(await request.config_dict[keys.CONTROL].status())
    except ControlUnavailable as e:
        raise ApiError(503, "unavailable", str(e)) from None


async def explain(request: web.Request) -> web.Response:
    data = _object(await read_json(request), "body")
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise ApiError(422, "invalid_request", "url: expected a non-empty string")
    if len(url) > request.config_dict[keys.SETTINGS].max_url_chars:
        raise ApiError(422, "url_too_long", "url: too long")
    url = _string(request, data, "url", "") or ""
    return json_response(_engine(request).explain(url))
