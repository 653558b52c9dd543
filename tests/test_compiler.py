"""The window compiler. The property tests check every plan against the provider model *instant by
instant* (provider.target_at), independently of the interval arithmetic the compiler plans with."""

from __future__ import annotations

import datetime as dt
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forwardd.aql.account import MANAGED
from forwardd.aql.carrier import settings_of
from forwardd.core.compiler import Change, compile_timeline
from forwardd.core.provider import DAY, Program, parse_hms, target_at
from forwardd.core.timeline import (
    Event,
    OfficeRule,
    Policy,
    Segment,
    build_timeline,
    epoch,
    from_epoch,
)
from forwardd.service.simulate import misrouted_seconds

from .conftest import LONDON, UTC, london

A, B, C = "07700900001", "07700900002", "07700900003"
PEOPLE = {"alice": A, "bob": B, "carol": C}
MIN = dt.timedelta(minutes=5)


def segs(*parts: tuple[dt.datetime, str | None]) -> list[Segment]:
    """Segments from (start, target) pairs; the last pair's start is the end of the timeline."""
    return [Segment(s.astimezone(UTC), e.astimezone(UTC), t, "test") for (s, t), (e, _) in zip(parts, parts[1:])]


def applied_at(changes: list[Change], mode: str, rng: random.Random) -> list[tuple[dt.datetime, Program]]:
    out = []
    for c in changes:
        if mode == "from":
            t = c.apply_from
        elif mode == "by":
            t = c.apply_by
        else:
            span = int((c.apply_by - c.apply_from).total_seconds())
            t = c.apply_from + dt.timedelta(seconds=rng.randint(0, max(span, 0)))
        out.append((t, c.program))
    return out


def misrouted_by_instants(
    applied: list[tuple[dt.datetime, Program]], timeline: list[Segment], wraps: bool, probes: list[int]
) -> list[int]:
    """Instants (epoch s) among ``probes`` where the provider, running ``applied``, disagrees."""
    bad = []
    ap = sorted(((epoch(t), i, p) for i, (t, p) in enumerate(applied)))
    k, seg_i = -1, 0
    for t in sorted(set(probes)):
        while k + 1 < len(ap) and ap[k + 1][0] <= t:
            k += 1
        while seg_i < len(timeline) and epoch(timeline[seg_i].end) <= t:
            seg_i += 1
        if seg_i == len(timeline) or epoch(timeline[seg_i].start) > t:
            continue
        want = timeline[seg_i].target
        prog = ap[k][2] if k >= 0 else Program(None, False)
        got = target_at(prog, from_epoch(t), LONDON, wraps=wraps or prog.wraps)
        if got != want:
            bad.append(t)
    return bad


def check_plan(timeline: list[Segment], changes: list[Change], wraps: bool, grid: int, seed: int = 0) -> None:
    h0, h1 = epoch(timeline[0].start), epoch(timeline[-1].end)
    assert changes[0].apply_from == changes[0].apply_by == timeline[0].start
    for prev, nxt in zip(changes, changes[1:]):
        assert prev.apply_by <= nxt.apply_from, "spans must be disjoint and in order"
        assert nxt.apply_from <= nxt.apply_by
        assert nxt.exact == (nxt.apply_from == nxt.apply_by)
    for c in changes:
        s = settings_of(c.program)
        assert set(s) == {"forwardto", "forwardactive", "forwardstart", "forwardend"} and set(s) <= set(MANAGED)
        if not wraps:
            assert parse_hms(str(s["forwardstart"])) <= parse_hms(str(s["forwardend"]))
        assert s["forwardactive"] in ("0", "1")
    rng = random.Random(seed)
    for mode in ("from", "by", "random"):
        applied = applied_at(changes, mode, rng)
        probes = [x for g in range(h0, h1, grid) for x in (g, g + grid - 1)]
        probes += [x for t, _ in applied for x in (epoch(t) - 1, epoch(t))]
        assert misrouted_by_instants(applied, timeline, wraps, probes) == [], mode
        assert misrouted_seconds(applied, timeline, LONDON, wraps) == 0, mode


# ----------------------------------------------------------------------------------- property tests

_STARTS = [london(2027, 3, 22), london(2027, 10, 25), london(2026, 11, 30), london(2027, 3, 27, 23)]
GRID = 300  # boundaries fall on a 5-minute grid in UTC (and so in London time)


@st.composite
def timelines(draw: st.DrawFn) -> list[Segment]:
    start = draw(st.sampled_from(_STARTS))
    h0 = epoch(start)
    total = draw(st.integers(7, 21)) * DAY
    cuts = [h0]
    while cuts[-1] < h0 + total:
        kind = draw(st.sampled_from(["short", "hours", "days", "office"]))
        if kind == "short":
            step = draw(st.integers(1, 12)) * GRID
        elif kind == "hours":
            step = draw(st.integers(1, 18 * 12)) * GRID
        elif kind == "office":  # end on a typical office boundary in London time
            t = from_epoch(cuts[-1]).astimezone(LONDON) + dt.timedelta(hours=draw(st.integers(1, 30)))
            hour, minute = draw(st.sampled_from([(9, 0), (17, 30), (0, 0), (12, 0), (13, 0), (1, 30), (2, 0)]))
            step = epoch(t.replace(hour=hour, minute=minute)) - cuts[-1]
            step = max(GRID, step - step % GRID)
        else:
            step = draw(st.integers(1, 4)) * DAY
        cuts.append(min(cuts[-1] + step, h0 + total))
    targets = draw(st.lists(st.sampled_from([None, A, B, C]), min_size=len(cuts) - 1, max_size=len(cuts) - 1))
    out: list[Segment] = []
    for a, b, t in zip(cuts, cuts[1:], targets):
        if out and out[-1].target == t:
            out[-1] = Segment(out[-1].start, from_epoch(b), t, "r")
        else:
            out.append(Segment(from_epoch(a), from_epoch(b), t, "r"))
    return out


@settings(max_examples=int(os.environ.get("FORWARDD_PROPERTY_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(timeline=timelines(), wraps=st.booleans(), seed=st.integers(0, 1000))
def test_any_timeline_is_reproduced_whenever_each_change_lands_in_its_span(
    timeline: list[Segment], wraps: bool, seed: int
) -> None:
    changes = compile_timeline(timeline, LONDON, wraps=wraps, min_slack=MIN)
    check_plan(timeline, changes, wraps, GRID, seed)


@settings(max_examples=int(os.environ.get("FORWARDD_PROPERTY_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(timeline=timelines())
def test_wrapping_never_needs_more_calls_or_more_exact_hand_overs(timeline: list[Segment]) -> None:
    plain = compile_timeline(timeline, LONDON, wraps=False, min_slack=MIN)
    wrapped = compile_timeline(timeline, LONDON, wraps=True, min_slack=MIN)
    key = lambda cs: (sum(c.exact for c in cs), len(cs))  # noqa: E731
    assert sum(c.exact for c in wrapped) <= sum(c.exact for c in plain)
    if sum(c.exact for c in wrapped) == sum(c.exact for c in plain):
        assert key(wrapped) <= key(plain)


@settings(max_examples=int(os.environ.get("FORWARDD_PROPERTY_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(timeline=timelines())
def test_exact_hand_overs_only_where_the_target_changes_while_forwarding(timeline: list[Segment]) -> None:
    changes = compile_timeline(timeline, LONDON, wraps=False, min_slack=MIN)
    forced = {
        a.end for a, b in zip(timeline, timeline[1:]) if a.target and b.target and a.target != b.target
    }
    exact = {c.apply_from for c in changes[1:] if c.exact}
    assert forced <= exact
    # Beyond those, only a switch at a wall-clock time that happens twice (the repeated hour of an autumn
    # change) may be exact: a window opening or closing at such a time also acts at its first occurrence.
    assert all(_repeated_wall_time(t) for t in exact - forced), sorted(exact - forced)


def _repeated_wall_time(t: dt.datetime) -> bool:
    wall = t.astimezone(LONDON).replace(tzinfo=None)
    return wall.replace(tzinfo=LONDON, fold=0).astimezone(UTC) != wall.replace(tzinfo=LONDON, fold=1).astimezone(UTC)


# ------------------------------------------------------------------------------------- worked shapes


def office_timeline(start: dt.datetime, days: int, holidays: list[Event] = (), person: str = "alice") -> list[Segment]:
    policy = Policy(PEOPLE, [OfficeRule(frozenset(range(5)), dt.time(9), dt.time(17, 30))])
    rota = [Event(start - dt.timedelta(days=1), start + dt.timedelta(days=days + 1), f"On call: {person}")]
    timeline, _ = build_timeline(start, start + dt.timedelta(days=days), LONDON, policy, rota=rota, holidays=holidays)
    return timeline


def test_weekly_24_7_rota_needs_one_exact_hand_over_a_week() -> None:
    t0 = london(2026, 11, 30)
    parts = [(t0 + dt.timedelta(days=7 * i, hours=9), [A, B, C][i % 3]) for i in range(4)]
    timeline = segs((t0, C), *parts, (t0 + dt.timedelta(days=28), None))
    changes = compile_timeline(timeline, LONDON)
    assert len(changes) == 5  # the initial program + one per weekly hand-over
    assert [c.exact for c in changes[1:]] == [True] * 4
    assert all(settings_of(c.program)["forwardstart"] == "00:00:00" for c in changes)
    check_plan(timeline, changes, False, 3600)


def test_out_of_hours_week_without_wrapping_takes_15_calls() -> None:
    """Mon-Fri 17:30-09:00 plus weekends, no overnight window: three programs a weekday
    (00:00-08:59:59, 17:30-23:59:59, all day) = 15 calls a week, each with hours of slack."""
    timeline = office_timeline(london(2026, 11, 30), 7)
    changes = compile_timeline(timeline, LONDON, wraps=False)
    assert len(changes) - 1 == 14  # plus the initial program in force at the start: 15 programs
    assert not any(c.exact for c in changes)
    assert min(c.slack for c in changes[1:]) >= dt.timedelta(hours=6)
    check_plan(timeline, changes, False, 300)


def test_out_of_hours_week_with_wrapping_takes_2_calls() -> None:
    """With overnight windows: 17:30-08:59:59 from Sunday evening to Saturday morning, all day over
    the weekend: 2 calls a week."""
    timeline = office_timeline(london(2026, 11, 30), 21)
    changes = compile_timeline(timeline, LONDON, wraps=True)
    assert [c.program.describe() for c in changes[1:3]] == [f"{A} all day", f"{A} 17:30:00-08:59:59"]
    week2 = [c for c in changes[1:] if london(2026, 12, 7) <= c.apply_from < london(2026, 12, 14)]
    assert len(week2) == 2 and not any(c.exact for c in changes)
    check_plan(timeline, changes, True, 300)


def test_bank_holiday_monday_saves_three_calls() -> None:
    """31 Aug 2026 is a bank holiday: forwarding runs Friday 17:30 to Tuesday 09:00 under one all-day
    program, so the week has 12 calls instead of 15."""
    start = london(2026, 8, 31)
    holiday = [Event(start.astimezone(UTC), london(2026, 9, 1).astimezone(UTC), "Summer bank holiday")]
    timeline = office_timeline(london(2026, 8, 28), 10, holidays=holiday)
    assert any(s.reason.startswith("holiday: Summer bank holiday") for s in timeline)
    changes = compile_timeline(timeline, LONDON)
    week = [c for c in changes[1:] if london(2026, 8, 31) <= c.apply_from < london(2026, 9, 7)]
    normal = [c for c in changes if london(2026, 8, 28) <= c.apply_from < london(2026, 8, 29)]
    assert len(normal) == 3 and len(week) == 12
    assert not any(c.program.active and settings_of(c.program)["forwardend"] == "08:59:59"
                   and c.apply_from.astimezone(LONDON).date() == dt.date(2026, 8, 31) for c in changes)
    check_plan(timeline, changes, False, 300)


@pytest.mark.parametrize("day", [london(2027, 3, 28), london(2027, 10, 31)], ids=["last-sunday-march", "last-sunday-october"])
def test_dst_sundays_with_office_hours_and_a_night_shift_change(day: dt.datetime) -> None:
    # A weekend of out-of-hours forwarding crossing the change, then a 01:30 hand-over on the change day
    # itself (01:30 does not exist in March and happens twice in October).
    t0 = day - dt.timedelta(days=2)
    handover = dt.datetime(day.year, day.month, day.day, 1, 30, tzinfo=UTC)
    timeline = segs((t0, None), (t0 + dt.timedelta(hours=17, minutes=30), A), (handover, B),
                    (day + dt.timedelta(days=1, hours=9), None), (day + dt.timedelta(days=3), None))
    for wraps in (False, True):
        changes = compile_timeline(timeline, LONDON, wraps=wraps)
        assert sum(c.exact for c in changes) == 1
        check_plan(timeline, changes, wraps, 300)


def test_overnight_shift_without_wrap_uses_three_programs_a_night() -> None:
    t0 = london(2026, 12, 1)
    timeline = segs((t0, None), (t0 + dt.timedelta(hours=17, minutes=30), A),
                    (t0 + dt.timedelta(days=1, hours=9), None), (t0 + dt.timedelta(days=2), None))
    changes = compile_timeline(timeline, LONDON)
    # the evening window is already right at the start of the horizon, so it is the initial program
    assert [c.program.describe() for c in changes] == [
        f"{A} 17:30:00-23:59:59", f"{A} all day", f"{A} 00:00:00-08:59:59",
    ]
    # each hand-over has hours of slack, as in DESIGN.md
    assert [c.slack for c in changes[1:]] == [dt.timedelta(hours=6, minutes=30), dt.timedelta(hours=9)]
    check_plan(timeline, changes, False, 300)


def test_short_gap_between_two_people_gets_the_gap_as_slack() -> None:
    t0 = london(2026, 12, 1)
    timeline = segs((t0, A), (t0 + dt.timedelta(hours=10), None), (t0 + dt.timedelta(hours=10, minutes=3), B),
                    (t0 + dt.timedelta(days=1), None))
    changes = compile_timeline(timeline, LONDON, min_slack=MIN)
    assert not any(c.exact for c in changes)
    assert min(c.slack for c in changes[1:]) == dt.timedelta(minutes=3)
    check_plan(timeline, changes, False, 60)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        compile_timeline([Segment(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2), None, "x")], LONDON)


def test_the_program_for_now_does_not_depend_on_when_the_plan_was_made() -> None:
    """Re-planning a few minutes later must not change the program in force (or cron'd `apply` runs
    would send a change every time)."""
    t0 = london(2026, 12, 1, 0, 1, 37)
    full = [(t0 - dt.timedelta(hours=2), A), (t0 + dt.timedelta(hours=6), None), (t0 + dt.timedelta(days=3), None)]
    programs = set()
    for minutes in (0, 7, 23, 41):
        start = t0 + dt.timedelta(minutes=minutes)
        timeline = segs((start, A), *full[1:])
        changes = compile_timeline(timeline, LONDON)
        programs.add(changes[0].program)
    assert len(programs) == 1, programs
