"""The provider model: one rule, two views (an instant; every forwarded stretch), which must agree."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwardd.core.provider import (
    DAY,
    Program,
    forwarding_intervals,
    hms,
    parse_hms,
    target_at,
)
from forwardd.core.timeline import epoch

from .conftest import LONDON, UTC, london

ALICE = "07700900001"


def at(program: Program, t: dt.datetime, wraps: bool = False) -> str | None:
    return target_at(program, t, LONDON, wraps)


def test_end_second_is_inclusive_and_all_day_is_whole_day() -> None:
    p = Program(ALICE, True, parse_hms("17:30:00"), parse_hms("23:59:59"))
    assert at(p, london(2026, 11, 30, 17, 29, 59)) is None
    assert at(p, london(2026, 11, 30, 17, 30, 0)) == ALICE
    assert at(p, london(2026, 11, 30, 23, 59, 59)) == ALICE
    assert at(p, london(2026, 12, 1, 0, 0, 0)) is None
    all_day = Program(ALICE, True)
    assert all(at(all_day, london(2026, 11, 30, h, 0, 0)) == ALICE for h in range(24))


def test_inactive_program_never_forwards() -> None:
    assert at(Program(ALICE, False), london(2026, 11, 30, 12)) is None


def test_wrapping_window_needs_the_setting() -> None:
    p = Program(ALICE, True, parse_hms("17:30:00"), parse_hms("08:59:59"))
    with pytest.raises(ValueError, match="window_wraps_midnight"):
        at(p, london(2026, 11, 30, 20))
    assert at(p, london(2026, 11, 30, 20), wraps=True) == ALICE
    assert at(p, london(2026, 12, 1, 8, 59, 59), wraps=True) == ALICE
    assert at(p, london(2026, 12, 1, 9), wraps=True) is None


def test_spring_forward_day_has_23_hours_of_all_day_forwarding() -> None:
    start, end = london(2027, 3, 28), london(2027, 3, 29)
    spans = forwarding_intervals(Program(ALICE, True), LONDON, epoch(start), epoch(end))
    assert sum(b - a for a, b in spans) == 23 * 3600


def test_fall_back_day_repeats_the_window_hour_by_the_wall_clock() -> None:
    # 01:00-01:59:59 happens twice on the last Sunday of October: the wall clock decides, so both count
    p = Program(ALICE, True, parse_hms("01:00:00"), parse_hms("01:59:59"))
    start, end = london(2027, 10, 31), london(2027, 11, 1)
    spans = forwarding_intervals(p, LONDON, epoch(start), epoch(end))
    assert sum(b - a for a, b in spans) == 2 * 3600
    first = dt.datetime(2027, 10, 31, 0, 30, tzinfo=UTC)  # 01:30 BST
    second = dt.datetime(2027, 10, 31, 1, 30, tzinfo=UTC)  # 01:30 GMT
    assert at(p, first) == ALICE and at(p, second) == ALICE


def test_hms_round_trip() -> None:
    assert hms(parse_hms("09:05:07")) == "09:05:07"
    for bad in ("24:00:00", "9:00:00", "09:60:00", "09:00"):
        with pytest.raises(ValueError):
            parse_hms(bad)


_times = st.integers(0, DAY - 1)


@settings(max_examples=150, deadline=None)
@given(
    a=_times, b=_times, wraps=st.booleans(),
    start=st.sampled_from([london(2027, 3, 26), london(2027, 10, 29), london(2026, 11, 30)]),
    probes=st.lists(st.integers(0, 4 * DAY), min_size=20, max_size=60),
)
def test_interval_view_agrees_with_instant_view(a: int, b: int, wraps: bool, start: dt.datetime, probes: list[int]) -> None:
    if a > b and not wraps:
        a, b = b, a
    p = Program(ALICE, True, a, b)
    h0 = epoch(start)
    spans = forwarding_intervals(p, LONDON, h0, h0 + 4 * DAY, wraps=wraps)
    edges = [x for s in spans for x in (s[0] - 1, s[0], s[1] - 1, s[1])]
    for t in [*(h0 + x for x in probes), *edges]:
        if not h0 <= t < h0 + 4 * DAY:
            continue
        inside = any(s <= t < e for s, e in spans)
        assert (at(p, dt.datetime.fromtimestamp(t, UTC), wraps) == ALICE) == inside
