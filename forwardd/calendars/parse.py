"""iCalendar text -> events between two aware instants. Pure (bytes in, events out).

Expansion of RRULE/RDATE/EXDATE/RECURRENCE-ID is recurring-ical-events' job; icalendar parses and maps
Windows zone IDs (Outlook's "GMT Standard Time") to IANA ones. Around them, forwardd settles what the
libraries leave open, and works around where they are wrong (each in one place, named with the
library's version, and pinned by a test in tests/test_calendars.py that fails when upstream changes).
A feed is read in these steps, each in a module of its own that states its policies:

1. text.py: the text unfolded and repaired (zone names, dates with a TZID, custom VTIMEZONEs);
2. frames.py: icalendar reads it VCALENDAR by VCALENDAR, its components in batches, one by one where a
   batch cannot be read;
3. validity.py: which events and properties are usable, and warnings for the others;
4. plain.py: a one-off event is read at once into a compact record, and its component let go;
5. series.py (zones.py): each series anchored in its zone, its UNTIL, COUNT and all-day values settled;
6. occurrences.py: the occurrences between two instants.

So a feed is never held whole as icalendar components: only its series are, and the records of its
one-off events. A feed is refused (CalendarError) only when it is not iCalendar at all (empty, an HTML
page, truncated, too big); anything less is skipped with a warning and the rest of the feed is used.
"""

from __future__ import annotations

import zoneinfo
from collections import Counter
from typing import Any

from ..errors import CalendarError
from .frames import Block, Frame, frames, read_block, read_components, read_header, read_timezones
from .occurrences import ParsedCalendar, Plain
from .plain import is_plain, plain_event
from .series import Anchors, prepare
from .text import Text, repair
from .validity import usable
from .values import clip, event_name

__all__ = ["ParsedCalendar", "looks_like_icalendar", "parse_calendar"]


def looks_like_icalendar(data: bytes) -> bool:
    """Whether ``data`` starts as an iCalendar stream (not an HTML login page or JSON)."""
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    return head.startswith(b"BEGIN:VCALENDAR")


def parse_calendar(name: str, data: bytes, tz: zoneinfo.ZoneInfo, one_offs: bool = True) -> ParsedCalendar:
    """Parse one feed. Raises CalendarError (naming ``name``) when it is not usable iCalendar. With
    ``one_offs`` False every event takes the series path (for tests that compare the two)."""
    if not data.strip():
        raise CalendarError(name, "the calendar is empty")
    if not looks_like_icalendar(data):
        kind = "an HTML page" if b"<html" in data[:4096].lower() else "not iCalendar"
        raise CalendarError(name, f"the content is {kind} (it does not start with BEGIN:VCALENDAR)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "END:VCALENDAR" not in text[-4096:].upper() and "END:VCALENDAR" not in text.upper():
        raise CalendarError(name, "the calendar is truncated (no END:VCALENDAR)")
    doc = repair(text)
    del text  # the repaired text is what is read
    warnings: list[str] = []
    found = frames(name, doc, warnings)
    if not found:
        raise CalendarError(name, "no VCALENDAR in the file")
    calendars, plain = [], []
    for frame in found:
        cal, records = _read(name, doc, frame, tz, warnings, one_offs)
        calendars.append(cal)
        plain += records
    return ParsedCalendar(name, calendars, tz, warnings, plain)


def _read(name: str, doc: Text, frame: Frame, tz: zoneinfo.ZoneInfo, warnings: list[str],
          one_offs: bool) -> tuple[Any, list[Plain]]:
    """One VCALENDAR: a Calendar of its own properties, VTIMEZONEs and series made ready for the
    expander (series.prepare), and the records of its one-off events (plain.py).

    A one-off event whose UID turns out to have a moved occurrence, or a second version, later in the
    feed belongs to a series after all: its component is read again from the text and joins the series,
    and what reading it as a one-off noted is forgotten. The series' events stay in the feed's order."""
    cal = read_header(name, frame, warnings)
    for zone in read_timezones(name, doc, frame, warnings):
        cal.add_component(zone)
    anchors = Anchors.of(name, cal, tz, doc.renamed, warnings)
    series: list[Any] = []
    # uid, block, place in block, record, and what reading it noted (None: nothing)
    one_off: list[tuple[str, Block, int, Plain | None, tuple[Anchors, list[str]] | None]] = []
    shared: dict[Any, Any] = {}  # equal texts and stamps of one-off events, one object each
    for block, component in read_components(name, doc, frame, warnings):
        for k, ev in enumerate(component.walk("VEVENT")):
            ev.forwardd_line, ev.forwardd_order = block.line, (block.index, k)
            if not usable(name, ev, tz, warnings, doc.dates_had_zones):
                continue
            if not (one_offs and is_plain(ev)):
                series.append(ev)
                continue
            notes, said = anchors.fresh(), list[str]()
            try:
                record = plain_event(name, ev, notes, tz, said, shared)
            except Exception as err:  # a shape no rule foresaw: this event alone is lost
                record, said = None, [f"calendar {name!r}: {event_name(ev)} cannot be read ({clip(err)}); skipped"]
            noted = (notes, said) if said or notes.unknown else None
            one_off.append((record.uid if record else str(ev.get("UID", "") or ""), block, k, record, noted))
    uids = Counter(uid for uid, *_ in one_off if uid)
    taken = {str(ev["UID"]) for ev in series if ev.get("UID")}
    plain = []
    for uid, block, k, record, noted in one_off:
        if uid and (uid in taken or uids[uid] > 1):
            again = read_block(name, doc, block, [])
            ev = again.walk("VEVENT")[k] if again is not None else None
            if ev is not None:
                ev.forwardd_line, ev.forwardd_order = block.line, (block.index, k)
                if usable(name, ev, tz, [], doc.dates_had_zones):  # its warnings were given the first time
                    series.append(ev)
            continue
        if noted is not None:
            anchors.merge(noted[0])
            warnings += noted[1]
        if record is not None:
            plain.append(record)
    del one_off
    for ev in sorted(series, key=lambda e: e.forwardd_order):
        cal.add_component(ev)
    prepare(name, cal, anchors, tz, warnings)
    warnings += anchors.warnings(name)
    return cal, plain
