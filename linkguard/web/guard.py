"""Slow clients: how long a connection may take to send a request head, and to take a response.

aiohttp bounds the size of a request head (8190-byte lines, 128 headers) and how long a connection
may sit idle between requests (keepalive_timeout), but not how long a head may take to trickle in
byte by byte (slowloris), nor how long a response may sit unread in the write buffer. Either holds
a connection, its memory and a file descriptor for as long as the client likes. `ConnectionGuard`
wraps aiohttp's protocol for one connection and adds the two missing deadlines:

    connection opens, or the first byte of a request arrives   -> head deadline (header_timeout)
    the app starts handling the request (its head is complete)  -> head deadline off
                                                                    (the body: body_timeout, app.py)
    the transport's write buffer is full (the client stopped reading) -> send deadline (send_timeout)
    the buffer drains                                                  -> send deadline off
    head deadline passes: answer 408 and close;  send deadline passes: drop the connection

An idle keep-alive connection (nothing sent since the last answer) is left to aiohttp's
keepalive_timeout, and so is one whose next head came in part while a request was handled and
then stopped: it holds no more than an idle one, and one byte more starts the head deadline.
What follows an answer given before its request's body arrived (a 413, a 408) is the rest of
that body, no request head: aiohttp reads and drops it for up to 10 s (its lingering close) and
then closes, for the app answers such a request with "Connection: close" (kept alive, the next
head would be one the guard cannot tell from that body). The app (`app.Around`, around every
route's handler) tells the guard when a request starts and ends (`request_started` /
`request_finished`, found through `transport.get_protocol()`). Only asyncio's public protocol
interface is used, and nothing here imports aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("linkguard.guard")

TimeoutHook = Callable[[str], None]  # called with "header" or "send" when a deadline passes


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps({"error": {"code": "request_timeout",
                                 "message": f"request head not received within {seconds:g}s"}})
    return (f"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode("ascii")


class ConnectionGuard(asyncio.Protocol):
    """aiohttp's protocol for one connection, plus a head deadline and a send deadline."""

    def __init__(self, inner: asyncio.Protocol, header_timeout: float, send_timeout: float,
                 on_timeout: TimeoutHook | None = None) -> None:
        self._inner = inner
        self._header_timeout, self._send_timeout = header_timeout, send_timeout
        self._on_timeout = on_timeout
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._head: asyncio.TimerHandle | None = None
        self._head_since: float | None = None  # when the pending request head began to arrive
        self._send: asyncio.TimerHandle | None = None
        self._busy = 0  # requests of this connection the app is handling
        self._paused = False
        self._lingering = False  # the last answer came before its body: the rest is body

    # --- asyncio.Protocol, forwarded to aiohttp ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._inner.connection_made(transport)
        self._arm_head()  # a connection that never sends a full head is not kept either

    def data_received(self, data: bytes) -> None:
        if not self._busy and self._head_since is None and not self._lingering:
            self._arm_head()  # the first bytes of a new request
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._transport = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._paused = True
        if self._send is None and self._transport is not None:
            loop = asyncio.get_running_loop()
            self._send = loop.call_later(self._send_timeout, self._send_expired)
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._paused = False
        if self._send is not None:
            self._send.cancel()
            self._send = None
        self._inner.resume_writing()

    # --- told by the app ------------------------------------------------------------------------

    def request_started(self) -> None:
        """The app has a complete request head: the head deadline is over."""
        self._busy += 1
        self._lingering = False
        self._head_since = None  # its timer, if pending, finds no head and stops

    def request_finished(self, body_unread: bool = False) -> None:
        """The app has answered; `body_unread`: before reading the whole body (what follows is
        the rest of that body, which aiohttp drops, not a new request)."""
        self._busy = max(0, self._busy - 1)
        self._lingering = body_unread

    # --- deadlines ------------------------------------------------------------------------------

    def _arm_head(self) -> None:
        # One timer per connection, not one per request: a keep-alive connection's requests
        # each note when their head began, and the timer, when it fires, re-arms itself for
        # the head then pending, if any (a timer per request cost ~3 us of a ~140 us request).
        if self._transport is not None and self._loop is not None:
            self._head_since = self._loop.time()
            if self._head is None:
                self._head = self._loop.call_at(self._head_since + self._header_timeout,
                                                self._head_expired)

    def _head_expired(self) -> None:
        self._head = None
        transport, since = self._transport, self._head_since
        if transport is None or since is None or self._busy or transport.is_closing():
            return
        assert self._loop is not None
        if (deadline := since + self._header_timeout) > self._loop.time():
            self._head = self._loop.call_at(deadline, self._head_expired)  # a later head
            return
        self._head_since = None
        self._report("header")
        if not self._paused and transport.get_write_buffer_size() == 0:
            # Nothing else is being written on this connection: a clear answer, then close.
            transport.write(_timeout_response(self._header_timeout))
            transport.close()
        else:
            transport.abort()

    def _send_expired(self) -> None:
        self._send = None
        if self._transport is not None and not self._transport.is_closing():
            self._report("send")
            self._transport.abort()  # close() would wait for the unread buffer to drain

    def _report(self, kind: str) -> None:
        log.debug("slow client dropped", extra={"fields": {"event": "client_timeout",
                                                           "phase": kind}})
        if self._on_timeout is not None:
            self._on_timeout(kind)

    def _cancel(self) -> None:
        for handle in (self._head, self._send):
            if handle is not None:
                handle.cancel()
        self._head = self._send = None


async def listen(protocol_factory: Callable[[], asyncio.Protocol], sock: socket.socket, *,
                 header_timeout: float, send_timeout: float, backlog: int,
                 on_timeout: TimeoutHook | None = None) -> asyncio.Server:
    """Serve `sock` with every connection's protocol wrapped in a ConnectionGuard."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: ConnectionGuard(protocol_factory(), header_timeout, send_timeout, on_timeout),
        sock=sock, backlog=backlog)


def guard_of(transport: asyncio.BaseTransport | None) -> ConnectionGuard | None:
    """The guard of a connection, when it is served through `listen` (not in aiohttp's tests)."""
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, ConnectionGuard) else None
