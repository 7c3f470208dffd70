"""Where the shared reference corpora live, and how to skip cleanly without them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
DATA = Path(__file__).resolve().parent / "data"


def corpus_json(relpath: str) -> Any:
    path = CORPORA / relpath
    if not path.exists():
        pytest.skip(f"reference corpus {path} is not present (clone without ../shared)",
                    allow_module_level=True)
    return json.loads(path.read_text(encoding="utf-8"))


_ESCAPES = re.compile(r"\\(t|n|r|u[0-9a-fA-F]{4})")


def _unescape(cell: str) -> str:
    """Only \\t, \\n, \\r and \\uXXXX are escapes; any other backslash is data (URLs use it)."""
    return _ESCAPES.sub(lambda m: {"t": "\t", "n": "\n", "r": "\r"}.get(m[1]) or chr(int(m[1][1:], 16)),
                        cell)


def read_tsv(name: str) -> list[list[str]]:
    """Rows of a tests/data table; '#' lines are comments."""
    rows = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append([_unescape(c) for c in line.split("\t")])
    return rows
