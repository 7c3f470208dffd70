#!/usr/bin/env python3
"""The baseline of the service figure: a bare aiohttp app with one POST handler that parses the
same JSON body as /v1/check (`await request.json()`) and returns a small JSON object. No
middleware, no access log (linkguard's is off by default too), one process.

With --lists, the same handler also checks the text with linkguard's Engine and returns its
verdict, written by orjson as linkguard writes it, the checks of the requests read in one turn
of the event loop run together as linkguard runs them (its Coalescer), and the request served
past aiohttp's router as linkguard serves it (route_directly): no bounds, metrics, guard or
error handling. It is no linkguard, but the ceiling any web layer around this engine could
reach on aiohttp (bench_service.py reports it beside the target).

    bare_app.py --port 8081 [--host 127.0.0.1] [--lists MANIFEST]
"""

from __future__ import annotations

import argparse
import asyncio

import orjson
from aiohttp import web

from linkguard.web import keys
from linkguard.web.app import route_directly


async def check(request: web.Request) -> web.Response:
    data = await request.json()
    return web.json_response({"verdict": "allow", "links": [], "lists_version": "bare",
                              "chars": len(data.get("text") or "")})


def engine_check(manifest: str):  # type: ignore[no-untyped-def]
    from linkguard import Engine
    from linkguard.web.app import Coalescer
    check_text = Engine.from_manifest(manifest).check_text
    coalesce = Coalescer()

    def answer(text: str) -> bytes:
        return orjson.dumps(check_text(text).to_json())

    async def check(request: web.Request) -> web.Response:
        data = await request.json()
        return web.Response(body=await coalesce.run(answer, data["text"]),
                            content_type="application/json")
    return check


async def readyz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lists", help="check with linkguard's Engine on these lists")
    a = p.parse_args()
    app = web.Application()
    handler = engine_check(a.lists) if a.lists else check
    app.router.add_post("/v1/check", handler)
    app.router.add_get("/readyz", readyz)
    if a.lists:  # the ceiling: POST /v1/check past the router, as linkguard serves it
        app[keys.DIRECT] = {("POST", "/v1/check"): handler}
        asyncio.run(serve_directly(app, a.host, a.port))
    else:
        web.run_app(app, host=a.host, port=a.port, access_log=None, print=None)


async def serve_directly(app: web.Application, host: str, port: int) -> None:
    """What web.run_app does, with linkguard's direct routes (app.route_directly)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    route_directly(runner.server, app)
    await web.TCPSite(runner, host, port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    main()
