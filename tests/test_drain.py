"""An old worker's drain (worker.drain) against the accept race: a connection the listener
accepted in the same loop turn as the drain began is answered, not dropped.

asyncio (3.11) gives an accepted connection its transport one loop iteration after accepting
it, and attaching it to a server that is closed by then fails an assertion that only debug mode
reports: the connection is closed unanswered. Seen in soaks as a few failed requests at about
one hand-over in 200 (README, "Soak")."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from linkguard.web.guard import listen
from linkguard.web.state import ServingState
from linkguard.web.worker import drain


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def test_a_connection_accepted_as_the_drain_begins_is_answered() -> None:
    app = web.Application()
    app.router.add_get("/", _ok)
    runner = web.AppRunner(app)
    await runner.setup()
    assert runner.server is not None
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = await listen(runner.server, sock, header_timeout=5.0, send_timeout=5.0, backlog=16)
    stop = asyncio.Event()

    async def worker() -> None:
        await stop.wait()
        await drain([(runner, server)], ServingState(), 5.0, lambda: None)

    draining = asyncio.create_task(worker())
    await asyncio.sleep(0)  # it waits for the stop
    # A client connects: the kernel queues the connection, nobody has accepted it yet. The stop
    # is set in the next loop turn, the same one in which the listener accepts it.
    client = socket.create_connection(sock.getsockname())
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    asyncio.get_running_loop().call_soon(stop.set)
    try:
        answer = await asyncio.wait_for(asyncio.to_thread(client.recv, 1024), 5.0)
    except ConnectionResetError:
        answer = b"reset"
    finally:
        client.close()
    await asyncio.wait_for(draining, 10.0)
    assert answer.startswith(b"HTTP/1.1 200"), answer
