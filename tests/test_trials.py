"""Fault trials against a running daemon (a process), with a rota handing over every few seconds: a full
disk, a hostile calendar, a corrupt journal, a stalled aql. Through each, forwarding goes on, the
administrator hears of it, and SIGTERM ends the daemon within 5 s."""

from __future__ import annotations

import datetime as dt
import os
import resource
import signal
import subprocess
import sys
import threading
import time
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
    calendar_checks,
    ics,
    integrity,
    journal,
    misrouted_samples,
    sleep_until,
    wait_for,
    write_config,
)


def start_piped(cfg: Path, tmp: Path, name: str = "daemon") -> subprocess.Popen:
    """The daemon with its output on a pipe (as under journald), copied to ``name``.log by a thread of
    ours: a file-size limit on the daemon must not reach its log."""
    proc = subprocess.Popen([sys.executable, "-m", "forwardd", "run", "--config", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "AQL_PW": PASSWORD})
    log = tmp / f"{name}.log"

    def copy() -> None:
        with open(log, "ab") as out:
            for line in proc.stdout:  # type: ignore[union-attr]
                out.write(line)
                out.flush()

    threading.Thread(target=copy, daemon=True).start()
    return proc


def workers_of(pid: int) -> list[int]:
    """The calendar worker processes whose parent is ``pid``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (proc.name.isdigit() and b"forwardd.calendars.worker" in (proc / "cmdline").read_bytes()
                    and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid):
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def sigterm_within(proc: subprocess.Popen, seconds: float = 5.0) -> float:
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(seconds + 5) == 0
    took = time.monotonic() - t
    assert took < seconds, took
    return took


def alerts_titled(received: list[dict], word: str) -> list[dict]:
    return [r for r in received if word in r.get("title", "")]


def test_a_full_disk_stops_the_journal_not_the_forwarding(tmp_path: Path, fake_proc: FakeProc, webhook) -> None:  # noqa: ANN001
    url, received = webhook
    t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=10)).replace(microsecond=0)
    s = lambda n: t0 + dt.timedelta(seconds=n)  # noqa: E731
    events = [(s(-30), s(3), "Alice"), (s(3), s(7), "Bob"), (s(10), s(14), "Carol")]
    cfg = write_config(tmp_path, fake_proc.url, events, extra=f'\n[alerts]\nnotify = ["{url}"]\n')
    proc = start_piped(cfg, tmp_path)
    try:
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A, timeout=20)
        wait_for(lambda: any(e["kind"] == "readback" for e in journal(tmp_path)))
        written = len(journal(tmp_path))
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (1, 1))  # from now on no file of it can grow
        sleep_until(s(15))
        assert proc.poll() is None
        sigterm_within(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    history = fake_proc.get("history")
    timeline = [Segment(s(-1), s(3), A, ""), Segment(s(3), s(7), B, ""), Segment(s(7), s(10), None, ""),
                Segment(s(10), s(14), C, "")]
    assert misrouted_samples(history, timeline, skip=[(s(3), 1.0)]) == []  # every hand-over, on time
    assert alerts_titled(received, "cannot write the journal") and "cannot write the journal" in alerts_titled(
        received, "cannot write the journal")[0]["message"]
    assert len(journal(tmp_path)) <= written + 3  # the journal really was stuck (a batch in flight at most)
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()


def _hostile_rota(path: Path, events: int) -> None:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//hostile//EN"]
    base = dt.datetime.now(UTC).replace(microsecond=0)
    for i in range(events):
        a = base + dt.timedelta(minutes=i % 20000)
        lines += ["BEGIN:VEVENT", f"UID:h{i}", "DTSTAMP:20260101T000000Z", f"DTSTART:{a:%Y%m%dT%H%M%SZ}",
                  f"DTEND:{a + dt.timedelta(minutes=1):%Y%m%dT%H%M%SZ}", "SUMMARY:On call: Carol", "END:VEVENT"]
    path.write_text("\r\n".join([*lines, "END:VCALENDAR", ""]))


def test_a_huge_calendar_never_blocks_hand_overs_or_sigterm(tmp_path: Path, fake_proc: FakeProc) -> None:
    t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=20)).replace(microsecond=0)
    s = lambda n: t0 + dt.timedelta(seconds=n)  # noqa: E731
    events = [(s(-60), s(6), "Alice"), (s(6), s(30), "Bob")]
    cfg = write_config(tmp_path, fake_proc.url, events, extra='calendar_deadline = "60s"')
    cfg.write_text(cfg.read_text().replace('rota = { source = "rota.ics", refresh = "1s" }',
                                           'rota = { source = "rota.ics", refresh = "1s" }\n'
                                           'extra = { source = "extra.ics", refresh = "1s" }')
                   .replace('rota = "rota"\n', 'rota = "rota"\nholidays = ["extra"]\n'))
    (tmp_path / "extra.ics").write_text(ics([]))
    proc = start_piped(cfg, tmp_path)
    try:
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A, timeout=20)
        _hostile_rota(tmp_path / "extra.ics", 100_000)  # ~17 MB, far more than the worker reads in a second
        wait_for(lambda: workers_of(proc.pid), timeout=10)
        worker = workers_of(proc.pid)
        sleep_until(s(8))
        assert proc.poll() is None
        took = sigterm_within(proc)  # while the worker is still chewing on it
    finally:
        if proc.poll() is None:
            proc.kill()
    history = fake_proc.get("history")
    to_bob = [dt.datetime.fromisoformat(h["at"]) for h in history if h["fields"]["forwardto"] == B]
    assert to_bob and 0 <= (to_bob[0] - s(6)).total_seconds() < 1.0  # the exact hand-over was on time
    assert took < 5
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in worker), timeout=5)  # its worker went too


def test_an_endless_rule_is_refused_at_once_and_the_last_good_copy_kept(tmp_path: Path, fake_proc: FakeProc,
                                                                          webhook) -> None:  # noqa: ANN001
    url, received = webhook
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=3), "Alice")],
                       extra=f'\n[alerts]\nnotify = ["{url}"]\n')
    proc = start_piped(cfg, tmp_path)
    try:
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A, timeout=20)
        seen = calendar_checks(tmp_path)
        (tmp_path / "rota.ics").write_text(ics([(now, now + dt.timedelta(seconds=1), "Bob")]).replace(
            "SUMMARY:", "RRULE:FREQ=SECONDLY\r\nSUMMARY:"))
        wait_for(lambda: any(e["kind"] == "calendar" and "repeats secondly" in (e.get("error") or "")
                             for e in journal(tmp_path)[seen:]), timeout=15)
        wait_for(lambda: alerts_titled(received, "Calendar 'rota' is failing"), timeout=10)
        assert fake_proc.get("state")[NUMBER]["forwardto"] == A
        sigterm_within(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "keeping the last good copy" in alerts_titled(received, "Calendar 'rota' is failing")[0]["message"]


def test_a_corrupt_journal_is_moved_aside_and_the_daemon_runs(tmp_path: Path, fake_proc: FakeProc, webhook) -> None:  # noqa: ANN001
    url, received = webhook
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=3), "Alice")],
                       extra=f'\n[alerts]\nnotify = ["{url}"]\n')
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / "journal.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(8000))
    proc = start_piped(cfg, tmp_path)
    try:
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A, timeout=20)
        wait_for(lambda: alerts_titled(received, "moved aside"), timeout=10)
        sigterm_within(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list((tmp_path / "state").glob("journal.sqlite.corrupt-*"))
    assert "moved aside" in alerts_titled(received, "moved aside")[0]["message"]
    assert any(e["kind"] == "readback" for e in journal(tmp_path))  # the new journal works


def test_calendar_refresh_never_waits_behind_a_stalled_aql(tmp_path: Path, fake_proc: FakeProc) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = write_config(tmp_path, fake_proc.url, [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=3), "Alice")])
    fake_proc.post("faults", {"faults": [{"kind": "delay", "seconds": 8, "count": 50}]})
    proc = start_piped(cfg, tmp_path)
    try:
        wait_for(lambda: fake_proc.get("requests")["in_flight"] >= 1, timeout=20)  # aql is stalled now
        log = tmp_path / "daemon.log"
        wait_for(lambda: '"event": "replanned"' in log.read_text(), timeout=20)
        before = log.read_text().count('"event": "replanned"')
        (tmp_path / "rota.ics").write_text(ics([(now - dt.timedelta(hours=1), now + dt.timedelta(hours=3), "Bob")]))
        t = time.monotonic()
        wait_for(lambda: log.read_text().count('"event": "replanned"') > before, timeout=8)
        assert time.monotonic() - t < 8  # well inside one stalled request
        assert fake_proc.get("requests")["in_flight"] >= 1
        sigterm_within(proc)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_gap_is_alerted_once_for_all_its_numbers_and_not_again_after_a_restart(
    tmp_path: Path, fake_proc: FakeProc, webhook  # noqa: ANN001
) -> None:
    url, received = webhook
    now = dt.datetime.now(UTC).replace(microsecond=0)
    h = dt.timedelta(hours=1)
    # on call until +1h, nobody +1h..+2h (the gap), then Alice; and a gap that is already over
    events = [(now - 6 * h, now - 5 * h, "Alice"), (now - 4 * h, now + h, "Bob"), (now + 2 * h, now + 800 * h, "Alice")]
    cfg = write_config(tmp_path, fake_proc.url, events, extra=f'\n[alerts]\nnotify = ["{url}"]\n')
    cfg.write_text(cfg.read_text() + '\n[[numbers]]\nvoipnumber = "606310"\nrota = "rota"\nname = "Sales line"\n')
    for run in (1, 2):
        proc = start_piped(cfg, tmp_path, name=f"daemon{run}")
        try:
            wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == B, timeout=20)
            # alerts are decided by each plan: once the daemon has planned, a gap alert would have gone
            wait_for(lambda: '"event": "replanned"' in (tmp_path / f"daemon{run}.log").read_text(), timeout=20)
            if run == 1:
                wait_for(lambda: alerts_titled(received, "Nobody is on call"), timeout=10)
            sigterm_within(proc)  # which lets deliveries in flight finish
        finally:
            if proc.poll() is None:
                proc.kill()
        gaps = alerts_titled(received, "Nobody is on call")
        assert len(gaps) == 1, gaps  # one gap, one alert, naming both numbers; the past gap never
        assert "606309" in gaps[0]["message"] and "Sales line (606310)" in gaps[0]["message"]


def test_a_large_start_up_answers_probes_and_stops_on_sigterm_with_its_journal_whole(tmp_path: Path) -> None:
    """Issue 18: 4,000 lines programmed from a fresh simulated account: /healthz says how far the start-up
    has got, and SIGTERM in the middle of it ends the process within 5 s, exit 0, its journal sound and
    closed with a 'stop' entry."""
    import json
    import socket
    import sqlite3
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    now = dt.datetime.now(UTC).replace(microsecond=0)
    (tmp_path / "rota.ics").write_text(ics([(now - dt.timedelta(hours=1), now + dt.timedelta(days=2), "Alice")]))
    numbers = "".join(f'[[numbers]]\nvoipnumber = "{600000 + i}"\nrota = "rota"\n' for i in range(4000))
    cfg = tmp_path / "forwardd.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[aql]\nurl = "simulated"\nconcurrency = 4\n'
                   f'[people]\nalice = "{A}"\n[calendars]\nrota = {{ source = "rota.ics" }}\n[web]\nport = {port}\n'
                   + numbers)
    proc = start_piped(cfg, tmp_path)
    said: list[str] = []
    try:
        def starting() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    body = r.read()
            except urllib.error.HTTPError as err:
                body = err.read()
            status = json.loads(body)
            said.append(status["status"])
            return status["status"] == "starting" and any("starting:" in r and not r.startswith("starting: 0 ")
                                                           for r in status["reasons"])

        wait_for(starting, timeout=60)
        sigterm_within(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    journal_path = tmp_path / "state" / "journal.sqlite"
    assert integrity(journal_path) == "ok"
    db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
    kinds = [k for (k,) in db.execute("SELECT kind FROM entries ORDER BY id")]
    db.close()
    assert kinds[-1] == "stop" and 0 < kinds.count("readback") < 4000  # stopped mid-way, everything written
