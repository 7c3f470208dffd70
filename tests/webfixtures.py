"""Small list sets for the web tests, written into a test's tmp_path (CONTRACT.md "Lists")."""

from __future__ import annotations

from pathlib import Path

from linkguard.config import Settings

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

MANIFEST = """\
[[list]]
name = "phishing"
path = "phishing.txt"
format = "domains"
action = "block"
category = "phishing"

[[list]]
name = "spam"
path = "spam.txt"
format = "keywords"
action = "flag"
category = "spam"
"""


def write_lists(directory: Path, phishing: str = "evil.example.com\n",
                spam: str = "casino\n") -> Path:
    """A manifest with a `domains` block list and a `keywords` flag list; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "phishing.txt").write_text(phishing, encoding="utf-8")
    (directory / "spam.txt").write_text(spam, encoding="utf-8")
    manifest = directory / "lists.toml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    return manifest


def settings_for(manifest: Path, **changes: object) -> Settings:
    values: dict[str, object] = {"lists": str(manifest), "admin_token": TOKEN}
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]
