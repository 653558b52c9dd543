"""A parsed feed's occurrences between two aware instants: recurring-ical-events expands each series
(RRULE, RDATE, EXDATE, RECURRENCE-ID), and forwardd reads each occurrence by its rules.

- bounds are always aware; instants come out as aware UTC;
- STATUS:CANCELLED occurrences are dropped;
- daylight saving (golden tests dst_london, dst_new_york): a local time that does not exist (the
  spring-forward gap) is read with the UTC offset before the gap, as RFC 5545 3.3.5 says, so an
  occurrence there is shifted by the gap, not skipped (RFC 5545 3.3.10 would ignore an RRULE
  occurrence there; a skipped shift leaves nobody on call); a local time that occurs twice is the
  first one. Each occurrence of a series starts at its DTSTART's wall-clock time and lasts as long as
  the first one on the wall clock, so a 20:00-08:00 night lasts 11 or 13 hours across a change
  (RFC 5545 3.8.5.3 would keep the first occurrence's exact duration; a rota means its hand-over
  times); a DURATION is counted on the wall clock too. A single event's DTSTART and DTEND are the
  instants they name;
- an event with a DTSTART time but no DTEND or DURATION has no length and is dropped with a warning;
  an all-day one without DTEND lasts one day.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from recurring_ical_events import CalendarQuery, EventAdapter, SelectComponents, Series

from ..core.timeline import Event
from .values import as_utc, changed_at, clip, event_name


class _EachSeries(SelectComponents):  # type: ignore[misc]
    """The VEVENTs of a calendar grouped by UID into recurring-ical-events' series, as its own
    ``ComponentsWithName`` does, except that a series the library cannot build is kept aside with the
    reason instead of being dropped without a word (``skip_bad_series``) or failing the whole feed."""

    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []

    def collect_series_from(self, source: Any, suppress_errors: tuple[type[Exception], ...]) -> list[Any]:
        groups: dict[str, list[Any]] = {}
        for component in source.walk("VEVENT"):
            adapter = EventAdapter(component)
            groups.setdefault(adapter.uid, []).append(adapter)
        series = []
        for uid, adapters in groups.items():
            try:
                series.append(Series(adapters))
            except Exception as err:  # the library's errors are not a documented tree
                self.failed.append((str(uid), f"{type(err).__name__}: {clip(err)}"))
        return series


@dataclass
class ParsedCalendar:
    """A feed parsed once; ``events_between`` can be asked many times."""

    name: str
    components: list[Any]
    tz: zoneinfo.ZoneInfo
    warnings: list[str] = field(default_factory=list)
    _series: list[Any] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for component in self.components:
            collect = _EachSeries()
            try:
                self._series += CalendarQuery(component, components=[collect]).series
            except Exception as err:  # e.g. a CALSCALE other than GREGORIAN
                self.warnings.append(f"calendar {self.name!r}: a VCALENDAR cannot be expanded ({clip(err)}); skipped")
            self.warnings += [f"calendar {self.name!r}: event {uid!r} cannot be expanded ({why}); skipped"
                              for uid, why in collect.failed]

    def events_between(self, start: dt.datetime, end: dt.datetime) -> tuple[list[Event], list[str]]:
        """Occurrences overlapping ``[start, end)`` (aware bounds), and what was dropped and why.

        Raises ValueError on naive bounds; a series that cannot be expanded is left out with a note."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("events_between needs timezone-aware bounds")
        events: list[Event] = []
        notes: list[str] = []
        # recurring-ical-events 3.8.2 compares an all-day occurrence's dates with the bounds' own wall clock,
        # so with UTC bounds it missed a day of the configured zone that begins before a bound in UTC
        # terms (London in summer: the day from 23:00 UTC; New York: a day still running at 02:00 UTC).
        # Days begin within 14 hours of UTC midnight, so asking for a day more on each side and keeping
        # what really overlaps [start, end) is exact.
        lo, hi = start - dt.timedelta(days=1), end + dt.timedelta(days=1)
        for series in self._series:
            try:
                found = [occ.as_component(False) for occ in series.between(lo, hi)]
            except Exception as err:  # one series that cannot be expanded must not hide the rest
                notes.append(f"calendar {self.name!r}: event {str(series.uid)!r} cannot be expanded ({clip(err)}); "
                             "skipped")
                continue
            for occ in found:
                try:
                    ev = self._event(occ, notes)
                except Exception as err:  # one unreadable occurrence must not hide the rest
                    notes.append(f"calendar {self.name!r}: cannot read an event ({clip(err)}); ignored")
                    continue
                if ev is not None and ev.end > start and ev.start < end:
                    events.append(ev)
        events.sort(key=lambda e: (e.start, e.end, e.uid))
        return events, notes

    def _event(self, occ: Any, notes: list[str]) -> Event | None:
        if str(occ.get("STATUS", "")).upper() == "CANCELLED":
            return None
        summary = str(occ.get("SUMMARY", "") or "")
        raw_start = occ["DTSTART"].dt
        if "DTEND" in occ:
            raw_end = occ["DTEND"].dt
        elif "DURATION" in occ:
            raw_end = raw_start + occ["DURATION"].dt
        elif not isinstance(raw_start, dt.datetime):
            raw_end = raw_start + dt.timedelta(days=1)
        else:
            raw_end = raw_start
        start, end = as_utc(raw_start, self.tz), as_utc(raw_end, self.tz)
        if end <= start and isinstance(raw_start, dt.datetime) and isinstance(raw_end, dt.datetime):
            wall = raw_end.replace(tzinfo=None) - raw_start.replace(tzinfo=None)
            if wall > dt.timedelta(0):  # starts in the spring-forward gap: keep its wall-clock length
                end = start + wall
        if end <= start:
            when = start.astimezone(self.tz).strftime("%a %d %b %Y %H:%M")
            why = "has no end (no DTEND or DURATION)" if raw_end == raw_start else "ends before it starts"
            named = f"{event_name(occ)} ({summary!r})" if occ.get("UID") else event_name(occ)
            notes.append(f"calendar {self.name!r}: {named} on {when} {why}; ignored")
            return None
        return Event(
            start=start,
            end=end,
            summary=summary,
            location=str(occ.get("LOCATION", "") or ""),
            description=str(occ.get("DESCRIPTION", "") or ""),
            uid=str(occ.get("UID", "") or ""),
            calendar=self.name,
            stamp=changed_at(occ),
        )
