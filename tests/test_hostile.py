"""Hostile requests and slow clients against the real `linkguard serve` on loopback: each has a
bounded, clear outcome and leaves other clients alone. Also: a crashed worker does not fail
requests, and without lists the service never answers "allow".

Nothing asserts on elapsed time. Where a bound matters it is shown by order of events instead:
a slowloris client is cut off while it is still sending, a flood of links is refused after the
extraction cap, not after the whole message.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from linkguard import extract, urls
from linkguard.engine import Engine
from linkguard.web.app import create_app
from tests.liveserver import DEADLINE, LiveService, live_service, wait_for
from tests.webfixtures import AUTH, settings_for, write_lists

HEADER_TIMEOUT, BODY_TIMEOUT, SEND_TIMEOUT = 1.0, 1.0, 2.0
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with live_service(tmp_path_factory.mktemp("hostile"), workers=2,
                      LINKGUARD_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                      LINKGUARD_BODY_TIMEOUT=str(BODY_TIMEOUT),
                      LINKGUARD_SEND_TIMEOUT=str(SEND_TIMEOUT)) as service:
        yield service


# --- raw HTTP ----------------------------------------------------------------------------------

def head(path: str = "/v1/check", length: int | None = None, chunked: bool = False,
         method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], Any]:
    """One HTTP/1.1 response with a Content-Length: (status, headers, JSON body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed after {buf!r}")
        buf += chunk
    raw_head, _, body = buf.partition(b"\r\n\r\n")
    status, headers = parse_head(raw_head)
    size = int(headers.get("content-length", "0"))
    while len(body) < size:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, json.loads(body[:size]) if size else None


def parse_head(raw_head: bytes) -> tuple[int, dict[str, str]]:
    """A response head's status and headers (names lowercased)."""
    first, *fields = raw_head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    return int(first.split()[1]), headers


def closed_by_server(sock: socket.socket) -> bool:
    """Reads what is left until the server closes (end of file or a reset); a server that keeps
    the connection open past DEADLINE makes recv raise socket.timeout, failing the test."""
    sock.settimeout(DEADLINE)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def metric(svc: LiveService, name: str) -> float:
    """The sum of every sample of `name` in /metrics (all workers, multiprocess mode)."""
    import urllib.request
    with urllib.request.urlopen(f"{svc.url}/metrics", timeout=DEADLINE) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


# --- request targets ----------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "target", "status", "code"), [
    ("GET", "/nope", 404, "not_found"),
    ("GET", "/v1/check", 405, "method_not_allowed"),
    ("HEAD", "/v1/check", 405, None),  # (no body)
    ("DELETE", "/healthz", 405, "method_not_allowed"),
    ("GET", "/", 404, "not_found"),
    ("GET", "/a%0Ab", 404, "not_found"),  # a newline in the path, decoded
    ("GET", "/v1/check%00", 404, "not_found"),
    ("GET", "//v1//check", 404, "not_found"),
    ("GET", "http://127.0.0.1/healthz", 200, None),  # absolute-form
    # Targets that are not a path, which no route takes: aiohttp's router answers (README, Errors)
    ("OPTIONS", "*", 404, "text"),
    ("CONNECT", "127.0.0.1:443", 404, "text"),
    ("GET", "http://127.0.0.1", 404, "text"),
])
def test_every_request_target_is_answered(svc: LiveService, method: str, target: str,
                                          status: int, code: str | None) -> None:
    with socket.create_connection(("127.0.0.1", svc.port), timeout=DEADLINE) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    raw_head, _, body = raw.partition(b"\r\n\r\n")
    got, headers = parse_head(raw_head)
    assert got == status, raw
    if code == "text":
        assert headers["content-type"].startswith("text/plain"), raw
    elif code is not None:
        assert headers["content-type"] == "application/json", raw
        assert json.loads(body)["error"]["code"] == code
    if status == 405:
        assert headers["allow"] == ("POST" if "check" in target else "GET,HEAD")


# --- big bodies ----------------------------------------------------------------------------------

TEN_MB = 10 << 20


def _send_in_background(sock: socket.socket, chunks: Iterator[bytes]) -> threading.Thread:
    def send() -> None:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server may close once it has answered and drained for a while
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_10mb_body_is_413_answered_while_the_client_still_sends(svc: LiveService) -> None:
    """Content-Length over the limit: 413 at once, and the server keeps reading (and dropping)
    the body for a while so the client is not reset before it can read the answer."""
    with svc.connect() as sock:
        sock.sendall(head(length=TEN_MB))
        sender = _send_in_background(sock, (b"x" * 65536 for _ in range(TEN_MB // 65536)))
        status, _, body = read_response(sock)
        assert status == 413 and body["error"]["code"] == "payload_too_large"
        sender.join(DEADLINE)


def test_10mb_chunked_body_is_413(svc: LiveService) -> None:
    """No Content-Length: the limit holds while reading; the answer still arrives."""
    chunk = b"x" * 65536
    with svc.connect() as sock:
        sock.sendall(head(chunked=True) + b'10000\r\n' + chunk + b"\r\n")
        more = (b"10000\r\n" + chunk + b"\r\n" for _ in range(TEN_MB // 65536))
        sender = _send_in_background(sock, more)
        status, _, body = read_response(sock)
        assert status == 413 and body["error"]["code"] == "payload_too_large"
        sender.join(DEADLINE)


@pytest.mark.parametrize("data", [
    b"[" * 500_000,                                   # 500k levels of arrays
    b'{"text": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    b'{"messages": [' + b"[" * 200_000 + b"]" * 200_000 + b"]}",
], ids=["arrays", "objects", "batch"])
def test_deeply_nested_json_is_400(svc: LiveService, data: bytes) -> None:
    for path in ("/v1/check", "/v1/check/batch", "/v1/sanitize"):
        status, body = svc.request("POST", path, data=data, headers=JSON)
        assert status == 400 and body["error"]["code"] == "invalid_json", (path, body)


# --- many links, long URLs ---------------------------------------------------------------------

def test_100k_links_in_one_message_is_422(svc: LiveService) -> None:
    """With the default limits 100k links cannot even be sent: the text is too long, the urls
    array has too many entries; both are refused before any link is looked at."""
    text = " ".join(f"a{i}.co" for i in range(100_000))
    status, body = svc.request("POST", "/v1/check", {"text": text})
    assert status == 422 and body["error"]["code"] == "text_too_long"
    status, body = svc.request("POST", "/v1/check", {"urls": ["a.co"] * 100_000})
    assert status == 422 and body["error"]["code"] == "too_many_links"
    status, body = svc.request("POST", "/v1/sanitize", {"text": text})
    assert status == 422 and body["error"]["code"] == "text_too_long"


@pytest.fixture
async def roomy(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    """Limits raised so that 100k links fit in one request; links stay at 200 a message."""
    manifest = write_lists(tmp_path / "lists")
    settings = settings_for(manifest, max_text_chars=2_000_000, max_body_bytes=8 << 20)
    return await aiohttp_client(create_app(settings, engine=Engine.from_manifest(manifest)))


async def test_100k_links_stop_at_the_extraction_cap(roomy: TestClient) -> None:
    """Extraction stops at MAX_CANDIDATES, so the work is bounded whatever the text holds; the
    message is refused (never answered with the first links only)."""
    text = " ".join(f"a{i}.co" for i in range(100_000))
    for path in ("/v1/check", "/v1/sanitize"):
        t0 = time.perf_counter()
        resp = await roomy.post(path, json={"text": text})
        body = await resp.json()
        elapsed = time.perf_counter() - t0
        assert resp.status == 422 and body["error"]["code"] == "too_many_links"
        assert f"{extract.MAX_CANDIDATES} links" in body["error"]["message"]
        print(f"{path}: 100k links refused in {elapsed * 1000:.0f} ms")


async def test_a_batch_has_a_link_budget(roomy: TestClient) -> None:
    """Each message within its own limit, but the batch as a whole over max_batch_links: it
    stops at the message that crosses the budget, so one request cannot cost ~9 s of CPU."""
    message = " ".join(f"a{i}.co" for i in range(150))
    resp = await roomy.post("/v1/check/batch",
                            json={"messages": [{"id": i, "text": message} for i in range(900)]})
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "too_many_links"
    assert body["error"]["message"].startswith("messages[66]: more than 10000 links")


def test_64kb_url(svc: LiveService) -> None:
    long_url = "https://evil.example.com/" + "a" * (64 << 10)
    status, body = svc.request("POST", "/v1/check", {"urls": [long_url]})
    assert status == 422 and body["error"]["code"] == "url_too_long"
    assert body["error"]["message"].startswith("urls[0]: longer than ")
    status, body = svc.request("POST", "/admin/explain", {"url": long_url}, AUTH)
    assert status == 422 and body["error"]["code"] == "url_too_long"
    assert body["error"]["message"].startswith("url: longer than ")
    # In text (under max_text_chars) it is a link like any other, never dropped for its length.
    text = "see " + long_url[:60_000]
    status, body = svc.request("POST", "/v1/check", {"text": text})
    assert status == 200 and body["verdict"] == "block"
    status, body = svc.request("POST", "/v1/sanitize", {"text": text})
    assert status == 200 and body["text"] == "see [link removed]"


# --- hostile text --------------------------------------------------------------------------------

def _encoded(url: str, times: int) -> str:
    for _ in range(times):
        url = urllib.parse.quote(url, safe="")
    return url


def _nested(inner: str, depth: int) -> str:
    for _ in range(depth):
        inner = "https://r.example.org/go?u=" + urllib.parse.quote(inner, safe="")
    return inner


HOSTILE_TEXTS = {
    "nul-bytes": "a\x00https://evil.example.com/x\x00 b\x00\x00",
    "lone-surrogates": "\ud800https://evil.example.com/ \udfff\udbff x\udc00",
    "overlong-idn-label": "http://" + "\u00fc" * 200 + ".example.com/ and " + "b\u00fccher" * 30
                          + ".de/x",
    "idn-label-of-64-ascii": "http://" + "a" * 64 + ".example.com/",
    "host-of-1000-labels": "http://" + "a." * 1000 + "example.com/",
    "percent-encoded-1000-times-path": "https://evil.example.com/" + "%25" * 1000 + "41",
    "percent-encoded-1000-times-embedded":
        "https://r.example.org/go?u=" + _encoded("https://evil.example.com/", 1000),
    "embedded-past-the-depth-cap": _nested("https://evil.example.com/", 12),
    "embedded-fan-out": "https://r.example.org/?" + "&".join(
        f"u{i}={urllib.parse.quote('https://a.example.net/?v=https%3A%2F%2Fb.example.net%2F')}"
        for i in range(40)),
    "bidi-and-zero-width": "\u202ehttps://ev\u200bil.example.com/\u202c \u2066x\u2069",
    "control-characters": "".join(chr(c) for c in range(32)) + "evil.example.com",
    "only-dots-and-defangs": "[.]" * 5000 + "hxxp" * 2000,
    "many-schemes": "http://" * 8000,
}


@pytest.mark.parametrize("name", list(HOSTILE_TEXTS))
def test_hostile_text_is_answered(svc: LiveService, name: str) -> None:
    text = HOSTILE_TEXTS[name]
    status, body = svc.request("POST", "/v1/check", {"text": text, "urls": [text[:8000]]})
    assert status in (200, 422), body
    if status == 422:  # only ever a limit, named
        assert body["error"]["code"] == "too_many_links"
        return
    assert body["verdict"] in ("allow", "block", "flag")
    for link in body["links"]:
        assert set(link) == {"url", "canonical", "start", "end", "start_utf16", "end_utf16",
                             "verdict", "category", "lists"}
        assert link["start"] is None or 0 <= link["start"] < link["end"] <= len(text)
    status, body = svc.request("POST", "/v1/sanitize", {"text": text})
    assert status == 200 and isinstance(body["text"], str)


def test_hostile_text_verdicts(svc: LiveService) -> None:
    """Where the hostile form still hides a blocked link, it is found."""
    for name in ("nul-bytes", "lone-surrogates", "percent-encoded-1000-times-path",
                 "bidi-and-zero-width"):
        status, body = svc.request("POST", "/v1/check", {"text": HOSTILE_TEXTS[name]})
        assert status == 200 and body["verdict"] == "block", name
    # Nesting is followed to MAX_EMBED_DEPTH and no further, two forms of a value a level (as
    # it reads as a URL, and decoded once more): a chain never costs more than that tree.
    status, body = svc.request("POST", "/v1/check",
                               {"text": HOSTILE_TEXTS["embedded-past-the-depth-cap"]})
    assert status == 200
    assert 1 + urls.MAX_EMBED_DEPTH <= len(body["links"]) <= 2 ** (urls.MAX_EMBED_DEPTH + 1) - 1
    status, body = svc.request("POST", "/v1/check",
                               {"text": _nested("https://evil.example.com/", 3)})
    assert body["verdict"] == "block"


@pytest.mark.parametrize("data", [
    b'{"text": "\xff\xfe evil.example.com"}',         # not UTF-8
    b'{"text": "\xed\xa0\x80"}',                      # a surrogate encoded in UTF-8 (CESU)
    b'{"text": "\xc0\xae"}',                          # an overlong encoding of "."
    b'{"text": "a\x00b"}',                            # a raw NUL: a control character in JSON
], ids=["invalid-utf8", "utf8-surrogate", "overlong-utf8", "raw-nul"])
def test_invalid_bytes_are_400(svc: LiveService, data: bytes) -> None:
    status, body = svc.request("POST", "/v1/check", data=data, headers=JSON)
    assert status == 400 and body["error"]["code"] == "invalid_json"


def test_a_body_not_as_encoded_is_400_and_logs_no_traceback(svc: LiveService) -> None:
    """A gzip header on a plain body: 400 JSON, and not an ERROR line with a traceback for each
    (aiohttp reads the rest of the body after the answer and logs its error again)."""
    status, body = svc.request("POST", "/v1/check", data=b'{"text": "evil.example.com"}',
                               headers={**JSON, "Content-Encoding": "gzip"})
    assert status == 400 and body["error"]["code"] == "invalid_body"
    assert svc.request("GET", "/healthz")[0] == 200  # the log has caught up with the request
    assert not [r for r in svc.log_records() if r.get("level") == "error"]


# --- slow clients --------------------------------------------------------------------------------

def test_no_second_answer_while_a_refused_body_still_arrives(svc: LiveService) -> None:
    """After a 413, what the client still sends is the rest of that body (aiohttp reads and
    drops it for a while), not a slow request head: no 408 follows the 413."""
    with svc.connect() as sock:
        sock.sendall(head(length=2 << 20))
        status, _, _ = read_response(sock)
        assert status == 413
        for _ in range(int(HEADER_TIMEOUT * 20)):  # twice header_timeout of body bytes
            sock.sendall(b"x" * 100)
            if select.select([sock], [], [], 0.1)[0]:
                data = sock.recv(65536)
                assert not data.startswith(b"HTTP/"), data
                break


def test_no_request_after_a_refused_body_on_the_same_connection(svc: LiveService) -> None:
    """An answer given before its body arrived closes the connection once the rest of the body
    is read (Connection: close): no head can follow it unwatched. (The guard cannot tell the
    rest of that body from a slow next head, so a kept-alive connection would hold a trickled
    head for keepalive_timeout, not header_timeout.)"""
    with svc.connect() as sock:
        sock.sendall(head(length=(1 << 20) + 1))
        status, headers, _ = read_response(sock)
        assert status == 413 and headers["connection"] == "close"
        sock.sendall(b"x" * ((1 << 20) + 1))
        sock.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\n")  # a next head, never finished
        assert closed_by_server(sock)


def test_silent_connection_is_closed(svc: LiveService) -> None:
    with svc.connect() as sock:
        status, headers, body = read_response(sock)  # nothing sent at all
        assert status == 408 and body["error"]["code"] == "request_timeout"
        assert headers["connection"] == "close"
        assert closed_by_server(sock)


def test_slowloris_head_is_cut_off_while_still_sending(svc: LiveService) -> None:
    """A request head sent one byte every 0.1 s: the server answers 408 and closes after
    header_timeout, long before the head would be complete."""
    data = head(length=2) + b"{}"
    with svc.connect() as sock:
        sent = 0
        for byte in data:
            sock.send(bytes([byte]))
            sent += 1
            if select.select([sock], [], [], 0.1)[0]:
                break
        assert sent < len(data) // 2, "the server waited for the whole head"
        status, _, body = read_response(sock)
        assert status == 408 and body["error"]["code"] == "request_timeout"
        assert closed_by_server(sock)


@pytest.mark.parametrize(("path", "payload"), [
    ("/v1/check", json.dumps({"text": "x" * 200}).encode()),
    ("/admin/ui/login", b"token=" + b"x" * 200),  # the console's forms are bounded too
])
def test_slow_body_is_408(svc: LiveService, path: str, payload: bytes) -> None:
    timeouts = 'linkguard_client_timeouts_total{phase="body"}'
    before = metric(svc, timeouts)
    with svc.connect() as sock:
        sock.sendall(head(path, length=len(payload)))
        sent = 0
        for byte in payload:
            sock.send(bytes([byte]))
            sent += 1
            if select.select([sock], [], [], 0.1)[0]:
                break
        assert sent < len(payload) // 2, "the server waited for the whole body"
        status, headers, body = read_response(sock)
        assert status == 408 and body["error"]["code"] == "request_timeout"
        assert headers["connection"] == "close"
        # A client still sending is read (and ignored) for at most aiohttp's lingering_time
        # (10 s) so it can take its answer before the close; one that stops is closed at once.
        sock.shutdown(socket.SHUT_WR)
        assert closed_by_server(sock)
    wait_for(lambda: metric(svc, timeouts) == before + 1, "the body timeout counted")


def test_slowloris_crowd_does_not_affect_other_clients(svc: LiveService) -> None:
    """100 connections trickling request heads; meanwhile every normal request is answered,
    and every slow connection is closed by the server."""
    slow = [svc.connect() for _ in range(100)]
    try:
        for sock in slow:
            sock.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\n")
        answered = []
        for i in range(20):
            for sock in slow:
                try:
                    sock.send(b"X")  # one more byte each, like a slowloris
                except OSError:
                    pass
            status, body = svc.request("POST", "/v1/check", {"text": f"evil.example.com {i}"})
            answered.append((status, body["verdict"]))
        assert answered == [(200, "block")] * 20
        for sock in slow:
            sock.settimeout(DEADLINE)
            assert closed_by_server(sock)
    finally:
        for sock in slow:
            sock.close()


def test_unread_responses_are_dropped_after_send_timeout(svc: LiveService) -> None:
    """A client that pipelines requests and never reads their answers holds the server's write
    buffer; after send_timeout without progress the connection is dropped."""
    before = metric(svc, 'linkguard_client_timeouts_total{phase="send"}')
    text = "x" * 60_000
    request = json.dumps({"text": text}).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(DEADLINE)
    sock.connect(("127.0.0.1", svc.port))
    with sock:
        pipelined = (head("/v1/sanitize", length=len(request)) + request) * 100
        _send_in_background(sock, iter([pipelined]))
        wait_for(lambda: metric(svc, 'linkguard_client_timeouts_total{phase="send"}') > before,
                 "the server to drop the connection")
        received = 0
        try:
            while chunk := sock.recv(65536):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < 100 * len(text), "every answer was delivered"


# --- hostile lists (through the admin reload: nothing is ever lost) -------------------------------

@pytest.fixture
async def admin(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    manifest = write_lists(tmp_path / "lists", phishing="".join(
        f"host{i}.example.com\n" for i in range(100)) + "evil.example.com\n")
    return await aiohttp_client(create_app(settings_for(manifest),
                                           engine=Engine.from_manifest(manifest)))


async def _verdict(client: TestClient, text: str) -> str:
    resp = await client.post("/v1/check", json={"text": text})
    return str((await resp.json())["verdict"])


async def _reload(client: TestClient, **body: Any) -> tuple[int, Any]:
    resp = await client.post("/admin/reload", json={"lists": ["phishing"], **body}, headers=AUTH)
    return resp.status, await resp.json()


async def test_hostile_list_files_change_nothing(admin: TestClient, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A 100 MB line, binary garbage, a truncated download, a file still being written: each
    reload is refused with file:line: reason, and the lists loaded before keep serving."""
    phishing = tmp_path / "lists" / "phishing.txt"
    good = phishing.read_bytes()
    version = (await (await admin.get("/readyz")).json())["lists_version"]

    cases = {
        "100 MB line": good + b"a" * (100 << 20) + b".example.com\n",
        "binary garbage": random.Random(5).randbytes(1 << 20),
        "truncated download": b"evil.example.com\nhost1.exam",  # 2 of 101 entries left
    }
    for name, data in cases.items():
        phishing.write_bytes(data)
        status, body = await _reload(admin)
        assert status == 422 and body["error"]["code"] == "reload_failed", name
        assert body["error"]["lists_version"] == version
        *errors, last = body["error"]["errors"]  # 1,000 errors at most, then how many more
        assert all(e.startswith(f"{phishing}:") for e in errors), name
        assert last.startswith(f"{phishing}:") or " more errors not shown " in last, name
        assert await _verdict(admin, "https://evil.example.com/") == "block", name
        assert await _verdict(admin, "host7.example.com") == "block", name
    assert "would drop 98% of the entries" in body["error"]["errors"][0]

    # A file still being written: it grows between the moment it is opened and the end of the
    # read (simulated: the write lands right after the reader looked at the file's size).
    import linkguard.lists as lists_module
    real_fstat = lists_module.os.fstat

    def fstat_then_append(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        with phishing.open("ab") as f:
            f.write(b"late.example.com\n")
        return result

    phishing.write_bytes(good)
    monkeypatch.setattr(lists_module.os, "fstat", fstat_then_append)
    status, body = await _reload(admin)
    monkeypatch.undo()
    assert status == 422 and "changed while it was read" in body["error"]["errors"][0]
    assert await _verdict(admin, "late.example.com") == "allow"  # not loaded half

    # The operator means it: force accepts the truncated list.
    phishing.write_bytes(b"evil.example.com\n")
    status, body = await _reload(admin, force=True)
    assert status == 200 and body["lists_version"] != version
    assert await _verdict(admin, "host7.example.com") == "allow"


# --- fail safe -----------------------------------------------------------------------------------

def test_a_killed_worker_fails_no_request(tmp_path: Path) -> None:
    """`--workers 2`: kill one worker (between requests, as a crash can come at any time);
    clients keep sending on fresh connections, the other worker answers every one of them, and
    the master forks a replacement."""
    with live_service(tmp_path, workers=2) as service:
        victim = service.status()["workers"][0]["pid"]
        stop, done = threading.Event(), [0]
        failures: list[str] = []
        gates = [threading.Lock() for _ in range(4)]

        def client(gate: threading.Lock) -> None:
            while not stop.is_set():
                with gate:  # held while a request is in flight
                    try:
                        status, body = service.request("POST", "/v1/check",
                                                       {"text": "evil.example.com"})
                        failure = None if status == 200 and body["verdict"] == "block" \
                            else f"{status} {body}"
                    except OSError as e:
                        failure = repr(e)
                if failure is None:
                    done[0] += 1
                else:
                    failures.append(failure)

        threads = [threading.Thread(target=client, args=(g,), daemon=True) for g in gates]
        for t in threads:
            t.start()
        wait_for(lambda: done[0] > 50, "some requests")
        for gate in gates:
            gate.acquire()
        os.kill(victim, signal.SIGKILL)
        for gate in gates:
            gate.release()
        at_kill = done[0]
        wait_for(lambda: (s := service.status()) and victim not in {w["pid"] for w in s["workers"]}
                 and sum(w["state"] == "serving" for w in s["workers"]) == 2,
                 "the master to replace the worker")
        wait_for(lambda: done[0] > at_kill + 200, "more requests after the replacement")
        stop.set()
        for t in threads:
            t.join(DEADLINE)
        assert failures == []
        assert any(r.get("msg") == "worker died; re-forking" for r in service.log_records())


def test_without_lists_no_route_answers_allow(tmp_path: Path) -> None:
    """The manifest is missing: the service starts (so an admin can fix it) but is not ready, and
    every verdict route answers 503 on every worker, never a verdict."""
    manifest = tmp_path / "gone" / "lists.toml"
    with live_service(tmp_path, workers=2, manifest=manifest) as service:
        status, body = service.request("GET", "/readyz")
        assert status == 503 and body["error"]["code"] == "not_ready"
        for _ in range(10):  # fresh connections: both workers answer some
            for path, payload in [("/v1/check", {"text": "evil.example.com"}),
                                  ("/v1/check", {"urls": ["https://ok.example.org/"]}),
                                  ("/v1/check/batch", {"messages": [{"text": "hello"}]}),
                                  ("/v1/sanitize", {"text": "evil.example.com"})]:
                status, body = service.request("POST", path, payload)
                assert status == 503 and body["error"]["code"] == "not_ready", (path, body)
