"""Times and durations in words, for people: one way of saying them for the page, the command line,
alerts and notices. Pure: instants and zones are passed in."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def duration(seconds: float) -> str:
    """``2d3h``, ``8h30m``, ``4m05s``."""
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"


def when(t: dt.datetime, tz: ZoneInfo, seconds: bool = False) -> str:
    """``Mon 30 Nov 17:30`` on the wall clock of ``tz``."""
    return t.astimezone(tz).strftime("%a %d %b %H:%M:%S" if seconds else "%a %d %b %H:%M")


def clock_time(t: dt.datetime, tz: ZoneInfo) -> str:
    """A local time of day, seconds only when there are some: ``17:30``, ``09:00:05``."""
    lt = t.astimezone(tz)
    return f"{lt:%H:%M:%S}" if lt.second else f"{lt:%H:%M}"


def interval(seconds: float) -> str:
    """A period as a config writes it, without zero parts: ``1h``, ``3h20m``, ``1d12h``, ``90s`` -> ``1m30s``."""
    s = int(seconds)
    if s <= 0:
        return "0s"
    parts = [(s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)


def until(t: dt.datetime, now: dt.datetime, tz: ZoneInfo) -> str:
    """When ``t`` comes, seen from ``now``, as briefly as is clear: ``09:00`` later today, ``midnight``
    at the end of today, ``Wed 09:00`` within the week ahead, else ``Wed 09 Dec 09:00``."""
    lt, ln = t.astimezone(tz), now.astimezone(tz)
    days = (lt.date() - ln.date()).days
    if days == 0:
        return clock_time(t, tz)
    if days == 1 and (lt.hour, lt.minute, lt.second) == (0, 0, 0):
        return "midnight"
    if 0 < days < 7:
        return f"{lt:%a} {clock_time(t, tz)}"
    return f"{lt:%a %d %b} {clock_time(t, tz)}"


def day_time(t: dt.datetime, tz: ZoneInfo, year: bool = False) -> str:
    """``Thu 3 Dec 07:28`` (``Thu 3 Dec 2026 07:28`` with ``year``) on the wall clock of ``tz``; seconds
    only when there are some."""
    lt = t.astimezone(tz)
    return f"{lt:%a} {lt.day} {lt:%b}{lt.strftime(' %Y') if year else ''} {clock_time(t, tz)}"


def span(start: dt.datetime, end: dt.datetime, tz: ZoneInfo, at_least: bool = False) -> str:
    """A stretch of time with its dates and its zone: ``from Thu 3 Dec 07:28 until 07:38 (GMT)``, ``from
    Fri 4 Dec 18:00 until Mon 7 Dec 08:30 (GMT)``, ``from Sat 24 Oct 18:00 (BST) until Mon 26 Oct 08:30
    (GMT)`` across a change of the clocks; the year where the two are in different years. ``at_least``:
    the end is not known yet (``until at least ...``)."""
    ls, le = start.astimezone(tz), end.astimezone(tz)
    years = ls.year != le.year
    same_day = ls.date() == le.date()
    to = clock_time(end, tz) if same_day else day_time(end, tz, year=years)
    zs, ze = ls.tzname(), le.tzname()
    first = f"from {day_time(start, tz, year=years)}" + (f" ({zs})" if zs != ze else "")
    return f"{first} until {'at least ' if at_least else ''}{to} ({ze})"
