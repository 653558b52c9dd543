"""What a feed's expansion yields, as the daemon keeps and caches it: occurrences over a window and the
notes made while reading them. A light module: the daemon imports it, the parsing libraries (which only
the worker process needs) stay out of the daemon's memory."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..core.timeline import UTC, Event

# Raise when a change to the reading of feeds (parse.py) changes which occurrences a feed gives, so that
# occurrences saved by the older code are not reused. 2: issue #9 (zones, UNTIL, unreadable components, stamps).
# 3: issue #23 (dates with a TZID, Windows display names, unknown-zone series, one series per UID, COUNT)
# and issue #22 (a DTEND in another zone than DTSTART's ends a single event at its instant on every path).
EXPANSION = 3


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
