"""What a serving app holds, and the two ways a reload happens.

A started aiohttp app is frozen, so the one thing that changes, the engine, lives in an
`EngineHolder` stored before startup; a reload builds a new Engine and swaps one reference.

`Control` is what the admin handlers call. Two implementations:
  - `InProcessControl`: builds in a thread of this process and swaps the holder (tests, embedding).
    Fine for small lists; with large ones the build holds the GIL and stalls this process.
  - `supervisor.WorkerControl`: forwards to the master process, which builds and replaces
    whole worker generations (what `linkguard serve` uses).
Nothing in this module imports aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from linkguard.engine import Engine, ListLoadError
from linkguard.web.metrics import Metrics

log = logging.getLogger("linkguard.reload")


@dataclass
class EngineHolder:
    """The engine serving now, or None with the reasons it could not load (then: not ready)."""

    engine: Engine | None = None
    errors: tuple[str, ...] = ()
    generation: int = 1


@dataclass
class ServingState:
    """Per process: set when this process stops taking connections (reload or shutdown)."""

    draining: bool = False


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    lists_version: str | None
    errors: tuple[str, ...] = ()
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "lists_version": self.lists_version, "errors": list(self.errors),
                "duration_s": round(self.duration_s, 3)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReloadResult:
        return cls(bool(data["ok"]), data.get("lists_version"), tuple(data.get("errors", ())),
                   float(data.get("duration_s", 0.0)))


class ControlUnavailable(Exception):
    """The process that builds engines cannot be reached (admin answers 503)."""


class Control(Protocol):
    async def reload(self, names: Sequence[str] | None, force: bool = False) -> ReloadResult: ...

    async def status(self) -> dict[str, Any]: ...


# The first check in a process pays for lazy set-up (suffix list, regexes: ~150 ms). Paying it
# where the engine is built means every forked worker starts warm, and shares what it built.
_WARM_UP = ("https://a.example.com/x?u=https%3A%2F%2Fb.example.org%2F hxxp://c[.]example[.]net "
            "www.example.co.uk/p [t](http://d.example.com) http://0x7f.1/ b\u00fccher.example.de "
            "\U0001F600")
Errors = tuple[tuple[str, ...], dict[str, list[str]]]  # all errors, and grouped by list name


MAX_REPORTED_ERRORS = 1000  # a reload's answer and /admin/lists carry at most this many a list


def build_engine(manifest: str, previous: Engine | None, names: Sequence[str] | None,
                 force: bool = False, parallel: bool = False) -> tuple[Engine | None, Errors]:
    """Build; never raises. Returns (engine, no errors) or (None, the errors as
    `file:line: reason`, also grouped by list name, "" for the manifest itself). A feed in the
    wrong format has an error a line: past MAX_REPORTED_ERRORS a list, one line says how many
    more there are (`linkguard lists validate` prints every one)."""
    try:
        engine = Engine.from_manifest(manifest, previous=previous, force=force,
                                      reload=list(names) if names is not None else None,
                                      parallel=parallel)
        engine.check_text(_WARM_UP)
        return engine, ((), {})
    except ListLoadError as e:
        by_list = {name: _bounded(manifest, errs) for name, errs in e.by_list.items()}
        errors = tuple(err for errs in by_list.values() for err in errs)
        return None, (errors or (f"{manifest}: load failed",), by_list)
    except Exception as e:  # a bug in the engine must not take the service down
        log.exception("engine build crashed")
        error = f"{manifest}: internal error: {type(e).__name__}: {e}"
        return None, ((error,), {"": [error]})


def _bounded(manifest: str, errors: Sequence[str]) -> list[str]:
    if len(errors) <= MAX_REPORTED_ERRORS:
        return list(errors)
    more = (f"{manifest}: {len(errors) - MAX_REPORTED_ERRORS} more errors not shown "
            f"(`linkguard lists validate {manifest}` prints every one)")
    return [*errors[:MAX_REPORTED_ERRORS], more]


RELOAD_HISTORY = 20  # attempts kept for /admin/lists "history" (the console shows them)
_HISTORY_ERRORS = 20  # errors kept per attempt in the history; "error_count": all it reported


@dataclass
class ReloadLog:
    """The last load/reload attempt and, per list, the errors of its last failed load."""

    last: dict[str, Any] | None = None
    list_errors: dict[str, list[str]] = field(default_factory=dict)
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RELOAD_HISTORY))

    def record(self, names: Sequence[str] | None, result: ReloadResult,
               by_list: dict[str, list[str]], at: float) -> None:
        self.last = {"at": _iso(at), "ok": result.ok, "lists": list(names) if names else None,
                     "errors": list(result.errors), "duration_s": round(result.duration_s, 3),
                     "lists_version": result.lists_version}
        self.history.append({**self.last, "errors": list(result.errors[:_HISTORY_ERRORS]),
                             "error_count": len(result.errors)})
        if result.ok:  # every list named (all, without names) loaded clean
            if names is None:
                self.list_errors.clear()
            for name in names or ():
                self.list_errors.pop(name, None)
        for name, errors in by_list.items():
            if name:
                self.list_errors[name] = list(errors)

    def lists_json(self, engine: Engine | None) -> list[dict[str, Any]]:
        if engine is None:
            return []
        out = []
        for info in engine.lists:
            item = info.to_json()
            errors = self.list_errors.get(info.name)
            item["last_error"] = "\n".join(errors) if errors else None
            out.append(item)
        return out

    def status(self, engine: Engine | None, workers: list[dict[str, Any]]) -> dict[str, Any]:
        return {"ready": engine is not None,
                "lists_version": engine.version if engine is not None else None,
                "lists": self.lists_json(engine), "last_reload": self.last, "workers": workers,
                "history": list(reversed(self.history))}  # newest first


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class InProcessControl:
    """Reload by building in a worker thread of this process, then swapping the holder."""

    def __init__(self, holder: EngineHolder, manifest: str, metrics: Metrics) -> None:
        self.holder, self.manifest, self.metrics = holder, manifest, metrics
        self.log = ReloadLog()
        self._lock = asyncio.Lock()  # one build at a time; later requests wait their turn

    async def load(self) -> None:
        """The first load, at startup (not ready until it has finished)."""
        await self.reload(None)

    async def reload(self, names: Sequence[str] | None, force: bool = False) -> ReloadResult:
        async with self._lock:
            started = time.time()
            t0 = time.perf_counter()
            engine, (errors, by_list) = await asyncio.to_thread(
                build_engine, self.manifest, self.holder.engine, names, force)
            if engine is not None:
                self.holder.engine, self.holder.errors = engine, ()
                self.holder.generation += 1
            elif self.holder.engine is None:
                self.holder.errors = errors
            current = self.holder.engine
            result = ReloadResult(engine is not None, current.version if current else None,
                                  errors, time.perf_counter() - t0)
            self.log.record(names, result, by_list, started)
            self.metrics.observe_load(current, result.ok, started)
            log_reload(names, result)
            return result

    async def status(self) -> dict[str, Any]:
        engine = self.holder.engine
        worker = {"pid": os.getpid(), "generation": self.holder.generation, "state": "serving",
                  "lists_version": engine.version if engine is not None else None}
        return self.log.status(engine, [worker])


def log_reload(names: Sequence[str] | None, result: ReloadResult) -> None:
    fields = {"event": "reload", "ok": result.ok, "lists": list(names) if names else None,
              "lists_version": result.lists_version, "duration_s": round(result.duration_s, 3)}
    if result.ok:
        log.info("lists loaded", extra={"fields": fields})
    else:
        log.error("lists failed to load; the previous lists keep serving",
                  extra={"fields": {**fields, "errors": list(result.errors)}})
