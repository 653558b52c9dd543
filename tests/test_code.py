"""The package type-checks (mypy) and lints clean (ruff), so that neither rots."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_mypy_is_clean_on_the_package() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "forwardd"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_is_clean() -> None:
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "forwardd", "tests", "benchmarks"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
