"""The routing rules, in order: office hours (unless a holiday), override, rota, fallback."""

from __future__ import annotations

import datetime as dt

import pytest

from forwardd.core.timeline import (
    Event,
    OfficeRule,
    Policy,
    build_timeline,
    resolve_person,
    target_at,
)

from .conftest import LONDON, UTC, london

A, B, C, FB = "07700900001", "07700900002", "07700900003", "07700900999"
PEOPLE = {"alice": A, "bob": B, "carol": C}
OFFICE = [OfficeRule(frozenset(range(5)), dt.time(9), dt.time(17, 30))]


def ev(start: dt.datetime, end: dt.datetime, summary: str, uid: str = "") -> Event:
    return Event(start.astimezone(UTC), end.astimezone(UTC), summary, uid=uid or summary, calendar="test")


def build(rota=(), overrides=(), holidays=(), office=OFFICE, fallback=FB, start=london(2026, 11, 30), days=7):
    return build_timeline(start, start + dt.timedelta(days=days), LONDON, Policy(PEOPLE, office, fallback),
                          rota=rota, overrides=overrides, holidays=holidays)


def who(segments, t: dt.datetime) -> str | None:
    return target_at(segments, t.astimezone(UTC))


def reason(segments, t: dt.datetime) -> str:
    return next(s.reason for s in segments if s.start <= t < s.end)


WEEK = [ev(london(2026, 11, 23, 9), london(2026, 12, 7, 9), "On call: Alice")]


def test_office_hours_win_over_the_rota_on_working_days() -> None:
    segs, _ = build(rota=WEEK)
    assert who(segs, london(2026, 11, 30, 12)) is None and reason(segs, london(2026, 11, 30, 12)) == "office hours"
    assert who(segs, london(2026, 11, 30, 17, 30)) == A
    assert who(segs, london(2026, 12, 1, 8, 59, 59)) == A
    assert who(segs, london(2026, 12, 5, 12)) == A  # Saturday: no office hours
    assert reason(segs, london(2026, 12, 5, 12)) == "rota: Alice"


def test_holiday_opens_office_hours_to_forwarding() -> None:
    hol = [ev(london(2026, 12, 1), london(2026, 12, 2), "Staff training day")]
    segs, _ = build(rota=WEEK, holidays=hol)
    assert who(segs, london(2026, 12, 1, 12)) == A
    assert reason(segs, london(2026, 12, 1, 12)) == "holiday: Staff training day (rota: Alice)"
    assert who(segs, london(2026, 12, 2, 12)) is None


def test_timed_closure_covers_only_its_span() -> None:
    hol = [ev(london(2026, 12, 2, 13), london(2026, 12, 2, 17, 30), "Closed for the afternoon")]
    segs, _ = build(rota=WEEK, holidays=hol)
    assert who(segs, london(2026, 12, 2, 12, 59)) is None
    assert who(segs, london(2026, 12, 2, 13)) == A


def test_override_wins_over_rota_but_not_over_office_hours() -> None:
    over = [ev(london(2026, 12, 1, 12), london(2026, 12, 2, 9), "Bob swaps in")]
    segs, _ = build(rota=WEEK, overrides=over)
    assert who(segs, london(2026, 12, 1, 13)) is None  # office hours still
    assert who(segs, london(2026, 12, 1, 18)) == B and reason(segs, london(2026, 12, 1, 18)) == "override: Bob"
    assert who(segs, london(2026, 12, 2, 18)) == A


def test_fallback_when_nobody_is_on_call_and_a_gap_warning_without_one() -> None:
    short = [ev(london(2026, 11, 30, 17, 30), london(2026, 12, 1, 9), "carol")]
    segs, warnings = build(rota=short)
    assert who(segs, london(2026, 12, 1, 18)) == FB and reason(segs, london(2026, 12, 1, 18)) == "fallback"
    assert not any("gap" in w.message for w in warnings)
    segs, warnings = build(rota=short, fallback=None)
    assert who(segs, london(2026, 12, 1, 18)) is None
    assert any(w.message.startswith("gap: nobody is on call Tue 01 Dec 17:30") and w.kind == "gap" for w in warnings)


def test_without_office_hours_the_rota_is_followed_around_the_clock() -> None:
    segs, _ = build(rota=WEEK, office=[])
    assert [(s.target, s.reason) for s in segs] == [(A, "rota: Alice")]


def test_overlapping_rota_events_later_start_wins_for_the_overlap_with_a_warning() -> None:
    rota = [ev(london(2026, 11, 28, 9), london(2026, 12, 5, 9), "Alice"),
            ev(london(2026, 12, 1, 17, 30), london(2026, 12, 2, 9), "swap: Bob covers")]
    segs, warnings = build(rota=rota, office=[])
    assert who(segs, london(2026, 12, 1, 17, 29)) == A
    assert who(segs, london(2026, 12, 1, 20)) == B
    assert who(segs, london(2026, 12, 2, 9)) == A
    assert any(w.kind == "overlap" and "Bob wins" in w.message for w in warnings)
    # the same answer whatever order the events come in
    assert build(rota=rota[::-1], office=[])[0] == segs


def test_events_with_equal_starts_resolve_deterministically() -> None:
    rota = [ev(london(2026, 12, 1, 9), london(2026, 12, 8, 9), "Alice", uid="b"),
            ev(london(2026, 12, 1, 9), london(2026, 12, 2, 9), "Bob", uid="a")]
    segs, _ = build(rota=rota, office=[])
    assert who(segs, london(2026, 12, 1, 12)) == B  # the one ending sooner (a partial swap) wins
    assert build(rota=rota[::-1], office=[])[0] == segs


@pytest.mark.parametrize(
    ("summary", "location", "description", "number", "problem"),
    [
        ("On call: Alice", "", "", A, None),
        ("ALICE", "", "", A, None),
        ("Alice's week", "", "", A, None),
        ("Malice", "", "", None, "names nobody"),
        ("Alice / Bob", "", "", None, "more than one person"),
        ("Locum", "07700 900123", "", "07700900123", None),
        ("Locum", "", "ring 07700 900002 please", B, None),
        ("Locum", "07700 900123", "or 07700 900124", None, "more than one phone number"),
        ("Alice covers Bob", "", "", A, None),
        ("alice covering BOB tonight", "", "", A, None),
        ("Bob for Alice", "", "", B, None),
        ("Swap: Carol covers Alice", "", "", C, None),
        ("Alice and Bob", "", "", None, "is not written 'A covers B'"),
        ("Alice covers Alice", "", "", A, None),
    ],
)
def test_how_events_name_people(summary: str, location: str, description: str, number: str | None, problem: str | None) -> None:
    e = Event(london(2026, 12, 1), london(2026, 12, 2), summary, location, description)
    got, _, warning = resolve_person(e, Policy(PEOPLE))
    assert got == number
    assert (warning is None) if problem is None else (problem in warning.message)


def test_segments_are_contiguous_and_merged() -> None:
    segs, _ = build(rota=WEEK)
    assert segs[0].start == london(2026, 11, 30).astimezone(UTC)
    assert all(a.end == b.start for a, b in zip(segs, segs[1:]))
    assert all((a.target, a.reason) != (b.target, b.reason) for a, b in zip(segs, segs[1:]))


def test_office_hours_on_dst_days_are_local() -> None:
    start = london(2027, 3, 26)
    rule = [OfficeRule(frozenset(range(7)), dt.time(9), dt.time(17, 30))]
    segs, _ = build(rota=[ev(start, start + dt.timedelta(days=4), "Alice")], office=rule, start=start, days=3)
    sunday_office = [s for s in segs if s.reason == "office hours" and s.start.astimezone(LONDON).day == 28][0]
    assert sunday_office.start == dt.datetime(2027, 3, 28, 8, 0, tzinfo=UTC)  # 09:00 BST


def test_naive_horizon_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        build_timeline(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2), LONDON, Policy(PEOPLE))


def test_same_start_and_end_the_event_changed_last_wins_then_uid() -> None:
    def stamped(summary: str, uid: str, stamp: dt.datetime | None) -> Event:
        return Event(london(2026, 12, 1, 9).astimezone(UTC), london(2026, 12, 1, 17).astimezone(UTC), summary,
                     uid=uid, calendar="test", stamp=stamp)

    nov = dt.datetime(2026, 11, 20, tzinfo=UTC)
    for rota, winner in [
        ([stamped("Alice", "a", nov + dt.timedelta(days=1)), stamped("Bob", "b", nov)], A),  # later stamp, not UID
        ([stamped("Alice", "a", nov), stamped("Bob", "b", None)], A),  # a stamp beats none
        ([stamped("Alice", "a", nov), stamped("Bob", "b", nov)], B),  # equal stamps: UID
    ]:
        for order in (rota, rota[::-1]):
            segs, warnings = build(rota=order, office=[])
            assert who(segs, london(2026, 12, 1, 12)) == winner
            assert any(w.kind == "tie" and f"{'Alice' if winner == A else 'Bob'} wins" in w.message for w in warnings)
