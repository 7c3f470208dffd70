"""The build: pyproject.toml holds the metadata; this compiles the modules every message and every
list line goes through to C with mypyc, the compiler mypy ships (it compiles mypy and black).
The source stays the same Python, type-checked by `mypy --strict`; mypyc turns its annotations
into native calls and checks them at run time, and so is the service's per-message work (api.py:
a batch is hundreds of messages a request). The rest of the package (the aiohttp glue, the CLI,
the configuration) stays interpreted: it runs once a request or once a start.

LINKGUARD_PURE=1 installs all of it as plain Python, as it runs under the coverage-guided fuzzers
(atheris sees no compiled code) and the Python profilers, and removes the compiled modules an
earlier editable install left beside the source.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

COMPILED = ["extract", "urls", "matcher", "engine", "verdict", "psl", "lists", "safebrowsing", "api",
            "record"]
HERE = Path(__file__).resolve().parent

if os.environ.get("LINKGUARD_PURE", "") not in ("", "0"):
    for built in (*HERE.glob("linkguard/*.so"), *HERE.glob("linkguard__mypyc*.so")):
        built.unlink()
    setup()
else:
    from mypyc.build import mypycify

    setup(ext_modules=mypycify([f"linkguard/{name}.py" for name in COMPILED],
                               group_name="linkguard", opt_level="3"))
