"""Settings for `linkguard serve`, read once by the CLI.

Precedence (CONTRACT.md, "Configuration"), lowest first:
    defaults  <  --config FILE (TOML)  <  environment LINKGUARD_<SETTING>  <  command-line flags

    load_settings("serve.toml", {"LINKGUARD_PORT": "9000"}, {"host": "0.0.0.0"})
      -> Settings(host="0.0.0.0", port=9000, ...)

Nothing here reads the environment or the filesystem at import time: the caller passes `env`
(normally `os.environ`) and every path. Paths given in the TOML file are relative to that file;
paths from the environment or flags are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import secrets
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

ENV_PREFIX = "LINKGUARD_"
LOG_LEVELS = ("debug", "info", "warning", "error")
# Settings holding a filesystem path: resolved against the config file's directory.
_PATH_SETTINGS = frozenset({"lists", "admin_token_file", "shim_key_file",
                            "shim_previous_key_file"})
# The shim signs with HMAC-SHA256; a shorter key is too easy to guess (RFC 2104 section 3:
# "less than L bytes is strongly discouraged"; 16 characters is our floor, 32+ is better).
MIN_SHIM_KEY_CHARS = 16


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080  # 0 picks a free port (logged at start)
    workers: int = 1
    lists: str | None = None  # manifest; None: the CLI's default ($LINKGUARD_LISTS, else shipped)
    # The admin API is off unless a token is configured. repr=False: never print the secret.
    admin_token: str | None = field(default=None, repr=False)
    admin_token_file: str | None = None
    # The admin API on its own listener (e.g. 127.0.0.1:8081) instead of under /admin on the
    # public one; admin_host defaults to 127.0.0.1 once admin_port is set. 0 picks a free port.
    admin_host: str | None = None
    admin_port: int | None = None
    # Request limits. Bodies over max_body_bytes get 413, the others 422.
    max_body_bytes: int = 1 << 20
    max_text_chars: int = 65_536
    max_links_per_message: int = 200
    max_url_chars: int = 8192
    max_batch_messages: int = 1000
    max_batch_links: int = 10_000  # links found in a whole batch: bounds its cost (~50 us each)
    # Seconds.
    keepalive_timeout: float = 75.0  # idle keep-alive connections are closed after this
    drain_timeout: float = 30.0  # an old worker finishes its connections within this, then exits
    reload_timeout: float = 900.0  # a worker waits this long for the master to answer a reload
    worker_start_timeout: float = 60.0  # a new worker generation must be ready within this
    # Slow clients (slowloris): a request line and headers must arrive within header_timeout of
    # their first byte (or of the connection opening), a body within body_timeout (408), and a
    # response the client stops reading is dropped after send_timeout without progress.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    send_timeout: float = 30.0
    log_level: str = "info"
    access_log: bool = False  # one JSON line per request; off by default (hot path)
    # Link shim (the link shim and console section of README.md): /v1/rewrite wraps links in <public_base_url>/go?u=...&s=...
    # Unset: the origin the request came to (fine on one machine; set it behind a proxy).
    public_base_url: str | None = None
    # The HMAC key signing /go links, and the one it replaced (still accepted, for rotation).
    # No key and no file: a random key made at start, shared by the workers; links signed with
    # it stop verifying when the service restarts.
    shim_key: str | None = field(default=None, repr=False)
    shim_key_file: str | None = None
    shim_previous_key: str | None = field(default=None, repr=False)
    shim_previous_key_file: str | None = None
    # Clicks on one link by one client address: more than shim_burst_clicks within
    # shim_burst_seconds is a 429 (Mimecast's 50 in 5 s). Counted per process, for at most
    # shim_burst_max_links (link, client) pairs (LRU).
    shim_burst_clicks: int = 50
    shim_burst_seconds: float = 5.0
    shim_burst_max_links: int = 10_000
    # Admin console (/admin/ui): a login lasts this long.
    console_session_seconds: float = 3600.0
    # Not a setting (no TOML, no environment): made by load_settings, once, in the master before
    # it forks, so every worker of every generation shares it. Keys the console's session cookies
    # and the default shim key. None (a Settings made by hand): each app makes its own.
    instance_secret: bytes | None = field(default=None, repr=False, compare=False,
                                          metadata={"internal": True})
    # Not a setting either: the secret files' contents, read once by load_settings in the master.
    # A worker forked later (a crash, a reload) uses them, not the files: a file deleted or
    # changed after start neither stops a worker from starting nor gives workers two tokens.
    file_secrets: dict[str, str] | None = field(default=None, repr=False, compare=False,
                                               metadata={"internal": True})

    def _secret(self, value: str | None, file_setting: str) -> str | None:
        path = getattr(self, file_setting)
        if value or not path:
            return value or None
        if self.file_secrets is not None and file_setting in self.file_secrets:
            return self.file_secrets[file_setting]
        return _read_token_file(path, file_setting)

    def resolved_admin_token(self) -> str | None:
        """The token itself: `admin_token`, else the contents of `admin_token_file`."""
        return self._secret(self.admin_token, "admin_token_file")

    def resolved_shim_keys(self) -> tuple[str | None, str | None]:
        """(current, previous) shim keys: each setting, else its file's contents, else None."""
        return (self._secret(self.shim_key, "shim_key_file"),
                self._secret(self.shim_previous_key, "shim_previous_key_file"))

    def admin_listen_host(self) -> str:
        """Where the admin listener binds when admin_port is set: loopback unless told."""
        return self.admin_host or "127.0.0.1"

    def public(self) -> dict[str, Any]:
        """Everything but the secret, for the startup log line."""
        out = dataclasses.asdict(self)
        out["admin_token"] = "<set>" if self.admin_token else None
        for name in ("shim_key", "shim_previous_key"):
            out[name] = "<set>" if out.get(name) else None
        out.pop("instance_secret", None)
        out.pop("file_secrets", None)
        return out


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if not f.metadata.get("internal")}
_TYPES: dict[str, Any] = typing.get_type_hints(Settings)


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Merge the four layers and validate. Raises ConfigError with a message naming the setting."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_read_toml(Path(config_file)))
    for name in _FIELDS:
        raw = (env or {}).get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _from_env(name, raw)
    for name, value in (overrides or {}).items():
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:  # argparse leaves flags that were not given as None
            values[name] = _check_type(name, value, "command line")
    values["instance_secret"] = secrets.token_bytes(32)
    settings = Settings(**values)
    _validate(settings)
    files = {name: _read_token_file(path, name) for name in _SECRET_FILES
             if (path := getattr(settings, name))}
    return dataclasses.replace(settings, file_secrets=files)


_SECRET_FILES = ("admin_token_file", "shim_key_file", "shim_previous_key_file")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _FIELDS:
            raise ConfigError(f"{path}: unknown setting {name!r} "
                              f"(known: {', '.join(sorted(_FIELDS))})")
        value = _check_type(name, value, str(path))
        if name in _PATH_SETTINGS and isinstance(value, str):
            value = str(path.parent / value)
        out[name] = value
    return out


def _from_env(name: str, raw: str) -> Any:
    where = ENV_PREFIX + name.upper()
    kind = _base_type(name)
    if raw == "" and _optional(name):
        return None  # LINKGUARD_ADMIN_TOKEN= unsets it
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(raw.strip())
        if kind is float:
            return float(raw.strip())
    except ValueError:
        raise ConfigError(f"{where}: expected {kind.__name__}, got {raw!r}") from None
    return raw


def _check_type(name: str, value: Any, where: str) -> Any:
    kind = _base_type(name)
    if value is None and _optional(name):
        return None
    if kind is str and isinstance(value, PurePath):  # argparse type=Path
        value = str(value)
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"{where}: {name}: expected {kind.__name__}, "
                          f"got {type(value).__name__} {value!r}")
    return value


def _base_type(name: str) -> type:
    hint = _TYPES[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint  # type: ignore[no-any-return]


def _optional(name: str) -> bool:
    return type(None) in typing.get_args(_TYPES[name])


def _validate(s: Settings) -> None:
    if not 0 <= s.port <= 65535:
        raise ConfigError(f"port: must be 0..65535, got {s.port}")
    if not 1 <= s.workers <= 512:
        raise ConfigError(f"workers: must be 1..512, got {s.workers}")
    if not s.host:
        raise ConfigError("host: must not be empty")
    for name in ("max_body_bytes", "max_text_chars", "max_links_per_message", "max_url_chars",
                 "max_batch_messages", "max_batch_links"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name}: must be at least 1, got {getattr(s, name)}")
    from linkguard.extract import MAX_CANDIDATES
    if s.max_links_per_message >= MAX_CANDIDATES:
        # Extraction stops at MAX_CANDIDATES links; a higher limit would let the links after
        # them through unchecked instead of refusing the message.
        raise ConfigError(f"max_links_per_message: must be below {MAX_CANDIDATES}, "
                          f"got {s.max_links_per_message}")
    for name in ("keepalive_timeout", "drain_timeout", "reload_timeout", "worker_start_timeout",
                 "header_timeout", "body_timeout", "send_timeout"):
        value = getattr(s, name)
        if not value > 0 or value == float("inf"):
            raise ConfigError(f"{name}: must be a positive number of seconds, got {value}")
    if s.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"log_level: must be one of {', '.join(LOG_LEVELS)}, got {s.log_level!r}")
    if s.admin_token and s.admin_token_file:
        raise ConfigError("admin_token and admin_token_file are both set; set one")
    if s.admin_token is not None and not s.admin_token.strip():
        raise ConfigError("admin_token: must not be blank")
    if s.admin_token_file:
        _read_token_file(s.admin_token_file)  # fail at start, not at the first admin request
    _validate_admin_listener(s)
    _validate_shim(s)


def _validate_admin_listener(s: Settings) -> None:
    if s.admin_port is None:
        if s.admin_host is not None:
            raise ConfigError("admin_host: set admin_port too (the admin API's own listener)")
        return
    if not 0 <= s.admin_port <= 65535:
        raise ConfigError(f"admin_port: must be 0..65535, got {s.admin_port}")
    if s.admin_host is not None and not s.admin_host:
        raise ConfigError("admin_host: must not be empty")
    if s.admin_port == s.port != 0 and s.admin_listen_host() == s.host:
        raise ConfigError(f"admin_port: {s.admin_port} is the public listener's port")


def _validate_shim(s: Settings) -> None:
    for name in ("shim_key", "shim_previous_key"):
        if getattr(s, name) and getattr(s, name + "_file"):
            raise ConfigError(f"{name} and {name}_file are both set; set one")
    current, previous = s.resolved_shim_keys()  # reads the files: fail at start
    for name, key in (("shim_key", current), ("shim_previous_key", previous)):
        if key is not None and len(key.strip()) < MIN_SHIM_KEY_CHARS:
            raise ConfigError(f"{name}: must be at least {MIN_SHIM_KEY_CHARS} characters "
                              "(32 random bytes, base64, is a good key)")
    if previous is not None and current is None:
        raise ConfigError("shim_previous_key: set only beside shim_key (a rotation)")
    for name in ("shim_burst_clicks", "shim_burst_max_links"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name}: must be at least 1, got {getattr(s, name)}")
    for name in ("shim_burst_seconds", "console_session_seconds"):
        value = getattr(s, name)
        if not value > 0 or value == float("inf"):
            raise ConfigError(f"{name}: must be a positive number of seconds, got {value}")
    if s.public_base_url is not None:
        _check_base_url(s.public_base_url)


def _check_base_url(url: str) -> None:
    """An absolute http(s) origin, optionally with a path prefix: links become <url>/go?..."""
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or parts.query or parts.fragment or "@" in parts.netloc
            or any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7e for c in url)):
        raise ConfigError(f"public_base_url: expected an http(s) URL like "
                          f"https://l.example.com, got {url!r}")


def _read_token_file(path: str, setting: str = "admin_token_file") -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{setting}: cannot read {path}: {e}") from None
    if not token:
        raise ConfigError(f"{setting}: {path} is empty")
    return token
