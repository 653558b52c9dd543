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
  times); a DURATION is counted on the wall clock too, and so is a DTEND in another zone than DTSTART's
  (series._end_in_start_zone). A single event's DTSTART and DTEND are the instants they name;
- an event with a DTSTART time but no DTEND or DURATION has no length and is dropped with a warning;
  an all-day one without DTEND lasts one day;
- a one-off event (plain.py) is kept as a compact record, its occurrence read when the feed is; each
  occurrence of a series is read from the series' own component (recurring-ical-events' ``Series``
  extension point, ``occurrence``), never from a copy of it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from recurring_ical_events import CalendarQuery, EventAdapter, Occurrence, SelectComponents, Series

from ..core.timeline import Event
from .values import as_utc, changed_at, clip, event_name


class Plain(NamedTuple):
    """A one-off event's occurrence, as aware UTC instants; ``note``, for one that has no length, says why
    it is left out of a window it falls in."""

    start: dt.datetime
    end: dt.datetime
    summary: str
    location: str
    description: str
    uid: str
    stamp: dt.datetime | None
    note: str | None = None


def timing(raw_start: Any, raw_end: Any, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """An occurrence's start and end (dates, or aware date-times) as aware UTC instants: a date is the
    start of that day in ``tz``; one that starts in the spring-forward gap keeps its wall-clock length."""
    start, end = as_utc(raw_start, tz), as_utc(raw_end, tz)
    if end <= start and isinstance(raw_start, dt.datetime) and isinstance(raw_end, dt.datetime):
        wall = raw_end.replace(tzinfo=None) - raw_start.replace(tzinfo=None)
        if wall > dt.timedelta(0):  # starts in the spring-forward gap: keep its wall-clock length
            end = start + wall
    return start, end


def left_out(name: str, source: Any, start: dt.datetime, raw_start: Any, raw_end: Any, tz: zoneinfo.ZoneInfo) -> str:
    """The note for an occurrence of ``source`` that does not end after it starts."""
    when = start.astimezone(tz).strftime("%a %d %b %Y %H:%M")
    why = "has no end (no DTEND or DURATION)" if raw_end == raw_start else "ends before it starts"
    summary = str(source.get("SUMMARY", "") or "")
    named = f"{event_name(source)} ({summary!r})" if source.get("UID") else event_name(source)
    return f"calendar {name!r}: {named} on {when} {why}; ignored"


class _Adapter(EventAdapter):  # type: ignore[misc]
    """recurring-ical-events' adapter of a VEVENT, holding its component where forwardd reads it."""

    def __init__(self, component: Any) -> None:
        super().__init__(component)
        self.source = component


class _Occurrence(Occurrence):  # type: ignore[misc]
    """An occurrence that remembers the adapter (so the component) it comes from, instead of copying the
    component (``as_component``) to read three values of it."""

    def __init__(self, adapter: Any, start: Any = None, end: Any = None, sequence: int = -1) -> None:
        super().__init__(adapter, start, end, sequence)
        self.source = adapter.source


class _Series(Series):  # type: ignore[misc]
    def occurrence(self, adapter: Any, start: Any = None, end: Any = None) -> Occurrence:
        """recurring-ical-events' documented way to choose the occurrence class."""
        return _Occurrence(adapter, start, end, sequence=self.sequence)


class _EachSeries(SelectComponents):  # type: ignore[misc]
    """The VEVENTs of a calendar grouped by UID into recurring-ical-events' series, as its own
    ``ComponentsWithName`` does, except that a series the library cannot build is kept aside with the
    reason instead of being dropped without a word (``skip_bad_series``) or failing the whole feed."""

    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []

    def collect_series_from(self, source: Any, suppress_errors: tuple[type[Exception], ...]) -> list[Any]:
        groups: dict[str, list[Any]] = {}
        for component in source.walk("VEVENT"):
            adapter = _Adapter(component)
            groups.setdefault(adapter.uid, []).append(adapter)
        series = []
        for uid, adapters in groups.items():
            try:
                series.append(_Series(adapters))
            except Exception as err:  # the library's errors are not a documented tree
                self.failed.append((str(uid), f"{type(err).__name__}: {clip(err)}"))
        return series


@dataclass
class ParsedCalendar:
    """A feed parsed once; ``events_between`` can be asked many times. ``components``: a VCALENDAR per
    VCALENDAR of the feed, holding its series (its one-off events are in ``plain``)."""

    name: str
    components: list[Any]
    tz: zoneinfo.ZoneInfo
    warnings: list[str] = field(default_factory=list)
    plain: list[Plain] = field(default_factory=list, repr=False)
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
                found = list(series.between(lo, hi))
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
        for p in self.plain:
            if p.note is not None:
                if lo <= p.start < hi:  # where recurring-ical-events would have found it (a zero-length event)
                    notes.append(p.note)
            elif p.end > start and p.start < end:
                events.append(Event(p.start, p.end, p.summary, p.location, p.description, p.uid, self.name, p.stamp))
        events.sort(key=lambda e: (e.start, e.end, e.uid))
        return events, notes

    def _event(self, occ: Any, notes: list[str]) -> Event | None:
        source = occ.source
        if str(source.get("STATUS", "")).upper() == "CANCELLED":
            return None
        start, end = timing(occ.start, occ.end, self.tz)
        if end <= start:
            notes.append(left_out(self.name, source, start, occ.start, occ.end, self.tz))
            return None
        return Event(
            start=start,
            end=end,
            summary=str(source.get("SUMMARY", "") or ""),
            location=str(source.get("LOCATION", "") or ""),
            description=str(source.get("DESCRIPTION", "") or ""),
            uid=str(source.get("UID", "") or ""),
            calendar=self.name,
            stamp=changed_at(source),
        )
