"""Small list sets for the web tests, written into a test's tmp_path (CONTRACT.md "Lists")."""

from __future__ import annotations

from pathlib import Path

from linkguard.config import Settings

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

def manifest_entry(name: str, fmt: str, action: str, category: str) -> str:
    """One `[[list]]` table of a manifest, its file named after the list."""
    return (f'[[list]]\nname = "{name}"\npath = "{name}.txt"\nformat = "{fmt}"\n'
            f'action = "{action}"\ncategory = "{category}"\n')


MANIFEST = "\n".join([manifest_entry("phishing", "domains", "block", "phishing"),
                      manifest_entry("spam", "keywords", "flag", "spam")])


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
