"""Overrides that protect the tired (issue 20, points 3 and 4): a typo in the year is not a year-long
override, and an override that shadows another says so."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, UTC
from .e2e import NUMBER, B, C, write_config


def forwardd(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forwardd", "override", args[0], "--config", str(cfg), *args[1:]],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "USER": "nightshift", "SUDO_USER": ""})


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    return write_config(tmp_path, "simulated", [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=6), "Alice")])


def listed(cfg: Path) -> list[dict]:
    return json.loads(forwardd(cfg, "list", "--json").stdout)


def test_a_typo_in_the_year_is_refused_unless_long_is_meant(cfg: Path) -> None:
    typo = (dt.datetime.now(UTC) + dt.timedelta(days=366)).strftime("%Y-%m-%d 09:00")
    r = forwardd(cfg, "add", NUMBER, "--to", "bob", "--until", typo, "--offline")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "overrides.max_length" in r.stderr and "7d" in r.stderr and "--long" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and listed(cfg) == []
    r = forwardd(cfg, "add", NUMBER, "--to", "bob", "--until", typo, "--offline", "--long")
    assert r.returncode == 0, r.stderr
    assert [o["to"] for o in listed(cfg)] == [B]


def test_max_length_is_a_config_key(cfg: Path) -> None:
    ten_days = (dt.datetime.now(UTC) + dt.timedelta(days=10)).isoformat(timespec="seconds")
    assert forwardd(cfg, "add", NUMBER, "--to", "bob", "--until", ten_days, "--offline").returncode == 1
    cfg.write_text(cfg.read_text() + '\n[overrides]\nmax_length = "14d"\n')
    r = forwardd(cfg, "add", NUMBER, "--to", "bob", "--until", ten_days, "--offline")
    assert r.returncode == 0, r.stderr
    cfg.write_text(cfg.read_text().replace('max_length = "14d"', 'max_length = "soon"'))
    r = forwardd(cfg, "add", NUMBER, "--to", "bob", "--until", "+1h", "--offline")
    assert r.returncode == 2 and "At 'overrides.max_length'" in r.stderr, r.stderr


def test_an_override_that_shadows_another_says_so_and_lists_it(cfg: Path) -> None:
    r = forwardd(cfg, "add", NUMBER, "--to", "bob", "--until", "+2h", "--offline")
    assert r.returncode == 0, r.stderr
    assert "shadows override" not in r.stdout
    r = forwardd(cfg, "add", NUMBER, "--to", "carol", "--until", "+1h", "--offline")
    assert r.returncode == 0, r.stderr
    assert "shadows override 1" in r.stdout, r.stdout
    assert f"Bob ({B})" in r.stdout and "the newest wins" in r.stdout
    assert "applies again" in r.stdout  # Bob's has an hour left after Carol's
    assert [o["to"] for o in listed(cfg)] == [B, C]
    # an override on another number, or one that does not overlap, shadows nothing
    r = forwardd(cfg, "add", NUMBER, "--to", "bob", "--from", "+3h", "--until", "+4h", "--offline")
    assert r.returncode == 0 and "shadows override" not in r.stdout, r.stdout
