"""One-off overrides from the command line (issue 12): the commands as processes, and a running daemon
applying them (and their end) within seconds."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from forwardd.aql.carrier import program_of
from forwardd.core.provider import target_at

from .conftest import ROOT, UTC
from .e2e import NUMBER, PASSWORD, A, B, FakeProc, journal, start_daemon, stop, wait_for, write_config


def forwardd(cfg: Path, *args: str, daemon: bool = False) -> subprocess.CompletedProcess[str]:
    words = 2 if args[0] == "override" else 1  # the command's own words, then --config
    if args[:2] == ("override", "add") and not daemon:
        args = (*args, "--offline")  # no daemon runs: store it for the next one (else add refuses, issue 20)
    return subprocess.run([sys.executable, "-m", "forwardd", *args[:words], "--config", str(cfg), *args[words:]],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "AQL_PW": PASSWORD, "USER": "nightshift", "SUDO_USER": ""})


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    return write_config(tmp_path, "simulated", [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=6), "Alice")])


def calls_go_to(fields: dict) -> str | None:
    """Where a call now goes under the account's settings (the provider model)."""
    return target_at(program_of(fields), dt.datetime.now(UTC), ZoneInfo("Europe/London"))


def added_id(r: subprocess.CompletedProcess[str]) -> int:
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().splitlines()[-1].split()[-1])  # the ID is the last word of the last line


def test_add_list_cancel_and_the_plan_shows_who_made_it(cfg: Path, tmp_path: Path) -> None:
    first = added_id(forwardd(cfg, "override", "add", NUMBER, "--to", "bob", "--until", "+2h",
                              "--note", "I'll take it until nine"))
    second = added_id(forwardd(cfg, "override", "add", NUMBER, "--to", "off", "--from", "+3h", "--until", "+4h",
                               "--note", "closed for lunch"))
    third = added_id(forwardd(cfg, "override", "add", NUMBER, "--to", "07700 900123", "--until", "+90m"))
    assert (first, second, third) == (1, 2, 3)
    listed = json.loads(forwardd(cfg, "override", "list", "--json").stdout)
    assert [(o["id"], o["to"], o["person"], o["by"]) for o in listed] == [
        (1, B, "bob", "nightshift"), (3, "07700900123", None, "nightshift"), (2, None, None, "nightshift")]
    assert listed[0]["note"] == "I'll take it until nine"
    plan = json.loads(forwardd(cfg, "plan", "--days", "1", "--json").stdout)
    now_seg = plan["numbers"][0]["timeline"][0]
    assert now_seg["forwardto"] == "07700900123"  # the newest override wins where they overlap
    reasons = {s["reason"] for s in plan["numbers"][0]["timeline"]}
    assert "override by nightshift: I'll take it until nine" in reasons and "override by nightshift" in reasons
    off = next(s for s in plan["numbers"][0]["timeline"] if s["reason"] == "override by nightshift: closed for lunch")
    assert off["forwardto"] is None and off["kind"] == "manual"
    r = forwardd(cfg, "override", "cancel", "3")
    assert r.returncode == 0 and "cancelled override 3" in r.stdout
    assert [o["id"] for o in json.loads(forwardd(cfg, "override", "list", "--json").stdout)] == [1, 2]
    assert len(json.loads(forwardd(cfg, "override", "list", "--all", "--json").stdout)) == 3
    kinds = [(e["kind"], e.get("by"), e.get("cancelled")) for e in journal(tmp_path) if e["kind"] == "override"]
    assert kinds == [("override", "nightshift", None)] * 3 + [("override", "nightshift", True)]
    reasons = [e["reason"] for e in journal(tmp_path) if e["kind"] == "override"]
    assert reasons[0] == "override by nightshift: I'll take it until nine"
    assert reasons[-1] == "override by nightshift (cancelled by nightshift)"


@pytest.mark.parametrize(("args", "message"), [
    (("999999", "--to", "bob", "--until", "+1h"), "is not a number in the config"),
    ((NUMBER, "--to", "robert", "--until", "+1h"), "is not a person in [people]"),
    ((NUMBER, "--to", "0906 123 4567", "--until", "+1h"), "does not match allowed_numbers"),
    ((NUMBER, "--to", "bob", "--from", "+2h", "--until", "+1h"), "is not after --from"),
    ((NUMBER, "--to", "bob", "--until", "2020-01-01 10:00"), "is in the past"),
    ((NUMBER, "--to", "bob", "--until", "soonish"), "--until 'soonish' is not a date or time"),
])
def test_mistakes_are_one_clear_line(cfg: Path, args: tuple[str, ...], message: str) -> None:
    r = forwardd(cfg, "override", "add", *args)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr


def test_cancel_of_an_unknown_id(cfg: Path) -> None:
    r = forwardd(cfg, "override", "cancel", "42")
    assert r.returncode == 1 and "there is no override 42" in r.stderr


def test_a_running_daemon_applies_an_override_and_its_end_within_seconds(tmp_path: Path, fake_proc: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=6), "Alice")])
    proc = start_daemon(cfg, tmp_path)
    state = lambda: fake_proc.get("state")[NUMBER]  # noqa: E731
    try:
        wait_for(lambda: state()["forwardto"] == A)
        until = (dt.datetime.now(UTC) + dt.timedelta(seconds=15)).replace(microsecond=0)
        t = time.monotonic()
        added_id(forwardd(cfg, "override", "add", NUMBER, "--to", "bob", "--until", until.isoformat(), daemon=True))
        wait_for(lambda: state()["forwardto"] == B, timeout=5)
        assert time.monotonic() - t < 5 + 1.5  # within 5 s of the command (its own start-up included)
        wait_for(lambda: state()["forwardto"] == A, timeout=25)
        back = [dt.datetime.fromisoformat(h["at"]) for h in fake_proc.get("history")
                if h["fields"]["forwardto"] == A and dt.datetime.fromisoformat(h["at"]) >= until]
        assert back and (back[0] - until).total_seconds() < 5  # the end, within 5 s of --until
        # off, then cancelled: forwarding stops, then the calendars take over again
        off = added_id(forwardd(cfg, "override", "add", NUMBER, "--to", "off", "--until", "+1h", daemon=True))
        wait_for(lambda: calls_go_to(state()) is None, timeout=5)  # (the program may pre-arm its end)
        assert forwardd(cfg, "override", "cancel", str(off)).returncode == 0
        wait_for(lambda: calls_go_to(state()) == A, timeout=5)
    finally:
        assert stop(proc) == 0
