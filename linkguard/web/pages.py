"""HTML pages: the link shim's warnings and the admin console. Server-rendered, no JavaScript,
no external assets, no build step.

Templates are `string.Template` files in `templates/`; `render` escapes every value it is given
unless the value is `Markup` (HTML built here from escaped parts), so a URL, a list error or an
explain output can never become markup:

    render("go_unverified.html", url='"><script>')  ->  ... &quot;&gt;&lt;script&gt; ...

Every page carries a Content-Security-Policy that allows nothing but the one inline stylesheet
(by its hash) and forms posting to this origin, and is never cached nor framed.
"""

from __future__ import annotations

import base64
import hashlib
import html
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from aiohttp import web


class Markup(str):
    """A string that is already HTML (built by this module from escaped parts)."""

    __slots__ = ()


def escape(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Any) -> Markup:
    return Markup("".join(escape(p) for p in parts))


@cache
def _template(name: str) -> Template:
    text = resources.files("linkguard.web").joinpath("templates", name).read_text("utf-8")
    return Template(text)


def render(name: str, **values: Any) -> Markup:
    """The template `name` with every value escaped (Markup values go in as they are)."""
    return Markup(_template(name).substitute({k: escape(v) for k, v in values.items()}))


@cache
def _style() -> tuple[str, str]:
    css = _template("style.css").template
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return css, digest


def security_headers() -> dict[str, str]:
    _, digest = _style()
    return {
        # CSP Level 3: nothing loads but the inline stylesheet with this hash; forms post here.
        "Content-Security-Policy": (f"default-src 'none'; style-src 'sha256-{digest}'; "
                                    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def page(title: str, body: Markup, status: int = 200,
         headers: dict[str, str] | None = None) -> web.Response:
    css, _ = _style()
    text = render("base.html", title=title, style=Markup(css), body=body)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8",
                        headers={**security_headers(), **(headers or {})})
