"""JSON logs: one object per line on stderr.

    {"ts": "2024-05-01T12:00:00.123Z", "level": "info", "logger": "linkguard.reload",
     "msg": "lists loaded", "pid": 4242, "event": "reload", "lists_version": "..."}

Structured fields travel in `extra={"fields": {...}}`. The audit line for a blocked or flagged
link carries the list, category and the sha256 of the canonical URL, never the message text
(`audit_links`). Nothing is logged per allowed URL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from linkguard.verdict import Action, LinkVerdict

audit_log = logging.getLogger("linkguard.audit")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, Any] = {"ts": f"{ts}.{int(record.msecs):03d}Z",
                               "level": record.levelname.lower(), "logger": record.name,
                               "msg": record.getMessage(), "pid": os.getpid()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str) -> None:
    """Route every logger (ours and aiohttp's) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp logs every client-side protocol error at ERROR/INFO; keep them at warning+.
    logging.getLogger("aiohttp").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.server").addFilter(_drop_client_protocol_errors)


def _drop_client_protocol_errors(record: logging.LogRecord) -> bool:
    """aiohttp answers malformed HTTP (bad request line, oversized header, bad chunking) with a
    400 itself, and logs each at ERROR with a traceback: client noise, and a way to flood logs.
    So is a body that is not as its Content-Encoding says: the app answers 400, then aiohttp
    reads the rest of the body and logs the same error again (RequestPayloadError)."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, (HttpProcessingError, RequestPayloadError))


def audit_links(route: str, links: tuple[LinkVerdict, ...]) -> None:
    if not links or not audit_log.isEnabledFor(logging.INFO):
        return  # (its fields, a SHA-256 among them, are not worked out for nothing)
    for link in links:
        v = link.verdict
        if v.action is Action.ALLOW:
            continue
        key = (v.canonical or v.url).encode("utf-8", "surrogatepass")
        audit_log.info("link %s", v.action.value, extra={"fields": {
            "event": "verdict", "route": route, "verdict": v.action.value,
            "lists": list(v.lists), "category": v.category,
            "url_sha256": hashlib.sha256(key).hexdigest()}})
