"""The commands as processes, on the shipped example config."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from .conftest import run_cli

START = "2026-11-30T00:00:00+00:00"




def test_help_lists_every_command() -> None:
    r = run_cli("--help")
    for cmd in ("run", "check", "plan", "simulate", "apply", "status", "history", "fake-aql"):
        assert cmd in r.stdout


def test_plan_json_has_the_stable_schema(example: Path) -> None:
    r = run_cli("plan", "--config", str(example), "--start", START, "--days", "7", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"start", "end", "numbers", "warnings"}
    assert dt.datetime.fromisoformat(doc["start"]) == dt.datetime.fromisoformat(START)
    assert dt.datetime.fromisoformat(doc["end"]) - dt.datetime.fromisoformat(doc["start"]) == dt.timedelta(days=7)
    (number,) = doc["numbers"]
    assert number["voipnumber"] == "606309"
    timeline = number["timeline"]
    assert timeline[0]["start"] == doc["start"] and timeline[-1]["end"] == doc["end"]
    for a, b in zip(timeline, timeline[1:]):
        assert a["end"] == b["start"]
        assert (a["forwardto"], a["reason"]) != (b["forwardto"], b["reason"])
    assert {s["reason"] for s in timeline} >= {"office hours", "rota: Bob", "rota: Carol", "override: Dave"}
    monday_evening = next(s for s in timeline if s["start"] == "2026-11-30T17:30:00+00:00")
    assert monday_evening["forwardto"] == "07700900003" and monday_evening["reason"] == "rota: Carol"
    changes = number["changes"]
    assert changes[0]["apply_from"] == doc["start"]
    for c in changes:
        assert set(c) >= {"apply_from", "apply_by", "exact", "settings"}
        assert set(c["settings"]) == {"forwardto", "forwardactive", "forwardstart", "forwardend"}
        assert c["settings"]["forwardstart"] <= c["settings"]["forwardend"]
        assert c["exact"] == (c["apply_from"] == c["apply_by"]) or c is changes[0]
    assert any(c["settings"] == {"forwardto": "07700900003", "forwardactive": "1", "forwardstart": "17:30:00",
                                 "forwardend": "23:59:59"} for c in changes)


def test_plan_human_view_reads_well(example: Path) -> None:
    r = run_cli("plan", "--config", str(example), "--start", START, "--days", "3")
    assert r.returncode == 0, r.stderr
    assert "Number 606309" in r.stdout and "rota: Carol" in r.stdout and "office hours" in r.stdout
    assert "send between" in r.stdout and "slack" in r.stdout


def _simulate(example: Path, *extra: str) -> dict:
    r = run_cli("simulate", "--config", str(example), "--start", START, "--days", "7", "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_simulate_with_an_outage_across_1730_misroutes_nothing_but_naive_does(example: Path) -> None:
    outage = "--outage=2026-12-01T16:30:00+00:00/PT2H"  # Tuesday 16:30-18:30, across the 17:30 switch
    smart = _simulate(example, outage)
    naive = _simulate(example, outage, "--naive")
    assert set(smart) >= {"numbers", "total"}
    (n,) = smart["numbers"]
    assert set(n) >= {"voipnumber", "calls", "exact_handovers", "min_slack_s", "misrouted_s"}
    assert smart["total"]["misrouted_s"] == 0
    assert n["min_slack_s"] >= 5 * 60
    # naive missed the Tuesday 17:30 switch, so calls went unforwarded until Wednesday 09:00... and
    # the daemon being down longer would only make it worse: at least the 1 h outage after 17:30
    assert naive["total"]["misrouted_s"] >= 3600
    assert smart["total"]["calls"] > 0 and naive["total"]["calls"] > 0


def test_an_outage_from_the_very_second_of_a_switch_takes_that_switch_with_it(example: Path) -> None:
    """The daemon is down from the outage's first instant: the 17:30 switch due then is not sent by a
    daemon that sends at the second (naive: misrouted until the restart at 18:00), and costs nothing to
    one whose window was armed before."""
    outage = "--outage=2026-12-01T17:30:00+00:00/PT30M"
    assert _simulate(example, outage)["total"]["misrouted_s"] == 0
    assert _simulate(example, outage, "--naive")["total"]["misrouted_s"] == 30 * 60


def test_simulate_without_outages_is_clean_for_both(example: Path) -> None:
    assert _simulate(example)["total"]["misrouted_s"] == 0
    assert _simulate(example, "--naive")["total"]["misrouted_s"] == 0


def test_bad_outage_is_a_clear_error(example: Path) -> None:
    r = run_cli("simulate", "--config", str(example), "--start", START, "--days", "1", "--outage", "tomorrow")
    assert r.returncode == 1 and "--outage" in r.stderr and "Traceback" not in r.stderr


def test_apply_status_history_on_the_simulated_account(example: Path) -> None:
    r = run_cli("apply", "--config", str(example))
    assert r.returncode == 0, r.stderr
    assert "606309: OK (changed)" in r.stdout
    r = run_cli("status", "--config", str(example), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    (row,) = json.loads(r.stdout)["numbers"]
    assert row["match"] is True and row["in_account"] is True
    assert row["credit"]["words"].startswith("credit 3.42")  # the credit its read found (issue 21)
    r = run_cli("status", "--config", str(example))
    assert "    credit 3.42" in r.stdout
    r = run_cli("history", "--config", str(example), "--number", "606309", "--json")
    kinds = [e["kind"] for e in json.loads(r.stdout)]
    assert "change" in kinds and "readback" in kinds
