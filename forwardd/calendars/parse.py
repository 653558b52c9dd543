"""iCalendar text -> events between two aware instants. Pure (bytes in, events out).

Expansion of RRULE/RDATE/EXDATE/RECURRENCE-ID is recurring-ical-events' job; icalendar parses and maps
Windows zone IDs (Outlook's "GMT Standard Time") to IANA ones. Around them, forwardd settles what the
libraries leave open, and works around where they are wrong (each in one place, named with the
library's version, and pinned by a test in tests/test_calendars.py that fails when upstream changes).
A feed is read in these steps, each in a module of its own that states its policies:

1. text.py: the text repaired (lines, parameters, zone names, dates with a TZID);
2. frames.py: icalendar reads it, component by component where it cannot read the whole;
3. validity.py: which events and properties are usable, and warnings for the others;
4. series.py (zones.py): each series anchored in its zone, its UNTIL, COUNT and all-day values settled;
5. occurrences.py: the occurrences between two instants.

A feed is refused (CalendarError) only when it is not iCalendar at all (empty, an HTML page, truncated,
too big); anything less is skipped with a warning and the rest of the feed is used.
"""

from __future__ import annotations

import zoneinfo

from ..errors import CalendarError
from .frames import read_calendars
from .occurrences import ParsedCalendar
from .series import prepare
from .text import dates_without_zone, isolate_custom_zones, logical_lines, quote_display_names

__all__ = ["ParsedCalendar", "looks_like_icalendar", "parse_calendar"]


def looks_like_icalendar(data: bytes) -> bool:
    """Whether ``data`` starts as an iCalendar stream (not an HTML login page or JSON)."""
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    return head.startswith(b"BEGIN:VCALENDAR")


def parse_calendar(name: str, data: bytes, tz: zoneinfo.ZoneInfo) -> ParsedCalendar:
    """Parse one feed. Raises CalendarError (naming ``name``) when it is not usable iCalendar."""
    if not data.strip():
        raise CalendarError(name, "the calendar is empty")
    if not looks_like_icalendar(data):
        kind = "an HTML page" if b"<html" in data[:4096].lower() else "not iCalendar"
        raise CalendarError(name, f"the content is {kind} (it does not start with BEGIN:VCALENDAR)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "END:VCALENDAR" not in text.upper():
        raise CalendarError(name, "the calendar is truncated (no END:VCALENDAR)")
    lines, renamed = isolate_custom_zones(dates_without_zone(quote_display_names(logical_lines(text))))
    warnings: list[str] = []
    components = read_calendars(name, lines, warnings)
    if not components:
        raise CalendarError(name, "no VCALENDAR in the file")
    for c in components:
        prepare(name, c, tz, renamed, warnings)
    return ParsedCalendar(name, components, tz, warnings)
