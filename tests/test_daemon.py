"""End to end: the fake aql server and `forwardd run` as separate processes, with a generated rota
whose events change every few seconds. What is checked is the fake's own recorded history."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from forwardd.provider import Program, target_at
from forwardd.timeline import Segment

from .conftest import ROOT, UTC

A, B, C = "07700900001", "07700900002", "07700900003"
PASSWORD = "e2e-Secret-Pa55"
NUMBER = "606309"


class FakeProc:
    def __init__(self, tmp: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forwardd", "fake-aql", "--port", "0", "--numbers", f"{NUMBER},606310",
             "--username", "acme", "--password-env", "FAKE_PW"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
            env={**os.environ, "FAKE_PW": PASSWORD})
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


@pytest.fixture
def fake(tmp_path: Path):
    f = FakeProc(tmp_path)
    yield f
    f.stop()


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
reconcile_every = "2s"
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
    return [(dt.datetime.fromisoformat(h["at"]), Program.from_settings(h["fields"]))
            for h in history if h["voipnumber"] == NUMBER]


def misrouted_samples(history: list[dict], timeline: list[Segment], step: float = 0.1,
                      skip: list[tuple[dt.datetime, float]] = ()) -> list[dt.datetime]:
    """Instants (every ``step`` s) at which the fake, under the settings it really held, disagrees
    with the timeline; ``skip`` exempts the first ``s`` seconds after an exact hand-over."""
    applied = applied_programs(history)
    bad = []
    t, end = timeline[0].start, timeline[-1].end
    while t < end:
        want = next(s.forwardto for s in timeline if s.start <= t < s.end)
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
    db = sqlite3.connect(str(tmp / "state" / "journal.sqlite"))
    rows = db.execute("SELECT kind, voipnumber, ok, detail FROM entries ORDER BY id").fetchall()
    db.close()
    return [{"kind": k, "voipnumber": v, "ok": ok, **json.loads(d)} for k, v, ok, d in rows]


def test_daemon_follows_a_fast_rota_to_the_second(tmp_path: Path, fake: FakeProc) -> None:
    t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=10)).replace(microsecond=0)
    s = lambda n: t0 + dt.timedelta(seconds=n)  # noqa: E731
    events = [(s(0), s(6), "Alice"), (s(6), s(12), "Bob"), (s(18), s(24), "Carol")]
    cfg = write_config(tmp_path, fake.url, events)
    proc = start_daemon(cfg, tmp_path)
    try:
        sleep_until(s(26))
        assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
    finally:
        assert stop(proc) == 0
    history = fake.get("history")
    timeline = [Segment(s(-3), s(0), None, ""), Segment(s(0), s(6), A, ""), Segment(s(6), s(12), B, ""),
                Segment(s(12), s(18), None, ""), Segment(s(18), s(24), C, ""), Segment(s(24), s(25), None, "")]
    # the one exact hand-over (Alice -> Bob while forwarding) landed within a second of the boundary
    to_bob = [dt.datetime.fromisoformat(h["at"]) for h in history if h["fields"]["forwardto"] == B
              and h["fields"]["forwardactive"] == "1"]
    assert to_bob, history
    lateness = (to_bob[0] - s(6)).total_seconds()
    assert 0 <= lateness < 1.0, lateness
    # and everything else, pre-armed, was right at every instant
    assert misrouted_samples(history, timeline, skip=[(s(6), 1.0)]) == []
    # every change sent was confirmed by a read-back
    entries = journal(tmp_path)
    changes = [e for e in entries if e["kind"] == "change"]
    assert len(changes) == len(history) and len(changes) >= 3
    assert sum(1 for e in entries if e["kind"] == "readback" and e["ok"] == 1) >= len(changes)
    log = (tmp_path / "daemon.log").read_text()
    assert "exact_handover" in log and PASSWORD not in log


def test_daemon_converges_through_faults_and_a_kill_9(tmp_path: Path, fake: FakeProc) -> None:
    t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=16)).replace(microsecond=0)
    s = lambda n: t0 + dt.timedelta(seconds=n)  # noqa: E731
    events = [(s(0), s(8), "Alice"), (s(16), s(40), "Bob")]
    cfg = write_config(tmp_path, fake.url, events)
    fake.post("faults", {"faults": [{"kind": "http5xx", "count": 2}, {"kind": "drop"},
                                    {"kind": "ignore", "action": "changeuser"}]})
    proc = start_daemon(cfg, tmp_path)
    sleep_until(s(3))
    proc.kill()  # kill -9 in the middle of things
    proc.wait(5)
    fake.post("faults", {"faults": [{"kind": "http5xx", "count": 1, "status": 502}]})
    proc = start_daemon(cfg, tmp_path, name="daemon2")
    try:
        sleep_until(s(20))
        assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    state = fake.get("state")[NUMBER]
    assert (state["forwardto"], state["forwardactive"]) == (B, "1")
    history = fake.get("history")
    timeline = [Segment(s(-1), s(0), None, ""), Segment(s(0), s(8), A, ""), Segment(s(8), s(16), None, ""),
                Segment(s(16), s(20), B, "")]
    assert misrouted_samples(history, timeline) == []
    entries = journal(tmp_path)  # readable after the kill -9, and it has every attempt
    errors = [e for e in entries if e["kind"] == "error"]
    assert len(errors) >= 4  # 2 x 5xx, 1 dropped connection, 1 x 502 after the restart
    assert any("HTTP 503" in e["error"] for e in errors) and any("HTTP 502" in e["error"] for e in errors)
    assert any(e["kind"] == "readback" and e["ok"] == 0 for e in entries)  # the OK that was not applied
    assert sum(1 for e in entries if e["kind"] == "start") == 2


def test_drift_is_restored_and_alerted(tmp_path: Path, fake: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Alice")])
    proc = start_daemon(cfg, tmp_path)
    try:
        _wait_for(lambda: fake.get("state")[NUMBER]["forwardto"] == A)
        time.sleep(0.5)
        fake.post("set", {"voipnumber": NUMBER, "fields": {"forwardto": "07700900777"}})
        _wait_for(lambda: fake.get("state")[NUMBER]["forwardto"] == A)
    finally:
        assert stop(proc) == 0
    kinds = [e["kind"] for e in journal(tmp_path)]
    assert "drift" in kinds and "alert" in kinds


def test_drift_only_reported_with_on_drift_alert(tmp_path: Path, fake: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Alice")],
                       on_drift="alert")
    proc = start_daemon(cfg, tmp_path)
    try:
        _wait_for(lambda: fake.get("state")[NUMBER]["forwardto"] == A)
        time.sleep(0.5)
        fake.post("set", {"voipnumber": NUMBER, "fields": {"forwardto": "07700900777"}})
        _wait_for(lambda: any(e["kind"] == "drift" for e in journal(tmp_path)))
        time.sleep(3)
        assert fake.get("state")[NUMBER]["forwardto"] == "07700900777"
    finally:
        assert stop(proc) == 0


def _wait_for(cond, timeout: float = 15) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if cond():
                return
        except (OSError, sqlite3.Error):
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_sighup_with_a_broken_config_keeps_the_old_one_and_sigterm_exits_0(tmp_path: Path, fake: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Alice")])
    proc = start_daemon(cfg, tmp_path)
    try:
        _wait_for(lambda: fake.get("state")[NUMBER]["forwardto"] == A)
        good = cfg.read_text()
        cfg.write_text(good.replace(f'voipnumber = "{NUMBER}"', 'voipnumber = "12"'))
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: "reload_rejected" in (tmp_path / "daemon.log").read_text())
        assert proc.poll() is None
        # still reconciling on the old config: a hand-made change is put right
        fake.post("set", {"voipnumber": NUMBER, "fields": {"forwardactive": "0"}})
        _wait_for(lambda: fake.get("state")[NUMBER]["forwardactive"] == "1")
        # a good config is taken: Bob replaces Alice
        (tmp_path / "rota.ics").write_text(ics([(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Bob")]))
        cfg.write_text(good)
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: fake.get("state")[NUMBER]["forwardto"] == B)
    finally:
        t = time.monotonic()
        rc = stop(proc)
        took = time.monotonic() - t
    assert rc == 0 and took < 5


def test_sd_notify_ready_on_a_real_socket(tmp_path: Path, fake: FakeProc) -> None:
    sock_path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    srv.settimeout(20)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake.url, [(now, now + dt.timedelta(hours=2), "Alice")])
    proc = start_daemon(cfg, tmp_path, env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000"})
    try:
        messages = []
        while not any("READY=1" in m for m in messages):
            messages.append(srv.recv(4096).decode())
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(srv.recv(4096).decode())
    finally:
        stop(proc)
        srv.close()
    assert any("READY=1" in m for m in messages) and any("WATCHDOG=1" in m for m in messages)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prometheus_metrics_on_loopback(tmp_path: Path, fake: FakeProc) -> None:
    port = _free_port()
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake.url, [(now, now + dt.timedelta(hours=2), "Alice")], extra=f"metrics_port = {port}")
    proc = start_daemon(cfg, tmp_path)
    try:
        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return r.read().decode()
        _wait_for(lambda: f'forwardd_last_success_timestamp_seconds{{voipnumber="{NUMBER}"}}' in scrape())
        text = scrape()
        assert 'forwardd_calendar_age_seconds{calendar="rota"}' in text
    finally:
        stop(proc)


def test_apply_exits_nonzero_when_a_number_cannot_be_confirmed(tmp_path: Path, fake: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake.url, [(now, now + dt.timedelta(hours=2), "Alice")])
    fake.post("faults", {"faults": [{"kind": "err", "message": "Account locked", "count": 1}]})
    r = subprocess.run([sys.executable, "-m", "forwardd", "apply", "--config", str(cfg)], capture_output=True,
                       text=True, cwd=ROOT, env={**os.environ, "AQL_PW": PASSWORD}, timeout=60)
    assert r.returncode == 1 and "Account locked" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "forwardd", "apply", "--config", str(cfg)], capture_output=True,
                       text=True, cwd=ROOT, env={**os.environ, "AQL_PW": PASSWORD}, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_status_and_check_online_use_listusers(tmp_path: Path, fake: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake.url, [(now, now + dt.timedelta(hours=2), "Alice")])
    cfg.write_text(cfg.read_text() + '\n[[numbers]]\nvoipnumber = "799999"\nrota = "rota"\n')
    env = {**os.environ, "AQL_PW": PASSWORD}
    r = subprocess.run([sys.executable, "-m", "forwardd", "check", "--online", "--config", str(cfg)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert r.returncode == 1 and "799999: ERROR not in the account" in r.stdout
    r = subprocess.run([sys.executable, "-m", "forwardd", "status", "--json", "--config", str(cfg)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    rows = {row["voipnumber"]: row for row in json.loads(r.stdout)["numbers"]}
    assert rows["799999"]["in_account"] is False and rows[NUMBER]["in_account"] is True
    assert r.returncode == 1
