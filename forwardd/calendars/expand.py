"""One feed's bytes -> its occurrences over a window, bounded: the work a worker process does.

Everything that comes out of a calendar is untrusted text: control characters (ANSI escapes among
them) are removed and each field is cut to a sensible length here, once, before it reaches a log, a
terminal, a page or a notice.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from ..core.timeline import UTC, Event
from ..errors import CalendarError
from .limits import Limits, check_rules
from .parse import parse_calendar

# Longest text kept per field: a summary names a person; a description may carry a phone number.
TEXT_LIMITS = {"summary": 200, "location": 200, "description": 2000, "uid": 255}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def clean_text(text: str, limit: int) -> str:
    """``text`` without control characters (newlines and tabs become spaces), at most ``limit`` long."""
    text = _CONTROL.sub("", text.replace("\r\n", " ").replace("\n", " ").replace("\t", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Expansion:
    """A feed's occurrences over ``window`` (sorted), what the parser warned about, and what it dropped."""

    window: tuple[dt.datetime, dt.datetime]
    events: list[Event]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "window": [self.window[0].isoformat(), self.window[1].isoformat()],
            "warnings": self.warnings, "notes": self.notes,
            "events": [[int(e.start.timestamp()), int(e.end.timestamp()), e.summary, e.location, e.description,
                        e.uid, int(e.stamp.timestamp()) if e.stamp else None] for e in self.events],
        }

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> Expansion:
        """Raises KeyError/TypeError/ValueError on a document that is not one of ours."""
        window = (dt.datetime.fromisoformat(data["window"][0]), dt.datetime.fromisoformat(data["window"][1]))
        if window[0].tzinfo is None or window[1].tzinfo is None:
            raise ValueError("a window needs aware bounds")
        events = [
            Event(dt.datetime.fromtimestamp(int(a), UTC), dt.datetime.fromtimestamp(int(b), UTC), str(s), str(loc),
                  str(desc), str(uid), name, dt.datetime.fromtimestamp(int(st), UTC) if st is not None else None)
            for a, b, s, loc, desc, uid, st in data["events"]
        ]
        return cls(window, events, [str(w) for w in data["warnings"]], [str(n) for n in data["notes"]])


def expand(
    name: str, data: bytes, tz: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime, limits: Limits
) -> Expansion:
    """Parse ``data`` and list its occurrences overlapping ``[start, end)``. Raises CalendarError naming
    the feed when it is not iCalendar, or when it would make more work than ``limits`` allow."""
    cal = parse_calendar(name, data, tz)
    check_rules(name, cal.components, start, end, limits)
    events, notes = cal.events_between(start, end)
    if len(events) > limits.max_occurrences:
        raise CalendarError(name, f"{len(events):,} occurrences in the horizon, more than the "
                                  f"{limits.max_occurrences:,} forwardd accepts")
    cleaned = [
        Event(e.start, e.end, clean_text(e.summary, TEXT_LIMITS["summary"]),
              clean_text(e.location, TEXT_LIMITS["location"]), clean_text(e.description, TEXT_LIMITS["description"]),
              clean_text(e.uid, TEXT_LIMITS["uid"]), name, e.stamp)
        for e in events
    ]
    return Expansion((start, end), cleaned, [clean_text(w, 1000) for w in cal.warnings],
                     [clean_text(n, 1000) for n in notes])
