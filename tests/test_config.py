"""Settings: defaults < TOML file < LINKGUARD_* environment < flags; clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from linkguard.config import ConfigError, Settings, load_settings


def test_defaults() -> None:
    s = load_settings(None, {}, {})
    assert s == Settings()
    assert (s.host, s.port, s.workers) == ("127.0.0.1", 8080, 1)
    assert s.max_body_bytes == 1 << 20 and s.admin_token is None
    assert s.resolved_admin_token() is None


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('host = "0.0.0.0"\nport = 9000\nworkers = 3\nmax_text_chars = 10\n'
                      'drain_timeout = 5\nlists = "mylists/lists.toml"\n')
    env = {"LINKGUARD_PORT": "9001", "LINKGUARD_WORKERS": "4", "LINKGUARD_ACCESS_LOG": "yes",
           "LINKGUARD_UNRELATED": "ignored", "PATH": "/bin"}
    s = load_settings(config, env, {"workers": 5, "host": None})
    assert s.host == "0.0.0.0"          # file
    assert s.port == 9001               # env over file
    assert s.workers == 5               # flag over env
    assert s.max_text_chars == 10 and s.access_log is True
    assert s.drain_timeout == 5.0 and isinstance(s.drain_timeout, float)
    assert s.lists == str(tmp_path / "mylists/lists.toml")  # relative to the config file


def test_env_lists_and_token() -> None:
    s = load_settings(None, {"LINKGUARD_LISTS": "x/lists.toml", "LINKGUARD_ADMIN_TOKEN": "t0k"})
    assert s.lists == "x/lists.toml" and s.resolved_admin_token() == "t0k"
    assert "t0k" not in repr(s) and "t0k" not in str(s.public())
    assert load_settings(None, {"LINKGUARD_ADMIN_TOKEN": ""}).admin_token is None


def test_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("  secret\n")
    s = load_settings(None, {"LINKGUARD_ADMIN_TOKEN_FILE": str(token)})
    assert s.resolved_admin_token() == "secret"


def test_nothing_read_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINKGUARD_PORT", "1234")
    assert load_settings(None, {}, {}).port == 8080  # only the env it is given


@pytest.mark.parametrize("toml, message", [
    ("port = \"80\"", "port: expected int"),
    ("prot = 80", "unknown setting 'prot'"),
    ("port = 70000", "port: must be 0..65535"),
    ("workers = 0", "workers: must be 1..512"),
    ("access_log = 1", "access_log: expected bool"),
    ("max_body_bytes = 0", "max_body_bytes: must be at least 1"),
    ("drain_timeout = -1", "drain_timeout: must be a positive"),
    ("drain_timeout = nan", "drain_timeout: must be a positive"),
    ("log_level = \"loud\"", "log_level: must be one of"),
    ("admin_token = \"a\"\nadmin_token_file = \"f\"", "both set"),
    ("admin_token = \"  \"", "admin_token: must not be blank"),
    ("admin_token_file = \"missing\"", "admin_token_file: cannot read"),
    ("port = [", "invalid TOML"),
    ("workers = true", "workers: expected int"),
])
def test_bad_file(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, {}, {})


def test_empty_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_settings(None, {"LINKGUARD_ADMIN_TOKEN_FILE": str(tmp_path / "token")})


@pytest.mark.parametrize("env, message", [
    ({"LINKGUARD_PORT": "http"}, "LINKGUARD_PORT: expected int"),
    ({"LINKGUARD_ACCESS_LOG": "maybe"}, "LINKGUARD_ACCESS_LOG: expected bool"),
    ({"LINKGUARD_DRAIN_TIMEOUT": "soon"}, "LINKGUARD_DRAIN_TIMEOUT: expected float"),
    ({"LINKGUARD_WORKERS": "-2"}, "workers: must be 1..512"),
])
def test_bad_env(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, env, {})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.toml", {}, {})


def test_serve_exits_2_on_bad_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from linkguard.web.server import run
    monkeypatch.setenv("LINKGUARD_PORT", "not-a-port")
    args = argparse.Namespace(lists=None, host=None, port=None, workers=None, config=None)
    assert run(args) == 2
    assert "LINKGUARD_PORT: expected int" in capsys.readouterr().err
    monkeypatch.delenv("LINKGUARD_PORT")
    (tmp_path / "c.toml").write_text("workers = 0\n")
    args.config = tmp_path / "c.toml"
    assert run(args) == 2


def test_secret_files_are_read_once(tmp_path: Path) -> None:
    """Every worker, forked at any time, has the secrets the master read at start: a file
    changed or deleted later changes nothing until a restart (README: rotating the key)."""
    token, key = tmp_path / "token", tmp_path / "shim-key"
    token.write_text("admin-token-one\n")
    key.write_text("k" * 32)
    s = load_settings(env={"LINKGUARD_ADMIN_TOKEN_FILE": str(token),
                           "LINKGUARD_SHIM_KEY_FILE": str(key)})
    token.write_text("admin-token-two\n")
    key.unlink()
    assert s.resolved_admin_token() == "admin-token-one"
    assert s.resolved_shim_keys() == ("k" * 32, None)
    assert "admin-token-one" not in repr(s) and "file_secrets" not in s.public()
