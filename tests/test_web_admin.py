"""The /admin sub-app: bearer auth, reload (success, failure, named lists), lists, explain."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from linkguard.config import Settings
from linkguard.engine import Engine
from linkguard.web.app import create_app
from linkguard.web.state import MAX_REPORTED_ERRORS
from tests.liveserver import DEADLINE
from tests.webfixtures import AUTH, TOKEN, settings_for, write_lists


async def verdict(client: TestClient, text: str) -> str:
    resp = await client.post("/v1/check", json={"text": text})
    assert resp.status == 200
    return str((await resp.json())["verdict"])


# --- auth --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [("POST", "/admin/reload"), ("GET", "/admin/lists"),
                                          ("POST", "/admin/explain"), ("GET", "/admin/nope")])
@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer \u00e9\u00e9"},
])
async def test_missing_or_wrong_token_is_401(client: TestClient, method: str, path: str,
                                             headers: dict[str, str]) -> None:
    resp = await client.request(method, path, headers=headers, json={"url": "http://a.com"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"


async def test_non_utf8_authorization_header_is_401(client: TestClient) -> None:
    resp = await client.get("/admin/lists",
                            headers={"Authorization": b"Bearer \xff\xfe".decode("latin-1")})
    assert resp.status == 401


async def test_right_token(client: TestClient) -> None:
    resp = await client.get("/admin/lists", headers={"Authorization": f"bearer {TOKEN}"})
    assert resp.status == 200
    resp = await client.get("/admin/nope", headers=AUTH)
    assert resp.status == 404
    resp = await client.get("/admin/reload", headers=AUTH)
    assert resp.status == 405


async def test_admin_off_without_token(aiohttp_client: Any, manifest: Path) -> None:
    settings = Settings(lists=str(manifest))
    client = await aiohttp_client(create_app(settings, engine=Engine.from_manifest(manifest)))
    for method, path in [("POST", "/admin/reload"), ("GET", "/admin/lists"),
                         ("POST", "/admin/explain")]:
        resp = await client.request(method, path, headers=AUTH)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_token_from_file(aiohttp_client: Any, manifest: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    settings = Settings(lists=str(manifest), admin_token_file=str(token_file))
    client = await aiohttp_client(create_app(settings, engine=Engine.from_manifest(manifest)))
    assert (await client.get("/admin/lists", headers=AUTH)).status == 200
    assert (await client.get("/admin/lists")).status == 401


# --- lists -------------------------------------------------------------------------------------

async def test_lists(client: TestClient) -> None:
    resp = await client.get("/admin/lists", headers=AUTH)
    body = await resp.json()
    assert body["ready"] is True and body["lists_version"]
    by_name = {item["name"]: item for item in body["lists"]}
    assert set(by_name) == {"phishing", "spam"}
    phishing = by_name["phishing"]
    assert (phishing["format"], phishing["action"], phishing["category"]) == \
        ("domains", "block", "phishing")
    assert phishing["entries"] == 1 and len(phishing["sha256"]) == 64
    assert phishing["loaded_at"] and phishing["last_error"] is None
    [worker] = body["workers"]
    assert worker["lists_version"] == body["lists_version"] and worker["state"] == "serving"


# --- reload ------------------------------------------------------------------------------------

async def test_reload_all(client: TestClient, manifest: Path) -> None:
    before = (await (await client.get("/readyz")).json())["lists_version"]
    assert await verdict(client, "https://bad.example.org") == "allow"
    (manifest.parent / "phishing.txt").write_text("evil.example.com\nbad.example.org\n")
    resp = await client.post("/admin/reload", headers=AUTH)  # empty body: every list
    body = await resp.json()
    assert resp.status == 200 and body["ok"] is True
    assert body["lists_version"] != before
    assert await verdict(client, "https://bad.example.org") == "block"
    status = await (await client.get("/admin/lists", headers=AUTH)).json()
    assert status["lists_version"] == body["lists_version"]
    assert all(w["lists_version"] == body["lists_version"] for w in status["workers"])
    assert status["last_reload"]["ok"] is True


async def test_reload_named_list_only(client: TestClient, manifest: Path) -> None:
    (manifest.parent / "phishing.txt").write_text("bad.example.org\n")
    (manifest.parent / "spam.txt").write_text("poker\n")
    resp = await client.post("/admin/reload", headers=AUTH, json={"lists": ["spam"]})
    assert resp.status == 200 and (await resp.json())["lists"] == ["spam"]
    assert await verdict(client, "https://poker.example.com") == "flag"
    assert await verdict(client, "https://evil.example.com") == "block"  # not reloaded
    assert await verdict(client, "https://bad.example.org") == "allow"


async def test_failed_reload_changes_nothing(client: TestClient, manifest: Path) -> None:
    before = await (await client.get("/admin/lists", headers=AUTH)).json()
    (manifest.parent / "phishing.txt").write_text("bad.example.org\nnot a host!\n")
    (manifest.parent / "spam.txt").write_text("poker\n\n" + "x" * 9000 + "\n")
    resp = await client.post("/admin/reload", headers=AUTH, json={})
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "reload_failed"
    errors = body["error"]["errors"]
    phishing_file, spam_file = manifest.parent / "phishing.txt", manifest.parent / "spam.txt"
    assert any(e.startswith(f"{phishing_file}:2: ") for e in errors), errors
    assert any(e.startswith(f"{spam_file}:3: ") for e in errors), errors
    assert body["error"]["lists_version"] == before["lists_version"]
    # The old lists keep serving.
    assert await verdict(client, "https://evil.example.com") == "block"
    assert await verdict(client, "https://bad.example.org") == "allow"
    assert await verdict(client, "https://poker.example.com") == "allow"
    after = await (await client.get("/admin/lists", headers=AUTH)).json()
    assert after["lists_version"] == before["lists_version"]
    assert after["last_reload"]["ok"] is False and after["last_reload"]["errors"] == errors
    by_name = {item["name"]: item for item in after["lists"]}
    assert by_name["phishing"]["last_error"].startswith(f"{phishing_file}:2: ")
    assert by_name["phishing"]["sha256"] == {i["name"]: i for i in before["lists"]}[
        "phishing"]["sha256"]
    # Fix the files: a good reload clears the errors.
    (manifest.parent / "phishing.txt").write_text("bad.example.org\n")
    (manifest.parent / "spam.txt").write_text("poker\n")
    assert (await client.post("/admin/reload", headers=AUTH)).status == 200
    fixed = await (await client.get("/admin/lists", headers=AUTH)).json()
    assert all(item["last_error"] is None for item in fixed["lists"])
    assert await verdict(client, "https://bad.example.org") == "block"


async def test_a_reload_reports_a_bounded_number_of_errors(client: TestClient,
                                                           manifest: Path) -> None:
    """A feed in the wrong format has an error a line; 700k of them overflowed the master's
    answer to its workers (a 503, and the asking worker restarted). The answer and
    /admin/lists carry MAX_REPORTED_ERRORS a list, then how many more there are."""
    (manifest.parent / "phishing.txt").write_text("not a host!\n" * (MAX_REPORTED_ERRORS + 500))
    (manifest.parent / "spam.txt").write_text("casino\n" + "x" * 9000 + "\n")
    resp = await client.post("/admin/reload", headers=AUTH, json={})
    errors = (await resp.json())["error"]["errors"]
    assert resp.status == 422 and len(errors) == MAX_REPORTED_ERRORS + 2
    assert errors[MAX_REPORTED_ERRORS] == (
        f"{manifest}: 500 more errors not shown (`linkguard lists validate {manifest}` prints "
        "every one)")
    assert errors[-1].startswith(f"{manifest.parent / 'spam.txt'}:2: ")  # each list is shown
    status = await (await client.get("/admin/lists", headers=AUTH)).json()
    [phishing] = [x for x in status["lists"] if x["name"] == "phishing"]
    assert phishing["last_error"].count("\n") == MAX_REPORTED_ERRORS
    assert await verdict(client, "https://evil.example.com") == "block"


async def test_reload_refuses_a_shrunken_list_unless_forced(client: TestClient,
                                                            manifest: Path) -> None:
    (manifest.parent / "spam.txt").write_text("".join(f"word{i}\n" for i in range(10)))
    assert (await client.post("/admin/reload", headers=AUTH)).status == 200
    (manifest.parent / "spam.txt").write_text("word1\n")  # a truncated download?
    resp = await client.post("/admin/reload", headers=AUTH, json={"lists": ["spam"]})
    body = await resp.json()
    assert resp.status == 422 and "max_drop" in body["error"]["errors"][0]
    assert await verdict(client, "https://word5.example.com") == "flag"
    resp = await client.post("/admin/reload", headers=AUTH, json={"lists": ["spam"], "force": True})
    assert resp.status == 200
    assert await verdict(client, "https://word5.example.com") == "allow"


async def test_reload_unknown_list_is_422(client: TestClient) -> None:
    resp = await client.post("/admin/reload", headers=AUTH, json={"lists": ["nope"]})
    body = await resp.json()
    assert resp.status == 422 and "nope" in body["error"]["errors"][0]


@pytest.mark.parametrize("payload", [{"lists": []}, {"lists": "spam"}, {"lists": [1]},
                                     {"lists": [""]}, [], "x", {"force": "yes"}])
async def test_reload_bad_body_is_422(client: TestClient, payload: Any) -> None:
    resp = await client.post("/admin/reload", headers=AUTH, json=payload)
    assert resp.status == 422


async def test_reload_invalid_json_is_400(client: TestClient) -> None:
    resp = await client.post("/admin/reload", data=b"{",
                             headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 400


async def test_recovers_from_failed_start(aiohttp_client: Any, tmp_path: Path) -> None:
    manifest = write_lists(tmp_path, phishing="not a host!\n")
    client = await aiohttp_client(create_app(settings_for(manifest)))
    assert (await client.get("/readyz")).status == 503
    status = await (await client.get("/admin/lists", headers=AUTH)).json()
    assert status["ready"] is False and status["last_reload"]["errors"]
    (tmp_path / "phishing.txt").write_text("evil.example.com\n")
    assert (await client.post("/admin/reload", headers=AUTH)).status == 200
    assert (await client.get("/readyz")).status == 200
    assert await verdict(client, "evil.example.com") == "block"


# --- explain -----------------------------------------------------------------------------------

async def test_explain_reveals_entries_to_admins(client: TestClient) -> None:
    resp = await client.post("/admin/explain", headers=AUTH,
                             json={"url": "https://www.evil.example.com/a"})
    body = await resp.json()
    assert resp.status == 200
    assert body["verdict"]["verdict"] == "block"
    [match] = body["matches"]
    assert (match["list"], match["line"], match["entry"]) == ("phishing", 1, "evil.example.com")


async def test_explain_does_not_stop_the_worker_meanwhile(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """explain re-reads list files (seconds for big lists): the worker answers checks meanwhile.
    Here explain waits until a check has been answered, so it would wait for ever on the loop."""
    checked = threading.Event()
    explain = Engine.explain

    def slow_explain(engine: Engine, url: str) -> dict[str, Any]:
        assert checked.wait(DEADLINE), "no check was answered while explain ran"
        return explain(engine, url)

    monkeypatch.setattr(Engine, "explain", slow_explain)
    explaining = asyncio.ensure_future(client.post("/admin/explain", headers=AUTH,
                                                   json={"url": "https://evil.example.com/"}))
    await asyncio.sleep(0.05)
    assert await verdict(client, "evil.example.com") == "block"
    checked.set()
    assert (await explaining).status == 200


@pytest.mark.parametrize("payload", [{}, {"url": 1}, {"url": ""}, {"url": None}, ["x"],
                                     {"url": "http://a.com/" + "a" * 9000}])
async def test_explain_bad_body_is_422(client: TestClient, payload: Any) -> None:
    resp = await client.post("/admin/explain", headers=AUTH, json=payload)
    assert resp.status == 422
