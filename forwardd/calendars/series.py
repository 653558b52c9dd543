"""Series made ready for the expander: the events of one UID, anchored in one zone, with their
UNTIL, COUNT and all-day values settled. recurring-ical-events expands them (occurrences.py).

- DTSTART's zone governs every occurrence of its series: floating DTEND, EXDATE, RDATE and
  RECURRENCE-ID values are read in it, and zoned or UTC ones keep their own instants. A series whose
  DTSTART names a zone nobody knows is read wholly in the floating zone, its values with a known TZID
  too (UTC ones keep their instants), with one warning per unknown zone;
- two series with one UID (VEVENTs without RECURRENCE-ID): the one with the latest SEQUENCE is used,
  then the one changed last (LAST-MODIFIED, else DTSTAMP), then the later in the file, with a warning;
- in an all-day series, an UNTIL, EXDATE, RDATE or RECURRENCE-ID written as a date-time stands for the
  day it falls on (a UTC one: the day whose start or last second it is in the calendar's declared zone,
  the zone a date's ignored TZID named, one of its VTIMEZONEs, the configured zone or UTC), and UNTIL
  includes that day (RFC 5545 3.3.10);
- an UNTIL given as a date on a date-time series includes that whole day (local to the event), as
  calendar apps show it; a floating UNTIL is a time in the zone of the series;
- a DTSTART that its RRULE does not make counts as the first of the rule's COUNT occurrences (RFC 5545
  3.3.10), with a warning.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from dateutil.rrule import rrulestr
from icalendar.prop import vDDDLists, vDDDTypes, vRecur

from ..core.timeline import UTC
from .validity import forwards
from .values import as_list, changed_at, clip, event_name, flat, is_utc
from .zones import defined_zones, floating_zone, zone_key, zone_name


@dataclass
class Anchors:
    """How a VCALENDAR's series are anchored in zones, and what anchoring them noted.

    ``floating``: the zone floating times are read in (zones.floating_zone); ``zones``: where a UTC
    date-time of an all-day series may be a local midnight, the declared zone first, then (after the
    series' own zones, see _all_dates) the feed's VTIMEZONEs and the configured zone; ``renamed``: the
    feed's renamed VTIMEZONEs (text.isolate_custom_zones). ``unknown``: each unknown TZID met, with the
    zones its times were read in; ``wholly``: each unknown TZID some series start in, with those series
    and the known zones their other values named."""

    floating: zoneinfo.ZoneInfo
    zones: tuple[list[Any], list[Any]]
    renamed: dict[str, str]
    unknown: dict[str, set[str]] = field(default_factory=dict)
    wholly: dict[str, tuple[list[str], set[str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, cal: Any, tz: zoneinfo.ZoneInfo, renamed: dict[str, str], warnings: list[str]) -> Anchors:
        """The anchors of ``cal`` (its header and VTIMEZONEs read), warning of an unknown X-WR-TIMEZONE."""
        floating, declared = floating_zone(name, cal, tz, warnings)
        return cls(floating, ([floating] if declared else [], [*defined_zones(cal), tz]), renamed)

    def fresh(self) -> Anchors:
        """The same anchors with nothing noted yet (for an event whose notes may not count)."""
        return Anchors(self.floating, self.zones, self.renamed)

    def merge(self, other: Anchors) -> None:
        """Add what ``other`` noted to this one's notes."""
        for tzid, used in other.unknown.items():
            self.unknown.setdefault(tzid, set()).update(used)
        for tzid, (uids, zones) in other.wholly.items():
            mine = self.wholly.setdefault(tzid, ([], set()))
            mine[0].extend(uids)
            mine[1].update(zones)

    def warnings(self, name: str) -> list[str]:
        """One warning per unknown TZID: the zones its times were read in, and the series read wholly in
        the floating zone because they start in it."""
        out = []
        flo = zone_name(self.floating, self.renamed)
        for tzid, used in sorted(self.unknown.items()):
            how = [f"{flo} wall time" for z in used if z == flo] + [
                f"{z} wall time where the DTSTART of its series is in {z}" for z in sorted(used) if z != flo]
            text = (f"calendar {name!r}: unknown time zone {zone_name(tzid, self.renamed)!r}; its times are read as "
                    + " and ".join(how))
            if tzid in self.wholly:
                uids, others = self.wholly[tzid]
                text += (f"; the series that start in it ({', '.join(map(repr, uids[:5]))}"
                         f"{', ...' if len(uids) > 5 else ''}) are read wholly so, on one wall clock"
                         + "".join(f", their times in {zone_name(z, self.renamed)!r} too" for z in sorted(others)))
            out.append(text)
        return out


def prepare(name: str, cal: Any, anchors: Anchors, tz: zoneinfo.ZoneInfo, warnings: list[str]) -> None:
    """Make the VEVENTs of one VCALENDAR (read and found usable, validity.py) ready for the expander, in
    place (see the module docstring); notes zones in ``anchors``.

    Each series (the events of one UID) is prepared on its own: one that trips over something no rule
    here foresaw is skipped with a warning, and the others are used."""
    drop: set[int] = set()
    for group in _by_uid(cal):
        try:
            group = _one_series(name, group, warnings, drop)
            anchor_series(group, anchors)
            for ev in group:
                _end_in_start_zone(ev)
                fix_until(ev)
                _count_from_dtstart(name, ev, warnings)
                if not forwards(name, ev, tz, warnings):
                    drop.add(id(ev))
        except Exception as err:  # see the docstring
            warnings.append(f"calendar {name!r}: {event_name(group[0])} cannot be read ({clip(err)}); skipped")
            drop.update(id(ev) for ev in group)
    if drop:
        for holder in cal.walk():
            holder.subcomponents[:] = [sub for sub in holder.subcomponents if id(sub) not in drop]


def _end_in_start_zone(ev: Any) -> None:
    """Put a DTEND given in another zone than DTSTART's in DTSTART's zone, the same instant.

    recurring-ical-events 3.8.2 adds the real time from DTSTART to DTEND to each occurrence's start on
    its wall clock when the two are in different zones, so an event from 00:00 London to 03:00Z on the
    spring-forward night ended at 02:00Z, an hour before the instant its DTEND names. In one zone, the
    length is the wall clock's: a single event ends at its DTEND, and each occurrence of a series lasts as
    long as the first one on the wall clock of the series' zone (as plain.py reads one-off events)."""
    start, end = ev["DTSTART"].dt, ev.get("DTEND")
    if (end is None or not isinstance(start, dt.datetime) or not isinstance(end.dt, dt.datetime)
            or start.tzinfo is None or end.dt.tzinfo is None or end.dt.tzinfo is start.tzinfo):
        return
    moved = vDDDTypes(end.dt.astimezone(start.tzinfo))
    moved.params.update({k: v for k, v in end.params.items() if k.upper() != "TZID"})
    ev["DTEND"] = moved


def _one_series(name: str, group: list[Any], warnings: list[str], drop: set[int]) -> list[Any]:
    """``group`` with one VEVENT without RECURRENCE-ID at most: of two series with one UID, the one with
    the latest SEQUENCE is used, then the one changed last (LAST-MODIFIED, else DTSTAMP), then the later
    in the file; the others go into ``drop`` with a warning naming the UID and the one used.
    (recurring-ical-events 3.8.2 kept the first of equal SEQUENCEs without a word.)"""
    masters = [(k, ev) for k, ev in enumerate(group) if "RECURRENCE-ID" not in ev]
    if len(masters) < 2:
        return group
    oldest = dt.datetime.min.replace(tzinfo=UTC)

    def rank(item: tuple[int, Any]) -> tuple[int, dt.datetime, int]:
        k, ev = item
        return int(ev.get("SEQUENCE", 0) or 0), changed_at(ev) or oldest, k

    ordered = sorted(masters, key=rank)
    (_, used), runner_up = ordered[-1], rank(ordered[-2])
    best = rank(ordered[-1])
    if best[0] != runner_up[0]:
        why = f"SEQUENCE {best[0]}"
    elif best[1] != runner_up[1]:
        key = "LAST-MODIFIED" if "LAST-MODIFIED" in used else "DTSTAMP"
        why = f"{key} {best[1]:%Y-%m-%d %H:%M:%S}Z"
    else:
        why = "the later in the file; SEQUENCE and LAST-MODIFIED or DTSTAMP are the same"
    line = getattr(used, "forwardd_line", None)
    where = f"the one at line {line}" if line else f"VEVENT {best[2] + 1} of the {len(masters)}"
    warnings.append(f"calendar {name!r}: event {str(used['UID'])!r} has {len(masters)} VEVENTs without RECURRENCE-ID "
                    f"(series with one UID); {where} ({why}) is used, the others are ignored")
    drop.update(id(ev) for _, ev in masters if ev is not used)
    return [ev for ev in group if ev is used or "RECURRENCE-ID" in ev]


def _count_from_dtstart(name: str, ev: Any, warnings: list[str]) -> None:
    """Where a series' DTSTART is not one of its rule's occurrences and the rule has a COUNT, make DTSTART
    the first of the COUNT occurrences, with a warning. RFC 5545 3.3.10: "The DTSTART property value
    always counts as the first occurrence"; recurring-ical-events 3.8.2 adds DTSTART to COUNT occurrences
    of the rule (one too many), so the rule's COUNT is lowered by one here (a COUNT of 1 leaves DTSTART
    alone). Only a series with one RRULE: with several, which one DTSTART counts in is anyone's guess."""
    rules = as_list(ev.get("RRULE"))
    if len(rules) != 1 or "RECURRENCE-ID" in ev or not rules[0].get("COUNT"):
        return
    rule = rules[0]
    count = int(rule["COUNT"][0])
    start = ev["DTSTART"].dt
    wall = start.replace(tzinfo=None) if isinstance(start, dt.datetime) else dt.datetime.combine(start, dt.time())
    probe = vRecur({k: v for k, v in rule.items() if k not in ("COUNT", "UNTIL")})
    probe["COUNT"] = [1]
    try:
        first = next(iter(rrulestr(probe.to_ical().decode(), dtstart=wall)), None)
    except Exception:  # a rule dateutil cannot read: the expander reports it
        return
    if first == wall:
        return
    days = vRecur({k: v for k, v in rule.items() if k.startswith("BY")}).to_ical().decode() or probe.to_ical().decode()
    if count > 1:
        rule["COUNT"] = [count - 1]
    else:
        del ev["RRULE"]
    warnings.append(f"calendar {name!r}: {event_name(ev)}: DTSTART {wall.date()} is not on the rule's days ({days}); it is "
                    f"counted as the first of COUNT={count} occurrences (RFC 5545 3.3.10)")


def _by_uid(cal: Any) -> list[list[Any]]:
    """The VEVENTs of ``cal`` grouped into series by UID (an event without UID is a series of its own)."""
    groups: dict[int | str, list[Any]] = {}
    for ev in cal.walk("VEVENT"):
        groups.setdefault(str(ev["UID"]) if ev.get("UID") else id(ev), []).append(ev)
    return list(groups.values())


def anchor_series(group: list[Any], anchors: Anchors) -> None:
    """Give each floating date-time of a series the zone that governs the series: its DTSTART's; and
    make the EXDATE, RDATE, RECURRENCE-ID and UNTIL values of an all-day series dates.

    recurring-ical-events 3.8.2 gives a whole series the zone of the first zoned value among DTSTART,
    DTEND, EXDATE and RDATE, so a series whose DTSTART is floating (or names a zone nobody knows, which
    icalendar leaves floating) while its DTEND, EXDATE or RDATE carries a zone or UTC moved by that zone's
    offset. Here, before expansion, a floating DTSTART becomes a time in the calendar's floating zone,
    and every other floating value of the series (DTEND, EXDATE, RDATE, RECURRENCE-ID, and a moved
    occurrence's DTSTART) a time in the zone of the series' DTSTART. Zoned and UTC values keep their
    own instants. Each unknown TZID met is noted in ``anchors.unknown`` with the zone its times were read in.

    A series whose DTSTART names a zone nobody knows is read wholly in the floating zone: each of its
    DTSTART, DTEND, EXDATE, RDATE and RECURRENCE-ID values with a TZID, known or not, is a wall time
    there (an exporter that names one zone two ways, "Customized Time Zone" and "Eastern Standard Time",
    means one zone; half a series in each would lengthen its events by the difference and miss its
    EXDATEs). UTC values keep their instants. Such series are noted in ``anchors.wholly`` under that TZID.

    All-day series: Outlook ends one with UNTIL at the local midnight of its last day, in UTC
    (``DTSTART;VALUE=DATE:20210210`` with ``UNTIL=20210701T220000Z`` in Central Europe), and writes its
    EXDATEs as zoned midnights. recurring-ical-events 3.8.2 cuts such an UNTIL to its UTC date (1 July,
    dropping Friday 2 July, which RFC 5545 3.3.10 includes) unless the series also has a zoned EXDATE,
    in which case it compares in that zone. Here those values become the dates they stand for (see
    _day_of), so an all-day series is all dates and its last day does not depend on its EXDATEs."""
    floating, renamed = anchors.floating, anchors.renamed
    master = next((e for e in group if "RECURRENCE-ID" not in e), group[0])
    base = master["DTSTART"].dt
    all_day = not isinstance(base, dt.datetime)
    series_zone = floating if all_day else base.tzinfo or floating
    lost = None if all_day or base.tzinfo is not None else master["DTSTART"].params.get("TZID")
    others: set[str] = set()
    for ev in group:
        own = ev["DTSTART"].dt
        zone = own.tzinfo if isinstance(own, dt.datetime) and own.tzinfo is not None and not lost else series_zone
        for key in ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE"):
            put_in = series_zone if key == "RECURRENCE-ID" else zone
            for i, prop in enumerate(as_list(ev.get(key))):
                if not lost and not isinstance(prop, vDDDLists) and _zoned(prop.dt):
                    continue  # the common case, at once: a zoned value keeps its instant
                new = _anchored(prop, put_in, rezone=bool(lost))
                if new is None:
                    continue
                tzid = prop.params.get("TZID")
                if tzid and _naive(prop):
                    anchors.unknown.setdefault(str(tzid), set()).add(zone_name(put_in, renamed))
                elif tzid:
                    others.add(str(tzid))
                if isinstance(ev[key], list):
                    ev[key][i] = new
                else:
                    ev[key] = new
    if lost:
        uids, overridden = anchors.wholly.setdefault(str(lost), ([], set()))
        uids.append(str(master.get("UID", "") or master.get("SUMMARY", "")))
        overridden.update(others)
    if all_day:
        _all_dates(group, anchors.zones)


def _zoned(value: Any) -> bool:
    return isinstance(value, dt.datetime) and value.tzinfo is not None


def _naive(prop: Any) -> bool:
    """Whether ``prop`` (vDDDTypes or vDDDLists) holds a floating date-time."""
    values = [v.dt for v in prop.dts] if isinstance(prop, vDDDLists) else [prop.dt]
    return any(isinstance(v, dt.datetime) and v.tzinfo is None for v in flat(values))


def _all_dates(group: list[Any], zones: tuple[list[Any], list[Any]]) -> None:
    """The EXDATE, RDATE, RECURRENCE-ID and UNTIL date-times of an all-day series as dates (see _day_of).
    ``zones``: the calendar's declared zone (if any), and its VTIMEZONEs' and the configured zone;
    the zones of the series' own values come between the two, and UTC itself last."""
    own = [v.tzinfo for ev in group for key in ("EXDATE", "RDATE", "RECURRENCE-ID") for prop in as_list(ev.get(key))
           for v in flat([d.dt for d in prop.dts] if isinstance(prop, vDDDLists) else [prop.dt])
           if isinstance(v, dt.datetime) and v.tzinfo is not None and not is_utc(v)]
    for ev in group:  # the zones its dates were written with (see text.date_without_zone)
        own += [zoneinfo.ZoneInfo(key) for tzid in getattr(ev, "forwardd_date_zones", [])
                if (key := zone_key(tzid)) and key != "UTC"]
    candidates = [*dict.fromkeys([*zones[0], *own, *zones[1], UTC])]
    for ev in group:
        for key in ("EXDATE", "RDATE", "RECURRENCE-ID"):
            for i, prop in enumerate(as_list(ev.get(key))):
                values: list[Any] = [d.dt for d in prop.dts] if isinstance(prop, vDDDLists) else [prop.dt]
                if not any(isinstance(v, (dt.datetime, tuple)) for v in values):
                    continue
                days = [_day_of(v[0] if isinstance(v, tuple) else v, candidates) for v in values]
                new: Any = vDDDLists(days) if isinstance(prop, vDDDLists) else vDDDTypes(days[0])
                new.params.update({k: v for k, v in prop.params.items() if k.upper() not in ("TZID", "VALUE")})
                if isinstance(ev[key], list):
                    ev[key][i] = new
                else:
                    ev[key] = new
        for rule in as_list(ev.get("RRULE")):
            until: Any = rule.get("UNTIL")
            if until and isinstance(until[0], dt.datetime):
                rule["UNTIL"] = [_day_of(until[0], candidates)]


def _day_of(value: dt.date, zones: list[Any]) -> dt.date:
    """The day a date-time of an all-day series stands for. Floating or zoned: its own date. UTC: the day
    whose start (Outlook: local midnight) or last second (23:59:59) it is in one of ``zones``, as
    exporters write a day of their zone in UTC; else its date in the first of ``zones``."""
    if not isinstance(value, dt.datetime):
        return value
    if value.tzinfo is None or not is_utc(value):
        return value.date()
    for zone in zones:
        local = value.astimezone(zone)
        if local.time() in (dt.time(0), dt.time(23, 59, 59)):
            return local.date()
    return value.astimezone(zones[0]).date()


def _anchored(prop: Any, zone: Any, rezone: bool = False) -> Any:
    """``prop`` (vDDDTypes or vDDDLists) with its floating date-times put in ``zone`` (with ``rezone``, its
    zoned ones too, keeping their wall time; UTC ones keep their instant); None if nothing changes."""
    def moves(v: Any) -> bool:
        return isinstance(v, dt.datetime) and (v.tzinfo is None or (rezone and not is_utc(v) and v.tzinfo != zone))

    def put(v: Any) -> Any:
        if isinstance(v, tuple):
            return tuple(put(x) for x in v)
        return v.replace(tzinfo=zone) if moves(v) else v

    values = [v.dt for v in prop.dts] if isinstance(prop, vDDDLists) else [prop.dt]
    if not any(moves(v) for v in flat(values)):
        return None
    out = vDDDLists([put(v) for v in values]) if isinstance(prop, vDDDLists) else vDDDTypes(put(values[0]))
    out.params.update({k: v for k, v in prop.params.items() if k.upper() != "TZID"})
    return out


def fix_until(ev: Any) -> None:
    """Make each UNTIL of a timed series a UTC instant, as recurring-ical-events reads it right.

    - an UNTIL date includes that whole day, local to the series (as calendar apps show it);
    - a floating UNTIL is a time in the series' zone: recurring-ical-events 3.8.2 reads it as UTC (it
      appends a Z when dateutil refuses a floating UNTIL on a zoned start), which dropped the last
      occurrence of a series west of Greenwich.
    Runs after _anchor_series, so a timed series' DTSTART always has a zone here."""
    start = ev["DTSTART"].dt
    if "RRULE" not in ev or not isinstance(start, dt.datetime) or start.tzinfo is None:
        return
    for rule in as_list(ev["RRULE"]):
        until = rule.get("UNTIL")
        if not until:
            continue
        value = until[0]
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(23, 59, 59))
        if value.tzinfo is None:
            value = value.replace(tzinfo=start.tzinfo)
        rule["UNTIL"] = [value.astimezone(UTC)]
