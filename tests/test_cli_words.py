"""Words for people (issue 20, point 10): notices with a date and a zone, the next change said as who
gets the calls from when, local times with their zone and no microseconds, the journal as a table, a
time-format error that shows +2h, a fake aql that explains itself, and each line's account."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

from forwardd.core import notices as rules
from forwardd.core.compiler import compile_timeline
from forwardd.core.plan import NumberPlan
from forwardd.core.timeline import Kind, Segment
from forwardd.web.presentation import Names

from .conftest import LONDON, ROOT, UTC, london, run_cli, small_config

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d|\+00:00|\d\d:\d\d:\d\d\.\d+")  # ISO instants, microseconds
A, B, C = "07700900001", "07700900002", "07700900003"


def test_a_notice_says_the_date_and_the_zone() -> None:
    shift = rules.Shift("606309", "alice", london(2026, 12, 3, 7, 28), london(2026, 12, 3, 7, 38))
    assert rules.describe(shift, "Support line (606309)", LONDON) == (
        "You're on call for Support line (606309) from Thu 3 Dec 07:28 until 07:38 (GMT)")
    weekend = rules.Shift("606309", "alice", london(2026, 12, 4, 18), london(2026, 12, 7, 8, 30), open_end=True)
    assert rules.describe(weekend, "606309", LONDON) == (
        "You're on call for 606309 from Fri 4 Dec 18:00 until at least Mon 7 Dec 08:30 (GMT)")
    across = rules.Shift("606309", "alice", london(2026, 10, 24, 18), london(2026, 10, 26, 8, 30))
    assert rules.describe(across, "606309", LONDON) == (
        "You're on call for 606309 from Sat 24 Oct 18:00 (BST) until Mon 26 Oct 08:30 (GMT)")


def _plan(segments: list[tuple[dt.datetime, dt.datetime, str | None, Kind]]) -> NumberPlan:
    segs = [Segment(a.astimezone(UTC), b.astimezone(UTC), to, "why", kind) for a, b, to, kind in segments]
    return NumberPlan("606309", segs, compile_timeline(segs, LONDON))


def test_the_next_change_is_who_gets_the_calls_from_when_and_when_it_is_sent() -> None:
    from forwardd.cli.status import next_change_words

    names = Names(small_config(people={"alice": A, "bob": B, "carol": C}))
    plan = _plan([(london(2026, 12, 2, 17, 30), london(2026, 12, 3, 9), C, Kind.ROTA),
                  (london(2026, 12, 3, 9), london(2026, 12, 3, 17, 30), None, Kind.OFFICE_HOURS),
                  (london(2026, 12, 3, 17, 30), london(2026, 12, 4, 9), C, Kind.ROTA),
                  (london(2026, 12, 4, 9), london(2026, 12, 4, 12), None, Kind.OFFICE_HOURS)])
    assert next_change_words(plan, london(2026, 12, 3, 7, 28), names, LONDON) == (
        f"Carol ({C}) from 17:30 (sent between 09:00 and 17:30)")
    # the window moves on while Carol keeps the calls; then the office opens
    assert next_change_words(plan, london(2026, 12, 3, 12), names, LONDON) == (
        f"Carol ({C}) keeps the calls past midnight (sent between 17:30 and midnight)")
    assert next_change_words(plan, london(2026, 12, 3, 18), names, LONDON) == (
        "office hours (not forwarded) from Fri 09:00 (sent between midnight and Fri 09:00)")
    # an exact hand-over: Alice until 09:00 then Bob, forwarding on throughout
    exact = _plan([(london(2026, 12, 3, 0), london(2026, 12, 3, 9), A, Kind.ROTA),
                   (london(2026, 12, 3, 9), london(2026, 12, 3, 12), B, Kind.ROTA)])
    assert next_change_words(exact, london(2026, 12, 3, 7, 28), names, LONDON) == (
        f"Bob ({B}) from 09:00 (sent at 09:00 exactly: an exact hand-over)")


def test_status_and_history_speak_local_time_with_its_zone(example: Path) -> None:
    assert run_cli("apply", "--config", str(example)).returncode == 0
    r = run_cli("status", "--config", str(example))
    assert r.returncode == 0, r.stdout + r.stderr
    assert not ISO.search(r.stdout), r.stdout
    assert re.search(r"\b(GMT|BST)\b", r.stdout), r.stdout
    nxt = next(line for line in r.stdout.splitlines() if "next:" in line)
    assert re.search(r"next: .+ (from|keeps the calls past) .+ \(sent (between .+ and .+|at .+)\)", nxt), nxt
    r = run_cli("history", "--config", str(example))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["when", "line", "what"], lines[0]
    assert not ISO.search(r.stdout) and "{" not in r.stdout, r.stdout  # no raw JSON, no ISO
    assert any("read back" in line for line in lines) and re.search(r"\b(GMT|BST)\b", r.stdout)
    rows = json.loads(run_cli("history", "--config", str(example), "--json").stdout)  # machines keep the JSON
    assert {"id", "at", "kind", "voipnumber", "ok"} <= set(rows[0])


def test_a_bad_time_shows_the_forms_that_work_plus_2h_among_them(example: Path) -> None:
    for args in (("plan", "--start", "soonish"), ("history", "--since", "soonish")):
        r = run_cli(args[0], "--config", str(example), *args[1:])
        assert r.returncode == 1 and "+2h" in r.stderr and "2026-12-01 18:00" in r.stderr, r.stderr


def test_fake_aql_explains_every_option_and_takes_any_free_port() -> None:
    r = run_cli("fake-aql", "--help")
    assert r.returncode == 0
    for option in ("--port", "--numbers", "--username", "--password-env", "--wraps"):
        described = re.search(rf"{option}\b[^\n]*\n?\s+\S", r.stdout)
        assert described, (option, r.stdout)
    assert "8080" not in r.stdout and "0" in r.stdout
    proc = subprocess.Popen([sys.executable, "-m", "forwardd", "fake-aql"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        info = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert info["port"] not in (0, 8080) and info["url"].startswith("http://127.0.0.1:")
    finally:
        proc.terminate()
        proc.wait(5)


def test_with_two_accounts_status_and_plan_say_each_line_s_account(tmp_path: Path) -> None:
    cfg = tmp_path / "two.toml"
    cfg.write_text(f"""
state_dir = "{tmp_path / 'state'}"
[aql]
url = "simulated"
[accounts.north]
url = "simulated"
[[numbers]]
voipnumber = "606309"
fallback = "07700 900999"
[[numbers]]
voipnumber = "606310"
name = "North line"
account = "north"
fallback = "07700 900999"
""")
    r = run_cli("status", "--config", str(cfg), "--json")
    rows = {row["voipnumber"]: row for row in json.loads(r.stdout)["numbers"]}
    assert rows["606309"]["aql_account"] == "aql" and rows["606310"]["aql_account"] == "north"
    r = run_cli("status", "--config", str(cfg))
    assert "North line (606310), account north" in r.stdout and "606309, account aql" in r.stdout, r.stdout
    r = run_cli("plan", "--config", str(cfg), "--days", "1")
    assert r.returncode == 0, r.stderr
    assert "North line (606310), account north" in r.stdout and "606309, account aql" in r.stdout, r.stdout
