"""Test-wide settings. Under CI (CI=true) hypothesis is derandomized: a CI run is repeatable, and
new inputs are explored by the developers' runs and by fuzz/run, not by chance in CI."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
