"""One worker process of `linkguard serve`, forked by the master (supervisor.py).

It inherits the listening socket and an engine (copy-on-write, shared with its siblings), serves
with aiohttp, and talks to the master over a socketpair in JSON lines:

    worker -> master   {"op": "ready"}
                       {"op": "reload", "id": 7, "lists": ["iwf-urls"] | null, "force": false}
                       {"op": "status", "id": 8}
                       {"op": "draining"}  after a drain notice: no longer accepting
    master -> worker   {"id": 7, "result": {"ok": true, "lists_version": "...", ...}}
                       {"id": 8, "status": {...}}
                       {"op": "drain"}   a newer generation is serving: finish up and exit
                       {"op": "stop"}    the service is stopping: the same

Draining: close this process's copy of the listening socket (the master and the new generation
keep theirs, so nothing queued in the backlog is lost), answer every further request on an open
connection with `Connection: close`, and exit when no connection is left or after drain_timeout.
End of file on the channel means the master died: drain and exit too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from linkguard.config import Settings
from linkguard.web.app import create_admin_root, create_app, route_directly
from linkguard.web.guard import listen
from linkguard.web.metrics import Metrics
from linkguard.web.state import ControlUnavailable, EngineHolder, ReloadResult, ServingState

log = logging.getLogger("linkguard.worker")

BACKLOG = 1024
_STATUS_TIMEOUT = 60.0  # the master may be inside a long GIL-holding build step
_LINE_LIMIT = 64 << 20


class WorkerChannel:
    """The worker's end of the control socketpair: requests with ids, and drain notices."""

    def __init__(self, sock: socket.socket, on_stop: Callable[[], None]) -> None:
        self._sock, self._on_stop = sock, on_stop
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock,
                                                                  limit=_LINE_LIMIT)
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                msg = json.loads(line)
                future = self._pending.pop(msg.get("id", -1), None)
                if future is not None:
                    if not future.done():
                        future.set_result(msg)
                elif msg.get("op") in ("drain", "stop"):
                    self._on_stop()
        except (OSError, ValueError) as e:
            log.error("control channel broken: %s", e)
        # End of file: the master is gone. Nobody can answer a reload any more.
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ControlUnavailable("the master process is gone"))
        self._pending.clear()
        self._on_stop()

    def send(self, msg: dict[str, Any]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(json.dumps(msg).encode() + b"\n")

    async def request(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        if self._writer is None or self._writer.is_closing():
            raise ControlUnavailable("the master process is gone")
        msg_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self.send({"op": op, "id": msg_id, **fields})
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            # The master may still do it: a reload that takes longer is applied when it is
            # built (the admin's answer says so, and /admin/lists shows the outcome).
            raise ControlUnavailable(f"the master did not answer within {timeout:g}s; what was "
                                     "asked may still be done: see /admin/lists") from None
        finally:
            self._pending.pop(msg_id, None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()


class WorkerControl:
    """Admin operations in a worker: the master builds, and knows every worker's version."""

    def __init__(self, channel: WorkerChannel, settings: Settings) -> None:
        self.channel, self.settings = channel, settings
        self.reloads_waiting = 0  # admin requests waiting for the master's answer to a reload

    async def reload(self, names: Sequence[str] | None, force: bool = False) -> ReloadResult:
        lists = list(names) if names is not None else None
        self.reloads_waiting += 1
        try:
            msg = await self.channel.request("reload", self.settings.reload_timeout, lists=lists,
                                             force=force)
        finally:
            self.reloads_waiting -= 1
        return ReloadResult.from_json(msg["result"])

    async def status(self) -> dict[str, Any]:
        msg = await self.channel.request("status", _STATUS_TIMEOUT)
        status: dict[str, Any] = msg["status"]
        return status


def main(settings: Settings, sock: socket.socket, channel_sock: socket.socket,
         holder: EngineHolder, admin_sock: socket.socket | None = None) -> int:
    """The body of a forked worker; the caller os._exit()s with the result."""
    signal.set_wakeup_fd(-1)  # the master's wake-up pipe is not ours
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Ctrl-C reaches the whole process group; the master decides, and tells us to drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return asyncio.run(_serve(settings, sock, channel_sock, holder, admin_sock))


async def _serve(settings: Settings, sock: socket.socket, channel_sock: socket.socket,
                 holder: EngineHolder, admin_sock: socket.socket | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    channel = WorkerChannel(channel_sock, stop.set)
    await channel.start()
    serving = ServingState()
    metrics = Metrics()  # one per process: both listeners count into it
    control = WorkerControl(channel, settings)
    apps = [create_app(settings, engine_holder=holder, control=control, metrics=metrics,
                       serving=serving)]
    socks = [sock]
    if admin_sock is not None:  # the admin API on its own listener (admin_port)
        apps.append(create_admin_root(settings, engine_holder=holder, control=control,
                                      metrics=metrics, serving=serving))
        socks.append(admin_sock)
    listeners = []
    for app, listening in zip(apps, socks):
        runner = web.AppRunner(app, handle_signals=False, access_log=None,
                               keepalive_timeout=settings.keepalive_timeout,
                               shutdown_timeout=1.0)
        await runner.setup()
        assert runner.server is not None
        route_directly(runner.server, app)  # the verdict routes past aiohttp's router
        # Every connection goes through a ConnectionGuard: head and send deadlines (guard.py).
        server = await listen(runner.server, listening, header_timeout=settings.header_timeout,
                              send_timeout=settings.send_timeout, backlog=BACKLOG,
                              on_timeout=metrics.client_timeout)
        listeners.append((runner, server))
    channel.send({"op": "ready"})
    log.debug("worker serving", extra={"fields": {"generation": holder.generation}})

    await stop.wait()
    await drain(listeners, serving, settings.drain_timeout,
                lambda: channel.send({"op": "draining"}),
                lambda: control.reloads_waiting > 0, settings.reload_timeout)
    metrics.flush()  # the counts of the last second, before this process's file is final
    await channel.close()
    return 0


async def drain(listeners: Sequence[tuple[web.AppRunner, asyncio.Server]], serving: ServingState,
                timeout: float, stopped_accepting: Callable[[], None],
                waiting_for_reload: Callable[[], bool] = lambda: False,
                reload_timeout: float = 0.0) -> None:
    """Stop accepting, then wait up to `timeout` for open connections to close; while one waits
    for the answer to a reload it asked (queued behind others: this worker's generation is the
    one being replaced), up to `reload_timeout`, so that the answer is not cut off."""
    serving.draining = True  # further responses carry Connection: close (app.py)
    loop = asyncio.get_running_loop()
    for _, server in listeners:
        for sock in server.sockets:
            loop.remove_reader(sock.fileno())  # accept no more
    stopped_accepting()
    # A connection accepted in this loop turn gets its transport in the next one, attached to
    # its server. Were the server closed by then, asyncio (3.11) would drop the connection
    # unanswered, reporting it only in debug mode. So the server is closed a turn later.
    await asyncio.sleep(0)
    for _, server in listeners:
        server.close()  # closes only this process's copy of the listening socket
    # A connection accepted just before the stop gets its protocol (and a place in
    # server.connections) a few loop iterations later; exiting before that would close it
    # unanswered. Give those callbacks time to run before counting connections.
    await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def open_connections() -> int:
        # A handler whose transport is gone has no socket left to answer on (aiohttp keeps it
        # listed while it finishes a lingering read of a body it refused): not worth waiting for.
        return sum(1 for r, _ in listeners if r.server is not None
                   for c in r.server.connections if c.transport is not None)

    reload_deadline = deadline - timeout + reload_timeout
    while open_connections() and (loop.time() < deadline or (
            waiting_for_reload() and loop.time() < reload_deadline)):
        await asyncio.sleep(0.02)
    left = open_connections()
    if left:
        log.warning("drain timeout; closing idle connections",
                    extra={"fields": {"connections": left}})
    for runner, _ in listeners:
        await runner.cleanup()
    log.debug("worker drained", extra={"fields": {"pid": os.getpid()}})
