"""The public routes, through the same create_app() that `linkguard serve` uses."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from linkguard.engine import Engine
from linkguard.web.app import Coalescer, create_app, route_directly
from linkguard.web.errors import json_response
from tests.webfixtures import settings_for, write_lists

JSON = {"Content-Type": "application/json"}


async def post(client: TestClient, path: str, body: Any) -> tuple[int, Any]:
    resp = await client.post(path, json=body)
    return resp.status, await resp.json()


async def raw(client: TestClient, path: str, data: bytes,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
    resp = await client.post(path, data=data, headers=JSON if headers is None else headers)
    assert resp.content_type == "application/json"
    return resp.status, await resp.json()


# --- verdicts ----------------------------------------------------------------------------------

async def test_check_blocks_and_names_list_and_category_only(client: TestClient) -> None:
    status, body = await post(client, "/v1/check", {"text": "go to https://login.evil.example.com/x"})
    assert status == 200
    assert body["verdict"] == "block"
    [link] = body["links"]
    assert link["lists"] == ["phishing"] and link["category"] == "phishing"
    assert link["verdict"] == "block"
    assert (link["start"], link["end"]) == (6, 38)
    assert set(link) == {"url", "canonical", "start", "end", "start_utf16", "end_utf16",
                         "verdict", "category", "lists"}
    assert body["lists_version"]


async def test_check_offsets_in_code_points_and_utf16(client: TestClient) -> None:
    text = "\U0001F600 evil.example.com"  # one astral code point = two UTF-16 units
    status, body = await post(client, "/v1/check", {"text": text})
    assert status == 200
    [link] = body["links"]
    assert (link["start"], link["end"]) == (2, 18)
    assert (link["start_utf16"], link["end_utf16"]) == (3, 19)


async def test_check_near_miss_is_allowed(client: TestClient) -> None:
    status, body = await post(client, "/v1/check", {"text": "see notevil.example.com"})
    assert status == 200 and body["verdict"] == "allow"


async def test_check_flag_from_keyword_list(client: TestClient) -> None:
    status, body = await post(client, "/v1/check", {"text": "https://www.casino.example.com/"})
    assert status == 200 and body["verdict"] == "flag"
    assert body["links"][0]["lists"] == ["spam"]


async def test_check_urls_entities_have_no_offsets(client: TestClient) -> None:
    status, body = await post(client, "/v1/check", {"urls": ["http://evil.example.com/"]})
    assert status == 200 and body["verdict"] == "block"
    [link] = body["links"]
    assert link["start"] is None and link["start_utf16"] is None


async def test_check_text_and_urls_together(client: TestClient) -> None:
    status, body = await post(client, "/v1/check",
                              {"text": "hello", "urls": ["https://a.evil.example.com"]})
    assert status == 200 and body["verdict"] == "block" and len(body["links"]) == 1


async def test_batch_keeps_order_and_ids(client: TestClient) -> None:
    status, body = await post(client, "/v1/check/batch", {"messages": [
        {"id": "a", "text": "evil.example.com"},
        {"id": 2, "text": "nothing here"},
        {"text": "x", "urls": ["casino.example.org"]},
    ]})
    assert status == 200
    results = body["results"]
    assert [r["id"] for r in results] == ["a", 2, None]
    assert [r["verdict"] for r in results] == ["block", "allow", "flag"]


async def test_answers_hold_any_id_and_text_exactly(client: TestClient) -> None:
    # Answers are written by orjson, and by the standard library where orjson cannot: an id
    # over 64 bits, a lone surrogate (here from an id in ASCII escapes, read as U+FFFD).
    for ids, expected in ((["日本", 7], ["日本", 7]),  # orjson: UTF-8
                          ([2**70, -(2**64), "\ud800x", "日本"], [2**70, -(2**64), "\ufffdx", "日本"])):
        data = json.dumps({"messages": [{"id": i, "text": "見て evil.example.com"} for i in ids]})
        status, body = await raw(client, "/v1/check/batch", data.encode())
        assert status == 200
        assert [r["id"] for r in body["results"]] == expected
        assert {r["links"][0]["start"] for r in body["results"]} == {3}


@dataclass
class _Shape:
    n: int


@pytest.mark.parametrize("value", [_Shape(1), datetime.now(UTC)], ids=["dataclass", "datetime"])
def test_an_answer_holds_only_json_types(value: object) -> None:
    # orjson would write a dataclass or a datetime; the standard library, and so linkguard,
    # refuses them (a handler's mistake is a 500, not an unpublished shape).
    with pytest.raises(TypeError):
        json_response({"x": value})


async def test_sanitize_replaces_blocked_links(client: TestClient) -> None:
    text = "a evil.example.com b https://ok.example.org c"
    status, body = await post(client, "/v1/sanitize", {"text": text})
    assert status == 200
    assert body["text"] == "a [link removed] b https://ok.example.org c"
    assert body["removed"] == 1 and body["verdict"] == "block"
    assert body["links"][0]["start"] == 2  # offsets refer to the input text
    status, body = await post(client, "/v1/sanitize", {"text": text, "replacement": "***"})
    assert body["text"] == "a *** b https://ok.example.org c"


# --- health, readiness, metrics, openapi -------------------------------------------------------

async def test_healthz_and_readyz(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["lists_version"]


async def test_not_ready_when_lists_fail_at_start(aiohttp_client: Any, tmp_path: Path) -> None:
    manifest = write_lists(tmp_path, phishing="evil.example.com\nnot a host!\n")
    client = await aiohttp_client(create_app(settings_for(manifest)))  # loads at startup
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["error"]["code"] == "not_ready"
    assert any(e.startswith(f"{tmp_path / 'phishing.txt'}:2: ") for e in body["error"]["errors"])
    assert (await client.get("/healthz")).status == 200
    for path, payload in [("/v1/check", {"text": "evil.example.com"}),
                          ("/v1/check/batch", {"messages": [{"text": "evil.example.com"}]}),
                          ("/v1/sanitize", {"text": "evil.example.com"})]:
        status, body = await post(client, path, payload)  # never a silent "allow"
        assert status == 503 and body["error"]["code"] == "not_ready"


async def test_ready_after_startup_load(aiohttp_client: Any, manifest: Path) -> None:
    client = await aiohttp_client(create_app(settings_for(manifest)))
    assert (await client.get("/readyz")).status == 200
    status, body = await post(client, "/v1/check", {"text": "evil.example.com"})
    assert status == 200 and body["verdict"] == "block"


async def test_metrics(client: TestClient) -> None:
    await post(client, "/v1/check", {"text": "evil.example.com and casino.example.org"})
    await client.get("/nope")
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    for needle in ['linkguard_http_requests_total{method="POST",route="/v1/check",status="200"} 1.0',
                   'linkguard_http_requests_total{method="GET",route="unmatched",status="404"} 1.0',
                   'linkguard_link_verdicts_total{category="phishing",list="phishing",verdict="block"}',
                   'linkguard_link_verdicts_total{category="spam",list="spam",verdict="flag"}',
                   'linkguard_message_verdicts_total{verdict="block"} 1.0',
                   'linkguard_http_request_duration_seconds_bucket{le="0.05",route="/v1/check"}',
                   'linkguard_list_entries{list="phishing"} 1.0',
                   "linkguard_last_reload_timestamp_seconds ",
                   "linkguard_last_reload_success 1.0"]:
        assert needle in text, needle


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:  # a sub-app; its resources already carry the prefix
            out |= _routes(info["app"])
            continue
        for route in resource:
            if route.method not in ("HEAD", "*"):  # "*": the catch-all that answers 404 or 405
                out.add((route.method.lower(), resource.canonical))
    return out


async def test_openapi_documents_every_route(client: TestClient, manifest: Path) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    app = create_app(settings_for(manifest))  # with the admin sub-app
    routes = _routes(app)
    assert ("post", "/admin/reload") in routes and ("post", "/v1/check") in routes
    assert routes == documented


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, code", [
    (b"{", "invalid_json"),
    (b"", "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),                      # not UTF-8
    (b'{"text": "\xc3\x28"}', "invalid_json"),            # invalid UTF-8 inside a string
    (b"\xef\xbb\xbf{}", "invalid_json"),                  # a BOM is not JSON
    (b'{"text": NaN}', "invalid_json"),
    (b'{"text": Infinity}', "invalid_json"),
    (b'{"text": 1' + b"0" * 5000 + b"}", "invalid_json"),  # over Python's int digit limit
    (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),      # nested too deeply
    (b'{"text": "a"} trailing', "invalid_json"),
])
async def test_invalid_json_is_400(client: TestClient, data: bytes, code: str) -> None:
    status, body = await raw(client, "/v1/check", data)
    assert status == 400 and body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.parametrize("payload", [
    [], "text", 1, {}, {"text": 1}, {"text": ["a"]}, {"text": {"a": 1}}, {"text": True},
    {"urls": "http://evil.example.com"}, {"urls": [1]}, {"urls": [None]}, {"urls": {"a": "b"}},
    {"text": 1e308}, {"text": -0.0},
])
async def test_wrong_types_are_422(client: TestClient, payload: Any) -> None:
    status, body = await raw(client, "/v1/check", json.dumps(payload).encode())
    assert status == 422 and body["error"]["code"] == "invalid_request", body


@pytest.mark.parametrize("payload", [
    None, [], {}, {"messages": None}, {"messages": {}}, {"messages": [1]}, {"messages": [{"id": 1.5,
                                                                                "text": "x"}]},
    {"messages": [{"id": True, "text": "x"}]}, {"messages": [{"id": [], "text": "x"}]},
    {"messages": [{"id": "a"}]}, {"messages": [{"text": 5}]},
])
async def test_batch_wrong_types_are_422(client: TestClient, payload: Any) -> None:
    status, body = await raw(client, "/v1/check/batch", json.dumps(payload).encode())
    assert status == 422, body


@pytest.mark.parametrize("payload", [{}, {"text": None}, {"text": 3}, {"text": "a", "replacement": 3},
                                     {"text": "a", "replacement": "x" * 257}])
async def test_sanitize_wrong_types_are_422(client: TestClient, payload: Any) -> None:
    status, body = await post(client, "/v1/sanitize", payload)
    assert status == 422, body


@pytest.mark.parametrize("text", [
    "nul \x00 evil.example.com \x00",
    "\ud800 evil.example.com",           # a lone surrogate from a JSON escape
    "evil.example.com\udfff",
    "\u202e\u200bevil.example.com",
    "\x7f\x1b[31m",
    "a" * 1000,
])
async def test_hostile_text_never_500(client: TestClient, text: str) -> None:
    data = json.dumps({"text": text, "urls": [text]}).encode()  # ascii escapes, "\ud800" too
    status, body = await raw(client, "/v1/check", data)
    assert status == 200, body
    status, body = await raw(client, "/v1/sanitize", json.dumps({"text": text}).encode())
    assert status == 200, body


async def test_lone_surrogate_keeps_offsets(client: TestClient) -> None:
    status, body = await raw(client, "/v1/check", b'{"text": "\\ud800 evil.example.com"}')
    assert status == 200
    [link] = body["links"]
    assert (link["start"], link["start_utf16"]) == (2, 2)


async def test_wrong_content_type_is_415(client: TestClient) -> None:
    for headers in [{"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}]:
        status, body = await raw(client, "/v1/check", b'{"text": "a"}', headers)
        assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    status, _ = await raw(client, "/v1/check", b'{"text": "a"}',
                          {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_is_not_as_encoded_is_400(client: TestClient, encoding: str) -> None:
    headers = {**JSON, "Content-Encoding": encoding}
    status, body = await raw(client, "/v1/check", b'{"text": "evil.example.com"}', headers)
    assert status == 400 and body["error"]["code"] == "invalid_body"


async def test_a_compressed_body_is_read(client: TestClient) -> None:
    data = gzip.compress(b'{"text": "evil.example.com"}')
    status, body = await raw(client, "/v1/check", data, {**JSON, "Content-Encoding": "gzip"})
    assert status == 200 and body["verdict"] == "block"


async def test_oversized_body_is_413(aiohttp_client: Any, manifest: Path) -> None:
    app = create_app(settings_for(manifest, max_body_bytes=1000),
                     engine=Engine.from_manifest(manifest))
    client = await aiohttp_client(app)
    big = json.dumps({"text": "a" * 2000}).encode()
    status, body = await raw(client, "/v1/check", big)
    assert status == 413 and body["error"]["code"] == "payload_too_large"

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for _ in range(10):
            yield b"a" * 500

    resp = await client.post("/v1/check", data=chunks(), headers=JSON)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"


async def test_limits_are_422(aiohttp_client: Any, manifest: Path) -> None:
    settings = settings_for(manifest, max_text_chars=50, max_links_per_message=2,
                            max_url_chars=30, max_batch_messages=2)
    client = await aiohttp_client(create_app(settings, engine=Engine.from_manifest(manifest)))
    cases = [
        ("/v1/check", {"text": "a" * 51}, "text_too_long"),
        ("/v1/sanitize", {"text": "a" * 51}, "text_too_long"),
        ("/v1/check", {"urls": ["a.example", "b.example", "c.example"]}, "too_many_links"),
        ("/v1/check", {"text": "a.example.com b.example.com c.example.com"}, "too_many_links"),
        ("/v1/sanitize", {"text": "a.example.com b.example.com c.example.com"}, "too_many_links"),
        ("/v1/check", {"urls": ["http://example.com/" + "a" * 30]}, "url_too_long"),
        ("/v1/check/batch", {"messages": [{"text": "a"}] * 3}, "too_many_messages"),
        ("/v1/check/batch", {"messages": [{"text": "a"}, {"text": "b" * 51}]}, "text_too_long"),
    ]
    for path, payload, code in cases:
        status, body = await post(client, path, payload)
        assert (status, body["error"]["code"]) == (422, code), (path, payload)
    status, _ = await post(client, "/v1/check", {"text": "a" * 50, "urls": ["a.example"]})
    assert status == 200


@pytest.mark.parametrize(("path", "payload", "message"), [
    ("/v1/check", {}, "body: give text, urls or both"),
    ("/v1/check", {"text": "a" * 51}, "text: 51 characters; the limit is 50"),
    ("/v1/check", {"urls": "a.example"}, "urls: expected an array of strings"),
    ("/v1/check", {"text": "a.example.com b.example.com c.example.com"},
     "body: 3 links in the message; the limit is 2"),
    ("/v1/check/batch", {"messages": [{"id": 1, "text": "a"}, {"id": 2}]},
     "messages[1]: give text, urls or both"),
    ("/v1/check/batch", {"messages": [{"id": 1, "text": 1}]},
     "messages[0].text: expected a string, got number"),
    ("/v1/check/batch", {"messages": [{"id": 1, "urls": ["http://example.com/" + "a" * 30]}]},
     "messages[0].urls[0]: longer than 30 characters"),
    ("/v1/check/batch", {"messages": [{"id": 1, "text": "a.example.com b.example.com c.example.com"}]},
     "messages[0]: 3 links in the message; the limit is 2"),
])
async def test_errors_say_where(aiohttp_client: Any, manifest: Path, path: str, payload: Any,
                                message: str) -> None:
    """A 422 names the message and the field it is about, as a client finds them in its body."""
    settings = settings_for(manifest, max_text_chars=50, max_links_per_message=2,
                            max_url_chars=30)
    client = await aiohttp_client(create_app(settings, engine=Engine.from_manifest(manifest)))
    status, body = await post(client, path, payload)
    assert (status, body["error"]["message"]) == (422, message)


async def test_wrong_method_is_405_with_allow(client: TestClient) -> None:
    for method, path in [("GET", "/v1/check"), ("PUT", "/v1/sanitize"), ("POST", "/healthz"),
                         ("DELETE", "/metrics")]:
        resp = await client.request(method, path)
        body = await resp.json()
        assert resp.status == 405 and body["error"]["code"] == "method_not_allowed"
        assert resp.headers["Allow"]


async def test_unknown_route_is_404(client: TestClient) -> None:
    for path in ["/", "/v1", "/v1/check/", "/v2/check", "/%00", "/adminx"]:
        resp = await client.get(path)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_truncated_body_is_not_an_internal_error(client: TestClient,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"text\": ")
    writer.write_eof()  # the client goes away mid-body
    await reader.read()
    writer.close()
    await asyncio.sleep(0.05)  # let the server finish the request
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_malformed_http_gets_400(client: TestClient) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"400"


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**70, 1e308, -0.0, 3.5])
    if kind in (2, 3, 4):
        alphabet = "ab.:/ \x00\u200b\u3002\U0001F600\ud800\udfff%[]()<>\"\\hxps"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
    if kind in (5, 6):
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["text", "urls", "messages", "id", "replacement", "url", "lists", "force", "x"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


async def test_random_bodies_never_500(client: TestClient) -> None:
    rng = random.Random(3)  # deterministic
    paths = ["/v1/check", "/v1/check/batch", "/v1/sanitize"]
    for i in range(300):
        if i % 3 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        else:
            data = json.dumps(_random_json(rng)).encode()
        status, body = await raw(client, rng.choice(paths), data)
        assert status in (200, 400, 422), (data, body)
        assert status == 200 or set(body["error"]) >= {"code", "message"}


async def test_requests_in_flight_together_get_their_own_answers(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks of requests read in one turn run coalesced (app.Coalescer): each request still
    gets its own answer, and a bad one its own error, as when it is sent alone."""
    rng = random.Random(5)
    texts = ["go to https://login.evil.example.com/x", "see notevil.example.com", "fine",
             "https://www.casino.example.com/ and evil.example.com", "a evil.example.com b"]
    requests: list[tuple[str, bytes]] = []
    for i in range(60):
        path = rng.choice(["/v1/check", "/v1/sanitize"])
        body: Any = {"text": f"{rng.choice(texts)} #{i}"}
        if i % 7 == 3:
            body = _random_json(rng)  # mostly a 422 or a 400
        requests.append((path, json.dumps(body).encode()))
    alone = [await raw(client, path, data) for path, data in requests]

    batches: list[int] = []
    run_pending = Coalescer._end_turn

    def counted(self: Coalescer) -> None:
        batches.append(len(self._pending))
        run_pending(self)

    monkeypatch.setattr(Coalescer, "_end_turn", counted)
    together = await asyncio.gather(*(raw(client, path, data) for path, data in requests))
    assert together == alone
    assert {status for status, _ in alone} >= {200, 422}
    assert max(batches) > 1  # (not one at a time)


async def test_batch_metrics_count_every_message(client: TestClient) -> None:
    messages = [{"id": 1, "text": "evil.example.com"}, {"id": 2, "text": "a.evil.example.com"},
                {"id": 3, "text": "fine"}]
    status, _ = await post(client, "/v1/check/batch", {"messages": messages})
    text = await (await client.get("/metrics")).text()
    assert status == 200
    for needle in ['linkguard_message_verdicts_total{verdict="block"} 2.0',
                   'linkguard_message_verdicts_total{verdict="allow"} 1.0',
                   'linkguard_link_verdicts_total{category="phishing",list="phishing",verdict="block"} 2.0']:
        assert needle in text, needle


# --- the verdict routes past aiohttp's router (app.route_directly) ------------------------------

VERDICT_REQUESTS = [
    ("/v1/check", b'{"text": "go to evil.example.com and casino.example.net"}', JSON),
    ("/v1/check", b'{"urls": ["http://evil.example.com/x"], "text": "fine"}', JSON),
    ("/v1/check", b'{"text": 5}', JSON),
    ("/v1/check", b'{"text": ', JSON),
    ("/v1/check", b'{"text": "x"}', {"Content-Type": "text/plain"}),
    ("/v1/check", b'\xff', JSON),
    ("/v1/check/batch",
     b'{"messages": [{"id": 1, "text": "evil.example.com"}, {"id": 2, "urls": []}]}', JSON),
    ("/v1/check/batch", b'{"messages": {}}', JSON),
    ("/v1/sanitize", b'{"text": "a evil.example.com b", "replacement": "-"}', JSON),
    ("/v1/sanitize", b'{"text": "a", "replacement": 1}', JSON),
]


async def _answer(client: TestClient, path: str, data: bytes, headers: dict[str, str]
                  ) -> tuple[int, Any]:
    resp = await client.post(path, data=data, headers=headers)
    return resp.status, await resp.json()


async def test_the_verdict_routes_are_served_past_the_router(manifest: Path) -> None:
    """`linkguard serve` hands POST /v1/check, /v1/check/batch and /v1/sanitize straight to
    their handlers; a target with a query (or any other route) still goes through the app."""
    app = create_app(settings_for(manifest), engine=Engine.from_manifest(manifest))
    async with TestClient(TestServer(app)) as client:
        assert client.server.runner is not None and client.server.runner.server is not None
        server = client.server.runner.server
        through_app = server.request_handler
        seen: list[str] = []

        async def counting(request: web.BaseRequest) -> web.StreamResponse:
            seen.append(request.raw_path)
            return await through_app(request)

        server.request_handler = counting
        route_directly(server, app)
        answers = [await _answer(client, path, data, headers)
                   for path, data, headers in VERDICT_REQUESTS]
        assert seen == []
        assert [status for status, _ in answers] == [200, 200, 422, 400, 415, 400, 200, 422,
                                                     200, 422]
        assert (await client.get("/healthz")).status == 200
        assert await _answer(client, "/v1/check?via=router", *VERDICT_REQUESTS[0][1:]) == \
            answers[0]
        assert seen == ["/healthz", "/v1/check?via=router"]


@pytest.mark.parametrize(("path", "data", "headers"), VERDICT_REQUESTS)
async def test_a_verdict_route_answers_the_same_through_the_router(
        client: TestClient, path: str, data: bytes, headers: dict[str, str]) -> None:
    direct = await _answer(client, path, data, headers)
    assert await _answer(client, path + "?via=router", data, headers) == direct
    # Expect: 100-continue goes through the app, which answers it before the body is sent.
    resp = await client.post(path, data=data, headers=headers, expect100=True)
    assert (resp.status, await resp.json()) == direct
