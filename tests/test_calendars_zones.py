"""Zones named the ways feeds name them: Windows display names (forwardd/calendars/windows_zones.py),
in TZID parameters, VTIMEZONEs and X-WR-TIMEZONE."""

from __future__ import annotations

import zoneinfo

import pytest
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from forwardd.calendars.windows_zones import display_name_zone, windows_display_names


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
