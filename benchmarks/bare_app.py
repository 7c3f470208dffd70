#!/usr/bin/env python3
"""The baseline of the service figure: a bare aiohttp app with one POST handler that parses the
same JSON body as /v1/check (`await request.json()`) and returns a small JSON object. No
middleware, no access log (linkguard's is off by default too), one process.

    bare_app.py --port 8081 [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def check(request: web.Request) -> web.Response:
    data = await request.json()
    return web.json_response({"verdict": "allow", "links": [], "lists_version": "bare",
                              "chars": len(data.get("text") or "")})


async def readyz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    app = web.Application()
    app.router.add_post("/v1/check", check)
    app.router.add_get("/readyz", readyz)
    web.run_app(app, host=a.host, port=a.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
