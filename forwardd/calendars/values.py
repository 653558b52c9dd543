"""Small readers of icalendar values, and how a warning names an event: shared by the modules that read
feeds (text, frames, validity, series, occurrences)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from ..core.timeline import UTC


def as_list(value: Any) -> list[Any]:
    """A property icalendar holds once (a value) or several times (a list) as a list; [] for None."""
    return [] if value is None else value if isinstance(value, list) else [value]


def flat(values: list[Any]) -> list[Any]:
    """Date values with each PERIOD (a tuple: start, end or duration) spread out."""
    return [x for v in values for x in (v if isinstance(v, tuple) else (v,))]


def is_utc(value: dt.datetime) -> bool:
    """Whether an aware date-time is in UTC (``...Z``, or a zone named UTC)."""
    return str(value.tzname()).upper() in ("UTC", "Z")


def as_utc(value: Any, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """A DTSTART/DTEND value as an aware UTC instant: a date is local midnight, a floating time local."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def changed_at(occ: Any) -> dt.datetime | None:
    """When an event was last changed: LAST-MODIFIED, else DTSTAMP, as aware UTC (None without either).
    Breaks the tie between two people's events with the same start and end (core/timeline.py)."""
    for key in ("LAST-MODIFIED", "DTSTAMP"):
        value = getattr(occ.get(key), "dt", None)
        if isinstance(value, dt.datetime):
            return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)
    return None


def clip(text: object, size: int = 160) -> str:
    """``text`` on one line, cut to ``size`` characters, for a warning."""
    text = " ".join(str(text).split())
    return text if len(text) <= size else text[: size - 3] + "..."


def event_name(ev: Any) -> str:
    """An event as a warning names it: by UID (and line), else by summary and line."""
    line = getattr(ev, "forwardd_line", None)
    at = f" (line {line})" if line else ""
    if ev.get("UID"):
        return f"event {str(ev['UID'])!r}{at}"
    return f"event {str(ev.get('SUMMARY', ''))!r} without UID{at}"
