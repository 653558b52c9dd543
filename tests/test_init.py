"""``forwardd init``: a first config written from the account as it is. Against the fake aql server as a
process (``forwardd fake-aql``) and the built-in simulated account: what it writes passes ``check``,
``plan`` keeps every number exactly as it forwards today, ``apply`` sends nothing, and the password is
not in it. And the pure writer on the windows a config cannot say exactly."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from forwardd.aql.simulated import DEMO_LINES
from forwardd.config import config_from_dict
from forwardd.core.carrier import LineState, Reading
from forwardd.core.plan import Planner
from forwardd.core.provider import Program
from forwardd.errors import ConfigError
from forwardd.service.lines import line_specs
from forwardd.service.setup import AccountRead, LineRead, Origin, config_text, plan_differences, policy_of

from .conftest import ROOT, UTC, run_cli

PASSWORD = "init-Pa55word-frobozz"
A, B = "07700900001", "07700900002"
TODAY = {  # three numbers forwarding to two people (one only in the evening, one only in office hours), one off
    "606309": {"forwardto": A, "forwardactive": "1", "forwardstart": "00:00:00", "forwardend": "23:59:59"},
    "606310": {"forwardto": "447700900001", "forwardactive": "1", "forwardstart": "17:30:00", "forwardend": "23:59:59"},
    "606311": {"forwardto": B, "forwardactive": "1", "forwardstart": "09:00:00", "forwardend": "17:29:59",
               "forwardcli": "0"},
    "606312": {"forwardactive": "0"},
}


class Fake:
    def __init__(self, numbers: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forwardd", "fake-aql", "--port", "0", "--numbers", ",".join(numbers),
             "--username", "acme", "--password-env", "FAKE_PW"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env={**os.environ, "FAKE_PW": PASSWORD})
        self.url = json.loads(self.proc.stdout.readline())["url"]  # type: ignore[union-attr]
        self.base = self.url.rsplit("/", 2)[0]

    def get(self, what: str) -> Any:
        with urllib.request.urlopen(f"{self.base}/_fake/{what}", timeout=5) as r:
            return json.load(r)

    def set(self, number: str, fields: dict[str, str]) -> None:
        req = urllib.request.Request(f"{self.base}/_fake/set", method="POST",
                                     data=json.dumps({"voipnumber": number, "fields": fields}).encode())
        urllib.request.urlopen(req, timeout=5).close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def fake():
    f = Fake(list(TODAY))
    yield f
    f.stop()


def in_force(plan: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each number's changes in a ``plan --json``."""
    return {n["voipnumber"]: n["changes"] for n in plan["numbers"]}


def assert_kept(plan: dict[str, Any], today: dict[str, dict[str, str]]) -> None:
    """The plan keeps each number as ``today`` holds it: one program, in force from the start, doing the same."""
    for number, changes in in_force(plan).items():
        fields = today[number]
        assert len(changes) == 1, (number, changes)
        settings = changes[0]["settings"]
        assert settings["forwardactive"] == fields["forwardactive"], number
        if fields["forwardactive"] == "1":
            assert (settings["forwardstart"], settings["forwardend"]) == (fields["forwardstart"], fields["forwardend"])
            assert settings["forwardto"][-9:] == fields["forwardto"][-9:]  # (07700900001 is 447700900001)


def test_init_against_the_fake_server_writes_a_config_that_changes_nothing(tmp_path: Path, fake: Fake) -> None:
    for number, fields in TODAY.items():
        fake.set(number, fields)
    before = fake.get("history")
    (tmp_path / "aql-password").write_text(PASSWORD + "\n")
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "AQL_PW": PASSWORD}
    out = tmp_path / "forwardd.toml"
    made = run_cli("init", "--url", fake.url, "--username", "acme", "--password-file", str(tmp_path / "aql-password"),
                   "--output", str(out), env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "checked with forwardd's own plan: starting forwardd on it changes no number" in made.stdout
    text = out.read_text()
    assert PASSWORD not in text and PASSWORD not in made.stdout + made.stderr
    doc = tomllib.loads(text)
    assert doc["aql"] == {"url": fake.url, "username": "acme", "password_file": str(tmp_path / "aql-password")}
    assert doc["people"] == {"person1": A, "person2": B}  # one per distinct target, whatever its spelling
    numbers = {n["voipnumber"]: n for n in doc["numbers"]}
    assert numbers["606309"] == {"voipnumber": "606309", "fallback": "person1"}
    assert numbers["606310"]["office_hours"] == ["Daily 00:00-17:30"] and numbers["606310"]["fallback"] == "person1"
    assert numbers["606311"]["office_hours"] == ["Daily 00:00-09:00", "Daily 17:30-24:00"]
    assert numbers["606311"]["forwardcli"] is False
    assert numbers["606312"] == {"voipnumber": "606312", "fallback": "none", "office_hours": ["Daily 00:00-24:00"]}
    assert '# rota = "rota"' in text and "# [calendars]" in text and "Next steps:" in text
    assert "rotaa" not in text and "forwardd check --config " + str(out) in text

    checked = run_cli("check", "--config", str(out), env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    planned = run_cli("plan", "--config", str(out), "--json", env=env, cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert_kept(json.loads(planned.stdout), TODAY)
    applied = run_cli("apply", "--config", str(out), env=env, cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert fake.get("history") == before  # not one change sent
    requests = fake.get("requests")["requests"]
    assert not [r for r in requests if r["action"] == "changeuser"]
    assert sorted(r["voipnumber"] for r in requests[:5] if r["action"] == "getuser") == sorted(TODAY)

    again = run_cli("init", "--url", fake.url, "--username", "acme", "--password-env", "AQL_PW", "--output", str(out),
                    env=env, cwd=tmp_path)
    assert again.returncode == 1 and "never overwrites" in again.stderr and out.read_text() == text


def test_init_with_the_password_in_the_environment_and_bad_credentials(tmp_path: Path, fake: Fake) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "AQL_PW": PASSWORD}
    made = run_cli("init", "--url", fake.url, "--username", "acme", "--password-env", "AQL_PW", "--output", "-",
                   env=env, cwd=tmp_path)
    assert made.returncode == 0 and 'password_env = "AQL_PW"' in made.stdout and PASSWORD not in made.stdout
    refused = run_cli("init", "--url", fake.url, "--username", "acme", "--password-env", "AQL_PW",
                      "--output", str(tmp_path / "x.toml"), env={**env, "AQL_PW": "wrong-" + PASSWORD}, cwd=tmp_path)
    assert refused.returncode == 1 and not (tmp_path / "x.toml").exists()
    assert "forwardd: " in refused.stderr and "Traceback" not in refused.stderr and PASSWORD not in refused.stderr
    missing = run_cli("init", "--url", fake.url, "--username", "acme", "--output", str(tmp_path / "y.toml"), env=env)
    assert missing.returncode == 1 and "give --password-file or --password-env" in missing.stderr


def test_init_against_the_built_in_simulated_account(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    out = tmp_path / "trial.toml"
    made = run_cli("init", "--url", "simulated", "--output", str(out), env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    assert tomllib.loads(out.read_text())["aql"] == {"url": "simulated"}
    assert run_cli("check", "--config", str(out), env=env).returncode == 0
    planned = run_cli("plan", "--config", str(out), "--json", env=env)
    today = {n: {"forwardto": "01133203040", "forwardstart": "00:00:00", "forwardend": "23:59:59", **f}
             for n, f in DEMO_LINES.items()}
    assert_kept(json.loads(planned.stdout), today)


# ---------------------------------------------------------------------------------------- pure


NOW = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)


def reading(target: str | None, start: str = "00:00:00", end: str = "23:59:59", active: bool = True) -> Reading:
    from forwardd.core.provider import parse_hms

    return Reading(LineState(Program(target, active and bool(target), parse_hms(start), parse_hms(end))), {}, "3.42")


def written(lines: dict[str, Reading | None]) -> tuple[str, AccountRead]:
    account = AccountRead(tuple(LineRead(v, r, None if r is not None else "HTTP 503") for v, r in lines.items()))
    return config_text(account, Origin("https://gw.aql.com/reseller/voipapi.php", "acme", "password_env", "AQL_PW"),
                       NOW, "f.toml"), account


def differences(text: str, account: AccountRead) -> list[str]:
    cfg = config_from_dict(tomllib.loads(text), env={})
    plan = Planner(line_specs(cfg), cfg.tz).plan({}, NOW, NOW + dt.timedelta(days=14))
    return plan_differences(plan, account, NOW)


def test_an_overnight_window_is_kept_as_aql_holds_it() -> None:
    text, account = written({"606309": reading(A, "17:30:00", "08:59:59")})
    assert "window_wraps_midnight = true" in text and 'office_hours = ["Daily 09:00-17:30"]' in text
    assert differences(text, account) == []
    # without the setting, forwardd would reprogram the line during the day: the check says so
    assert differences(text.replace("window_wraps_midnight = true", ""), account)


def test_what_a_config_cannot_say_is_said_in_a_comment() -> None:
    text, account = written({"606309": reading(A, "09:00:30", "17:00:00"), "606310": reading("sip:desk@pbx"),
                             "606311": reading(A, "12:00:00", "12:00:05"), "606312": None, "606313": reading(B)})
    numbers = {n["voipnumber"]: n for n in tomllib.loads(text)["numbers"]}
    assert set(numbers) == {"606309", "606313"}
    assert numbers["606309"]["office_hours"] == ["Daily 00:00-09:01", "Daily 17:00-24:00"]
    assert "# note: office hours are whole minutes, so forwardd will move the window's edges" in text
    assert "# 606310 is left out: it forwards to 'sip:desk@pbx', which forwardd cannot read as a phone number" in text
    assert "# 606311 is left out: its window is shorter than a minute" in text
    assert "# 606312 is left out: could not be read (HTTP 503)." in text
    assert [d[:7] for d in differences(text, account)] == ["606309:"]


def test_a_number_meant_never_to_forward_needs_office_hours_all_week() -> None:
    def load(**n: Any) -> None:
        config_from_dict({"numbers": [{"voipnumber": "606309", "fallback": "none", **n}]}, env={})

    load(office_hours=["Daily 00:00-24:00"])
    load(office_hours=["Mon-Fri 00:00-24:00", "Sat 00:00-12:00", "Sat,Sun 12:00-24:00", "Sun 00:00-12:00"])
    for hours in ([], ["Mon-Sat 00:00-24:00"], ["Daily 00:00-23:59"]):
        with pytest.raises(ConfigError, match="has no rota, no overrides and no fallback"):
            load(office_hours=hours)


def test_policy_of_a_line_off_keeps_what_aql_holds_in_words() -> None:
    policy = policy_of(reading(A, active=False))
    assert policy.target is None and policy.office_hours == ("Daily 00:00-24:00",)
    assert policy.today == f"not forwarding (aql holds forwardto {A}, switched off)"


def test_a_number_that_cannot_be_read_is_left_out_and_said(tmp_path: Path) -> None:
    from forwardd.aql.account import Account
    from forwardd.aql.fake import FakeAqlServer

    account = Account.with_numbers("acme", PASSWORD, list(TODAY))
    for number, fields in TODAY.items():
        account.users[number].update(fields)
    out = tmp_path / "f.toml"
    with FakeAqlServer(account) as srv:
        srv.add_fault("err", action="getuser", message="Invalid number")  # aql refuses one read: not retried
        made = run_cli("init", "--url", srv.url, "--username", "acme", "--password-env", "AQL_PW", "--output",
                       str(out), env={"AQL_PW": PASSWORD, "XDG_STATE_HOME": str(tmp_path / "state")})
    assert made.returncode == 1, made.stdout + made.stderr
    (warning,) = [line for line in made.stdout.splitlines() if line.startswith("warning:")]
    assert "could not be read (aql rejected getuser: Invalid number); it is left out (commented)" in warning
    left_out = warning.split()[1]
    text = out.read_text()
    assert f"# {left_out} is left out: could not be read (aql rejected getuser: Invalid number)." in text
    numbers = [n["voipnumber"] for n in tomllib.loads(text)["numbers"]]
    assert sorted(numbers) == sorted(set(TODAY) - {left_out})
    assert run_cli("check", "--config", str(out), env={"XDG_STATE_HOME": str(tmp_path / "state")}).returncode == 0
