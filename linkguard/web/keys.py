"""Typed application keys: everything a handler reads from the app, in one place."""

from __future__ import annotations

from aiohttp import web

from linkguard.config import Settings
from linkguard.web.metrics import Metrics
from linkguard.web.state import Control, EngineHolder, ServingState

SETTINGS = web.AppKey("settings", Settings)
HOLDER = web.AppKey("holder", EngineHolder)
CONTROL = web.AppKey("control", Control)
METRICS = web.AppKey("metrics", Metrics)
SERVING = web.AppKey("serving", ServingState)
ADMIN_TOKEN = web.AppKey("admin_token", bytes)
OPENAPI = web.AppKey("openapi", bytes)
