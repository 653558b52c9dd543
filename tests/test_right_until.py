"""``core.plan.right_until``: until when a program a line already holds sends calls where the timeline
wants. The engine relies on it to leave a line alone after a re-plan that chose another program for now,
as right, and to call a line with a change due "pending" (still right) rather than wrong."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from forwardd.core.plan import right_until
from forwardd.core.provider import DAY, Program, forwarding_intervals, target_at
from forwardd.core.timeline import Segment, epoch

from .conftest import LONDON, UTC, london

A, B = "07700900001", "07700900002"
MON = london(2026, 12, 7)


def t(day: int, hh: int, mm: int = 0) -> dt.datetime:
    return (MON + dt.timedelta(days=day, hours=hh, minutes=mm)).astimezone(UTC)  # (December: GMT, no clock change)


EVENINGS = [Segment(t(0, 9), t(0, 17, 30), None, ""), Segment(t(0, 17, 30), t(0, 22, 40), A, ""),
            Segment(t(0, 22, 40), t(1, 17, 30), None, ""), Segment(t(1, 17, 30), t(1, 22, 40), B, ""),
            Segment(t(1, 22, 40), t(3, 0), None, "")]


def test_alices_evening_program_is_right_until_bobs_evening_begins() -> None:
    alice = Program(A, True, 17 * 3600 + 1800, 22 * 3600 + 40 * 60 - 1)
    assert right_until(alice, EVENINGS, LONDON, t(0, 18), t(2, 0)) == t(1, 17, 30)
    assert right_until(alice, EVENINGS, LONDON, t(0, 18), t(1, 9)) == t(1, 9)  # right all the way to the limit
    # another window, as right on Monday evening, goes wrong at its own start on Tuesday
    early = Program(A, True, 10 * 3600 + 40 * 60, 22 * 3600 + 40 * 60 - 1)
    assert right_until(early, EVENINGS, LONDON, t(0, 18), t(2, 0)) == t(1, 10, 40)
    # forwarding past the end of Alice's shift is wrong from that second
    late = Program(A, True, 17 * 3600 + 1800, DAY - 1)
    assert right_until(late, EVENINGS, LONDON, t(0, 18), t(2, 0)) == t(0, 22, 40)
    # nothing forwarded while Alice is on call: wrong at once
    assert right_until(Program(A, False), EVENINGS, LONDON, t(0, 18), t(2, 0)) == t(0, 18)


_segment_targets = st.lists(st.tuples(st.integers(1, 36 * 60), st.sampled_from([None, A, B])), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    pieces=_segment_targets,
    start=st.sampled_from([london(2027, 3, 27, 20), london(2027, 10, 30, 20), london(2026, 12, 7, 6)]),
    window=st.tuples(st.integers(0, DAY // 60 - 1), st.integers(0, DAY // 60 - 1)),
    target=st.sampled_from([A, B]), active=st.booleans(), wraps=st.booleans(),
    offset=st.integers(0, 48 * 60), span=st.integers(1, 60 * 60), seconds=st.integers(0, 59),
    probes=st.lists(st.integers(0, 60 * 60 * 60), min_size=10, max_size=40),
)
def test_the_first_wrong_instant_agrees_with_the_instant_view(
    pieces: list[tuple[int, str | None]], start: dt.datetime, window: tuple[int, int], target: str, active: bool,
    wraps: bool, offset: int, span: int, seconds: int, probes: list[int],
) -> None:
    """Against ``target_at`` (itself checked against the interval view): nothing is wrong before the
    answer, and the answer is wrong (or the limit). Windows that wrap past midnight (an account that
    allows them) and instants off the whole minute included."""
    start = start.astimezone(UTC)  # (arithmetic in real time, across the clock changes too)
    segments, at = [], start
    for minutes, who in pieces:
        segments.append(Segment(at, at + dt.timedelta(minutes=minutes), who, ""))
        at = segments[-1].end
    a, b = window if wraps else sorted(window)
    program = Program(target, active, a * 60, b * 60 + 59)
    frm = start + dt.timedelta(minutes=offset, seconds=seconds)
    limit = frm + dt.timedelta(minutes=span)
    got = right_until(program, segments, LONDON, frm, limit, wraps)

    def wanted(instant: dt.datetime) -> str | None:
        return next(s.target for s in segments if s.start <= instant < s.end)

    def wrong(instant: dt.datetime) -> bool:
        return target_at(program, instant, LONDON, wraps) != wanted(instant)

    end = min(limit, segments[-1].end)
    assert frm <= got <= limit if frm < end else got in (frm, limit)
    spans = forwarding_intervals(program, LONDON, epoch(frm), epoch(end), wraps) if frm < end else []
    edges = [x for s in spans for x in (s[0] - 1, s[0], s[1] - 1, s[1])] + [epoch(s.start) for s in segments]
    for instant in [*(frm + dt.timedelta(seconds=p) for p in probes),
                    *(dt.datetime.fromtimestamp(e, UTC) for e in edges)]:
        if frm <= instant < min(got, end):
            assert not wrong(instant), instant
    if frm < end and got < end:
        assert wrong(got)
