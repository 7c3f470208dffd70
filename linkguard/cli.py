"""`linkguard serve | check | explain | lists validate | lists hash`.

Exit status: 0 all allowed (or success), 1 something blocked or flagged, 2 usage or list error,
141 the reader of the output went away (as a command killed by SIGPIPE).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from linkguard import psl, urls
from linkguard.engine import Engine
from linkguard.lists import (
    EntryError,
    Format,
    ListLoadError,
    iter_entries,
    read_list_file,
    read_manifest,
)
from linkguard.verdict import Action

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
EXIT_PIPE = 128 + 13  # the shell's status of a command killed by SIGPIPE


def default_manifest(env: Mapping[str, str] | None = None) -> Path:
    """`$LINKGUARD_LISTS`, else `lists/lists.toml` in the working directory, else the demo
    lists shipped in this package (`linkguard/default_lists`; `lists` in the source tree is a
    link to them)."""
    environ = os.environ if env is None else env
    if environ.get("LINKGUARD_LISTS"):
        return Path(environ["LINKGUARD_LISTS"])
    here = Path("lists/lists.toml")
    return here if here.exists() else SHIPPED_MANIFEST


SHIPPED_MANIFEST = Path(__file__).resolve().parent / "default_lists" / "lists.toml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="linkguard", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    lists_help = "manifest (default: $LINKGUARD_LISTS, else lists/lists.toml)"

    s = sub.add_parser("serve", help="run the HTTP service")
    s.add_argument("--lists", type=Path, help=lists_help)
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int)
    s.add_argument("--config", type=Path, help="TOML settings file")

    c = sub.add_parser("check", help="check each TEXT, or each line of stdin")
    c.add_argument("--lists", type=Path, help=lists_help)
    c.add_argument("--json", action="store_true", help="one /v1/check JSON object a line")
    c.add_argument("text", nargs="*")

    e = sub.add_parser("explain", help="why a URL gets its verdict")
    e.add_argument("--lists", type=Path, help=lists_help)
    e.add_argument("url")

    ls = sub.add_parser("lists", help="validate or hash lists").add_subparsers(
        dest="lists_command", required=True)
    v = ls.add_parser("validate", help="parse everything; print counts and every bad line")
    v.add_argument("manifest", nargs="?", type=Path)
    h = ls.add_parser("hash", help="plaintext urls/domains list in, hashes list out")
    h.add_argument("--hash", choices=("sha256", "md5"), default="sha256")
    h.add_argument("--exact", action="store_true",
                   help="URL entries are exact pages (default: prefixes, as a urls list)")
    h.add_argument("file", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status = _run(args)
        sys.stdout.flush()  # here, not at exit: a reader gone is then caught below
    except BrokenPipeError:
        # The reader went away (`linkguard explain URL | head`): stop quietly, as a command
        # killed by SIGPIPE does, and keep Python's own flush at exit from failing again.
        # (docs.python.org, signal module, "Note on SIGPIPE")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    return status


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "serve":
            from linkguard.web.server import run  # the only path into aiohttp
            return run(args)
        if args.command == "lists":
            if args.lists_command == "validate":
                return validate(args.manifest or default_manifest())
            return hash_list(args.file, args.hash, exact=args.exact)
        engine = Engine.from_manifest(args.lists or default_manifest())
    except ListLoadError as e:
        for error in e.errors:
            print(error, file=sys.stderr)
        return EXIT_ERROR
    if args.command == "check":
        return check(engine, args.text or (line.rstrip("\n") for line in sys.stdin), args.json)
    print(json.dumps(engine.explain(args.url), indent=2, ensure_ascii=False))
    return EXIT_OK


def check(engine: Engine, texts: Iterable[str], as_json: bool) -> int:
    found = False
    for text in texts:
        verdict = engine.check_text(text)
        found |= verdict.action is not Action.ALLOW
        if as_json:
            print(json.dumps(verdict.to_json(), ensure_ascii=False), flush=True)
            continue
        print(f"{verdict.action.value}\t{text}")
        for link in verdict.links:
            lists = f"\t{link.verdict.category} ({', '.join(link.verdict.lists)})" \
                if link.verdict.lists else ""
            print(f"  {link.action.value}\t{link.verdict.url} -> {link.verdict.canonical}{lists}")
    return EXIT_FOUND if found else EXIT_OK


def validate(manifest: Path) -> int:
    """Like a load, but reports every bad line of every list, strict or not."""
    specs = read_manifest(manifest)
    failed = False
    for spec in specs:
        try:
            _, text = read_list_file(spec)
        except ListLoadError as e:
            print(*e.errors, sep="\n")
            failed = True
            continue
        good = bad = 0
        for n, _line, result in iter_entries(spec, text):
            if isinstance(result, EntryError):
                bad += 1
                print(f"{spec.path}:{n}: {result}")
            else:
                good += len(result)
        failed |= spec.strict and bad > 0
        mode = "strict" if spec.strict else "skipping bad lines"
        print(f"{spec.name}: {spec.format.value}, {good} entries, {bad} bad lines ({mode})")
    return EXIT_ERROR if failed else EXIT_OK


def hash_list(path: Path, algorithm: str, *, exact: bool) -> int:
    """Each entry becomes the digest of its Safe Browsing expression: a domain `a.com` is
    `a.com/` (every page of the host and its subdomains); a URL `a.com/dir` or `a.com/dir/` is
    `a.com/dir` and, unless --exact, `a.com/dir/` (everything below it; with --exact only when
    written so: `a.com/dir/` is also the expression of everything below it). A bare host is read
    as a domain."""
    from linkguard.lists import ListSpec
    spec = ListSpec("input", path, Format.DOMAINS, Action.BLOCK, "input", strict=False)
    _, text = read_list_file(spec)
    print(f"# {algorithm} of Safe Browsing expressions, from {path.name} (linkguard lists hash)")
    failed = False
    for n, line, result in iter_entries(spec, text):
        exprs: list[str] = []
        error = str(result) if isinstance(result, EntryError) else None
        if not isinstance(result, EntryError):
            exprs = [f"{host}/" for host in result]  # type: ignore[str-bytes-safe]
        elif "/" in line or "?" in line:  # no host name: read it as a URL
            error = "not a host name or URL"
            if (c := urls.canonicalize(line)) is not None:
                # As in a urls list, a trailing '/' and an empty query are not significant.
                base = c.url_host + (c.path.rstrip("/") or "/")
                exprs = [base + "?" + c.query if c.query else base]
                # Below it too, unless --exact; an exact page written with a '/' is found with
                # one (Safe Browsing's `a.com/dir/` also stands for everything below it).
                if not c.query and not base.endswith("/") and (
                        not exact or c.path.endswith("/")):
                    exprs.append(base + "/")
                # "host/" stands for every site under it, as a domains entry does.
                suffix = base.endswith("/") and psl.is_public_suffix(c.url_host, private=False)
                error = f"{c.url_host!r} is a public suffix" if suffix else None
                if "*" in c.host:
                    error = "wildcards are not supported"
        if error is not None:
            print(f"{path}:{n}: {error}", file=sys.stderr)
            failed = True
            continue
        for expr in exprs:
            print(hashlib.new(algorithm, expr.encode()).hexdigest())
    return EXIT_ERROR if failed else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
