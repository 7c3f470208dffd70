"""The HTTP service: the only package that imports aiohttp.

    app.py         create_app(): public routes, what every request gets (Around), request bounds
    admin.py       the /admin sub-app (bearer token)
    errors.py      JSON errors, and the mapping of every exception to one
    keys.py        the typed web.AppKeys
    metrics.py     Prometheus metrics (multiprocess mode under `serve`)
    logs.py        JSON log lines, the block audit line
    state.py       EngineHolder, the reload controls (in-process, and via the master), /admin/lists
    supervisor.py  the master process: one socket, builds engines, forks worker generations
    worker.py      one worker process: serves the inherited socket, drains on request
    server.py      run(args): `linkguard serve`
    guard.py       per-connection deadlines for slow clients (head, body, send)
    shim.py        the link shim: POST /v1/rewrite, GET /go (signed, re-checked at click time)
    console.py     the admin console at /admin/ui (login, CSRF, lists, reload, test box)
    pages.py       escaping HTML helpers for the shim's and console's pages
"""
