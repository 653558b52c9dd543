"""End to end: the fake aql server and `forwardd run` as separate processes, with a generated rota
whose events change every few seconds. What is checked is the fake's own recorded history."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from forwardd.core.timeline import Segment

from .conftest import ROOT, UTC
from .e2e import (
    NUMBER,
    PASSWORD,
    A,
    B,
    C,
    FakeProc,
    ics,
    integrity,
    journal,
    misrouted_samples,
    sleep_until,
    start_daemon,
    stop,
    wait_for,
    write_config,
)


def test_daemon_follows_a_fast_rota_to_the_second(tmp_path: Path, fake_proc: FakeProc) -> None:
    t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=10)).replace(microsecond=0)
    s = lambda n: t0 + dt.timedelta(seconds=n)  # noqa: E731
    events = [(s(0), s(6), "Alice"), (s(6), s(12), "Bob"), (s(18), s(24), "Carol")]
    cfg = write_config(tmp_path, fake_proc.url, events)
    proc = start_daemon(cfg, tmp_path)
    try:
        sleep_until(s(26))
        assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
    finally:
        assert stop(proc) == 0
    history = fake_proc.get("history")
    timeline = [Segment(s(-3), s(0), None, ""), Segment(s(0), s(6), A, ""), Segment(s(6), s(12), B, ""),
                Segment(s(12), s(18), None, ""), Segment(s(18), s(24), C, ""), Segment(s(24), s(25), None, "")]
    # the one exact hand-over (Alice -> Bob while forwarding) landed within a second of the boundary
    to_bob = [dt.datetime.fromisoformat(h["at"]) for h in history if h["fields"]["forwardto"] == B
              and h["fields"]["forwardactive"] == "1"]
    assert to_bob, history
    lateness = (to_bob[0] - s(6)).total_seconds()
    assert 0 <= lateness < 1.0, lateness
    # at the boundary, changeuser went first (no read before it), then the read-back
    at_boundary = [r["action"] for r in fake_proc.get("requests")["requests"]
                   if r["voipnumber"] == NUMBER and s(6).timestamp() <= r["at"] < s(6).timestamp() + 1]
    assert at_boundary[:2] == ["changeuser", "getuser"], at_boundary
    # and everything else, pre-armed, was right at every instant
    assert misrouted_samples(history, timeline, skip=[(s(6), 1.0)]) == []
    # every change sent was confirmed by a read-back
    entries = journal(tmp_path)
    changes = [e for e in entries if e["kind"] == "change"]
    assert len(changes) == len(history) and len(changes) >= 3
    assert sum(1 for e in entries if e["kind"] == "readback" and e["ok"] == 1) >= len(changes)
    log = (tmp_path / "daemon.log").read_text()
    assert "exact_handover" in log and PASSWORD not in log


def test_daemon_converges_through_faults_and_a_kill_9(tmp_path: Path, fake_proc: FakeProc) -> None:
    t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=16)).replace(microsecond=0)
    s = lambda n: t0 + dt.timedelta(seconds=n)  # noqa: E731
    events = [(s(0), s(8), "Alice"), (s(16), s(40), "Bob")]
    cfg = write_config(tmp_path, fake_proc.url, events)
    fake_proc.post("faults", {"faults": [{"kind": "http5xx", "count": 2}, {"kind": "drop"},
                                    {"kind": "ignore", "action": "changeuser"}]})
    proc = start_daemon(cfg, tmp_path)
    sleep_until(s(3))
    proc.kill()  # kill -9 in the middle of things
    proc.wait(5)
    fake_proc.post("faults", {"faults": [{"kind": "http5xx", "count": 1, "status": 502}]})
    proc = start_daemon(cfg, tmp_path, name="daemon2")
    try:
        sleep_until(s(20))
        assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    state = fake_proc.get("state")[NUMBER]
    assert (state["forwardto"], state["forwardactive"]) == (B, "1")
    history = fake_proc.get("history")
    timeline = [Segment(s(-1), s(0), None, ""), Segment(s(0), s(8), A, ""), Segment(s(8), s(16), None, ""),
                Segment(s(16), s(20), B, "")]
    assert misrouted_samples(history, timeline) == []
    entries = journal(tmp_path)  # readable after the kill -9, and it has every attempt
    errors = [e for e in entries if e["kind"] == "error"]
    assert len(errors) >= 4  # 2 x 5xx, 1 dropped connection, 1 x 502 after the restart
    assert any("HTTP 503" in e["error"] for e in errors) and any("HTTP 502" in e["error"] for e in errors)
    assert any(e["kind"] == "readback" and e["ok"] == 0 for e in entries)  # the OK that was not applied
    assert sum(1 for e in entries if e["kind"] == "start") == 2


def test_a_hand_made_change_while_the_daemon_was_down_is_seen_at_start_up_and_restored(
    tmp_path: Path, fake_proc: FakeProc
) -> None:
    """A line changed by hand in the portal while the daemon was stopped: its start-up read (the first
    slot of the drift grid) sees it against what the journal last confirmed, alerts, and restores it.
    (The drift checks' timing, and on_drift = "alert", are tested on the virtual clock in test_engine.py:
    an hour of daemon time in a second.)"""
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Alice")])
    state = lambda: fake_proc.get("state")[NUMBER]["forwardto"]  # noqa: E731
    proc = start_daemon(cfg, tmp_path)
    try:
        wait_for(lambda: state() == A and any(e["kind"] == "readback" and e["ok"] for e in journal(tmp_path)))
    finally:
        assert stop(proc) == 0
    fake_proc.post("set", {"voipnumber": NUMBER, "fields": {"forwardto": "07700900777"}})
    proc = start_daemon(cfg, tmp_path)
    try:
        wait_for(lambda: any(e["kind"] == "drift" for e in journal(tmp_path)), timeout=20)
        wait_for(lambda: state() == A, timeout=10)
    finally:
        assert stop(proc) == 0
    drift = [e for e in journal(tmp_path) if e["kind"] == "drift"]
    assert len(drift) == 1 and drift[0]["found"]["forwardto"] == "07700900777", drift
    assert f"drift:{NUMBER}" in {e.get("key") for e in journal(tmp_path) if e["kind"] == "alert"}


def test_sighup_with_a_broken_config_keeps_the_old_one_and_sigterm_exits_0(tmp_path: Path, fake_proc: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Alice")])
    proc = start_daemon(cfg, tmp_path)
    try:
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A)
        good = cfg.read_text()
        cfg.write_text(good.replace(f'voipnumber = "{NUMBER}"', 'voipnumber = "12"'))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload_rejected" in (tmp_path / "daemon.log").read_text())
        assert proc.poll() is None
        # still working on the old config: a calendar change is followed
        (tmp_path / "rota.ics").write_text(ics([(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Carol")]))
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == C)
        # a good config is taken: Bob replaces Alice
        (tmp_path / "rota.ics").write_text(ics([(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Bob")]))
        cfg.write_text(good)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == B)
    finally:
        t = time.monotonic()
        rc = stop(proc)
        took = time.monotonic() - t
    assert rc == 0 and took < 5


def test_sd_notify_ready_on_a_real_socket(tmp_path: Path, fake_proc: FakeProc) -> None:
    sock_path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    srv.settimeout(20)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now, now + dt.timedelta(hours=2), "Alice")])
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


def test_prometheus_metrics_on_loopback(tmp_path: Path, fake_proc: FakeProc) -> None:
    port = _free_port()
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now, now + dt.timedelta(hours=2), "Alice")], extra=f"metrics_port = {port}")
    fake_proc.post("faults", {"faults": [{"kind": "status", "status": 429, "retry_after": "1", "count": 1}]})
    proc = start_daemon(cfg, tmp_path)
    try:
        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return r.read().decode()
        wait_for(lambda: f'forwardd_last_success_timestamp_seconds{{voipnumber="{NUMBER}"}}' in scrape())
        text = scrape()
        assert 'forwardd_calendar_age_seconds{calendar="rota"}' in text
        assert "process_resident_memory_bytes" in text  # prometheus-client's standard process metrics
        assert 'forwardd_aql_throttled_total{account="aql"} 1.0' in text  # the 429 was counted...
        assert 'forwardd_aql_requests_total{account="aql",action="changeuser"}' in text  # ...and the change after it
    finally:
        stop(proc)


def test_apply_exits_nonzero_when_a_number_cannot_be_confirmed(tmp_path: Path, fake_proc: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now, now + dt.timedelta(hours=2), "Alice")])
    fake_proc.post("faults", {"faults": [{"kind": "err", "message": "Account locked", "count": 1}]})
    r = subprocess.run([sys.executable, "-m", "forwardd", "apply", "--config", str(cfg)], capture_output=True,
                       text=True, cwd=ROOT, env={**os.environ, "AQL_PW": PASSWORD}, timeout=60)
    assert r.returncode == 1 and "Account locked" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "forwardd", "apply", "--config", str(cfg)], capture_output=True,
                       text=True, cwd=ROOT, env={**os.environ, "AQL_PW": PASSWORD}, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_status_and_check_online_use_listusers(tmp_path: Path, fake_proc: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now, now + dt.timedelta(hours=2), "Alice")])
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


def test_fifty_sighups_within_a_second_while_a_change_is_retried(tmp_path: Path, fake_proc: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Alice")])
    fake_proc.post("latency", {"seconds": 0.02})
    fake_proc.post("faults", {"faults": [{"kind": "http5xx", "count": 8, "action": "changeuser"}]})
    proc = start_daemon(cfg, tmp_path)
    try:
        wait_for(lambda: sum(e["kind"] == "error" for e in journal(tmp_path)) >= 2, timeout=30)
        for _ in range(50):
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.02)
        # the retry queue backs off (10 s, doubling) while aql keeps answering 503
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A, timeout=150)
        wait_for(lambda: "reloaded" in (tmp_path / "daemon.log").read_text(), timeout=30)
        assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    log = (tmp_path / "daemon.log").read_text()
    for bad in ("Traceback", "RuntimeError", "ProgrammingError", "closed"):
        assert bad not in log, bad
    # the 50 signals were folded into a few reloads, not 50 of them
    assert 1 <= log.count('"event": "reloaded"') <= 5
    assert integrity(tmp_path / "state" / "journal.sqlite") == "ok"
    entries = journal(tmp_path)
    assert sum(e["kind"] == "error" and "HTTP 503" in e["error"] for e in entries) == 8
    assert any(e["kind"] == "readback" and e["ok"] == 1 and e["fields"]["forwardto"] == A for e in entries)
    # never two passes on one number at once: the fake never saw two of its requests in flight together
    assert fake_proc.get("requests")["max_in_flight_per_number"] == 1


def test_a_second_instance_on_the_same_state_directory_exits_at_once(tmp_path: Path, fake_proc: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=2), "Alice")])
    proc = start_daemon(cfg, tmp_path)
    env = {**os.environ, "AQL_PW": PASSWORD}
    try:
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A)
        for command in ("run", "apply"):
            t = time.monotonic()
            r = subprocess.run([sys.executable, "-m", "forwardd", command, "--config", str(cfg)], capture_output=True,
                               text=True, cwd=ROOT, env=env, timeout=30)
            took = time.monotonic() - t
            assert r.returncode == 1, (command, r.stdout, r.stderr)
            assert f"another forwardd (pid {proc.pid}) is running on {tmp_path / 'state'}" in r.stderr
            assert took < 3.5  # the interpreter's own start-up included; the lock itself does not wait
        # read-only commands do not take the lock
        for command in (["status"], ["history"], ["plan", "--days", "1"]):
            r = subprocess.run([sys.executable, "-m", "forwardd", *command, "--config", str(cfg)], capture_output=True,
                               text=True, cwd=ROOT, env=env, timeout=60)
            assert r.returncode == 0, (command, r.stdout, r.stderr)
        assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    # once it has gone, the lock is free again
    r = subprocess.run([sys.executable, "-m", "forwardd", "apply", "--config", str(cfg)], capture_output=True,
                       text=True, cwd=ROOT, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
