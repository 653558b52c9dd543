"""Helpers for the end-to-end tests: the fake aql server and forwardd as processes, generated rotas,
and reading what happened (the fake's history, the journal)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

from forwardd.aql.carrier import program_of
from forwardd.core.provider import Program, target_at
from forwardd.core.timeline import Segment

from .conftest import ROOT, UTC

A, B, C = "07700900001", "07700900002", "07700900003"
PASSWORD = "e2e-Secret-Pa55"
NUMBER = "606309"


class FakeProc:
    def __init__(self, tmp: Path, numbers: str = f"{NUMBER},606310", password: str = PASSWORD,
                 username: str = "acme") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forwardd", "fake-aql", "--port", "0", "--numbers", numbers,
             "--username", username, "--password-env", "FAKE_PW"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
            env={**os.environ, "FAKE_PW": password})
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        info = json.loads(line)
        self.url = info["url"]
        self.base = self.url.rsplit("/", 2)[0]

    def get(self, what: str):  # noqa: ANN201
        with urllib.request.urlopen(f"{self.base}/_fake/{what}", timeout=5) as r:
            return json.load(r)

    def post(self, what: str, data: dict) -> None:
        req = urllib.request.Request(f"{self.base}/_fake/{what}", data=json.dumps(data).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def ics(events: list[tuple[dt.datetime, dt.datetime, str]]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//forwardd e2e//EN"]
    for i, (a, b, who) in enumerate(events):
        lines += ["BEGIN:VEVENT", f"UID:e2e-{i}", "DTSTAMP:20260101T000000Z",
                  f"DTSTART:{a:%Y%m%dT%H%M%SZ}", f"DTEND:{b:%Y%m%dT%H%M%SZ}", f"SUMMARY:On call: {who}", "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


def write_config(tmp: Path, url: str, events: list, extra: str = "", on_drift: str = "restore") -> Path:
    (tmp / "rota.ics").write_text(ics(events))
    cfg = tmp / "forwardd.toml"
    cfg.write_text(f"""
timezone = "Europe/London"
state_dir = "{tmp / 'state'}"
on_drift = "{on_drift}"
[aql]
url = "{url}"
username = "acme"
password_env = "AQL_PW"
min_slack = "1s"
[people]
alice = "{A}"
bob = "{B}"
carol = "{C}"
[calendars]
rota = {{ source = "rota.ics", refresh = "1s" }}
[[numbers]]
voipnumber = "{NUMBER}"
rota = "rota"
fallback = "none"
[daemon]
drift_check_every = "1m"
{extra}
""")
    return cfg


def start_daemon(cfg: Path, tmp: Path, env: dict[str, str] | None = None, name: str = "daemon") -> subprocess.Popen:
    log = open(tmp / f"{name}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "forwardd", "run", "--config", str(cfg)], stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "AQL_PW": PASSWORD, **(env or {})})


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(10)


def sleep_until(t: dt.datetime) -> None:
    delay = (t - dt.datetime.now(UTC)).total_seconds()
    if delay > 0:
        time.sleep(delay)


def applied_programs(history: list[dict]) -> list[tuple[dt.datetime, Program]]:
    return [(dt.datetime.fromisoformat(h["at"]), program_of(h["fields"]))
            for h in history if h["voipnumber"] == NUMBER]


def misrouted_samples(history: list[dict], timeline: list[Segment], step: float = 0.1,
                      skip: list[tuple[dt.datetime, float]] = ()) -> list[dt.datetime]:
    """Instants (every ``step`` s) at which the fake, under the settings it really held, disagrees
    with the timeline; ``skip`` exempts the first ``s`` seconds after an exact hand-over."""
    applied = applied_programs(history)
    bad = []
    t, end = timeline[0].start, timeline[-1].end
    while t < end:
        want = next(s.target for s in timeline if s.start <= t < s.end)
        prog = Program(None, False)
        for at, p in applied:
            if at <= t:
                prog = p
        got = target_at(prog, t, ZoneInfo("Europe/London"))
        if got != want and not any(b <= t < b + dt.timedelta(seconds=s) for b, s in skip):
            bad.append(t)
        t += dt.timedelta(seconds=step)
    return bad


def journal(tmp: Path) -> list[dict]:
    """Every journal entry, read-only (a daemon may be writing); [] before the journal exists."""
    path = tmp / "state" / "journal.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT kind, voipnumber, ok, detail FROM entries ORDER BY id").fetchall()
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return []
        raise
    finally:
        db.close()
    return [{"kind": k, "voipnumber": v, "ok": ok, **json.loads(d)} for k, v, ok, d in rows]


def integrity(path: Path) -> str:
    """SQLite's integrity check of a journal that may have been left by a killed process."""
    if not path.exists():
        return "ok"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def wait_for(cond, timeout: float = 15) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if cond():
                return
        except (OSError, sqlite3.Error):
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")




def calendar_checks(tmp: Path) -> int:
    return sum(1 for e in journal(tmp) if e["kind"] == "calendar")
