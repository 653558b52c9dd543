"""Zones named the ways feeds name them: Windows display names (forwardd/calendars/windows_zones.py),
in TZID parameters, VTIMEZONEs and X-WR-TIMEZONE."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from forwardd.calendars.parse import parse_calendar
from forwardd.calendars.windows_zones import display_name_zone, windows_display_names

from .conftest import LONDON, UTC


def test_every_display_name_reaches_an_iana_zone() -> None:
    names = windows_display_names()
    assert len(set(names.values())) >= 130  # the common Windows zones, not a handful
    for place, windows in names.items():
        assert windows in WINDOWS_TO_OLSON, (place, windows)
        zoneinfo.ZoneInfo(WINDOWS_TO_OLSON[windows])
        assert display_name_zone(f"(UTC+01:00) {place}") == WINDOWS_TO_OLSON[windows]


@pytest.mark.parametrize(("tzid", "zone"), [
    ("(UTC-05:00) Eastern Time (US & Canada)", "America/New_York"),
    ("(UTC-05:00) Eastern Time (US and Canada)", "America/New_York"),
    ("(GMT-05:00) Eastern Time (US & Canada)", "America/New_York"),  # Windows XP's wording
    ("  (utc+01:00)  Brussels,  Copenhagen, Madrid, Paris ", "Europe/Paris"),
    ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London", "Europe/London"),
    ("(GMT) Greenwich Mean Time : Dublin, Edinburgh, Lisbon, London", "Europe/London"),
    ("(UTC+03:00) Amman", "Asia/Amman"),  # Amman's offset changed from +02:00; the place decides
    ("(UTC+02:00) Amman", "Asia/Amman"),
    ("(UTC) Coordinated Universal Time", "Etc/UTC"),
    ("(UTC-03:30) Newfoundland", "America/St_Johns"),
    ("Eastern Time (US & Canada)", None),  # no offset: not a display name
    ("(UTC-05:00) Nowhere in particular", None),
    ("Eastern Standard Time", None),  # a Windows ID, which icalendar maps itself
])
def test_display_names_are_matched_on_their_place(tzid: str, zone: str | None) -> None:
    assert display_name_zone(tzid) == zone


def _vcalendar(*lines: str) -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//forwardd tests//EN\r\n"
            + "".join(line + "\r\n" for line in lines) + "END:VCALENDAR\r\n").encode()


def test_a_declared_zone_given_as_a_display_name_is_the_floating_zone() -> None:
    cal = parse_calendar("x", _vcalendar(
        "X-WR-TIMEZONE:(UTC+01:00) Brussels, Copenhagen, Madrid, Paris",
        "BEGIN:VEVENT", "UID:e", "DTSTART:20261201T090000", "DTEND:20261201T100000", "SUMMARY:alice", "END:VEVENT"),
        LONDON)
    events, _ = cal.events_between(dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2026, 12, 2, tzinfo=UTC))
    assert [e.start for e in events] == [dt.datetime(2026, 12, 1, 8, tzinfo=UTC)] and cal.warnings == []


def test_a_display_name_folded_over_two_lines_is_found() -> None:
    cal = parse_calendar("x", _vcalendar(
        "BEGIN:VEVENT", "UID:e", 'DTSTART;TZID="(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vi',
        ' enna":20261201T090000', 'DTEND;TZID="(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna":2',
        " 0261201T100000", "SUMMARY:alice", "END:VEVENT"), LONDON)
    events, _ = cal.events_between(dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2026, 12, 2, tzinfo=UTC))
    assert [(e.start, e.end) for e in events] == [(dt.datetime(2026, 12, 1, 8, tzinfo=UTC),
                                                   dt.datetime(2026, 12, 1, 9, tzinfo=UTC))]
    assert cal.warnings == []
