"""The fast path for one-off events: a VEVENT without RRULE, RDATE, EXDATE or RECURRENCE-ID, whose UID
no other VEVENT of its VCALENDAR shares, has one occurrence, its own DTSTART to DTEND (or DURATION).

Most events of a large feed are such. Building a recurrence series for each (recurring-ical-events'
``Series``, an rrule set, an adapter, a copy of the component per occurrence) cost more than parsing
it; here its occurrence is read straight from DTSTART and DTEND, and kept as a compact record
(occurrences.Plain) instead of the component. The policies are the series path's own, applied by the
same functions: the event is anchored in its zones as a series of one (series.anchor_series: floating
times, unknown zones, all-day dates), an end before the start is dropped or kept by the same rule
(validity.forwards), and the occurrence is timed by occurrences.timing (all-day days, the
spring-forward gap). Shapes where recurring-ical-events reads a one-off event in its own way (a date
DTSTART with a date-time DTEND, or with a DURATION of hours) stay on the series path.
``tests/test_calendars_plain.py`` checks that both paths give the same events for every golden file and
every shared real-world calendar.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from .occurrences import Plain, left_out, timing
from .series import Anchors, anchor_series
from .validity import forwards
from .values import changed_at

_RECURRING = ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")


def is_plain(ev: Any) -> bool:
    """Whether a usable VEVENT (validity.usable) is a one-off event of a shape this path reads as the
    series path does (see the module docstring); its UID is checked by the caller."""
    if any(key in ev for key in _RECURRING):
        return False
    timed = isinstance(ev["DTSTART"].dt, dt.datetime)
    if "DTEND" in ev:
        return isinstance(ev["DTEND"].dt, dt.datetime) == timed
    if "DURATION" in ev and not timed:
        duration = ev["DURATION"].dt
        return duration.seconds == 0 and duration.microseconds == 0
    return True


def plain_event(name: str, ev: Any, anchors: Anchors, tz: zoneinfo.ZoneInfo, warnings: list[str],
                shared: dict[Any, Any] | None = None) -> Plain | None:
    """The occurrence of a one-off event (is_plain), or None when it is dropped: cancelled, or ending
    before it starts (with a warning). Notes its zones in ``anchors``. Equal texts and stamps of the
    feed's records are one object each, kept in ``shared`` (a rota repeats its summaries, an export its
    DTSTAMP)."""
    share = (lambda v: v) if shared is None else (lambda v: shared.setdefault(v, v))
    anchor_series([ev], anchors)
    if not forwards(name, ev, tz, warnings) or str(ev.get("STATUS", "")).upper() == "CANCELLED":
        return None
    raw_start = ev["DTSTART"].dt
    if "DTEND" in ev:
        raw_end = ev["DTEND"].dt
    elif "DURATION" in ev:
        raw_end = raw_start + ev["DURATION"].dt
    else:
        raw_end = raw_start if isinstance(raw_start, dt.datetime) else raw_start + dt.timedelta(days=1)
    start, end = timing(raw_start, raw_end, tz)
    fields = (share(str(ev.get("SUMMARY", "") or "")), share(str(ev.get("LOCATION", "") or "")),
              share(str(ev.get("DESCRIPTION", "") or "")), str(ev.get("UID", "") or ""), share(changed_at(ev)))
    if end <= start:
        return Plain(start, start, *fields, left_out(name, ev, start, raw_start, raw_end, tz))
    return Plain(start, end, *fields)
