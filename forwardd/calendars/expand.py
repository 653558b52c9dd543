"""One feed's bytes -> its occurrences over a window, bounded: the work a worker process does.

Everything that comes out of a calendar is untrusted text: control characters (ANSI escapes among
them) are removed and each field is cut to a sensible length here, once, before it reaches a log, a
terminal, a page or a notice.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from ..core.timeline import Event
from ..errors import CalendarError
from .expansion import Expansion
from .holidays import holidays_between, is_builtin
from .limits import Limits, check_rules
from .parse import parse_calendar

# Longest text kept per field: a summary names a person; a description may carry a phone number.
TEXT_LIMITS = {"summary": 200, "location": 200, "description": 2000, "uid": 255}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def clean_text(text: str, limit: int) -> str:
    """``text`` without control characters (newlines and tabs become spaces), at most ``limit`` long."""
    text = _CONTROL.sub("", text.replace("\r\n", " ").replace("\n", " ").replace("\t", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def expand(
    name: str, data: bytes, tz: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime, limits: Limits
) -> Expansion:
    """Parse ``data`` and list its occurrences overlapping ``[start, end)``. Raises CalendarError naming
    the feed when it is not iCalendar, or when it would make more work than ``limits`` allow. A built-in
    calendar's "feed" (``holidays.builtin_bytes``) gives its bank holidays."""
    if is_builtin(data):
        return holidays_between(name, data, tz, start, end)
    cal = parse_calendar(name, data, tz)
    check_rules(name, cal.components, start, end, limits)
    events, notes = cal.events_between(start, end)
    warnings = cal.warnings
    del cal  # a huge feed's records go before its cleaned occurrences are made
    if len(events) > limits.max_occurrences:
        raise CalendarError(name, f"{len(events):,} occurrences in the horizon, more than the "
                                  f"{limits.max_occurrences:,} forwardd accepts")
    for i, e in enumerate(events):  # one list: each occurrence replaced by its cleaned copy
        events[i] = Event(e.start, e.end, clean_text(e.summary, TEXT_LIMITS["summary"]),
                          clean_text(e.location, TEXT_LIMITS["location"]),
                          clean_text(e.description, TEXT_LIMITS["description"]), clean_text(e.uid, TEXT_LIMITS["uid"]),
                          name, e.stamp)
    return Expansion((start, end), events, [clean_text(w, 1000) for w in warnings], [clean_text(n, 1000) for n in notes])
