"""The admin console: one server-rendered page under /admin/ui (the link shim and console section of README.md).

    GET  /admin/ui/         the console (no session: 303 to the login form)
    GET  /admin/ui/login    the login form
    POST /admin/ui/login    token, csrf          -> session cookie, 303 to /admin/ui/
    POST /admin/ui/logout   csrf                 -> cookie cleared, 303 to the login form
    POST /admin/ui/reload   csrf, lists*, force  -> the console with the reload's result
    POST /admin/ui/test     csrf, q              -> the console with canonical forms, verdicts
                                                    and the explain output

It is a sub-app of /admin (so it exists only when an admin token is configured), and the only
part of /admin that takes a browser session instead of the bearer token.

Why signed cookies rather than a session store in memory: `linkguard serve` answers from several
worker processes and replaces all of them on every reload, so a store in one process's memory
would log the admin out on the next request that reaches another worker, and at every reload.
The cookie carries a random session id and its expiry, signed with HMAC-SHA256 under a key
derived from a secret the master makes at start (shared by every worker) and the admin token:

    session cookie  <session id>.<expires, unix time>.<mac("session", id, expires)>
    CSRF token      mac("csrf", session id)           in every form, compared in constant time
    login CSRF      mac("login", nonce), nonce in a short-lived cookie beside the form

Changing the admin token or restarting the service ends every session. Cookies are `Secure`,
`HttpOnly`, `SameSite=Strict`, `Path=/admin/ui` (browsers keep Secure cookies on
http://localhost and http://127.0.0.1; anywhere else, serve the console over https).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientPayloadError, web
from multidict import MultiDict

from linkguard.config import Settings
from linkguard.engine import Engine
from linkguard.verdict import Action
from linkguard.web import keys
from linkguard.web.admin import backoff_seconds, token_matches
from linkguard.web.app import read_body
from linkguard.web.errors import Handler
from linkguard.web.pages import Markup, escape, join, page, render, security_headers
from linkguard.web.state import ControlUnavailable

SESSION_COOKIE = "linkguard_session"
LOGIN_COOKIE = "linkguard_login"
LOGIN_FORM_SECONDS = 900  # a login form must be sent within this
MAX_EXPLAINED_LINKS = 20  # the test box explains at most this many links of a message


@dataclass
class ConsoleState:
    """Per process; created before the app starts (a started app is frozen)."""

    own_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    key: bytes | None = None  # derived on first use


CONSOLE = web.AppKey("console", ConsoleState)


def create_console_app() -> web.Application:
    console = web.Application(middlewares=[_stray_path_middleware])
    console[CONSOLE] = ConsoleState()
    r = console.router
    r.add_get("/", _signed_in(dashboard), name="page")
    r.add_get("/login", login_form, name="login")
    r.add_post("/login", login)
    r.add_post("/logout", _signed_in(logout), name="logout")
    r.add_post("/reload", _signed_in(reload), name="reload")
    r.add_post("/test", _signed_in(test), name="test")
    return console


def is_console_request(request: web.Request) -> bool:
    """True for every path under the console's prefix, known or not (admin.py lets these
    through the bearer check: the console authenticates them itself)."""
    return any(CONSOLE in app for app in request.match_info.apps)


# --- sessions and CSRF ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    expires: int
    csrf: str


def _key(request: web.Request) -> bytes:
    state = keys.config(request)[CONSOLE]
    if state.key is None:
        secret = keys.config(request)[keys.SETTINGS].instance_secret or state.own_secret
        token = keys.config(request)[keys.ADMIN_TOKEN]
        state.key = hmac.new(secret, b"linkguard console v1\0" + token, hashlib.sha256).digest()
    return state.key


def _mac(request: web.Request, *parts: str) -> str:
    msg = "\0".join(parts).encode("utf-8", "surrogateescape")
    return hmac.new(_key(request), msg, hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"),
                               b.encode("utf-8", "surrogateescape"))


def _session(request: web.Request) -> Session | None:
    value = request.cookies.get(SESSION_COOKIE, "")
    sid, _, rest = value.partition(".")
    expires_s, _, mac = rest.partition(".")
    if (not sid or not mac or not expires_s.isascii() or not expires_s.isdigit()
            or len(expires_s) > 12):
        return None
    if not _same(mac, _mac(request, "session", sid, expires_s)):
        return None
    expires = int(expires_s)
    if expires <= time.time():
        return None
    return Session(sid, expires, _mac(request, "csrf", sid))


SignedInHandler = Callable[[web.Request, Session, MultiDict[str]], Awaitable[web.Response]]


def _signed_in(handler: SignedInHandler) -> Handler:
    """Wrap a handler of the console proper: no valid session, no entry; a POST must carry
    this session's CSRF token (constant-time compare) or it is a 403 and nothing happens."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        session = _session(request)
        if session is None:
            if request.method == "POST":
                return _message(request, 403, "Your session has ended",
                                "Log in again to use the console.", kind="bad")
            return _redirect(request, "login")
        form: MultiDict[str] = MultiDict()
        if request.method == "POST":
            posted = await _form(request)
            if posted is None or not _same(posted.get("csrf", ""), session.csrf):
                return _csrf_failed(request)
            form = posted
        return await handler(request, session, form)
    return wrapped


@web.middleware
async def _stray_path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """/admin/ui (no slash) or any unknown path under it: to the console, or its login."""
    if request.match_info.route.resource is None and request.method in ("GET", "HEAD"):
        return _redirect(request, "page" if _session(request) else "login")
    return await handler(request)


async def _form(request: web.Request) -> MultiDict[str] | None:
    """The form's text fields; None when the body is not a readable form. The body is read
    bounded in size and time first, as every body is (a slow one is a 408)."""
    await read_body(request)
    try:
        data = await request.post()
    except (ValueError, LookupError, web.HTTPException, ClientPayloadError, ConnectionError):
        return None  # malformed, in an unknown charset, too large, or the client went away
    return MultiDict((k, v) for k, v in data.items() if isinstance(v, str))


def _path(request: web.Request, name: str) -> str:
    return str(request.app.router[name].url_for())


def _cookie_path(request: web.Request) -> str:
    return _path(request, "page").rstrip("/") or "/"


def _set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
                max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=_cookie_path(request), secure=True,
                        httponly=True, samesite="Strict")


def _redirect(request: web.Request, name: str) -> web.Response:
    return web.Response(status=303, headers={**security_headers(),
                                             "Location": _path(request, name)})


def _csrf_failed(request: web.Request) -> web.Response:
    return _message(request, 403, "This form cannot be accepted",
                    "It has expired or it did not come from this console (CSRF check). "
                    "Go back, reload the page and try again.", kind="bad")


def _message(request: web.Request, status: int, heading: str, message: str,
             kind: str = "") -> web.Response:
    return page(heading, render("console_message.html", heading=heading, message=message,
                                kind=kind, back=_path(request, "page")), status)


# --- login ----------------------------------------------------------------------------------

async def login_form(request: web.Request) -> web.Response:
    if _session(request) is not None:
        return _redirect(request, "page")
    return _login_page(request)


def _login_page(request: web.Request, status: int = 200, message: str = "") -> web.Response:
    nonce = secrets.token_urlsafe(18)
    minutes = round(keys.config(request)[keys.SETTINGS].console_session_seconds / 60)
    body = render("console_login.html", action=_path(request, "login"),
                  csrf=_mac(request, "login", nonce), minutes=minutes,
                  message=Markup(f"<p class=\"bad\">{escape(message)}</p>") if message else "")
    response = page("linkguard console: log in", body, status)
    _set_cookie(request, response, LOGIN_COOKIE, nonce, LOGIN_FORM_SECONDS)
    return response


async def login(request: web.Request) -> web.Response:
    form = await _form(request)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if form is None or not nonce or not _same(form.get("csrf", ""), _mac(request, "login", nonce)):
        return _csrf_failed(request)
    # The admin API's back-off (admin.py): wrong tokens per client address, one budget for the
    # bearer header and this form, so the form is no faster way to guess.
    seconds = backoff_seconds(request)
    if seconds:
        response = _login_page(request, 429, "Too many wrong tokens from this address: "
                                             f"try again in {seconds} s.")
        response.headers["Retry-After"] = str(seconds)
        return response
    if not token_matches(request, form.get("token", "")):
        return _login_page(request, 401, "Wrong token.")
    lifetime = keys.config(request)[keys.SETTINGS].console_session_seconds
    sid = secrets.token_urlsafe(18)
    expires = str(int(time.time() + lifetime))
    response = _redirect(request, "page")
    _set_cookie(request, response, SESSION_COOKIE,
                f"{sid}.{expires}.{_mac(request, 'session', sid, expires)}", int(lifetime))
    response.del_cookie(LOGIN_COOKIE, path=_cookie_path(request), secure=True, httponly=True,
                        samesite="Strict")
    return response


async def logout(request: web.Request, session: Session, form: MultiDict[str]
                 ) -> web.Response:
    response = _redirect(request, "login")
    response.del_cookie(SESSION_COOKIE, path=_cookie_path(request), secure=True, httponly=True,
                        samesite="Strict")
    return response


# --- the console ----------------------------------------------------------------------------

async def dashboard(request: web.Request, session: Session, form: MultiDict[str]
                    ) -> web.Response:
    return await _render(request, session)


async def reload(request: web.Request, session: Session, form: MultiDict[str]
                 ) -> web.Response:
    names = list(dict.fromkeys(n for n in form.getall("lists", []) if n)) or None
    force = form.get("force") in ("1", "on", "true")
    try:
        result = await keys.config(request)[keys.CONTROL].reload(names, force)
    except ControlUnavailable as e:
        notice = _notice("bad", "Reload failed", Markup(f"<p>{escape(e)}</p>"))
        return await _render(request, session, notice=notice, status=503)
    what = ", ".join(names) if names else "every list"
    if result.ok:
        notice = _notice("ok", "Reload succeeded", Markup(
            f"<p>Reloaded {escape(what)}: lists version <code>{escape(result.lists_version)}"
            f"</code> in {result.duration_s:.3f} s.</p>"))
    else:
        notice = _notice("bad", "Reload failed: the previous lists keep serving", Markup(
            f"<p>Reloading {escape(what)} failed; lists version "
            f"<code>{escape(result.lists_version)}</code> keeps serving.</p>"
            f"<pre class=\"err\" id=\"reload-errors\">{join(e + chr(10) for e in result.errors)}"
            "</pre>"))
    return await _render(request, session, notice=notice, status=200 if result.ok else 422)


async def test(request: web.Request, session: Session, form: MultiDict[str]) -> web.Response:
    query = form.get("q", "").strip()
    limit = keys.config(request)[keys.SETTINGS].max_text_chars
    if len(query) > limit:
        return await _render(request, session, test_result=_para(
            f"That is {len(query)} characters; the limit is {limit}.", "bad"), status=422)
    if not query:
        return await _render(request, session)
    engine = keys.config(request)[keys.HOLDER].engine
    if engine is None:
        return await _render(request, session, query=query, status=503, test_result=_para(
            "The lists are not loaded: nothing can be tested until a reload succeeds.", "bad"))
    # In a thread: explain re-reads the files of the lists that match, which takes a while for
    # big lists, and this worker has other requests to answer meanwhile (the engine is immutable).
    result = await asyncio.to_thread(_test_result, engine, keys.config(request)[keys.SETTINGS],
                                     query)
    return await _render(request, session, query=query, test_result=result)


def _test_result(engine: Engine, settings: Settings, query: str) -> Markup:
    verdict = engine.check_text(query)
    max_url = settings.max_url_chars
    n = len(verdict.links)
    out = [(f"<h3 id=\"test-verdict\">Message verdict: {_pill(verdict.action.value)} "
            f"<span class=\"muted\">({n} link{'' if n == 1 else 's'}, lists version "
            f"{escape(verdict.lists_version)})</span></h3>")]
    explained: list[tuple[str, dict[str, Any]]] = []
    if verdict.links:
        rows = []
        for link in verdict.links:
            v = link.verdict
            span = "" if link.start is None else f"{link.start}–{link.end}"
            rows.append([Markup(f"<code>{escape(v.url)}</code>"),
                         Markup(f"<code>{escape(v.canonical)}</code>") if v.canonical
                         else Markup("<span class=\"muted\">not a link a browser opens</span>"),
                         _pill(v.action.value), v.category or "", ", ".join(v.lists),
                         span or Markup("<span class=\"muted\">inside another link</span>")])
        out.append(_table(["link", "canonical", "verdict", "category", "lists", "span"], rows,
                          table_id="test-links"))
        # Links found in the text (an embedded URL is explained inside its outer link).
        urls = dict.fromkeys(link.verdict.url for link in verdict.links
                             if link.start is not None and len(link.verdict.url) <= max_url)
        explained += [(url, engine.explain(url)) for url in list(urls)[:MAX_EXPLAINED_LINKS]]
    elif not any(c.isspace() for c in query) and len(query) <= max_url:
        # One "word" that is no link: explain says why (e.g. not a URL a browser opens).
        explained.append((query, engine.explain(query)))
    else:
        out.append("<p class=\"muted\">No links found in this text.</p>")
    for i, (url, ex) in enumerate(explained):
        out.append(f"<h3>explain <code>{escape(url)}</code></h3>")
        out.append(f"<p>canonical <code class=\"explain-canonical\">{escape(ex['canonical'])}"
                   f"</code> · verdict {_pill(ex['verdict']['verdict'])}"
                   + (f" · {escape(ex['reason'])}" if ex.get("reason") else "") + "</p>")
        if ex["matches"]:
            out.append(_table(["list", "line", "entry", "format", "action", "category"],
                              [[m.get("list"), m.get("line"), Markup(
                                  f"<code>{escape(m.get('entry'))}</code>"), m.get("format"),
                                m.get("action"), m.get("category")] for m in ex["matches"]]))
        output = escape(json.dumps(ex, indent=2, ensure_ascii=False))
        out.append(f"<details{' open' if i == 0 else ''}><summary>explain output</summary>"
                   f"<pre class=\"explain\">{output}</pre></details>")
    return Markup("".join(out))


_EMPTY = Markup("")


async def _render(request: web.Request, session: Session, *, notice: Markup = _EMPTY,
                  query: str = "", test_result: Markup = _EMPTY, status: int = 200
                  ) -> web.Response:
    try:
        st = await keys.config(request)[keys.CONTROL].status()
    except ControlUnavailable as e:
        st = {"ready": False, "lists_version": None, "lists": [], "workers": [], "history": []}
        notice = Markup(notice + _notice("bad", "Status unavailable", Markup(
            f"<p>{escape(e)}</p>")))
    lists = st.get("lists") or []
    history = st.get("history")
    if history is None:  # a master from before the history field: its last reload only
        history = [st["last_reload"]] if st.get("last_reload") else []
    body = render(
        "console.html", csrf=session.csrf, version=st.get("lists_version") or "none",
        ready=Markup("<span class=\"ok\">ready</span>") if st.get("ready")
        else Markup("<span class=\"bad\">not ready</span>"),
        list_count=len(lists), entry_count=f"{sum(int(x.get('entries', 0)) for x in lists):,}",
        logout_action=_path(request, "logout"), reload_action=_path(request, "reload"),
        test_action=_path(request, "test"), notice=notice, query=query, test_result=test_result,
        list_rows=_list_rows(lists), workers=_workers(st.get("workers") or []),
        history=_history(history))
    return page("linkguard console", body, status)


_NONE = Markup("<span class=\"muted\">none</span>")


def _list_rows(lists: list[dict[str, Any]]) -> Markup:
    if not lists:
        return Markup("<tr><td colspan=\"10\" class=\"muted\">No lists loaded.</td></tr>")
    rows = []
    for x in lists:
        name = str(x.get("name", ""))
        sha = str(x.get("sha256") or "")
        error = x.get("last_error")
        rows.append(
            f"<tr><td><input type=\"checkbox\" name=\"lists\" value=\"{escape(name)}\" "
            f"aria-label=\"reload {escape(name)}\"></td>"
            f"<td><strong>{escape(name)}</strong></td><td>{escape(x.get('format'))}</td>"
            f"<td>{_pill(str(x.get('action', '')))}</td><td>{escape(x.get('category'))}</td>"
            f"<td class=\"num\">{escape(x.get('entries'))}</td>"
            f"<td class=\"num\">{escape(x.get('skipped'))}</td>"
            f"<td><code title=\"{escape(sha)}\">{escape(sha[:12])}</code></td>"
            f"<td>{escape(_when(x.get('loaded_at')))}</td>"
            f"<td>{_errors(error) if error else _NONE}</td></tr>")
    return Markup("\n".join(rows))


def _workers(workers: list[dict[str, Any]]) -> Markup:
    if not workers:
        return Markup("<p class=\"muted\">No workers reported.</p>")
    return _table(["pid", "generation", "state", "lists version"],
                  [[w.get("pid"), w.get("generation"), w.get("state"),
                    Markup(f"<code>{escape(w.get('lists_version'))}</code>")] for w in workers],
                  table_id="worker-table")


def _history(history: list[dict[str, Any]]) -> Markup:
    if not history:
        return Markup("<p class=\"muted\">No reloads yet.</p>")
    rows = []
    for h in history:
        errors = h.get("errors") or []
        more = int(h.get("error_count", len(errors))) - len(errors)
        text = "\n".join(errors) + (f"\n… and {more} more" if more > 0 else "")
        rows.append([_when(h.get("at")), _pill("ok" if h.get("ok") else "failed"),
                     ", ".join(h.get("lists") or []) or "all",
                     Markup(f"<code>{escape(h.get('lists_version'))}</code>"),
                     f"{float(h.get('duration_s') or 0):.3f} s",
                     _errors(text) if text else ""])
    return _table(["at (UTC)", "result", "lists", "version", "took", "errors"], rows,
                  table_id="history-table")


def _table(headers: list[str], rows: list[list[Any]], table_id: str = "") -> Markup:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    ident = f" id=\"{escape(table_id)}\"" if table_id else ""
    return Markup(f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _pill(value: str) -> Markup:
    kind = {Action.ALLOW.value: "allow", Action.BLOCK.value: "block", Action.FLAG.value: "flag",
            "ok": "ok", "failed": "failed"}.get(value, "")
    return Markup(f"<span class=\"pill {kind}\">{escape(value)}</span>")


def _errors(text: str) -> Markup:
    return Markup(f"<pre class=\"err\">{escape(text)}</pre>")


def _notice(kind: str, heading: str, body: Markup) -> Markup:
    return Markup(f"<section class=\"notice {kind}\" id=\"notice\"><h2>{escape(heading)}</h2>"
                  f"{body}</section>")


def _para(text: str, kind: str = "") -> Markup:
    return Markup(f"<p class=\"{kind}\">{escape(text)}</p>")


def _when(iso: Any) -> str:
    """'2026-11-26T05:56:38.480366+00:00' -> '2026-11-26 05:56:38'."""
    s = str(iso or "")
    return s[:19].replace("T", " ") if len(s) >= 19 else s
