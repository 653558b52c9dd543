"""Which events and properties are usable, and the warnings for those that are not.

- a feed is refused (CalendarError) only when it is not iCalendar at all (empty, an HTML page,
  truncated, too big). A component or property that cannot be read is skipped with a warning naming
  the feed, the component (its UID, or TZID, and line) and the reason, and the rest of the feed is
  used: a VEVENT without DTSTART (allowed under METHOD), an unreadable VTIMEZONE, a VFREEBUSY
  forwardd never uses, an event whose RRULE or DTSTART is garbage. A series the expander cannot
  build or expand is left out the same way (occurrences.py), so one bad event never hides the others;
- a date that carried a TZID (text.date_without_zone) is warned about, naming the event and the TZID;
- an event whose end, in real time, is not after its start because it begins in the spring-forward
  gap keeps its wall-clock length; one whose DTEND really precedes DTSTART is dropped with a warning,
  and a moved occurrence that does is dropped with its original slot left cancelled.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from icalendar.prop import vBroken, vDDDLists, vDDDTypes

from .text import DATE_TZID
from .values import as_list, as_utc, clip, event_name

# Properties that place an event in time: if one cannot be read, neither can the event. (An unreadable
# RDATE only adds dates nobody can know, so it alone is left out; any other property is just ignored.)
_WHEN = ("DTSTART", "DTEND", "DURATION", "RRULE", "EXDATE", "RECURRENCE-ID")


def _usable_event(name: str, ev: Any, warnings: list[str]) -> bool:
    """Whether a VEVENT can be placed in time; leaves out (with a warning) what of it cannot be read."""
    def warn(text: str) -> None:
        warnings.append(f"calendar {name!r}: {event_name(ev)}{text}")

    errors = list(getattr(ev, "errors", []))
    for prop, msg in errors:
        if prop is None:
            warn(f": a line cannot be read ({clip(msg)}); ignored")
    # icalendar notes each value it could not read in .errors and keeps it as a vBroken
    for key, value in list(ev.items()) if errors else []:
        if not any(isinstance(v, vBroken) for v in as_list(value)):
            continue
        why = next((msg for prop, msg in errors if prop == key), "unreadable")
        if key in _WHEN:
            warn(f": {key} cannot be read ({clip(why)}); skipped")
            return False
        del ev[key]
        warn(f": {key} cannot be read ({clip(why)}); that property is ignored")
    for key, kind in _KINDS:
        prop = ev.get(key)
        if prop is None:
            if key == "DTSTART":  # allowed under METHOD; recurring-ical-events 3.8.2 fails the feed on it
                warn(" has no DTSTART; skipped")
                return False
        elif isinstance(prop, list):
            warn(f" has more than one {key}; skipped")
            return False
        elif not isinstance(prop.dt, kind):
            what = "a duration" if kind is dt.timedelta else "a date or date-time"
            warn(f": {key} {clip(prop.to_ical().decode(), 40)!r} is not {what}; skipped")
            return False
    for key in ("EXDATE", "RDATE"):
        if key not in ev:
            continue
        good: list[Any] = []
        bad: list[Any] = []
        for values in as_list(ev[key]):
            for v in values.dts:
                ok = isinstance(v.dt, dt.date) or (key == "RDATE" and isinstance(v.dt, tuple))
                (good if ok else bad).append(v.dt)
        if bad and key == "EXDATE":
            warn(f": EXDATE {clip(bad[0], 40)!r} is not a date or date-time; skipped")
            return False
        if bad:
            del ev[key]
            if good:
                ev[key] = vDDDLists(good)
            warn(f": RDATE {clip(bad[0], 40)!r} is not a date, date-time or period; ignored")
    return True


# The properties that occur once and what their value must be.
_KINDS = (("DTSTART", dt.date), ("DTEND", dt.date), ("RECURRENCE-ID", dt.date), ("DURATION", dt.timedelta))


def usable(name: str, ev: Any, tz: zoneinfo.ZoneInfo, warnings: list[str], dates_had_zones: bool = True) -> bool:
    """Whether a VEVENT can be placed in time (see _usable_event), leaving out what of it cannot be read;
    warns of each TZID ignored on a date (see text.date_without_zone; ``dates_had_zones`` False when the
    feed had none). False, with a warning, for an event of a shape no check here foresaw: that event
    alone is lost."""
    try:
        if not _usable_event(name, ev, warnings):
            return False
        if dates_had_zones:
            _date_zone_warnings(name, ev, tz, warnings)
        return True
    except Exception as err:  # see the docstring
        warnings.append(f"calendar {name!r}: {event_name(ev)} cannot be read ({clip(err)}); skipped")
        return False


def _date_zone_warnings(name: str, ev: Any, tz: zoneinfo.ZoneInfo, warnings: list[str]) -> None:
    """One warning per TZID that text.date_without_zone took off the dates of ``ev``, naming the event and the
    properties; the zones are kept as ``forwardd_date_zones`` (see series._all_dates)."""
    found: dict[str, list[str]] = {}
    for key in ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE"):
        for prop in as_list(ev.get(key)):
            if DATE_TZID in prop.params:
                found.setdefault(str(prop.params[DATE_TZID]), []).append(key)
                del prop.params[DATE_TZID]
    if not found:
        return
    ev.forwardd_date_zones = [tzid for tzid in found]
    for tzid, keys in found.items():
        warnings.append(f"calendar {name!r}: {event_name(ev)}: TZID {tzid!r} is ignored for a date "
                        f"({', '.join(dict.fromkeys(keys))}; RFC 5545 3.2.19): each date is a whole day of {tz.key}")


def forwards(name: str, ev: Any, tz: zoneinfo.ZoneInfo, warnings: list[str]) -> bool:
    """Whether to keep ``ev``: False, with a warning, when it ends before it starts (recurring-ical-events
    3.8.2 would swap the two silently).

    A moved occurrence (RECURRENCE-ID) that ends before it starts is kept, but cancelled: removed, the
    occurrence it replaces would come back, in the slot its owner moved it out of. An event that ends
    before it starts only in real time, because it begins in the spring-forward gap, keeps its
    wall-clock length instead."""
    s, e = ev["DTSTART"], ev.get("DTEND")
    end = e.dt if e is not None else s.dt + ev["DURATION"].dt if "DURATION" in ev else None
    if end is None or as_utc(end, tz) >= as_utc(s.dt, tz):
        return True
    start = s.dt
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        wall = end.replace(tzinfo=None) - start.replace(tzinfo=None)
        if wall > dt.timedelta(0):  # begins in the spring-forward gap
            ev.pop("DURATION", None)
            ev["DTEND"] = vDDDTypes(as_utc(start, tz) + wall)
            return True
    who = f"calendar {name!r}: {event_name(ev)} ({str(ev.get('SUMMARY', ''))!r})"
    if "RECURRENCE-ID" in ev:
        was = as_utc(ev["RECURRENCE-ID"].dt, tz).astimezone(tz).strftime("%a %d %b %Y %H:%M")
        warnings.append(f"{who}: the occurrence of {was} was moved to one that ends before it starts; "
                        "it is ignored and the original slot stays cancelled")
        ev.pop("DTEND", None)
        ev.pop("DURATION", None)
        ev["STATUS"] = "CANCELLED"
        return True
    warnings.append(f"{who} ends before it starts; ignored")
    return False
