"""The request budget (issue 13): drift checks spread over their interval and never late, the token
bucket's cap, throttling; and the simulator's figures on the example config."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwardd.config import config_from_dict
from forwardd.errors import ConfigError
from forwardd.service.budget import DriftSchedule, RequestBudget, RetryQueue

from .conftest import UTC, run_cli

T0 = dt.datetime(2026, 12, 1, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)


def test_drift_checks_spread_the_account_evenly_over_the_interval() -> None:
    numbers = [f"6{i:05d}" for i in range(120)]
    schedule = DriftSchedule(numbers, HOUR, T0)
    # the start-up reads fall one every 30 s over the first hour...
    firsts = sorted(schedule.next_due(n, None) for n in numbers)
    assert {(b - a).total_seconds() for a, b in zip(firsts, firsts[1:])} == {30.0} and firsts[-1] - firsts[0] < HOUR
    # ...and each check comes an interval after the last, so the spread stays; never two a minute
    seconds = sorted(schedule.next_due(n, schedule.next_due(n, None)) for n in numbers)
    per_minute: dict[dt.datetime, int] = {}
    for t in seconds:
        per_minute[t.replace(second=0)] = per_minute.get(t.replace(second=0), 0) + 1
    assert max(per_minute.values()) <= 2


def test_a_read_for_a_change_counts_as_a_check() -> None:
    schedule = DriftSchedule(["606309", "606310"], HOUR, T0)
    read = T0 + dt.timedelta(minutes=10)
    assert schedule.next_due("606309", read) == read + HOUR  # after a drift check: an interval on
    # after a read for a change: an interval on, less a quarter of the number's phase (606310: 30 min)
    assert schedule.next_due("606309", read, read_for_change=read) == read + HOUR
    assert schedule.next_due("606310", read, read_for_change=read) == read + HOUR - dt.timedelta(minutes=30) / 4
    # a planned change that reads the number before its check is due: no check before it
    planned = read + dt.timedelta(minutes=40)
    assert schedule.next_due("606309", read, None, planned) is None
    assert schedule.next_due("606309", read, None, read + 2 * HOUR) == read + HOUR
    assert schedule.due(T0 + 2 * HOUR, {"606309": read, "606310": read}, {}, {"606309": planned}) == ["606310"]


@settings(max_examples=200, deadline=None)
@given(changes=st.lists(st.integers(0, 6 * 3600), max_size=12), phase=st.integers(0, 9),
       hand_made=st.integers(0, 6 * 3600))
def test_a_hand_made_change_is_always_seen_within_one_interval(changes: list[int], phase: int, hand_made: int) -> None:
    """Whatever reads for changes happen, the next read after any instant comes within drift_check_every."""
    numbers = [f"60630{i}" for i in range(10)]
    me = numbers[phase]
    schedule = DriftSchedule(numbers, HOUR, T0)
    change_at = sorted(T0 + dt.timedelta(seconds=s) for s in changes)
    reads: list[tuple[dt.datetime, bool]] = [(T0, False)]  # the start-up read
    end = T0 + dt.timedelta(hours=8)
    while reads[-1][0] < end:
        last, for_change = reads[-1]
        upcoming = [c for c in change_at if c > last]
        due = schedule.next_due(me, last, last if for_change else None, upcoming[0] if upcoming else None)
        reads.append((upcoming[0], True) if due is None or (upcoming and upcoming[0] <= due) else (due, False))
    t = T0 + dt.timedelta(seconds=hand_made)
    seen = min(r for r, _ in reads if r > t)
    assert seen - t <= HOUR


def test_the_bucket_caps_background_reads_per_minute() -> None:
    budget = RequestBudget(120, T0)
    granted = [budget.reserve(T0) for _ in range(1000)]  # everything asked for at once
    assert granted == sorted(granted)
    for i in range(len(granted)):
        j = i
        while j < len(granted) and granted[j] < granted[i] + dt.timedelta(minutes=1):
            j += 1
        assert j - i <= 120 + budget.capacity  # any minute: the rate, plus at most one burst
    assert (granted[-1] - T0).total_seconds() == pytest.approx((1000 - budget.capacity) / 2, abs=1)


def test_throttling_pauses_background_reads_for_retry_after_or_a_growing_back_off() -> None:
    budget = RequestBudget(120, T0)
    assert budget.throttle(T0, 30) == 30 and budget.reserve(T0) == T0 + dt.timedelta(seconds=30)
    assert [budget.throttle(T0, None) for _ in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    budget.answered()
    assert budget.throttle(T0, None) == 5 and budget.throttled == 10


def test_a_number_that_does_not_confirm_is_retried_with_back_off() -> None:
    q = RetryQueue()
    assert [(q.failed("606309", T0) - T0).total_seconds() for _ in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    assert q.due(T0 + dt.timedelta(minutes=5)) == ["606309"]
    q.confirmed("606309")
    assert q.due(T0 + dt.timedelta(days=1)) == [] and (q.failed("606309", T0) - T0).total_seconds() == 10


def test_reconcile_every_says_what_replaced_it_and_drift_checks_are_a_minute_at_least() -> None:
    base = {"numbers": [{"voipnumber": "606309", "fallback": "07700 900001"}]}
    with pytest.raises(ConfigError) as info:
        config_from_dict({**base, "daemon": {"reconcile_every": "5m"}}, env={})
    assert "replaced by daemon.drift_check_every" in dict(info.value.problems)["daemon.reconcile_every"]
    with pytest.raises(ConfigError, match="every 1m"):
        config_from_dict({**base, "daemon": {"drift_check_every": "30s"}}, env={})
    cfg = config_from_dict({**base, "daemon": {"drift_check_every": "1m"}}, env={})
    assert cfg.daemon.drift_check_every == dt.timedelta(minutes=1) and cfg.aql.max_requests_per_minute == 120


# ------------------------------------------------------------------------------- the simulator's figures




def simulate(example: Path, *extra: str) -> dict:
    r = run_cli("simulate", "--config", str(example), "--start", "2026-11-30T00:00:00+00:00", "--days", "7", "--json",
                *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_example_at_defaults_reads_little_and_misroutes_nothing(example: Path) -> None:
    doc = simulate(example)
    (n,) = doc["numbers"]
    assert set(n["requests"]) == {"getuser", "changeuser", "listusers"}
    changes_a_day = n["changes_planned"] / 7
    assert n["requests_per_day"] <= 24 + 3 * changes_a_day + 1
    assert n["requests"]["changeuser"] == n["calls"] and n["misrouted_s"] == 0
    # a naive 5-minute poller would have read 288 times a day
    assert n["requests"]["getuser"] / 7 < 30


@pytest.mark.parametrize("at", ["2026-11-30T09:00:05+00:00", "2026-12-01T17:31:00+00:00", "2026-12-02T13:13:00+00:00",
                                "2026-12-03T08:59:00+00:00", "2026-12-05T00:00:30+00:00"])
def test_a_hand_made_change_is_detected_within_drift_check_every(example: Path, at: str) -> None:
    doc = simulate(example, "--drift", at)
    (n,) = doc["numbers"]
    assert n["drift_detected_after_s"] is not None
    assert 0 <= n["drift_detected_after_s"] <= doc["drift_check_every_s"] == 3600
