"""Test-wide settings and fixtures. Under CI (CI=true) hypothesis is derandomized: a CI run is repeatable, and
new inputs are explored by the developers' runs and by fuzz/run, not by chance in CI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import settings

import linkguard
from linkguard.engine import Engine
from linkguard.web import keys
from linkguard.web.app import create_app, route_directly
from tests.webfixtures import settings_for, write_lists

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    """An editable install compiles the hot path beside its source (setup.py); an edit since then
    would go untested, the old build running instead. Refuse to run on it."""
    package = Path(linkguard.__file__).parent
    # (The code is in one library beside the package; each module's own .so only loads it, and
    # a build leaves those as they were.)
    built = min((so.stat().st_mtime for so in package.parent.glob("linkguard__mypyc*.so")),
                default=None)
    stale = [py.name for so in package.glob("*.so")
             if (py := package / f"{so.name.split('.')[0]}.py").exists()
             and (built is None or py.stat().st_mtime > built)]
    if stale:
        raise pytest.UsageError(
            f"{', '.join(stale)} changed since mypyc compiled it: rebuild with "
            "`.venv/bin/pip install -e '.[test]'`, or install plain Python with "
            "`LINKGUARD_PURE=1 .venv/bin/pip install -e '.[test]'`")


@pytest.fixture
def aiohttp_client(aiohttp_client: Any) -> Any:
    """pytest-aiohttp's, serving a linkguard app as `linkguard serve` does: the verdict routes
    past aiohttp's router (app.route_directly)."""
    async def serve(app: Any, **kwargs: Any) -> TestClient:
        client: TestClient = await aiohttp_client(app, **kwargs)
        if isinstance(app, web.Application) and keys.DIRECT in app:
            assert client.server.runner is not None and client.server.runner.server is not None
            route_directly(client.server.runner.server, app)
        return client
    return serve


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """The small list set of tests/webfixtures.py, in this test's tmp_path."""
    return write_lists(tmp_path / "lists")


@pytest.fixture
async def client(aiohttp_client: Any, manifest: Path) -> TestClient:
    """The app on `manifest`, its engine loaded (no admin token unless settings_for adds one)."""
    return await aiohttp_client(create_app(settings_for(manifest),
                                           engine=Engine.from_manifest(manifest)))
