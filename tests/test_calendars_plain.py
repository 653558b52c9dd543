"""The fast path for one-off events (forwardd/calendars/plain.py) reads every one-off event exactly as the
series path (recurring-ical-events) does: both are run over every golden file and every calendar in
../shared/calendars, and give the same events, warnings and notes around each one-off event."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from forwardd.calendars.parse import parse_calendar
from forwardd.errors import CalendarError

from .conftest import DATA, LONDON, SHARED_CALENDARS

FILES = sorted((DATA / "golden").glob("*.ics")) + (
    sorted(SHARED_CALENDARS.glob("*/*.ics")) if SHARED_CALENDARS.is_dir() else [])


def _windows(starts: list[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    """A day either side of each span, overlapping ones merged."""
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for a, b in sorted((a - dt.timedelta(days=1), b + dt.timedelta(days=1)) for a, b in starts):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_one_off_events_read_alike_on_both_paths(path: Path) -> None:
    data = path.read_bytes()
    try:
        fast = parse_calendar(path.name, data, LONDON)
    except CalendarError:
        with pytest.raises(CalendarError):
            parse_calendar(path.name, data, LONDON, one_offs=False)
        return
    slow = parse_calendar(path.name, data, LONDON, one_offs=False)
    assert slow.plain == []
    assert sorted(fast.warnings) == sorted(slow.warnings)
    for start, end in _windows([(p.start, p.end) for p in fast.plain]):
        got, want = fast.events_between(start, end), slow.events_between(start, end)
        assert got[0] == want[0], (start, end)
        assert sorted(got[1]) == sorted(want[1]), (start, end)


def test_the_fast_path_is_taken_and_keeps_no_component() -> None:
    """Most golden files' events are one-offs: they are records, not components (the memory bound)."""
    cal = parse_calendar("x", (DATA / "golden" / "same_start_end.ics").read_bytes(), LONDON)
    assert cal.plain and not any(c.walk("VEVENT") for c in cal.components)


def test_warnings_name_physical_lines_across_folded_lines() -> None:
    """The text is unfolded before it is read; a warning still names the line a component begins on."""
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//forwardd tests//EN\r\n"
            "BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n"
            "DESCRIPTION:a long text\r\n  folded\r\n  twice\r\nSUMMARY:alice\r\nEND:VEVENT\r\n"
            "BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20261201T120000Z\r\nDTEND:20261201T110000Z\r\nSUMMARY:bo\r\n b\r\n"
            "END:VEVENT\r\n"
            "BEGIN:VEVENT\r\nUID:c\r\nSUMMARY:no start\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    cal = parse_calendar("x", text, LONDON)
    assert any("'b' (line 13) ('bob') ends before it starts" in w for w in cal.warnings), cal.warnings
    assert any("'c' (line 20) has no DTSTART" in w for w in cal.warnings), cal.warnings


def _vcalendar(*lines: str) -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//forwardd tests//EN\r\n"
            + "".join(line + "\r\n" for line in lines) + "END:VCALENDAR\r\n").encode()


def test_a_one_off_event_moved_later_in_the_feed_joins_its_series_once() -> None:
    """Read first as a one-off, the event turns out to have a moved occurrence further on: it is read
    again as a series, so the move applies, and what reading it first noted is not said twice."""
    data = _vcalendar(
        "BEGIN:VEVENT", "UID:m", "DTSTART;TZID=Nowhere/Odd:20261201T090000", "DTEND;TZID=Nowhere/Odd:20261201T100000",
        "SUMMARY:alice", "END:VEVENT",
        "BEGIN:VEVENT", "UID:other", "DTSTART:20261201T130000Z", "DTEND:20261201T140000Z", "SUMMARY:bob", "END:VEVENT",
        "BEGIN:VEVENT", "UID:m", "RECURRENCE-ID;TZID=Nowhere/Odd:20261201T090000",
        "DTSTART;TZID=Nowhere/Odd:20261201T110000", "DTEND;TZID=Nowhere/Odd:20261201T120000", "SUMMARY:alice moved",
        "END:VEVENT")
    start, end = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
    fast, slow = parse_calendar("x", data, LONDON), parse_calendar("x", data, LONDON, one_offs=False)
    events, _ = fast.events_between(start, end)
    assert [(e.summary, e.start.hour) for e in events] == [("alice moved", 11), ("bob", 13)]
    assert events == slow.events_between(start, end)[0]
    assert [p.uid for p in fast.plain] == ["other"]
    unknown = [w for w in fast.warnings if "unknown time zone 'Nowhere/Odd'" in w]
    assert len(unknown) == 1 and unknown[0].count("'m'") == 1, fast.warnings


@pytest.mark.parametrize("one_offs", [True, False])
def test_a_single_event_ends_at_its_dtend_in_another_zone_across_a_change(one_offs: bool) -> None:
    """00:00 London to 03:00 UTC on the spring-forward night is three real hours, on either path."""
    cal = parse_calendar("x", _vcalendar(
        "BEGIN:VEVENT", "UID:a", "DTSTART;TZID=Europe/London:20260329T000000", "DTEND:20260329T030000Z",
        "SUMMARY:alice", "END:VEVENT"), LONDON, one_offs=one_offs)
    utc = dt.timezone.utc
    events, _ = cal.events_between(dt.datetime(2026, 3, 28, tzinfo=utc), dt.datetime(2026, 3, 30, tzinfo=utc))
    assert [(e.start, e.end) for e in events] == [(dt.datetime(2026, 3, 29, 0, tzinfo=utc),
                                                   dt.datetime(2026, 3, 29, 3, tzinfo=utc))]


def test_a_feed_with_blank_and_indented_lines_before_its_vcalendar_is_read() -> None:
    cal = parse_calendar("x", b"\n\n  " + _vcalendar(
        "BEGIN:VEVENT", "UID:a", "DTSTART:20261201T090000Z", "DTEND:20261201T100000Z", "SUMMARY:alice", "END:VEVENT"),
        LONDON)
    utc = dt.timezone.utc
    assert [e.uid for e in cal.events_between(dt.datetime(2026, 12, 1, tzinfo=utc),
                                              dt.datetime(2026, 12, 2, tzinfo=utc))[0]] == ["a"]
    assert cal.warnings == []
