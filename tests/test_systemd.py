"""The unit file: clean under `systemd-analyze verify`, and hardened to an exposure of 2.0 or less."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

UNIT = ROOT / "systemd" / "forwardd.service"
pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def test_unit_verifies_clean(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's venv instead of /opt/forwardd
    unit = tmp_path / "forwardd.service"
    unit.write_text(UNIT.read_text().replace("/opt/forwardd", str(ROOT)))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if "forwardd.service" in line]
    assert r.returncode == 0 and problems == [], r.stdout + r.stderr


def test_exposure_is_at_most_2() -> None:
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for forwardd\.service: (\d+\.\d+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0


def test_every_loosened_setting_has_a_comment() -> None:
    lines = UNIT.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("RestrictAddressFamilies=", "IPAddressDeny=")):
            assert lines[i - 1].startswith("#") or lines[i - 2].startswith("#"), line
