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
from forwardd.service.budget import DriftGrid, RequestBudget, RetryQueue, drift_interval, drift_note

from .conftest import UTC, run_cli

T0 = dt.datetime(2026, 12, 1, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)


def test_drift_checks_spread_the_account_evenly_over_the_interval() -> None:
    numbers = [f"6{i:05d}" for i in range(120)]
    grid = DriftGrid(numbers, HOUR, 120, T0)
    # the start-up reads fall one every 30 s over the first hour...
    firsts = sorted(grid.next_check(n, None, T0) for n in numbers)
    assert {(b - a).total_seconds() for a, b in zip(firsts, firsts[1:])} == {30.0} and firsts[-1] - firsts[0] < HOUR
    # ...and each check comes an interval after the last, so the spread stays; never two a minute
    seconds = sorted(grid.next_check(n, grid.next_check(n, None, T0), T0) for n in numbers)
    per_minute: dict[dt.datetime, int] = {}
    for t in seconds:
        per_minute[t.replace(second=0)] = per_minute.get(t.replace(second=0), 0) + 1
    assert max(per_minute.values()) <= 2


def test_reads_for_changes_never_bunch_the_checks_that_follow() -> None:
    """A rota that changes every line at the same instant reads them all at once; each such read counts as
    a check (the line's next one comes about an interval later), and those checks still come one slot at
    a time, never faster than the cap."""
    for count, later in ((1_000, 1.0), (5_000, 0.7)):
        numbers = [f"6{i:05d}" for i in range(count)]
        grid = DriftGrid(numbers, HOUR, 120, T0)
        read = T0 + dt.timedelta(minutes=30, seconds=7)
        for n in numbers:
            grid.read(n, read)
        after = sorted(grid.next_check(n, read, read) for n in numbers)
        assert after[0] > read and after[-1] <= read + grid.interval
        # counted as a check: (while the cap leaves room) no line is read again in the next half hour
        assert sum(a > read + grid.interval / 2 for a in after) >= later * count
        assert min((b - a).total_seconds() for a, b in zip(after, after[1:])) >= 60 / 120  # the cap's pace


@pytest.mark.parametrize(("numbers", "every", "cap", "minutes"), [
    (1_000, HOUR, 120, 60), (7_200, HOUR, 120, 60), (7_201, HOUR, 120, 61), (10_000, HOUR, 120, 84),
    (10_000, dt.timedelta(minutes=10), 2_000, 10), (50_000, dt.timedelta(minutes=5), 100_000, 5)])
def test_the_interval_grows_to_what_the_cap_allows_and_says_so(numbers: int, every: dt.timedelta, cap: int,
                                                               minutes: int) -> None:
    assert drift_interval(numbers, every, cap) == dt.timedelta(minutes=minutes)
    note = drift_note(numbers, every, cap)
    assert (note is None) == (minutes * 60 == every.total_seconds())


def test_the_note_says_the_arithmetic() -> None:
    assert drift_note(10_000, HOUR, 120) == ("1h for 10,000 numbers needs 167 reads a minute; under the cap of 120 "
                                             "each number is checked every 84 minutes")


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 3_000), cap=st.sampled_from([6, 30, 120]), every_min=st.sampled_from([1, 10, 60]),
       change_reads=st.lists(st.tuples(st.integers(0, 2_999), st.integers(0, 4 * 3600)), max_size=400))
def test_every_line_is_read_within_the_interval_and_checks_never_beat_the_cap(
        count: int, cap: int, every_min: int, change_reads: list[tuple[int, int]]) -> None:
    """At any size and cap, with reads for changes at random instants: each line's reads are never more
    than one interval apart, and the checks of any minute never number more than the cap (plus one)."""
    numbers = [f"{600000 + i}" for i in range(count)]
    grid = DriftGrid(numbers, dt.timedelta(minutes=every_min), cap, T0)
    assert count / (grid.interval.total_seconds() / 60) <= cap
    events = sorted((T0 + dt.timedelta(seconds=t), numbers[i % count]) for i, t in change_reads)
    end = T0 + dt.timedelta(hours=4)
    last: dict[str, dt.datetime] = {}
    checks: list[dt.datetime] = []
    due = {n: grid.next_check(n, None, T0) for n in numbers}
    heap = sorted((t, n) for n, t in due.items())
    import heapq

    heapq.heapify(heap)
    k = 0
    while heap and heap[0][0] < end:
        t, n = heapq.heappop(heap)
        while k < len(events) and events[k][0] < t:  # reads for changes first, as they happen
            ct, cn = events[k]
            k += 1
            assert ct - last.get(cn, T0) <= max(grid.interval, ct - T0)
            last[cn] = ct
            grid.read(cn, ct)
            due[cn] = grid.next_check(cn, ct, ct)
            heapq.heappush(heap, (due[cn], cn))
        if due[n] != t:
            continue  # rescheduled by a read for a change
        assert t - last.get(n, T0) <= grid.interval
        last[n], due[n] = t, grid.next_check(n, t, t)
        grid.read(n, t)
        checks.append(t)
        heapq.heappush(heap, (due[n], n))
    window = 0
    for i, t in enumerate(checks):
        while checks[window] <= t - dt.timedelta(minutes=1):
            window += 1
        assert i - window + 1 <= cap + 1


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


def _weekly_rotas(folder: Path, numbers: int, rotas: int) -> Path:
    """Another generator than the benchmarks' corpus: week-long shifts handed over on Mondays at 08:00,
    a mid-week swap in each, a built-in bank holiday calendar, and a line per number over the rotas."""
    people = [f"p{i:02d}" for i in range(24)]
    (folder / "rotas").mkdir(parents=True, exist_ok=True)
    for r in range(rotas):
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//forwardd test//weekly//EN"]
        for w in range(-2, 4):
            monday = dt.datetime(2026, 12, 7, 8, tzinfo=UTC) + dt.timedelta(weeks=w)
            who, swap = people[(r + w) % len(people)], people[(r + w + 7) % len(people)]
            lines += ["BEGIN:VEVENT", f"UID:w{r}-{w}", "DTSTAMP:20260101T000000Z",
                      f"DTSTART:{monday:%Y%m%dT%H%M%SZ}", f"DTEND:{monday + dt.timedelta(weeks=1):%Y%m%dT%H%M%SZ}",
                      f"SUMMARY:On call: {who}", "END:VEVENT",
                      "BEGIN:VEVENT", f"UID:s{r}-{w}", "DTSTAMP:20260102T000000Z",
                      f"DTSTART:{monday + dt.timedelta(days=2, hours=10):%Y%m%dT%H%M%SZ}",
                      f"DTEND:{monday + dt.timedelta(days=3):%Y%m%dT%H%M%SZ}", f"SUMMARY:{swap} covers {who}",
                      "END:VEVENT"]
        (folder / "rotas" / f"r{r}.ics").write_text("\r\n".join([*lines, "END:VCALENDAR", ""]))
    people_toml = "\n".join(f'{p} = "07700 900{i + 200:03d}"' for i, p in enumerate(people))
    cals = "\n".join(f'r{r} = {{ source = "rotas/r{r}.ics" }}' for r in range(rotas))
    nums = "".join(f'[[numbers]]\nvoipnumber = "{700000 + n}"\nrota = "r{n % rotas}"\nholidays = ["hols"]\n'
                   f'office_hours = ["Mon-Fri 09:00-17:00"]\n' for n in range(numbers))
    cfg = folder / "forwardd.toml"
    cfg.write_text(f'state_dir = "state"\n[people]\n{people_toml}\n[calendars]\n{cals}\n'
                   f'hols = {{ builtin = "GB-SCT" }}\n{nums}')
    return cfg


def test_two_thousand_lines_on_weekly_rotas_every_hand_made_change_is_seen(tmp_path: Path) -> None:
    """Issue 18's failing case, as a process: at 2,000 numbers on weekly rotas the old simulator never saw
    one of the 2,000 hand-made changes. Each is seen within the drift interval."""
    cfg = _weekly_rotas(tmp_path, 2000, 25)
    r = run_cli("simulate", "--config", str(cfg), "--start", "2026-12-08T00:00:00+00:00", "--days", "0.6",
                "--drift", "2026-12-08T12:00:00+00:00", "--json")
    assert r.returncode == 0, r.stderr
    drift = json.loads(r.stdout)["drift"]
    assert drift["numbers"] == 2000 and drift["never_seen"] == 0
    assert drift["worst_detected_after_s"] <= drift["bound_s"] == 3600


def test_check_says_when_the_cap_makes_the_drift_interval_longer(tmp_path: Path) -> None:
    nums = "".join(f'[[numbers]]\nvoipnumber = "{600000 + n}"\nfallback = "07700 900123"\n' for n in range(10_000))
    cfg = tmp_path / "forwardd.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n{nums}')
    r = run_cli("check", "--config", str(cfg), "--days", "1")
    assert r.returncode == 0, r.stderr
    assert ("drift checks: warning: 1h for 10,000 numbers needs 167 reads a minute; under the cap of 120 each "
            "number is checked every 84 minutes") in r.stdout
