"""The master process of `linkguard serve --workers N`.

Why a master: building the index for large lists holds the GIL for seconds (pyahocorasick's
make_automaton: ~8.6 s for 1M domains), so no process that serves may build. The master serves
nothing; it

  1. binds ONE listening socket before forking (two with `admin_port`: the admin API's own);
     every worker inherits it and the kernel spreads the accepts (no balancer of ours);
  2. builds the Engine, moves it to huge pages (huge_pages), gc.freeze()s, and forks N workers
     that share the index copy-on-write;
  3. on a reload (asked by any worker over its control socketpair, or SIGHUP) builds the new Engine
     in a thread, `Engine.from_manifest(path, previous=current, reload=names)`. Failure: answer
     the errors, change nothing. Success: fork a new generation of N workers, wait until they all
     report ready, tell the old generation to drain (worker.py), and answer once every old worker
     has confirmed it stopped accepting (so no connection opened after the answer meets old lists);
  4. re-forks a worker that died, and on SIGTERM/SIGINT drains every worker and exits.

    generation 1:  w1 w2 ---------------- drain -> exit
    reload:                build ... fork w3 w4 (ready) -> answer
    generation 2:                          w3 w4 ------------------------

The master loop is synchronous (selectors + signal wake-up fd): it forks, and forking from inside a
running asyncio loop would hand each child the parent's loop. Forks happen only when no build thread
is running, so a child never inherits a lock held by another thread.
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from linkguard.config import Settings
from linkguard.engine import Engine
from linkguard.web import worker as worker_mod
from linkguard.web.metrics import Metrics, mark_process_dead
from linkguard.web.state import (
    EngineHolder,
    Errors,
    ReloadLog,
    ReloadResult,
    build_engine,
    log_reload,
)

log = logging.getLogger("linkguard.master")

_SEND_TIMEOUT = 5.0
_RESPAWN_DELAY = 1.0  # a worker that dies within this of starting is re-forked after this
_KILL_GRACE = 5.0  # beyond drain_timeout, before SIGKILL
_HANDOVER_TIMEOUT = 10.0  # answer a reload even if an old worker never confirms it stopped


@dataclass
class Worker:
    pid: int
    generation: int
    channel: socket.socket
    lists_version: str | None
    started: float
    state: str = "starting"  # starting -> serving -> draining
    kill_at: float | None = None
    last_kill_at: float | None = None  # the latest kill_at may move to (a reload answer owed)
    buffer: bytearray = field(default_factory=bytearray)

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "generation": self.generation, "state": self.state,
                "lists_version": self.lists_version}


@dataclass
class ReloadRequest:
    names: list[str] | None
    force: bool
    pid: int | None  # the worker that asked (None: SIGHUP)
    msg_id: int | None
    # The same reload asked for again while this one waited: one build, after all of them
    # asked, answers them all (50 concurrent reloads were 50 builds and 50 generations).
    also: list[tuple[int | None, int | None]] = field(default_factory=list)


@dataclass
class Handover:
    """The new generation serves; the answer waits until every old worker has stopped accepting,
    so that no connection opened after the answer reaches the old lists."""

    request: ReloadRequest
    result: ReloadResult
    waiting: set[int]  # old workers that have not confirmed
    deadline: float


@dataclass
class Swap:
    """A built engine whose worker generation is starting."""

    request: ReloadRequest
    engine: Engine
    generation: int
    result: ReloadResult
    started: float
    deadline: float


class Master:
    def __init__(self, settings: Settings, sock: socket.socket, metrics: Metrics,
                 admin_sock: socket.socket | None = None) -> None:
        self.settings, self.sock, self.metrics = settings, sock, metrics
        self.admin_sock = admin_sock  # the admin API's own listener (admin_port), bound too
        self.manifest = settings.lists or ""
        self.holder = EngineHolder(None, (), 1)
        self.log = ReloadLog()
        self.workers: dict[int, Worker] = {}
        self.queue: deque[ReloadRequest] = deque()
        self.build: threading.Thread | None = None
        self.building: ReloadRequest | None = None
        self.build_started = 0.0
        self.build_out: tuple[Engine | None, Errors, float] | None = None
        self.swap: Swap | None = None
        self.handover: Handover | None = None
        self.stopping = False
        self.respawn_at = 0.0
        self.sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()  # signals and build completion

    # --- lifecycle ------------------------------------------------------------------------------

    def run(self) -> int:
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, _noop)  # the wake-up fd carries the signal number
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._on_wake)

        self._load()
        self._spawn_generation(self.holder)

        while not (self.stopping and not self.workers):
            for key, _ in self.sel.select(self._timeout()):
                callback: Callable[[], None] = key.data
                callback()
            self._tick()
        self.sel.close()
        self.sock.close()
        if self.admin_sock is not None:
            self.admin_sock.close()
        log.info("stopped", extra={"fields": {"event": "stopped"}})
        return 0

    def _timeout(self) -> float | None:
        deadlines = [w.kill_at for w in self.workers.values() if w.kill_at is not None]
        if self.swap is not None:
            deadlines.append(self.swap.deadline)
        if self.handover is not None:
            deadlines.append(self.handover.deadline)
        if self._missing() and not self.stopping:
            deadlines.append(self.respawn_at)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _tick(self) -> None:
        now = time.monotonic()
        for w in list(self.workers.values()):
            if w.kill_at is not None and now >= w.kill_at:
                if self._owes_reload_answer(w.pid) and now < (w.last_kill_at or now):
                    # It drains its connections longer while one waits for this answer.
                    w.kill_at = min(now + 1.0, w.last_kill_at or now)
                    continue
                log.warning("worker did not exit; killing", extra={"fields": {"worker": w.pid}})
                _kill(w.pid, signal.SIGKILL)
                w.kill_at = None
        if self.handover is not None and now >= self.handover.deadline:
            self._finish_handover(force=True)
        if self.swap is not None and now >= self.swap.deadline:
            self._abort_swap(f"new workers not ready within "
                             f"{self.settings.worker_start_timeout:g}s")
        if (not self.stopping and self.build is None and self.swap is None
                and self._missing() and now >= self.respawn_at):
            for _ in range(self._missing()):
                self._spawn(self.holder)
        self._next_reload()

    def _missing(self) -> int:
        alive = sum(1 for w in self.workers.values()
                    if w.generation == self.holder.generation and w.state != "draining")
        return max(0, self.settings.workers - alive)

    def _stop(self) -> None:
        if self.stopping:  # a second signal: do not wait any longer
            for w in self.workers.values():
                _kill(w.pid, signal.SIGKILL)
            return
        log.info("stopping; draining workers", extra={"fields": {"event": "stopping"}})
        self.stopping = True
        stopping = ReloadResult(False, self._version(), ("the service is stopping",))
        while self.queue:
            self._answer(self.queue.popleft(), stopping)
        if self.building is not None:
            # Answered now, not when the build ends (it is not applied): its workers drain as
            # every worker does, within drain_timeout, not waiting for this answer.
            self._answer(self.building, stopping)
            self.building.pid, self.building.also = None, []
        if self.swap is not None:
            self._abort_swap("the service is stopping")
        for w in self.workers.values():
            self._drain(w, "stop")
        # No worker is forked from now on: let go of the listening sockets, so that once the
        # workers close theirs (at once, as they drain) a new connection is refused, and a
        # proxy tries another instance, instead of waiting in a backlog nobody accepts from.
        self.sock.close()
        if self.admin_sock is not None:
            self.admin_sock.close()

    # --- events ---------------------------------------------------------------------------------

    def _on_wake(self) -> None:
        try:
            data = self._wake_r.recv(4096)
        except BlockingIOError:
            return
        for signum in data:
            if signum == signal.SIGCHLD:
                self._reap()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self._stop()
            elif signum == signal.SIGHUP and not self.stopping:
                self._enqueue(ReloadRequest(None, False, None, None))
            elif signum == 0:  # the build thread finished
                self._build_done()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = self.workers.pop(pid, None)
            mark_process_dead(pid)
            if w is None:
                continue
            if self.handover is not None:
                self.handover.waiting.discard(pid)
                self._finish_handover()
            self._close_channel(w)
            code = os.waitstatus_to_exitcode(status)
            if w.state == "draining":
                log.info("worker exited", extra={"fields": {"worker": pid, "code": code}})
                continue
            log.error("worker died; re-forking", extra={"fields": {
                "worker": pid, "code": code, "generation": w.generation}})
            if time.monotonic() - w.started < _RESPAWN_DELAY:
                self.respawn_at = time.monotonic() + _RESPAWN_DELAY
            if self.swap is not None and w.generation == self.swap.generation:
                self._abort_swap(f"a new worker exited while starting (code {code})")

    def _on_channel(self, w: Worker) -> None:
        try:
            data = w.channel.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the worker is exiting; SIGCHLD does the rest
            self._close_channel(w)
            return
        w.buffer += data
        while (end := w.buffer.find(b"\n")) >= 0:
            line, w.buffer[:] = bytes(w.buffer[:end]), w.buffer[end + 1:]
            try:
                self._on_message(w, json.loads(line))
            except (ValueError, KeyError, TypeError) as e:
                log.error("bad control message", extra={"fields": {"worker": w.pid,
                                                                    "error": str(e)}})

    def _on_message(self, w: Worker, msg: dict[str, Any]) -> None:
        op = msg["op"]
        if op == "ready":
            self._on_ready(w)
        elif op == "draining":  # the worker no longer accepts connections
            if self.handover is not None:
                self.handover.waiting.discard(w.pid)
                self._finish_handover()
        elif op == "status":
            workers = [x.to_json() for x in sorted(self.workers.values(), key=lambda x: x.pid)]
            self._send(w, {"id": msg["id"], "status": self.log.status(self.holder.engine,
                                                                      workers)})
        elif op == "reload":
            names = msg.get("lists")
            if self.stopping:
                self._send(w, {"id": msg["id"], "result": ReloadResult(
                    False, self._version(), ("the service is stopping",)).to_json()})
            else:
                self._enqueue(ReloadRequest(names, bool(msg.get("force")), w.pid, msg["id"]))
        else:
            raise ValueError(f"unknown op {op!r}")

    def _on_ready(self, w: Worker) -> None:
        if w.state != "starting":
            return
        w.state = "serving"
        swap = self.swap
        if swap is None or w.generation != swap.generation:
            return
        if all(x.state == "serving" for x in self.workers.values()
               if x.generation == swap.generation):
            self._commit_swap(swap)

    # --- reloads --------------------------------------------------------------------------------

    def _load(self) -> None:
        """The first load. Its own method: a local variable of run() would keep this engine
        for the master's whole life, and so in every worker forked after any reload."""
        started = time.time()
        t0 = time.perf_counter()
        # (no other thread yet: the lists may be read on two cores, see lists.load_lists)
        engine, (errors, by_list) = _build(self.manifest, None, None, parallel=True)
        self._record(None, engine, errors, by_list, time.perf_counter() - t0, started)
        self.holder = EngineHolder(engine, errors, 1)

    def _next_reload(self) -> None:
        if (self.stopping or self.build is not None or self.swap is not None
                or self.handover is not None or not self.queue):
            return
        request = self.building = self.queue.popleft()
        previous = self.holder.engine

        def build() -> None:
            try:  # Linux: niceness is per thread; let the serving workers win the CPU
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except OSError:
                pass
            t0 = time.perf_counter()
            engine, errors = _build(self.manifest, previous, request.names, request.force)
            self.build_out = (engine, errors, time.perf_counter() - t0)
            self._wake_w.send(b"\0")

        log.info("reloading", extra={"fields": {"event": "reload_start", "lists": request.names}})
        self.build = threading.Thread(target=build, name="linkguard-build", daemon=True)
        self.build_started = time.time()
        self.build.start()

    def _build_done(self) -> None:
        assert self.build is not None and self.build_out is not None
        self.build.join()
        self.build = None
        engine, (errors, by_list), seconds = self.build_out
        self.build_out = None
        request, self.building = self.building, None
        assert request is not None
        if self.stopping:
            self._answer(request, ReloadResult(False, self._version(),
                                               ("the service is stopping",)))
            return
        if engine is None:
            result = self._record(request.names, None, errors, by_list, seconds,
                                  self.build_started)
            self._answer(request, result)
            return
        result = ReloadResult(True, engine.version, (), seconds)
        generation = self.holder.generation + 1
        now = time.monotonic()
        self.swap = Swap(request, engine, generation, result, self.build_started,
                         now + self.settings.worker_start_timeout)
        self._spawn_generation(EngineHolder(engine, (), generation))

    def _commit_swap(self, swap: Swap) -> None:
        self.swap = None
        old = [w for w in self.workers.values()
               if w.generation != swap.generation and w.state != "draining"]
        self.holder = EngineHolder(swap.engine, (), swap.generation)
        result = self._record(swap.request.names, swap.engine, (), {}, swap.result.duration_s,
                              swap.started)
        for w in old:
            self._drain(w, "drain")
        _malloc_trim()  # the old engine is gone from the master: return its memory
        self.handover = Handover(swap.request, result, {w.pid for w in old},
                                 time.monotonic() + _HANDOVER_TIMEOUT)
        self._finish_handover()

    def _finish_handover(self, force: bool = False) -> None:
        handover = self.handover
        if handover is None or (handover.waiting and not force):
            return
        self.handover = None
        self._answer(handover.request, handover.result)

    def _abort_swap(self, reason: str) -> None:
        swap, self.swap = self.swap, None
        assert swap is not None
        for w in self.workers.values():
            if w.generation == swap.generation:
                self._drain(w, "stop")  # they may already hold connections: drain, never kill
        error = f"{self.manifest}: {reason}"
        result = self._record(swap.request.names, None, (error,), {"": [error]},
                              swap.result.duration_s, swap.started)
        self._answer(swap.request, result)

    def _record(self, names: list[str] | None, engine: Engine | None, errors: tuple[str, ...],
                by_list: dict[str, list[str]], seconds: float, started: float) -> ReloadResult:
        """Log, count and remember an attempt; `engine` is None when it failed."""
        current = engine or self.holder.engine
        result = ReloadResult(engine is not None, current.version if current else None,
                              errors, seconds)
        self.log.record(names, result, by_list, started)
        self.metrics.observe_load(current, result.ok, started)
        log_reload(names, result)
        return result

    def _owes_reload_answer(self, pid: int) -> bool:
        """Is a reload asked by this worker queued, building, or not answered yet?"""
        pending: list[ReloadRequest | None] = [
            *self.queue, self.building, self.swap.request if self.swap else None,
            self.handover.request if self.handover else None]
        return any(r is not None and pid in (r.pid, *(p for p, _ in r.also)) for r in pending)

    def _enqueue(self, request: ReloadRequest) -> None:
        for queued in self.queue:  # not started yet: its build reads the files after this asked
            if (queued.names, queued.force) == (request.names, request.force):
                queued.also.append((request.pid, request.msg_id))
                return
        self.queue.append(request)

    def _answer(self, request: ReloadRequest, result: ReloadResult) -> None:
        for pid, msg_id in ((request.pid, request.msg_id), *request.also):
            w = self.workers.get(pid) if pid is not None else None
            if w is not None:
                self._send(w, {"id": msg_id, "result": result.to_json()})

    def _version(self) -> str | None:
        return self.holder.engine.version if self.holder.engine is not None else None

    # --- workers --------------------------------------------------------------------------------

    def _spawn_generation(self, holder: EngineHolder) -> None:
        # Objects alive now (the engine above all) move to the permanent generation: the
        # collector never touches them again, so their pages stay shared with every fork. What
        # an earlier freeze kept and is garbage now (the previous generation's bookkeeping, in
        # reference cycles) is collected first, or every reload would keep some for good.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        for _ in range(self.settings.workers):
            self._spawn(holder)

    def _spawn(self, holder: EngineHolder) -> None:
        parent, child = socket.socketpair()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker; never returns
            code = 1
            try:
                parent.close()
                self._close_in_child()
                # A new generation is forked while the master still holds the old engine. Let
                # go of it here, so that its memory is returned (its tables are unmapped) rather
                # than kept, unused, for the life of this worker.
                self.holder = holder
                self.swap = None
                gc.collect()
                _malloc_trim()
                code = worker_mod.main(self.settings, self.sock, child, holder,
                                       self.admin_sock)
            except BaseException:
                log.exception("worker crashed")
            finally:
                os._exit(code)
        child.close()
        parent.settimeout(_SEND_TIMEOUT)  # a hung worker must not hang the master
        version = holder.engine.version if holder.engine is not None else None
        w = Worker(pid, holder.generation, parent, version, time.monotonic())
        self.workers[pid] = w
        self.sel.register(parent, selectors.EVENT_READ, lambda: self._on_channel(w))
        log.info("worker started", extra={"fields": {"worker": pid,
                                                     "generation": holder.generation,
                                                     "lists_version": version}})

    def _close_in_child(self) -> None:
        # Drop every master-side descriptor, so that when the master dies each worker sees
        # end-of-file on its own channel (nobody else holds the other end open).
        for w in self.workers.values():
            w.channel.close()
        self.sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def _drain(self, w: Worker, op: str) -> None:
        if w.state == "draining":
            return
        w.state = "draining"
        now = time.monotonic()
        w.kill_at = now + self.settings.drain_timeout + _KILL_GRACE
        w.last_kill_at = now + max(self.settings.drain_timeout, self.settings.reload_timeout) \
            + _KILL_GRACE
        if w.channel.fileno() < 0 or not self._send(w, {"op": op}):
            _kill(w.pid, signal.SIGTERM)  # no channel: SIGTERM drains too

    def _send(self, w: Worker, msg: dict[str, Any]) -> bool:
        try:
            w.channel.sendall(json.dumps(msg).encode() + b"\n")
            return True
        except OSError as e:
            log.warning("cannot reach worker", extra={"fields": {"worker": w.pid,
                                                                 "error": str(e)}})
            return False

    def _close_channel(self, w: Worker) -> None:
        if w.channel.fileno() >= 0:
            self.sel.unregister(w.channel)
            w.channel.close()


def _noop(signum: int, frame: Any) -> None:
    pass


def _malloc_trim() -> None:
    """Give freed heap memory back to the system (glibc); elsewhere a no-op."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _build(manifest: str, previous: Engine | None, names: Sequence[str] | None,
           force: bool = False, parallel: bool = False) -> tuple[Engine | None, Errors]:
    """The master's build: state.build_engine, then the new index on huge pages."""
    engine, errors = build_engine(manifest, previous, names, force, parallel)
    if engine is not None:
        huge_pages()
    return engine, errors


_HUGE_PAGE = 2 << 20
_MADV_COLLAPSE = 25  # Linux 6.1+
_MIN_REGION = 8 << 20


def huge_pages() -> None:
    """Back this process's large anonymous memory (the index: its tables and key objects) with
    2 MiB pages, before the workers are forked to share it. Matching a URL is a few probes of
    tables of millions, each a cache miss; with 4 KiB pages each is a TLB miss too. Best effort:
    where the call is unknown (not Linux, a kernel before 6.1) nothing changes. On a 6.18 kernel
    it takes about a second for the 2M set (450 MB of the master's 490 MB), and check_url with
    the 2M set then runs at 0.920x its speed on the 1k set instead of 0.905x (bench_url.py)."""
    try:
        madvise = ctypes.CDLL(None).madvise
        with open("/proc/self/maps") as f:
            maps = f.read().splitlines()
    except (OSError, AttributeError):
        return
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    for line in maps:
        fields = line.split()  # range, perms, offset, dev, inode[, path]
        if fields[1] != "rw-p" or fields[5:] not in ([], ["[heap]"]):
            continue
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        lo += -lo % _HUGE_PAGE
        hi -= hi % _HUGE_PAGE
        if hi - lo >= _MIN_REGION:
            madvise(lo, hi - lo, _MADV_COLLAPSE)  # fails alone (EINVAL, EAGAIN): no matter


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
