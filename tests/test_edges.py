"""The edges a new user meets, each as a process: a one-line message, the right exit code, no traceback."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, run_cli

ROTA = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//forwardd tests//EN\r
BEGIN:VEVENT\r
UID:r1\r
DTSTART:20200101T000000Z\r
DTEND:20400101T000000Z\r
SUMMARY:On call: Alice\r
END:VEVENT\r
END:VCALENDAR\r
"""


def config(tmp_path: Path, *, state: str | Path | None = None, url: str = "simulated", extra_aql: str = "",
           calendar: str = 'rota = { source = "rota.ics" }') -> Path:
    (tmp_path / "rota.ics").write_text(ROTA)
    p = tmp_path / "forwardd.toml"
    p.write_text(f"""
state_dir = "{state if state is not None else tmp_path / 'state'}"
[aql]
url = "{url}"
username = "acme"
{extra_aql}
[people]
alice = "07700 900001"
[calendars]
{calendar}
[[numbers]]
voipnumber = "606309"
rota = "rota"
""")
    return p


def no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("make_state", "reason"),
    [(lambda t: t / "a-file", "is a file, not a directory"),
     (lambda t: Path("/proc/forwardd-state"), "is under /proc"),
     (lambda t: t / "a-file" / "below", "is not writable")],
    ids=["a file", "under /proc", "below a file"],
)
def test_an_unusable_state_directory_is_named_with_its_reason(tmp_path: Path, make_state, reason: str) -> None:  # noqa: ANN001
    (tmp_path / "a-file").write_text("not a directory")
    state = make_state(tmp_path)
    cfg = config(tmp_path, state=state)
    r = run_cli("check", "--config", str(cfg))
    assert r.returncode == 1 and f"state directory {state}: {reason}" in r.stdout, r.stdout
    no_traceback(r)
    for command in ("run", "apply"):
        r = run_cli(command, "--config", str(cfg), timeout=60)
        assert r.returncode == 1, (command, r.stdout, r.stderr)
        assert f"forwardd: state directory {state}: {reason}" in r.stderr
        no_traceback(r)


def test_commands_that_never_talk_to_aql_never_need_the_password(tmp_path: Path) -> None:
    cfg = config(tmp_path, url="https://gw.aql.com/reseller/voipapi.php", extra_aql='password_file = "/nonexistent/pw"')
    r = run_cli("plan", "--config", str(cfg), "--days", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli("check", "--config", str(cfg))
    assert r.returncode == 0 and "the aql password is not available here" in r.stdout, r.stdout
    (tmp_path / "state").mkdir(exist_ok=True)
    r = run_cli("history", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    r = run_cli("simulate", "--config", str(cfg), "--start", "2026-12-01", "--days", "1")
    assert r.returncode == 0, r.stderr
    # and the ones that do, name the key and the reason, exit 2
    r = run_cli("status", "--config", str(cfg))
    assert r.returncode == 2 and "At 'aql.password_file': cannot read /nonexistent/pw" in r.stderr
    no_traceback(r)


@pytest.mark.parametrize("days", ["0", "-3"])
def test_plan_with_no_horizon_is_a_clear_error(tmp_path: Path, days: str) -> None:
    r = run_cli("plan", "--config", str(config(tmp_path)), f"--days={days}")
    assert r.returncode == 1 and "--days" in r.stderr and "more than 0 days" in r.stderr
    no_traceback(r)


def test_history_since_takes_a_plain_date_and_names_itself_when_wrong(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert run_cli("apply", "--config", str(cfg)).returncode == 0
    r = run_cli("history", "--config", str(cfg), "--since", dt.date.today().isoformat(), "--json")
    assert r.returncode == 0 and '"kind": "change"' in r.stdout
    r = run_cli("history", "--config", str(cfg), "--since", "2999-01-01", "--json")
    assert r.returncode == 0 and r.stdout.strip() == "[]"
    r = run_cli("history", "--config", str(cfg), "--since", "last tuesday")
    assert r.returncode == 1 and "--since 'last tuesday'" in r.stderr
    no_traceback(r)


def test_version() -> None:
    from forwardd import __version__

    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"forwardd {__version__}"


def test_ctrl_c_while_aql_does_not_answer_exits_quietly(tmp_path: Path, fake_proc) -> None:  # noqa: ANN001
    from .e2e import PASSWORD, wait_for

    fake_proc.post("faults", {"faults": [{"kind": "delay", "seconds": 30, "count": 10}]})
    cfg = config(tmp_path, url=fake_proc.url, extra_aql='password_env = "AQL_PW"')
    proc = subprocess.Popen([sys.executable, "-m", "forwardd", "apply", "--config", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "AQL_PW": PASSWORD})
    wait_for(lambda: fake_proc.get("requests")["in_flight"] >= 1)  # a request is stalled in the fake
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + err and "interrupted" in err


def test_plan_exit_codes_follow_the_calendars(tmp_path: Path) -> None:
    # no usable copy at all: 1
    cfg = config(tmp_path, calendar='rota = { source = "rota.ics" }')
    (tmp_path / "rota.ics").write_text("<html>login</html>")
    r = run_cli("plan", "--config", str(cfg), "--days", "1")
    assert r.returncode == 1 and "no usable copy" in r.stderr
    # a good copy, then the file breaks: the copy is within max_age, so 0 with a warning
    (tmp_path / "rota.ics").write_text(ROTA)
    assert run_cli("plan", "--config", str(cfg), "--days", "1").returncode == 0
    (tmp_path / "rota.ics").write_text("<html>login</html>")
    r = run_cli("plan", "--config", str(cfg), "--days", "1")
    assert r.returncode == 0 and "failing now" in r.stderr and "planning with the last good copy" in r.stderr
    # the same copy, older than max_age: 1
    cfg.write_text(cfg.read_text().replace('source = "rota.ics" }', 'source = "rota.ics", max_age = "1s" }'))
    time.sleep(1.5)
    r = run_cli("plan", "--config", str(cfg), "--days", "1")
    assert r.returncode == 1 and "older than max_age" in r.stderr
    no_traceback(r)


def test_every_state_file_is_private_under_umask_0(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    r = subprocess.run([sys.executable, "-m", "forwardd", "apply", "--config", str(cfg)], capture_output=True,
                       text=True, cwd=ROOT, timeout=60, preexec_fn=lambda: os.umask(0))
    assert r.returncode == 0, r.stderr
    state = tmp_path / "state"
    found = {p.relative_to(state).as_posix(): p.stat().st_mode & 0o777 for p in [state, *state.rglob("*")]}
    assert {"journal.sqlite", "calendars/rota.ics", "calendars/rota.json", "simulated-account.json",
            "forwardd.lock"} <= set(found), found
    wrong = {name: oct(mode) for name, mode in found.items()
             if mode != (0o700 if (state / name if name != "." else state).is_dir() else 0o600)}
    assert wrong == {}


def test_calendar_text_cannot_break_or_paint_the_terminal(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    odd = ("BEGIN:VEVENT\r\nUID:odd\r\nDTSTART:20200101T000000Z\r\nDTEND:20400101T000000Z\r\n"
           "SUMMARY:Locum [/] [bold red]\x1b[31mpainted\x1b[0m\r\nEND:VEVENT\r\n")
    (tmp_path / "rota.ics").write_text(ROTA.replace("END:VCALENDAR", odd + "END:VCALENDAR"))
    r = run_cli("plan", "--config", str(cfg), "--days", "1")
    assert r.returncode == 0, r.stderr
    assert "Locum [/] [bold red][31mpainted[0m" in r.stdout  # shown as text, the escape byte removed
    assert "\x1b" not in r.stdout + r.stderr
    no_traceback(r)



def test_check_looks_ahead_for_misspelled_names_two_name_events_and_gaps(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)

    def at(days: float) -> str:
        return (now + dt.timedelta(days=days)).strftime("%Y%m%dT%H%M%SZ")

    events = [("ok", 0, 18, "On call: Alice"), ("typo", 18, 19, "On call: Alcie"), ("ok2", 19, 25, "Alice covers Bob"),
              ("both", 25, 26, "Alice and Bob"), ("ok3", 26, 80, "On call: Alice")]
    body = "".join(f"BEGIN:VEVENT\r\nUID:{u}\r\nDTSTART:{at(a)}\r\nDTEND:{at(b)}\r\nSUMMARY:{s}\r\nEND:VEVENT\r\n"
                   for u, a, b, s in events)
    cfg = config(tmp_path)
    (tmp_path / "rota.ics").write_text(ROTA.replace("BEGIN:VEVENT\r\nUID:r1", "BEGIN:VEVENT\r\nUID:r0").split(
        "BEGIN:VEVENT")[0] + body + "END:VCALENDAR\r\n")
    cfg.write_text(cfg.read_text().replace('[people]\nalice = "07700 900001"',
                                           '[people]\nalice = "07700 900001"\nbob = "07700 900002"'))
    r = run_cli("check", "--config", str(cfg))  # 60 days by default: sees day 18 and day 25
    assert r.returncode == 1, r.stdout
    assert "'On call: Alcie'" in r.stdout and "names nobody" in r.stdout
    assert "'Alice and Bob'" in r.stdout and "names more than one person" in r.stdout
    assert "gap: nobody is on call" in r.stdout  # the hour named by the typo, no fallback
    assert "Alice covers Bob" not in r.stdout  # a swap belongs to Alice: nothing to say
    r = run_cli("check", "--config", str(cfg), "--days", "10")
    assert r.returncode == 0 and "Alcie" not in r.stdout, r.stdout
    # with a fallback, the uncovered hours are noted where the fallback takes the calls, not errors
    cfg.write_text(cfg.read_text().replace('rota = "rota"', 'rota = "rota"\nfallback = "Bob"'))
    r = run_cli("check", "--config", str(cfg), "--days", "20")
    assert "the fallback Bob (07700900002) takes the calls" in r.stdout
