"""atheris harnesses: `python fuzz/fuzz.py TARGET [libFuzzer flags]`.

Each target feeds arbitrary bytes to one public entry point and checks what must always hold;
anything else it raises is a crash, saved by libFuzzer as a file to replay:
`python fuzz/fuzz.py TARGET crash-<sha1>`. Every crash found becomes a row in
tests/data/regressions.tsv.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from pathlib import Path

    from linkguard import extract, urls
    from linkguard.lists import EntryError, Format, ListSpec, parse_line
    from linkguard.verdict import Action


def _text(data: bytes) -> str:
    return atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))


def extract_target(data: bytes) -> None:
    text = _text(data)
    last = 0
    for c in extract.find_links(text):
        assert last <= c.start < c.end <= len(text), (text, c)
        last = c.end


def canonicalize_target(data: bytes) -> None:
    text = _text(data)
    c = urls.canonicalize(text)
    assert c == urls._canonicalize(text) or c is not None and c.text == urls._canonicalize(text).text
    if c is not None:
        again = urls.canonicalize(c.text)
        assert again is not None and again.text == c.text, (text, c.text)
        urls.expressions(c)
        urls.embedded_urls(c)


_SPECS = [ListSpec("f", Path("f.txt"), fmt, Action.BLOCK, "c") for fmt in Format]


def list_line_target(data: bytes) -> None:
    if not data:
        return
    spec = _SPECS[data[0] % len(_SPECS)]
    line = data[1:].decode("utf-8", "surrogateescape").strip()
    if line:
        try:
            parse_line(spec, line)
        except EntryError:
            pass


_ROUTES = ["/v1/check", "/v1/check/batch", "/v1/sanitize"]
_client = None


def _service() -> tuple[object, object]:
    """One in-process service on the shipped lists, built on first use (aiohttp test client)."""
    global _client
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from linkguard import Engine
    from linkguard.config import Settings
    from linkguard.web.app import create_app

    if _client is None:
        loop = asyncio.new_event_loop()
        root = Path(__file__).resolve().parents[1]
        engine = Engine.from_manifest(root / "lists" / "lists.toml")
        app = create_app(Settings(lists=str(root / "lists" / "lists.toml")), engine=engine)
        client = TestClient(TestServer(app), loop=loop)
        loop.run_until_complete(client.start_server())
        _client = (loop, client)
    return _client


def request_target(data: bytes) -> None:
    """Any body on any verdict route gets a JSON answer below 500."""
    if not data:
        return
    loop, client = _service()

    async def post() -> None:
        # Through the client's session: TestClient.post keeps every response until the client
        # closes, and a long campaign ran out of memory on them (436k inputs, 2 GB).
        async with client.session.post(  # type: ignore[attr-defined]
                client.make_url(_ROUTES[data[0] % 3]), data=data[1:],  # type: ignore[attr-defined]
                headers={"Content-Type": "application/json"}) as resp:
            body = await resp.json()
        assert resp.status < 500, (resp.status, body, data)
        assert resp.status == 200 or "error" in body, body

    loop.run_until_complete(post())  # type: ignore[attr-defined]


TARGETS = {"extract": extract_target, "canonicalize": canonicalize_target,
           "list-line": list_line_target, "request": request_target}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: fuzz.py {{{','.join(TARGETS)}}} [libFuzzer flags]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
