"""The public face: lists -> matcher; check_url / check_text / sanitize / explain.

An Engine is immutable. A reload builds a new Engine (reusing the parsed lists it was not asked
to reload) and the caller swaps one reference. Nothing here imports aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from linkguard.verdict import Sanitized, TextVerdict, UrlVerdict

DEFAULT_REPLACEMENT = "[link removed]"


class ListLoadError(Exception):
    """Loading failed; `errors` holds every problem as `file:line: reason`."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True, slots=True)
class ListInfo:
    name: str
    format: str
    action: str
    category: str
    path: str
    entries: int
    skipped: int
    sha256: str
    loaded_at: float  # Unix time

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


class Engine:
    version: str
    lists: tuple[ListInfo, ...]

    @classmethod
    def from_manifest(cls, path: str | Path, *, previous: Engine | None = None,
                      reload: Iterable[str] | None = None) -> Engine:
        raise NotImplementedError

    def check_url(self, url: str) -> UrlVerdict:
        raise NotImplementedError

    def check_text(self, text: str, urls: Iterable[str] = ()) -> TextVerdict:
        raise NotImplementedError

    def sanitize(self, text: str, replacement: str = DEFAULT_REPLACEMENT) -> Sanitized:
        raise NotImplementedError

    def explain(self, url: str) -> dict[str, Any]:
        raise NotImplementedError
