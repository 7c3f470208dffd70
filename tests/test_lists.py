"""The manifest and list parser: every bad line is `file:line: reason`; nothing is lost."""

from __future__ import annotations

import hashlib
import shutil
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkguard import Engine, psl, urls
from linkguard.lists import (
    EntryError,
    Format,
    ListLoadError,
    ListSpec,
    domain_key,
    parse_line,
    read_manifest,
)
from linkguard.verdict import Action
from tests.corpora import CORPORA, ROOT


def write_manifest(tmp_path: Path, body: str, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "lists.toml").write_text(body, encoding="utf-8")
    return tmp_path / "lists.toml"


LIST = '[[list]]\nname = "{name}"\npath = "{name}.txt"\nformat = "{fmt}"\naction = "block"\n'


def test_shipped_lists_load_clean() -> None:
    engine = Engine.from_manifest(ROOT / "lists" / "lists.toml")
    assert {info.format for info in engine.lists} == {f.value for f in Format}
    assert all(info.entries > 0 and info.skipped == 0 for info in engine.lists)


@pytest.mark.parametrize(("body", "reason"), [
    ('[[list]]\nname = "Bad Name"\npath = "a.txt"\nformat = "domains"\naction = "block"\n',
     "lists.toml:2: name must match"),
    ('[[list]]\nname = "a"\npath = "a.txt"\nformat = "domainz"\naction = "block"\n',
     "lists.toml:2: list 'a': format must be one of"),
    ('[[list]]\nname = "a"\npath = "a.txt"\nformat = "domains"\naction = "deny"\n',
     "lists.toml:2: list 'a': action must be one of"),
    ('[[list]]\nname = "a"\npath = "a.txt"\nformat = "domains"\naction = "block"\nmatch = "exact"\n',
     "lists.toml:2: list 'a': match applies to urls lists only"),
    ('[[list]]\nname = "a"\npath = "a.txt"\nformat = "domains"\naction = "block"\noveridable = false\n',
     "lists.toml:2: unknown setting overidable"),
    ('[[list]]\nname = "a"\npath = "a.txt"\nformat = "domains"\naction = "block"\n' * 2,
     "lists.toml:7: duplicate list name 'a'"),
    ('[[list]\nname = "a"\n', "lists.toml:1: "),
    ('', "lists.toml:1: no [[list]] tables"),
    ('list = [1]\n', "lists.toml:1: list must be [[list]] tables, not 1"),
    ('list = ["x"]\n', "lists.toml:1: list must be [[list]] tables, not 'x'"),
])
def test_manifest_errors_name_file_and_line(tmp_path: Path, body: str, reason: str) -> None:
    with pytest.raises(ListLoadError) as e:
        read_manifest(write_manifest(tmp_path, body, {}))
    assert any(reason in err and err.startswith(str(tmp_path)) for err in e.value.errors), e.value


@pytest.mark.parametrize(("fmt", "line", "reason"), [
    ("domains", "evil.com/path", "not a host name"),
    ("domains", "*.evil.com", "wildcards are not supported"),
    ("domains", "evil.*", "wildcards are not supported"),
    ("domains", "*evil.com", "wildcards are not supported"),
    ("domains", "||*.evil.com^", "wildcards are not supported"),
    ("domains", "%2a.evil.com", "wildcards are not supported"),
    ("domains", "evil.%2A", "wildcards are not supported"),
    ("domains", "\uff0a.evil.com", "wildcards are not supported"),
    ("domains", "||evil.com", "only plain ||host^"),
    ("domains", "||evil.com^$third-party", "only plain ||host^"),
    ("domains", "@@||good.com^", "not a host rule"),
    ("domains", "example.com##.ad", "not a host rule"),
    ("domains", "1.2.3.4 evil.com", "must start with a sink address"),
    ("domains", "ev il", "must start with a sink address"),
    ("domains", "a<b.com", "not a valid host name"),
    ("domains", "co.uk", "'co.uk' is a public suffix"),
    ("domains", "||COM^", "'com' is a public suffix"),
    ("domains", "0.0.0.0 xn--fiqs8s", "'xn--fiqs8s' is a public suffix"),
    ("domains", "http://evil.com", "not a host name"),
    ("urls", "http://a b.com/x", "cannot contain white space"),
    ("urls", "http://ho%23st/x", "not a URL a browser would open"),
    ("urls", "javascript:alert(1)", "not a URL a browser would open"),
    ("urls", "*.site.net/x", "wildcards are not supported"),
    ("urls", "site.net" + "/s" * 64, "deeper than 63 path segments"),
    ("hashes", "abc", "not a sha256 hex digest"),
    ("hashes", "g" * 64, "not a sha256 hex digest"),
    ("domains", "x" * 9000, "line longer than"),
    ("domains", "evil\x00.com", "NUL"),
    ("domains", "evil\udc80.com", "not valid UTF-8"),
])
def test_bad_lines_fail_strict_lists_with_file_line_reason(
        tmp_path: Path, fmt: str, line: str, reason: str) -> None:
    good = {"domains": "ok.com", "urls": "ok.com/x", "hashes": "0" * 64}[fmt]
    path = tmp_path / "l.txt"
    path.write_bytes(f"# header\n{good}\n\n{line}\n".encode("utf-8", "surrogateescape"))
    manifest = write_manifest(tmp_path, LIST.format(name="l", fmt=fmt), {})
    with pytest.raises(ListLoadError) as e:
        Engine.from_manifest(manifest)
    assert len(e.value.errors) == 1
    assert e.value.errors[0].startswith(f"{path}:4: ") and reason in e.value.errors[0]
    assert e.value.by_list == {"l": list(e.value.errors)}


@pytest.mark.parametrize(("fmt", "first", "url"), [
    ("domains", "# a comment", "http://evil.com/"),
    ("domains", "evil.com", "http://evil.com/"),
    ("urls", "# a comment", "http://evil.com/x"),
    ("keywords", "# a comment", "http://x.com/evil.com"),
    ("keywords", "casino", "http://x.com/casino"),
    ("hashes", "# a comment", "http://evil.com/"),
])
def test_a_byte_order_mark_is_no_part_of_the_first_line(tmp_path: Path, fmt: str, first: str,
                                                         url: str) -> None:
    """Windows editors start a UTF-8 file with U+FEFF: a comment must stay a comment, and a
    first term or host must still match."""
    entry = {"hashes": hashlib.sha256(b"evil.com/").hexdigest(), "urls": "evil.com/x"}.get(
        fmt, "evil.com")
    manifest = write_manifest(tmp_path, LIST.format(name="l", fmt=fmt),
                              {"l.txt": f"\ufeff{first}\n{entry}\n"})
    engine = Engine.from_manifest(manifest)
    assert engine.check_url(url).action is Action.BLOCK
    assert engine.lists[0].entries == (1 if first.startswith("#") else 2)


def test_a_manifest_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "\ufeff" + LIST.format(name="l", fmt="domains"),
                              {"l.txt": "evil.com\n"})
    assert Engine.from_manifest(manifest).check_url("http://evil.com/").action is Action.BLOCK


def test_non_strict_list_skips_and_counts_bad_lines(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, LIST.format(name="l", fmt="domains") + "strict = false\n",
                              {"l.txt": "a.com\nbad/line\n*.b.com\nc.com\n"})
    (info,) = Engine.from_manifest(manifest).lists
    assert (info.entries, info.skipped) == (2, 2)


def test_every_bad_line_of_every_list_is_reported(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path, LIST.format(name="a", fmt="domains") + LIST.format(name="b", fmt="hashes"),
        {"a.txt": "x/y\nok.com\nz/w\n", "b.txt": "nothex\n"})
    with pytest.raises(ListLoadError) as e:
        Engine.from_manifest(manifest)
    assert [err.split(": ")[0] for err in e.value.errors] == [
        f"{tmp_path}/a.txt:1", f"{tmp_path}/a.txt:3", f"{tmp_path}/b.txt:1"]


def test_lists_read_on_two_cores_read_the_same(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """At the master's start-up big sets are read in a forked process as well
    (lists.load_lists): the lists, their order and every error are as one process reads them."""
    from linkguard import lists
    sent: list[tuple[list[str], Future[Any]]] = []  # the second process's lists, its answer

    class Pool(lists.ProcessPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            sent.append(([spec.name for spec in args[0]], super().submit(fn, *args, **kwargs)))
            return sent[-1][1]

    monkeypatch.setattr(lists, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(lists, "ProcessPoolExecutor", Pool)
    body = LIST.format(name="a", fmt="domains") + LIST.format(name="b", fmt="urls") + \
        LIST.format(name="c", fmt="keywords")
    files = {"a.txt": "".join(f"host{i}.example.com\n" for i in range(3000)),
             "b.txt": "# feed\nhttps://files.example.net/u/abc\nsite.org/a%20b/?q=1\n",
             "c.txt": "casino\n"}
    manifest = write_manifest(tmp_path, body, files)
    one = Engine.from_manifest(manifest)
    two = Engine.from_manifest(manifest, parallel=True)
    # All but the largest were read there, and came back (not read again here after a failure).
    assert [names for names, _ in sent] == [["b", "c"]] and sent[0][1].exception() is None
    assert [(p.spec, p.keys, p.entries, p.sha256) for p in two.parsed] == \
        [(p.spec, p.keys, p.entries, p.sha256) for p in one.parsed]
    assert two.version == one.version
    (tmp_path / "b.txt").write_text("a b\nhttps://ok.example/\n", encoding="utf-8")
    (tmp_path / "c.txt").write_text("", encoding="utf-8")
    (tmp_path / "a.txt").write_text(files["a.txt"] + "bad/line\n", encoding="utf-8")
    errors = []
    for parallel in (False, True):
        with pytest.raises(ListLoadError) as e:
            Engine.from_manifest(manifest, parallel=parallel)
        errors.append(e.value.by_list)
    assert errors[0] == errors[1] and list(errors[0]) == ["a", "b"], errors
    assert errors[0]["a"] == [f"{tmp_path}/a.txt:3001: not a host name: 'bad/line'"]


def test_missing_list_file_is_an_error(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, LIST.format(name="gone", fmt="domains"), {})
    with pytest.raises(ListLoadError, match=r"gone\.txt:0: cannot read list"):
        Engine.from_manifest(manifest)


@pytest.mark.parametrize(("sample", "fmt", "entries", "skipped"), [
    ("stevenblack-hosts.sample.txt", "domains", None, None),
    ("easylist-adservers.sample.txt", "domains", 27, 0),
    ("phishing-database-active-domains.sample.adblock", "domains", 26, 0),
    ("openphish-feed.format-sample.txt", "urls", 3, 0),
])
def test_real_list_samples_load(tmp_path: Path, sample: str, fmt: str,
                                entries: int | None, skipped: int | None) -> None:
    src = CORPORA / "list-formats" / sample
    if not src.exists():
        pytest.skip(f"{src} is not present")
    shutil.copy(src, tmp_path / "l.txt")
    body = f'[[list]]\nname = "l"\npath = "l.txt"\nformat = "{fmt}"\naction = "block"\nstrict = false\n'
    (info,) = Engine.from_manifest(write_manifest(tmp_path, body, {})).lists
    lines = [ln for ln in src.read_text().splitlines()
             if ln.strip() and not ln.startswith(("#", "!"))]
    assert info.entries > 0
    if entries is not None:
        assert (info.entries, info.skipped) == (entries, skipped)
    else:  # hosts: the localhost preamble is recognised, nothing else vanishes uncounted
        preamble = [ln for ln in lines if ln.split()[-1] in ("localhost", "localhost.localdomain",
                                                             "local", "broadcasthost")]
        assert info.entries + info.skipped == len(lines) - len(preamble)


DOMAIN_ISH = st.from_regex(r"[a-z0-9_-]{1,8}(\.[a-z0-9_-]{1,8}){0,3}", fullmatch=True)


@given(DOMAIN_ISH)
def test_domain_fast_path_agrees_with_the_canonicalizer(token: str) -> None:
    host = urls.canonical_host(token)
    try:
        key = domain_key(token)
    except EntryError:
        assert host is None or psl.is_public_suffix(host, private=False)
    else:
        assert key == host


@given(st.sampled_from(list(Format)), st.text(min_size=1))
def test_parse_line_raises_only_entry_errors(fmt: Format, line: str) -> None:
    spec = ListSpec("l", Path("l.txt"), fmt, Action.BLOCK, "c")
    try:
        parse_line(spec, line.strip() or "x")
    except EntryError:
        pass
