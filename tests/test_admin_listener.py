"""The admin API on its own listener (admin_host/admin_port), and the back-off on wrong tokens."""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from linkguard.config import ConfigError, load_settings
from linkguard.engine import Engine
from linkguard.web.admin import ADMIN_BACKOFF, TokenBackoff, client_address
from linkguard.web.app import create_admin_root, create_app
from linkguard.web.metrics import Metrics
from linkguard.web.state import EngineHolder, InProcessControl, ServingState
from tests.liveserver import DEADLINE, live_service, wait_for
from tests.webfixtures import AUTH, TOKEN, settings_for, write_lists

# --- settings ------------------------------------------------------------------------------------

def test_admin_listener_settings() -> None:
    s = load_settings(None, {"LINKGUARD_ADMIN_PORT": "8081"})
    assert (s.admin_port, s.admin_listen_host()) == (8081, "127.0.0.1")  # loopback unless told
    s = load_settings(None, {"LINKGUARD_ADMIN_PORT": "0", "LINKGUARD_ADMIN_HOST": "::1"})
    assert (s.admin_port, s.admin_listen_host()) == (0, "::1")
    assert load_settings(None, {}).admin_port is None


@pytest.mark.parametrize("env, message", [
    ({"LINKGUARD_ADMIN_HOST": "127.0.0.1"}, "admin_host: set admin_port too"),
    ({"LINKGUARD_ADMIN_PORT": "70000"}, "admin_port: must be 0..65535"),
    ({"LINKGUARD_ADMIN_PORT": "8080"}, "admin_port: 8080 is the public listener's port"),
    ({"LINKGUARD_ADMIN_PORT": "x"}, "LINKGUARD_ADMIN_PORT: expected int"),
    ({"LINKGUARD_HEADER_TIMEOUT": "0"}, "header_timeout: must be a positive number"),
    ({"LINKGUARD_MAX_LINKS_PER_MESSAGE": "1000"}, "max_links_per_message: must be below 1000"),
    ({"LINKGUARD_MAX_BATCH_LINKS": "0"}, "max_batch_links: must be at least 1"),
])
def test_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, env)


# --- in process ----------------------------------------------------------------------------------

async def test_public_app_has_no_admin_when_it_has_its_own_listener(
        aiohttp_client: Any, tmp_path: Path) -> None:
    manifest = write_lists(tmp_path)
    settings = settings_for(manifest, admin_port=0)
    holder, metrics = EngineHolder(Engine.from_manifest(manifest)), Metrics()
    control = InProcessControl(holder, str(manifest), metrics)
    serving = ServingState()
    public = await aiohttp_client(create_app(settings, engine_holder=holder, control=control,
                                             metrics=metrics, serving=serving))
    admin = await aiohttp_client(create_admin_root(settings, engine_holder=holder,
                                                   control=control, metrics=metrics,
                                                   serving=serving))
    for method, path in [("GET", "/admin/lists"), ("POST", "/admin/reload"),
                         ("POST", "/admin/explain"), ("GET", "/admin/ui/")]:
        resp = await public.request(method, path, headers=AUTH, json={"url": "a.example.com"})
        assert resp.status == 404, path
    resp = await admin.get("/admin/lists", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["ready"] is True
    assert (await admin.get("/admin/lists")).status == 401
    for path in ("/v1/check", "/healthz", "/metrics"):  # the admin listener is admin only
        assert (await admin.get(path)).status == 404
    # One engine holder: a reload through the admin listener changes what the public one serves.
    (manifest.parent / "phishing.txt").write_text("evil.example.com\nbad.example.org\n")
    assert (await admin.post("/admin/reload", headers=AUTH)).status == 200
    resp = await public.post("/v1/check", json={"text": "bad.example.org"})
    assert (await resp.json())["verdict"] == "block"


# --- the real service ----------------------------------------------------------------------------

def test_admin_listener_with_workers(tmp_path: Path) -> None:
    """`--workers 2` with admin_port: the master binds both sockets before forking; every worker
    of every generation serves both, and the public port has no /admin."""
    with live_service(tmp_path, workers=2, admin_listener=True) as svc:
        assert svc.admin_port and svc.admin_port != svc.port
        for _ in range(4):
            assert svc.request("GET", "/admin/lists", headers=AUTH)[0] == 404
            assert svc.request("POST", "/admin/explain", {"url": "https://a.example/"},
                               AUTH)[0] == 404
        first = svc.status()
        assert len(first["workers"]) == 2
        status, body = svc.request("POST", "/admin/explain", {"url": "https://evil.example.com/"},
                                   AUTH, admin=True)
        assert status == 200 and body["matches"][0]["entry"] == "evil.example.com"
        assert svc.request("POST", "/v1/check", {"text": "x"}, admin=True)[0] == 404

        status, body = svc.request("POST", "/admin/reload", {}, AUTH, admin=True)
        assert status == 200 and body["ok"] is True
        after = wait_for(lambda: (s := svc.status()) and
                         all(w["state"] == "serving" for w in s["workers"]) and s,
                         "the old generation to exit")
        assert not {w["pid"] for w in after["workers"]} & {w["pid"] for w in first["workers"]}
        for _ in range(4):  # the new generation serves the admin listener too
            assert svc.request("GET", "/admin/lists", headers=AUTH, admin=True)[0] == 200

        os.kill(after["workers"][0]["pid"], signal.SIGKILL)  # and so does a re-forked worker
        wait_for(lambda: (s := svc.status()) and len(s["workers"]) == 2 and
                 after["workers"][0]["pid"] not in {w["pid"] for w in s["workers"]},
                 "a replacement worker")
        for _ in range(4):
            assert svc.request("GET", "/admin/lists", headers=AUTH, admin=True)[0] == 200
    records = svc.log_records()
    [announced] = [r for r in records if r.get("event") == "admin_listening"]
    assert announced["host"] == "127.0.0.1" and announced["port"] == svc.admin_port


def test_admin_port_without_token_listens_nowhere(tmp_path: Path) -> None:
    with live_service(tmp_path, token=False, admin_listener=True, wait_ready=False) as svc:
        wait_for(lambda: svc.request("GET", "/readyz")[0] == 200, "ready")
        assert svc.admin_port is None
        assert svc.request("GET", "/admin/lists", headers=AUTH)[0] == 404


# --- back-off on wrong tokens --------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_grows_and_clears() -> None:
    clock = Clock()
    b = TokenBackoff(free=3, first_wait=1.0, max_wait=8.0, forget_after=100.0, clock=clock)
    for _ in range(3):
        assert b.wait("a") == 0
        b.failed("a")
    assert b.wait("a") == 0  # three free
    waits = []
    for _ in range(6):
        b.failed("a")
        waits.append(b.wait("a"))
        clock.now += waits[-1]
        assert b.wait("a") == 0
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # doubling, capped
    assert b.wait("b") == 0  # per address
    b.failed("a")
    b.succeeded("a")
    assert b.wait("a") == 0 and len(b) == 0
    for _ in range(5):
        b.failed("c")
    clock.now += 101  # quiet long enough: forgotten
    assert b.wait("c") == 0
    b.failed("c")
    assert b.wait("c") == 0  # counting starts afresh


def test_backoff_memory_is_bounded() -> None:
    b = TokenBackoff(free=0, max_clients=100, clock=Clock())
    for i in range(10_000):
        b.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(b) == 100
    assert b.wait("10.0.39.15") > 0 and b.wait("10.0.0.0") == 0  # the oldest went first


@pytest.mark.parametrize("remote, key", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    (None, "unknown"),
])
def test_client_address(remote: str | None, key: str) -> None:
    assert client_address(SimpleNamespace(remote=remote)) == key  # type: ignore[arg-type]


def _admin_subapp(app: web.Application) -> web.Application:
    for resource in app.router.resources():
        sub = resource.get_info().get("app")
        if sub is not None and ADMIN_BACKOFF in sub:
            return sub  # type: ignore[no-any-return]
    raise AssertionError("no admin sub-app")


async def test_wrong_tokens_get_429_with_retry_after(aiohttp_client: Any, tmp_path: Path) -> None:
    manifest = write_lists(tmp_path)
    app = create_app(settings_for(manifest), engine=Engine.from_manifest(manifest))
    clock = Clock()
    _admin_subapp(app)[ADMIN_BACKOFF].clock = clock
    client = await aiohttp_client(app)
    wrong = {"Authorization": "Bearer wrong"}
    for path in ["/admin/lists", "/admin/nope", "/admin/lists", "/admin/reload", "/admin/lists"]:
        assert (await client.get(path, headers=wrong)).status in (401,)
    resp = await client.get("/admin/lists", headers=AUTH)  # the right token: counts as success
    assert resp.status == 200
    for _ in range(5):
        assert (await client.get("/admin/lists", headers=wrong)).status == 401
    resp = await client.get("/admin/lists", headers=wrong)  # the sixth in a row
    assert resp.status == 401
    for headers in (wrong, AUTH, {}):  # while waiting, no token is even looked at
        resp = await client.get("/admin/lists", headers=headers)
        body = await resp.json()
        assert resp.status == 429 and body["error"]["code"] == "too_many_requests"
        assert resp.headers["Retry-After"] == "1"
    assert (await client.post("/v1/check", json={"text": "x"})).status == 200  # admin only
    clock.now += 1
    assert (await client.get("/admin/lists", headers=wrong)).status == 401
    resp = await client.get("/admin/lists", headers=AUTH)
    assert resp.status == 429 and resp.headers["Retry-After"] == "2"  # doubled
    clock.now += 2
    assert (await client.get("/admin/lists", headers=AUTH)).status == 200
    assert (await client.get("/admin/lists", headers=wrong)).status == 401  # cleared by success
    metrics = await (await client.get("/metrics")).text()
    assert 'linkguard_admin_auth_failures_total{status="401"} 13.0' in metrics
    assert 'linkguard_admin_auth_failures_total{status="429"} 4.0' in metrics


def test_backoff_on_the_real_service(tmp_path: Path) -> None:
    with live_service(tmp_path, admin_listener=True) as svc:
        statuses = [svc.request("GET", "/admin/lists", headers={"Authorization": f"Bearer {i}"},
                                admin=True)[0] for i in range(8)]
        assert statuses[:5] == [401] * 5 and 429 in statuses[5:]
        status, _ = svc.request("GET", "/admin/lists", headers=AUTH, admin=True)
        assert status in (200, 429)  # 429 only while the wait lasts
        wait_for(lambda: svc.request("GET", "/admin/lists", headers=AUTH, admin=True)[0] == 200,
                 "the wait to end", deadline=DEADLINE)
        with urllib.request.urlopen(f"{svc.url}/metrics", timeout=DEADLINE) as resp:
            assert 'linkguard_admin_auth_failures_total{status="429"}' in resp.read().decode()
    assert TOKEN not in svc.log.read_text()
