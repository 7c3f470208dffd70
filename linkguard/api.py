"""The JSON API's checks without HTTP: a decoded request body in, verdicts and the answer out.

Every bound of config.Settings is applied here and every bad input raises ApiError (status, code,
message), which web/errors.py answers as JSON. web/app.py reads and decodes the body, then hands
it here. A batch is hundreds of messages a request, so this per-message work is compiled with the
engine (setup.py). Nothing here imports aiohttp.
"""

from __future__ import annotations

import re
from typing import Any

from linkguard.config import Settings
from linkguard.engine import DEFAULT_REPLACEMENT, Engine
from linkguard.verdict import TextVerdict

MAX_REPLACEMENT_CHARS = 256
# json.loads turns "\ud800" into a lone surrogate; no text can hold one, so we read it as U+FFFD.
# One code point for one keeps every offset (code points and UTF-16 units) where the client had it.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
               float: "number", type(None): "null"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def check(engine: Engine | None, body: object, limits: Settings) -> TextVerdict:
    """POST /v1/check: {"text", "urls"}."""
    return _message(engine, as_object(body, "body"), -1, limits)


def check_batch(engine: Engine | None, body: object, limits: Settings
                ) -> tuple[list[dict[str, Any]], list[TextVerdict]]:
    """POST /v1/check/batch: {"messages": [{"id", "text", "urls"}]} -> (the answer's results,
    the verdicts). One engine for the whole batch: one lists version."""
    data = as_object(body, "body")
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise invalid("messages: expected an array of message objects")
    if len(messages) > limits.max_batch_messages:
        raise invalid(f"messages: {len(messages)} messages; the limit is "
                      f"{limits.max_batch_messages}", code="too_many_messages")
    engine = ready(engine)
    max_links = limits.max_batch_links
    results: list[dict[str, Any]] = []
    verdicts: list[TextVerdict] = []
    links = 0
    for i, item in enumerate(messages):
        if not isinstance(item, dict):
            raise invalid(f"messages[{i}]: expected a JSON object, got {json_type(item)}")
        msg_id = item.get("id")
        if isinstance(msg_id, str):
            msg_id = clean(msg_id)
        elif msg_id is not None and (isinstance(msg_id, bool) or not isinstance(msg_id, int)):
            raise invalid(f"messages[{i}].id: expected a string or an integer")
        verdict = _message(engine, item, i, limits)
        links += len(verdict.links)
        if links > max_links:  # stop here: the cost of a batch stays bounded
            raise invalid(f"messages[{i}]: more than {max_links} links in the batch",
                          code="too_many_links")
        verdicts.append(verdict)
        result: dict[str, Any] = {"id": msg_id}
        result.update(verdict.to_json())
        results.append(result)
    return results, verdicts


def text_and_replacement(body: object, limits: Settings) -> tuple[str, str]:
    """The body of /v1/sanitize and /v1/rewrite: {"text", "replacement"?}, bounded."""
    data = as_object(body, "body")
    text = string(data, "text", limits)
    if text is None:
        raise invalid("text: required")
    replacement = data.get("replacement", DEFAULT_REPLACEMENT)
    if replacement is None:
        replacement = DEFAULT_REPLACEMENT
    if not isinstance(replacement, str):
        raise invalid("replacement: expected a string")
    if len(replacement) > MAX_REPLACEMENT_CHARS:
        raise invalid(f"replacement: longer than {MAX_REPLACEMENT_CHARS} characters")
    return text, clean(replacement)


def _message(engine: Engine | None, msg: dict[str, Any], index: int, limits: Settings
             ) -> TextVerdict:
    """Bound one message ({"text", "urls"}; `index` in a batch, else -1) and check it."""
    text = string(msg, "text", limits, index)
    raw_urls = msg.get("urls")
    if text is None and raw_urls is None:
        raise invalid(f"{_whole(index)}: give text, urls or both")
    urls: list[str] = []
    if raw_urls is not None:
        if not isinstance(raw_urls, list) or not all(isinstance(u, str) for u in raw_urls):
            raise invalid(f"{_where(index)}urls: expected an array of strings")
        if len(raw_urls) > limits.max_links_per_message:
            raise invalid(f"{_where(index)}urls: {len(raw_urls)} URLs; the limit is "
                          f"{limits.max_links_per_message}", code="too_many_links")
        max_chars = limits.max_url_chars
        for i, url in enumerate(raw_urls):
            if len(url) > max_chars:
                raise invalid(f"{_where(index)}urls[{i}]: longer than {max_chars} characters",
                              code="url_too_long")
            urls.append(clean(url))
    verdict = ready(engine).check_text(text or "", urls)
    check_link_count(verdict, limits, index)
    return verdict


def _whole(index: int) -> str:
    """A message as an error names it (-1: the body is the message)."""
    return "body" if index < 0 else f"messages[{index}]"


def _where(index: int) -> str:
    """What goes before a message's field in an error: nothing, or `messages[i].`."""
    return "" if index < 0 else f"{_whole(index)}."


def check_link_count(verdict: TextVerdict, limits: Settings, index: int = -1) -> None:
    # Links found in the text count too: a renderer must not get a partial answer.
    if len(verdict.links) > limits.max_links_per_message:
        raise invalid(f"{_whole(index)}: {len(verdict.links)} links in the message; "
                      f"the limit is {limits.max_links_per_message}", code="too_many_links")


def string(data: dict[str, Any], key: str, limits: Settings, index: int = -1) -> str | None:
    """data[key], a bounded string or None; `index`: of the message in a batch, else -1."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{_where(index)}{key}: expected a string, got {json_type(value)}")
    if len(value) > limits.max_text_chars:
        raise invalid(f"{_where(index)}{key}: {len(value)} characters; the limit is "
                      f"{limits.max_text_chars}", code="text_too_long")
    return clean(value)


def as_object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{what}: expected a JSON object, got {json_type(value)}")
    return value


def clean(s: str) -> str:
    if s.isascii():
        return s
    return _SURROGATE.sub("\ufffd", s) if _SURROGATE.search(s) else s


def json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def invalid(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(422, code, message)


def ready(engine: Engine | None) -> Engine:
    if engine is None:  # never answer "allow" without lists
        raise ApiError(503, "not_ready", "lists are not loaded; see /readyz")
    return engine
