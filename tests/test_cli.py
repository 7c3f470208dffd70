"""The command line, run as a user runs it: `python -m linkguard ...`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.corpora import ROOT

SHIPPED = ROOT / "lists" / "lists.toml"


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None,
        cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "LINKGUARD_LISTS"} | (env or {})
    return subprocess.run([sys.executable, "-m", "linkguard", *args], input=stdin, text=True,
                          capture_output=True, env=full_env, cwd=cwd, timeout=60, check=False)


def test_check_exit_status_and_output() -> None:
    assert run("check", "hello example.org").returncode == 0
    r = run("check", "hello", "see phish.example.com/x")
    assert r.returncode == 1
    assert r.stdout.splitlines()[0] == "allow\thello"
    assert r.stdout.splitlines()[1] == "block\tsee phish.example.com/x"
    assert "phishing (demo-phishing)" in r.stdout
    assert run("check", "free-crypto-giveaway.example.org").returncode == 1  # flag


def test_check_json_reads_stdin_lines() -> None:
    r = run("check", "--json", stdin="ok\nhxxp://phish[.]example[.]com\n")
    first, second = (json.loads(line) for line in r.stdout.splitlines())
    assert first == {"verdict": "allow", "links": [], "lists_version": first["lists_version"]}
    assert second["verdict"] == "block" and second["links"][0]["lists"] == ["demo-phishing"]
    assert second["links"][0]["start"] == 0 and second["links"][0]["end_utf16"] == 28
    assert "phish.example.com\n" not in r.stdout  # verdicts never quote list entries
    assert r.returncode == 1


def test_lists_flag_env_and_default(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("only-here.example\n")
    (tmp_path / "m.toml").write_text('[[list]]\nname = "l"\npath = "l.txt"\n'
                                     'format = "domains"\naction = "block"\n')
    assert run("check", "--lists", str(tmp_path / "m.toml"), "http://only-here.example/") \
        .returncode == 1
    assert run("check", "http://only-here.example/",
               env={"LINKGUARD_LISTS": str(tmp_path / "m.toml")}).returncode == 1
    # the shipped lists, from another working directory too
    assert run("check", "phish.example.com", cwd=tmp_path).returncode == 1


def test_an_installed_package_serves_its_shipped_lists(tmp_path: Path) -> None:
    """A wheel (what `pip install .` and an index install) holds the demo lists and the hot path
    compiled (setup.py), and the CLI finds the lists from any working directory, with no source
    tree around."""
    src, wheels, target = tmp_path / "src", tmp_path / "wheels", tmp_path / "site"
    # From a copy of the sources alone: a build/ or egg-info left by an earlier build would
    # bring files that the package data settings leave out, and so would an editable install's
    # compiled modules.
    shutil.copytree(ROOT / "linkguard", src / "linkguard",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("LINKGUARD_LISTS", "LINKGUARD_PURE")}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(src)], check=True, capture_output=True, timeout=900, env=env)
    [wheel] = wheels.glob("linkguard-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    env["PYTHONPATH"] = str(target)
    r = subprocess.run([sys.executable, "-c", ("import linkguard, sys; print(linkguard.__file__,"
                        " linkguard.COMPILED); from linkguard.cli import main;"
                        " sys.exit(main(sys.argv[1:]))"),
                        "check", "phish.example.com"], cwd=tmp_path, env=env, text=True,
                       capture_output=True, timeout=60, check=False)
    assert r.stdout.startswith(f"{target / 'linkguard'}/__init__.py True\n"), r.stdout + r.stderr
    assert r.returncode == 1, r.stdout + r.stderr


def test_list_errors_exit_2(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text('[[list]]\nname = "l"\npath = "missing.txt"\n'
                                     'format = "domains"\naction = "block"\n')
    r = run("check", "--lists", str(tmp_path / "m.toml"), "x")
    assert r.returncode == 2 and "missing.txt:0: cannot read list" in r.stderr
    assert run("check", "--bogus").returncode == 2


def test_explain() -> None:
    r = run("explain", "http://login-verify.example.net\\@good.example/")
    out = json.loads(r.stdout)
    assert out["canonical"] == "http://login-verify.example.net/@good.example/"
    assert out["matches"][0]["list"] == "demo-phishing" and out["matches"][0]["line"] == 3


def test_lists_validate(tmp_path: Path) -> None:
    r = run("lists", "validate", str(SHIPPED))
    assert r.returncode == 0 and "demo-phishing: domains, 5 entries, 0 bad lines" in r.stdout
    (tmp_path / "l.txt").write_text("good.com\nbad/x\n")
    (tmp_path / "s.txt").write_text("fine.com\n*.skipped.com\n")
    (tmp_path / "m.toml").write_text(
        '[[list]]\nname = "l"\npath = "l.txt"\nformat = "domains"\naction = "block"\n'
        '[[list]]\nname = "s"\npath = "s.txt"\nformat = "domains"\naction = "block"\n'
        'strict = false\n')
    r = run("lists", "validate", str(tmp_path / "m.toml"))
    assert r.returncode == 2
    assert f"{tmp_path}/l.txt:2: not a host name: 'bad/x'" in r.stdout
    assert f"{tmp_path}/s.txt:2: wildcards are not supported" in r.stdout


def test_lists_hash_refuses_what_a_plaintext_list_refuses(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("evil.com\nco.uk\n*.evil.org\nhttp://co.uk/\nco.uk/x\n*.site.net/x\n")
    r = run("lists", "hash", str(plain))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"{plain}:2: 'co.uk' is a public suffix: it would match every site under it",
        f"{plain}:3: wildcards are not supported (an entry already covers every subdomain)",
        f"{plain}:4: 'co.uk' is a public suffix",
        f"{plain}:6: wildcards are not supported"]
    digests = [line for line in r.stdout.splitlines() if not line.startswith("#")]
    assert digests == [hashlib.sha256(e.encode()).hexdigest()
                       for e in ("evil.com/", "co.uk/x", "co.uk/x/")]


def test_lists_hash_exact_pages(tmp_path: Path) -> None:
    """--exact: the page, not below it; one written with a trailing '/' is found so too."""
    (tmp_path / "plain.txt").write_text("site.net/gallery/77\nfiles.example/v/abc/\n")
    r = run("lists", "hash", "--exact", str(tmp_path / "plain.txt"))
    assert r.returncode == 0
    (tmp_path / "hashed.txt").write_text(r.stdout)
    (tmp_path / "m.toml").write_text('[[list]]\nname = "h"\npath = "hashed.txt"\n'
                                     'format = "hashes"\naction = "block"\n')
    m = str(tmp_path / "m.toml")
    for url, status in [("http://site.net/gallery/77", 1), ("http://site.net/gallery/77/x", 0),
                        ("http://files.example/v/abc/", 1), ("http://files.example/v/abc", 1)]:
        assert run("check", "--lists", m, url).returncode == status, url


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_lists_hash_round_trip(tmp_path: Path, algorithm: str) -> None:
    (tmp_path / "plain.txt").write_text("evil.com\n||ads.example^\nfiles.example/u/abc\n"
                                        "files.example/v/abc/\nphish.example/login.php?\n")
    r = run("lists", "hash", "--hash", algorithm, str(tmp_path / "plain.txt"))
    assert r.returncode == 0
    (tmp_path / "hashed.txt").write_text(r.stdout)
    (tmp_path / "m.toml").write_text(f'[[list]]\nname = "h"\npath = "hashed.txt"\n'
                                     f'format = "hashes"\nhash = "{algorithm}"\naction = "block"\n')
    m = str(tmp_path / "m.toml")
    for url, status in [("http://a.evil.com/x", 1), ("http://notevil.com/", 0),
                        ("http://ads.example/", 1), ("http://files.example/u/abc", 1),
                        ("http://files.example/u/abc/d", 1), ("http://files.example/u/abcd", 0),
                        # a trailing '/' and an empty query are not significant, as in a urls list
                        ("http://files.example/v/abc", 1), ("http://files.example/v/abc/d", 1),
                        ("http://phish.example/login.php", 1),
                        ("http://phish.example/login.php?", 1)]:
        assert run("check", "--lists", m, url).returncode == status, url


@pytest.mark.parametrize("args", [["explain", "https://phish.example.com/x"],
                                  ["check", "--json"], ["check"]], ids=" ".join)
def test_reader_gone_stops_quietly(args: list[str]) -> None:
    """`linkguard explain URL | head -1`: the reader closes the pipe early; the command stops with
    the status of one killed by SIGPIPE, and no traceback."""
    env = {k: v for k, v in os.environ.items() if k != "LINKGUARD_LISTS"}
    proc = subprocess.Popen([sys.executable, "-m", "linkguard", *args], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    try:
        proc.stdin.write(b"see phish.example.com now\n" * 20_000)
        proc.stdin.close()
    except BrokenPipeError:  # it may stop before reading all of stdin
        pass
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert b"Traceback" not in err and b"Exception ignored" not in err
