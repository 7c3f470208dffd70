"""Oracle resistance: verdict endpoints, logs and metrics never reveal list entries.

A blocker must not become an oracle for its list (CONTRACT.md). A verdict necessarily says
whether the URL a client sent is blocked, and by which list; it must say nothing more. Shown two
ways:
- indistinguishability: two list sets with the same list names and categories but different
  entries, each matching the same requests, give byte-identical answers (and audit lines):
  nothing in them depends on which entry matched;
- no entry text, and no digest of a hashed list, appears in any answer, log line or metric of a
  real `linkguard serve` (debug logging and access log on) after requests that hit every entry.
Entries are shown by the admin `explain` only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from linkguard.engine import Engine
from linkguard.web.app import create_app
from tests.liveserver import DEADLINE, live_service
from tests.webfixtures import AUTH, manifest_entry, settings_for

MANIFEST = "\n".join([manifest_entry("phishing", "domains", "block", "phishing"),
                      manifest_entry("pages", "urls", "block", "csam"),
                      manifest_entry("hashed", "hashes", "block", "csam"),
                      manifest_entry("spam", "keywords", "flag", "spam")])


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Two list sets: the same names, categories and entry counts; different entries, each matching
# the requests below. The second entry of each list is never hit.
VARIANTS = {
    "a": {"phishing": ["evil.example.com", "unhit-phish-a.example.net"],
          "pages": ["files.example.org/u/abc", "files.example.org/unhit-a"],
          "hashed": [sha("files.example.org/u/abc/"), sha("unhit-a.example.org/")],
          "spam": ["casino", "unhitwordalpha"]},
    "b": {"phishing": ["login.evil.example.com", "unhit-phish-b.example.net"],
          "pages": ["files.example.org/u", "files.example.org/unhit-b"],
          "hashed": [sha("files.example.org/"), sha("unhit-b.example.org/")],
          "spam": ["casin", "unhitwordbravo"]},
}
TEXT = ("log in at https://login.evil.example.com/session, pics on "
        "https://files.example.org/u/abc/1.jpg and https://best-casino.example.net/ tonight")
REQUESTS = [
    ("/v1/check", {"text": TEXT}),
    ("/v1/check", {"urls": ["https://files.example.org/u/abc/2.jpg",
                            "https://t.example.net/r?u=https%3A%2F%2Flogin.evil.example.com%2F"]}),
    ("/v1/check/batch", {"messages": [{"id": 1, "text": TEXT}, {"id": "x", "text": "hello"}]}),
    ("/v1/sanitize", {"text": TEXT, "replacement": "[x]"}),
]


def write_variant(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for list_name, entries in VARIANTS[name].items():
        (directory / f"{list_name}.txt").write_text("\n".join(entries) + "\n")
    manifest = directory / "lists.toml"
    manifest.write_text(MANIFEST)
    return manifest


def entry_strings(name: str) -> list[str]:
    return [e for entries in VARIANTS[name].values() for e in entries]


def without_version(body: Any) -> Any:
    """The answer minus lists_version (a digest of the list files, different by design)."""
    if isinstance(body, dict):
        return {k: without_version(v) for k, v in body.items() if k != "lists_version"}
    if isinstance(body, list):
        return [without_version(v) for v in body]
    return body


async def answers(aiohttp_client: Any, manifest: Path) -> list[tuple[int, Any]]:
    client: TestClient = await aiohttp_client(
        create_app(settings_for(manifest), engine=Engine.from_manifest(manifest)))
    out = []
    for path, payload in REQUESTS:
        resp = await client.post(path, json=payload)
        out.append((resp.status, without_version(await resp.json())))
    return out


async def test_answers_do_not_depend_on_which_entry_matched(
        aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="linkguard.audit")
    first = await answers(aiohttp_client, write_variant(tmp_path / "a", "a"))
    audit_a = [r.fields for r in caplog.records if r.name == "linkguard.audit"]  # type: ignore[attr-defined]
    caplog.clear()
    second = await answers(aiohttp_client, write_variant(tmp_path / "b", "b"))
    audit_b = [r.fields for r in caplog.records if r.name == "linkguard.audit"]  # type: ignore[attr-defined]

    assert [status for status, _ in first] == [200] * len(REQUESTS)
    verdict = first[0][1]
    assert verdict["verdict"] == "block"
    assert {tuple(link["lists"]) for link in verdict["links"]} == \
        {("phishing",), ("pages", "hashed"), ("spam",)}
    assert first == second  # byte for byte, but for lists_version
    assert audit_a and audit_a == audit_b


async def test_a_link_names_list_and_category_only(aiohttp_client: Any, tmp_path: Path) -> None:
    for status, body in await answers(aiohttp_client, write_variant(tmp_path, "a")):
        results = body.get("results", [body])
        for result in results:
            assert set(result) <= {"id", "verdict", "links", "text", "removed"}
            for link in result["links"]:
                assert set(link) == {"url", "canonical", "start", "end", "start_utf16",
                                     "end_utf16", "verdict", "category", "lists"}


def test_no_entry_in_answers_logs_or_metrics(tmp_path: Path) -> None:
    manifest = write_variant(tmp_path / "lists", "a")
    with live_service(tmp_path, workers=2, manifest=manifest, LINKGUARD_LOG_LEVEL="debug",
                      LINKGUARD_ACCESS_LOG="true") as svc:
        bodies = []
        for _ in range(3):  # fresh connections: both workers answer
            for path, payload in REQUESTS:
                status, body = svc.request("POST", path, payload)
                assert status == 200
                bodies.append(json.dumps(without_echo(body)))
        # Requests that probe with the entries' own text, and odd paths, come back as verdicts
        # and route labels; a failed reload and not-found paths are logged.
        for entry in entry_strings("a"):
            status, body = svc.request("POST", "/v1/check", {"urls": [f"https://x.example/{entry}"]})
            bodies.append(json.dumps(without_echo(body)))
            svc.request("GET", f"/{entry}")
        pages = tmp_path / "lists" / "pages.txt"
        pages.write_text(pages.read_text() + "https://files.example.org:99999/x\n")
        status, _ = svc.request("POST", "/admin/reload", {"lists": ["pages"]}, AUTH)
        assert status == 422  # logged with file:line: reason; the old lists keep serving
        with urllib.request.urlopen(f"{svc.url}/metrics", timeout=DEADLINE) as resp:
            metrics = resp.read().decode()

        # Only explain, with the token, shows entries.
        status, explained = svc.request("POST", "/admin/explain",
                                        {"url": "https://files.example.org/u/abc/1.jpg"}, AUTH)
        assert status == 200 and {m["entry"] for m in explained["matches"]} == \
            {"files.example.org/u/abc", VARIANTS["a"]["hashed"][0]}
        assert svc.request("POST", "/admin/explain", {"url": "https://a.example/"})[0] == 401
    logs = svc.log.read_text()
    assert '"event": "verdict"' in logs and '"route": "/v1/check"' in logs  # audit, access log
    for entry in entry_strings("a"):
        assert entry not in metrics, entry
        assert entry not in logs, entry
        assert all(entry not in body for body in bodies), entry


def without_echo(body: Any) -> Any:
    """An answer without what echoes the client's own input: each link's url and canonical
    form, sanitize's text (an entry is in them when the client wrote it there)."""
    if isinstance(body, dict):
        return {k: without_echo(v) for k, v in body.items()
                if k not in ("url", "canonical", "text")}
    if isinstance(body, list):
        return [without_echo(v) for v in body]
    return body


def test_readyz_does_not_quote_list_lines(tmp_path: Path) -> None:
    """/readyz is public: when lists fail to load it says where (file:line), not the line."""
    manifest = write_variant(tmp_path / "lists", "a")
    (tmp_path / "lists" / "pages.txt").write_text("files.example.org/u/abc\n"
                                                  "https://files.example.org:99999/secretpage\n")
    with live_service(tmp_path, manifest=manifest) as svc:
        status, body = svc.request("GET", "/readyz")
        assert status == 503
        [error] = body["error"]["errors"]
        assert error.startswith(f"{tmp_path / 'lists' / 'pages.txt'}:2: ")
        assert "secret" not in json.dumps(body)
        status, body = svc.request("POST", "/v1/check", {"text": "files.example.org/u/abc"})
        assert status == 503 and "secret" not in json.dumps(body)
        # The admin sees why.
        assert "secretpage" in json.dumps(svc.status()["last_reload"]["errors"])
