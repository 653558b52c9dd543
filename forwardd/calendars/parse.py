"""iCalendar text -> events between two aware instants. Pure (bytes in, events out).

Expansion of RRULE/RDATE/EXDATE/RECURRENCE-ID is recurring-ical-events' job; icalendar maps Windows
zone names (Outlook's "GMT Standard Time") to IANA ones. Around them, forwardd settles what the
libraries leave open, and works around where they are wrong (each in one place, named with the
library's version, and pinned by a test in tests/test_calendars.py that fails when upstream changes):

- bounds are always aware; instants come out as aware UTC;
- a feed is refused (CalendarError) only when it is not iCalendar at all (empty, an HTML page,
  truncated, too big). A component or property that cannot be read is skipped with a warning naming
  the feed, the component (its UID, or TZID, and line) and the reason, and the rest of the feed is
  used: a VEVENT without DTSTART (allowed under METHOD), an unreadable VTIMEZONE, a VFREEBUSY
  forwardd never uses, an event whose RRULE or DTSTART is garbage. A series the expander cannot
  build or expand is left out the same way, so one bad event never hides the others;
- STATUS:CANCELLED occurrences are dropped;
- all-day values cover whole local days of the configured zone, whatever TZID a date carries (RFC 5545
  3.2.19: a TZID is not applied to a DATE; Radicale writes ``DTSTART;TZID=Europe/Paris;VALUE=DATE``,
  old Google exports ``DTSTART;TZID=America/Los_Angeles:20041225``), with a warning naming the event
  and the TZID; in an all-day series, an UNTIL, EXDATE,
  RDATE or RECURRENCE-ID written as a date-time stands for the day it falls on (a UTC one: the day
  whose start or last second it is in the calendar's declared zone, one of its VTIMEZONEs, the
  configured zone or UTC), and UNTIL includes that day (RFC 5545 3.3.10);
- floating times are read in the calendar's declared zone (X-WR-TIMEZONE, as Google, Apple and
  Outlook.com write it) when it names one, else in the configured zone. X-WR-TIMEZONE changes nothing
  else: a UTC time is that instant, and a series in UTC repeats at the same UTC time (RFC 5545; the
  x-wr-timezone package that recurring-ical-events' ``of()`` applies would move UTC series onto the
  declared zone's wall clock, so forwardd builds its CalendarQuery itself);
- a Windows display name (``(UTC-05:00) Eastern Time (US & Canada)``, in a TZID parameter or a
  VTIMEZONE) is the zone it names (windows_zones.py), as Windows zone IDs are;
- a TZID that names no known zone and no VTIMEZONE of the feed is read as floating, with a warning
  saying in which zone its times were read; a series whose DTSTART names such a zone is read wholly
  in the floating zone, its values with a known TZID too (UTC ones keep their instants);
- DTSTART's zone governs every occurrence of its series: floating DTEND, EXDATE, RDATE and
  RECURRENCE-ID values are read in it, and zoned or UTC ones keep their own instants;
- two series with one UID (VEVENTs without RECURRENCE-ID): the one with the latest SEQUENCE is used,
  then the one changed last (LAST-MODIFIED, else DTSTAMP), then the later in the file, with a warning;
- a DTSTART that its RRULE does not make counts as the first of the rule's COUNT occurrences (RFC 5545
  3.3.10), with a warning;
- a custom VTIMEZONE ("Customized Time Zone") is renamed per feed and definition before parsing,
  because icalendar caches zones by TZID for the whole process and two feeds would collide;
- an UNTIL given as a date on a date-time series includes that whole day (local to the event), as
  calendar apps show it; a floating UNTIL is a time in the zone of the series;
- daylight saving (golden tests dst_london, dst_new_york): a local time that does not exist (the
  spring-forward gap) is read with the UTC offset before the gap, as RFC 5545 3.3.5 says, so an
  occurrence there is shifted by the gap, not skipped (RFC 5545 3.3.10 would ignore an RRULE
  occurrence there; a skipped shift leaves nobody on call); a local time that occurs twice is the
  first one. Each occurrence of a series starts at its DTSTART's wall-clock time and lasts as long as
  the first one on the wall clock, so a 20:00-08:00 night lasts 11 or 13 hours across a change
  (RFC 5545 3.8.5.3 would keep the first occurrence's exact duration; a rota means its hand-over
  times); a DURATION is counted on the wall clock too. A single event's DTSTART and DTEND are the
  instants they name;
- an event whose end, in real time, is not after its start because it begins in the spring-forward
  gap keeps its wall-clock length; one whose DTEND really precedes DTSTART is dropped with a warning,
  and a moved occurrence that does is dropped with its original slot left cancelled;
- an event with a DTSTART time but no DTEND or DURATION has no length and is dropped with a warning;
  an all-day one without DTEND lasts one day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

import icalendar
from dateutil.rrule import rrulestr
from icalendar.prop import vBroken, vDDDLists, vDDDTypes, vRecur
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON
from recurring_ical_events import CalendarQuery, EventAdapter, SelectComponents, Series

from ..core.timeline import UTC, Event
from ..errors import CalendarError
from .windows_zones import display_name_zone

_KNOWN_ZONES = zoneinfo.available_timezones()
_LINE_BREAK = re.compile(r"\r?\n")
_TZID_IN_LINE = re.compile(r";\s*TZID\s*=", re.IGNORECASE)
_SAFE_TZID = re.compile(r"[^A-Za-z0-9+_./-]+")
_UNQUOTED_OFFSET_TZID = re.compile(r";\s*TZID\s*=\s*\(", re.IGNORECASE)
_DATES = re.compile(r"\s*\d{8}\s*(?:,\s*\d{8}\s*)*")
# the properties whose values may be dates
_DATE_PROPS = frozenset({"DTSTART", "DTEND", "DUE", "EXDATE", "RDATE", "RECURRENCE-ID"})
_DATE_TZID = "X-FORWARDD-DATE-TZID"
# Components that sit directly in a VCALENDAR; one of these cannot begin inside another.
_TOP_LEVEL = frozenset({"VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VTIMEZONE", "VAVAILABILITY"})
# Properties that place an event in time: if one cannot be read, neither can the event. (An unreadable
# RDATE only adds dates nobody can know, so it alone is left out; any other property is just ignored.)
_WHEN = ("DTSTART", "DTEND", "DURATION", "RRULE", "EXDATE", "RECURRENCE-ID")


def looks_like_icalendar(data: bytes) -> bool:
    """Whether ``data`` starts as an iCalendar stream (not an HTML login page or JSON)."""
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    return head.startswith(b"BEGIN:VCALENDAR")


def _zone_key(tzid: str) -> str | None:
    """The IANA name of the zone a TZID names: an IANA name, a Windows zone ID ("GMT Standard Time"), a
    Windows display name ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London", see windows_zones.py), UTC,
    or a globally unique TZID ending in an IANA name ("/mozilla.org/20070129_1/Europe/Paris"); None
    when it names none of these."""
    tzid = tzid.strip().strip('"').strip()
    if tzid in _KNOWN_ZONES:
        return tzid
    if tzid in WINDOWS_TO_OLSON:
        return WINDOWS_TO_OLSON[tzid]
    if tzid.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    if tzid.startswith("/"):
        parts = tzid.strip("/").split("/")
        return next(("/".join(parts[k:]) for k in range(1, len(parts)) if "/".join(parts[k:]) in _KNOWN_ZONES), None)
    return display_name_zone(tzid)


def _known_zone(tzid: str) -> bool:
    return _zone_key(tzid) is not None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Unfold the text (RFC 5545 3.1): each content line with the number of its first physical line."""
    out: list[tuple[int, str]] = []
    parts: list[str] = []  # joined once: an attachment folded over thousands of lines stays linear
    first = 0
    for number, line in enumerate(_LINE_BREAK.split(text), 1):
        if line[:1] in (" ", "\t") and parts:
            parts.append(line[1:])
            continue
        if parts:
            out.append((first, "".join(parts)))
        parts, first = [line], number
    if parts:
        out.append((first, "".join(parts)))
    return out


def _tag(line: str) -> str:
    """A short line upper-cased and stripped (``BEGIN:VEVENT``), to compare; '' for a long one."""
    return line.strip().upper() if len(line) < 80 else ""


def _split_line(line: str) -> tuple[str, str]:
    """A content line as (name and parameters, value): split at the first colon outside quotes."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            return line[:i], line[i + 1:]
    return line, ""


def _split_params(head: str) -> list[str]:
    """``NAME;P1=V1;P2="V;2"`` -> ``["NAME", "P1=V1", 'P2="V;2"']`` (semicolons inside quotes stay)."""
    parts, quoted, last = [], False, 0
    for i, ch in enumerate(head):
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            parts.append(head[last:i])
            last = i + 1
    parts.append(head[last:])
    return parts


def _text_value(value: str) -> str:
    """A TEXT value unescaped (RFC 5545 3.3.11): Exchange writes ``Bangkok\\, Hanoi`` in a TZID."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _param_value(value: str) -> str:
    """A parameter value unquoted and decoded (RFC 6868: ``^'`` is a quote, ``^n`` a newline)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return re.sub(r"\^([\^'nN])", lambda m: {"^": "^", "'": '"'}.get(m.group(1), "\n"), value)


def _isolate_custom_zones(lines: list[tuple[int, str]]) -> tuple[list[tuple[int, str]], dict[str, str]]:
    """Rename each non-standard VTIMEZONE's TZID to one unique to its definition, in the VTIMEZONE and in
    every TZID parameter that names it; return the lines and the original name of each new one. A
    Windows display name, in a VTIMEZONE or a parameter, becomes the IANA zone it stands for, as the
    Windows zone IDs do (icalendar maps those itself): the tz database knows the zone's history, where
    an exporter's VTIMEZONE gives only this year's rules.

    The TZID is TEXT in a VTIMEZONE (Exchange escapes its commas: ``Bangkok\\, Hanoi``) but a parameter,
    perhaps quoted, in an event (``TZID="Bangkok, Hanoi"``), so both are compared decoded; and some
    exporters write ``TZID: 1`` and ``TZID= 1``, which the parser trims on one side only, so surrounding
    whitespace does not count either.
    """
    renames: dict[str, str] = {}
    out = list(lines)
    start = None
    for i, (_, line) in enumerate(out):
        key = _tag(line)
        if key == "BEGIN:VTIMEZONE":
            start = i
        elif key == "END:VTIMEZONE" and start is not None:
            block = [text for _, text in out[start:i + 1]]
            for j in range(start + 1, i):
                head, value = _split_line(out[j][1])
                if _split_params(head)[0].strip().upper() == "TZID":
                    tzid = _text_value(value).strip().strip('"').strip()  # some write TZID:"name"
                    display = display_name_zone(tzid)
                    if display is not None:
                        renames[tzid] = display
                        out[j] = (out[j][0], f"TZID:{display}")
                    elif not _known_zone(tzid):
                        digest = hashlib.sha256("\n".join(block).encode()).hexdigest()[:10]
                        renames[tzid] = f"forwardd-{digest}/{_SAFE_TZID.sub('_', tzid)[:40]}"
                        out[j] = (out[j][0], f"TZID:{renames[tzid]}")
                    break
            start = None
    for i, (number, line) in enumerate(out):
        if not _TZID_IN_LINE.search(line) or not (renames or "(" in line):
            continue
        head, value = _split_line(line)
        parts = _split_params(head)
        changed = False
        for k, part in enumerate(parts[1:], 1):
            pname, eq, pvalue = part.partition("=")
            if not eq or pname.strip().upper() != "TZID":
                continue
            old = _param_value(pvalue)
            new = renames.get(old.strip()) or display_name_zone(old)
            if new is not None:
                parts[k], changed = f'{pname}="{new}"', True
        if changed:
            out[i] = (number, ";".join(parts) + ":" + value)
    return out, {new: old for old, new in renames.items() if new.startswith("forwardd-")}


def _quote_display_names(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Quote an unquoted TZID parameter that begins with an offset in parentheses, as some exporters write
    a Windows display name (``DTSTART;TZID=(UTC-05:00) Eastern Time (US & Canada):20260309T090000``): its
    colon would otherwise end the parameters. The value of such a line is what follows its last colon
    (a date, date-time or period has none)."""
    out = lines
    for i, (number, line) in enumerate(lines):
        found = _UNQUOTED_OFFSET_TZID.search(line)
        if found is None or ":" not in line[found.end():]:
            continue
        head, value = line[:line.rindex(":")], line[line.rindex(":") + 1:]
        start = found.end() - 1  # the "("
        stop = head.find(";", start)
        stop = len(head) if stop < 0 else stop
        if out is lines:
            out = list(lines)
        out[i] = (number, f'{head[:start]}"{head[start:stop].strip()}"{head[stop:]}:{value}')
    return out


def _dates_without_zone(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Take the TZID off each date value (``DTSTART;TZID=Europe/Paris;VALUE=DATE:20250716``, or Google's
    old ``DTSTART;TZID=America/Los_Angeles:20041225``): RFC 5545 3.2.19 says a TZID is not applied to a
    DATE, and a date is a whole day of the configured zone. icalendar would read it as midnight in that
    zone. The TZID is kept in an ``X-FORWARDD-DATE-TZID`` parameter, for a warning to name it
    (_date_zone_warnings) and for the zones an all-day series' UTC values may be written in."""
    out = lines
    for i, (number, line) in enumerate(lines):
        if not _TZID_IN_LINE.search(line):
            continue
        head, value = _split_line(line)
        if not _DATES.fullmatch(value):
            continue
        parts = _split_params(head)
        if parts[0].strip().upper() not in _DATE_PROPS:
            continue
        tzids = [_param_value(p.partition("=")[2]) for p in parts[1:] if p.partition("=")[0].strip().upper() == "TZID"]
        keep = [p for p in parts[1:] if p.partition("=")[0].strip().upper() not in ("TZID", "VALUE")]
        mark = tzids[0].replace('"', "'").replace("^", "")
        if out is lines:
            out = list(lines)
        out[i] = (number, ";".join([parts[0], *keep, "VALUE=DATE", f'{_DATE_TZID}="{mark}"']) + ":" + value)
    return out


def _clip(text: object, size: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= size else text[: size - 3] + "..."


@dataclass
class _Block:
    """One component of a VCALENDAR, as text, to be read on its own when the whole feed cannot be."""

    kind: str
    line: int
    lines: list[str] = field(default_factory=list)
    closed: bool = False

    def label(self) -> str:
        key = "TZID" if self.kind == "VTIMEZONE" else "UID"
        for text in self.lines:
            head, value = _split_line(text)
            if _split_params(head)[0].strip().upper() == key:
                return f"{self.kind} {_text_value(value).strip()!r} (line {self.line})"
        return f"{self.kind} at line {self.line}"


@dataclass
class _Frame:
    """One VCALENDAR as text: its own properties and its components."""

    header: list[tuple[int, str]] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)


def _frames(lines: list[tuple[int, str]]) -> tuple[list[_Frame], list[tuple[int, str]]]:
    """Split the feed into VCALENDARs and their components; also return the lines outside any VCALENDAR."""
    frames: list[_Frame] = []
    stray: list[tuple[int, str]] = []
    frame: _Frame | None = None
    block: _Block | None = None
    depth = 0
    for number, line in lines:
        key = _tag(line)
        begin = key[6:] if key.startswith("BEGIN:") else None
        end = key[4:] if key.startswith("END:") else None
        if frame is None:
            if begin == "VCALENDAR":
                frame = _Frame()
            elif line.strip():
                stray.append((number, line))
            continue
        if block is not None and (end == "VCALENDAR" or (begin in _TOP_LEVEL and block.kind in _TOP_LEVEL)):
            frame.blocks.append(block)  # left open: it is reported as such
            block = None
        if end == "VCALENDAR":
            frames.append(frame)
            frame = None
        elif block is None:
            if begin is not None:
                block, depth = _Block(begin, number, [line]), 1
            elif line.strip():
                frame.header.append((number, line))
        else:
            block.lines.append(line)
            depth += 1 if begin is not None else -1 if end is not None else 0
            if end == block.kind or depth == 0:
                block.closed = end == block.kind
                frame.blocks.append(block)
                block = None
    if frame is not None:
        if block is not None:
            frame.blocks.append(block)
        frames.append(frame)
    return frames, stray


def _wrapped(lines: list[str]) -> str:
    return "BEGIN:VCALENDAR\r\n" + "".join(line + "\r\n" for line in lines) + "END:VCALENDAR\r\n"


def _read(name: str, lines: list[tuple[int, str]], warnings: list[str]) -> list[Any]:
    """The feed's VCALENDARs. When icalendar cannot read the whole feed, each component is read on its
    own and those it cannot read are skipped with a warning naming the feed, the component and why.
    Each VEVENT is given the line it begins on (``forwardd_line``), for warnings to name."""
    try:
        cals = list(icalendar.Calendar.from_ical("\r\n".join(text for _, text in lines) + "\r\n", multiple=True))
    except Exception:  # icalendar raises ValueError, KeyError, IndexError... on broken input
        pass
    else:
        events: list[Any] = [ev for cal in cals for ev in cal.walk("VEVENT")]  # in the order of the text
        begins = [number for number, text in lines if _tag(text) == "BEGIN:VEVENT"]
        if len(events) == len(begins):
            for ev, number in zip(events, begins):
                ev.forwardd_line = number
        return cals
    frames, stray = _frames(lines)
    for number, text in stray:
        warnings.append(f"calendar {name!r}: line {number} ({_clip(text, 60)!r}) is outside any VCALENDAR; ignored")
    return [_read_frame(name, frame, warnings) for frame in frames]


def _read_frame(name: str, frame: _Frame, warnings: list[str]) -> Any:
    header = []
    for number, text in frame.header:
        try:
            icalendar.Calendar.from_ical(_wrapped([text]))
            header.append(text)
        except Exception as err:  # see _read
            warnings.append(f"calendar {name!r}: line {number} ({_clip(text, 60)!r}) cannot be read "
                            f"({_clip(err)}); ignored")
    try:
        cal = icalendar.Calendar.from_ical(_wrapped(header))
    except Exception as err:  # lines readable one by one but not together
        warnings.append(f"calendar {name!r}: the VCALENDAR's own properties cannot be read ({_clip(err)}); ignored")
        cal = icalendar.Calendar()
    # VTIMEZONEs first: icalendar looks the zones of later components up by TZID
    for block in sorted(frame.blocks, key=lambda b: b.kind != "VTIMEZONE"):
        if not block.closed:
            warnings.append(f"calendar {name!r}: {block.label()} has no END:{block.kind}; skipped")
            continue
        try:
            parsed = icalendar.Calendar.from_ical(_wrapped(block.lines)).subcomponents
            if len(parsed) != 1:
                raise ValueError(f"{len(parsed)} components where one was expected")
        except Exception as err:  # see _read
            warnings.append(f"calendar {name!r}: {block.label()} cannot be read ({_clip(err)}); skipped")
            continue
        component: Any = parsed[0]
        component.forwardd_line = block.line
        cal.add_component(component)
    return cal


def _who(ev: Any) -> str:
    """An event as a warning names it: by UID (and line), else by summary and line."""
    line = getattr(ev, "forwardd_line", None)
    at = f" (line {line})" if line else ""
    if ev.get("UID"):
        return f"event {str(ev['UID'])!r}{at}"
    return f"event {str(ev.get('SUMMARY', ''))!r} without UID{at}"


def _usable_event(name: str, ev: Any, warnings: list[str]) -> bool:
    """Whether a VEVENT can be placed in time; leaves out (with a warning) what of it cannot be read."""
    def warn(text: str) -> None:
        warnings.append(f"calendar {name!r}: {_who(ev)}{text}")

    errors = list(getattr(ev, "errors", []))
    for prop, msg in errors:
        if prop is None:
            warn(f": a line cannot be read ({_clip(msg)}); ignored")
    # icalendar notes each value it could not read in .errors and keeps it as a vBroken
    for key, value in list(ev.items()) if errors else []:
        if not any(isinstance(v, vBroken) for v in _as_list(value)):
            continue
        why = next((msg for prop, msg in errors if prop == key), "unreadable")
        if key in _WHEN:
            warn(f": {key} cannot be read ({_clip(why)}); skipped")
            return False
        del ev[key]
        warn(f": {key} cannot be read ({_clip(why)}); that property is ignored")
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
            warn(f": {key} {_clip(prop.to_ical().decode(), 40)!r} is not {what}; skipped")
            return False
    for key in ("EXDATE", "RDATE"):
        if key not in ev:
            continue
        good: list[Any] = []
        bad: list[Any] = []
        for values in _as_list(ev[key]):
            for v in values.dts:
                ok = isinstance(v.dt, dt.date) or (key == "RDATE" and isinstance(v.dt, tuple))
                (good if ok else bad).append(v.dt)
        if bad and key == "EXDATE":
            warn(f": EXDATE {_clip(bad[0], 40)!r} is not a date or date-time; skipped")
            return False
        if bad:
            del ev[key]
            if good:
                ev[key] = vDDDLists(good)
            warn(f": RDATE {_clip(bad[0], 40)!r} is not a date, date-time or period; ignored")
    return True


# The properties that occur once and what their value must be.
_KINDS = (("DTSTART", dt.date), ("DTEND", dt.date), ("RECURRENCE-ID", dt.date), ("DURATION", dt.timedelta))


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _usable_events(name: str, cal: Any, tz: zoneinfo.ZoneInfo, warnings: list[str]) -> None:
    """Drop, with a warning, each VEVENT that cannot be placed in time (see _usable_event); warn of each
    TZID ignored on a date (see _dates_without_zone)."""
    def usable(ev: Any) -> bool:
        try:
            if not _usable_event(name, ev, warnings):
                return False
            _date_zone_warnings(name, ev, tz, warnings)
            return True
        except Exception as err:  # a shape no check above foresaw: this event alone is lost
            warnings.append(f"calendar {name!r}: {_who(ev)} cannot be read ({_clip(err)}); skipped")
            return False

    for holder in cal.walk():
        holder.subcomponents[:] = [sub for sub in holder.subcomponents if sub.name != "VEVENT" or usable(sub)]


def _date_zone_warnings(name: str, ev: Any, tz: zoneinfo.ZoneInfo, warnings: list[str]) -> None:
    """One warning per TZID that _dates_without_zone took off the dates of ``ev``, naming the event and the
    properties; the zones are kept as ``forwardd_date_zones`` (see _all_dates)."""
    found: dict[str, list[str]] = {}
    for key in ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE"):
        for prop in _as_list(ev.get(key)):
            if _DATE_TZID in prop.params:
                found.setdefault(str(prop.params[_DATE_TZID]), []).append(key)
                del prop.params[_DATE_TZID]
    if not found:
        return
    ev.forwardd_date_zones = [tzid for tzid in found]
    for tzid, keys in found.items():
        warnings.append(f"calendar {name!r}: {_who(ev)}: TZID {tzid!r} is ignored for a date "
                        f"({', '.join(dict.fromkeys(keys))}; RFC 5545 3.2.19): each date is a whole day of {tz.key}")


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
                self.failed.append((str(uid), f"{type(err).__name__}: {_clip(err)}"))
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
                self.warnings.append(f"calendar {self.name!r}: a VCALENDAR cannot be expanded ({_clip(err)}); skipped")
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
                notes.append(f"calendar {self.name!r}: event {str(series.uid)!r} cannot be expanded ({_clip(err)}); "
                             "skipped")
                continue
            for occ in found:
                try:
                    ev = self._event(occ, notes)
                except Exception as err:  # one unreadable occurrence must not hide the rest
                    notes.append(f"calendar {self.name!r}: cannot read an event ({_clip(err)}); ignored")
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
        start, end = _as_utc(raw_start, self.tz), _as_utc(raw_end, self.tz)
        if end <= start and isinstance(raw_start, dt.datetime) and isinstance(raw_end, dt.datetime):
            wall = raw_end.replace(tzinfo=None) - raw_start.replace(tzinfo=None)
            if wall > dt.timedelta(0):  # starts in the spring-forward gap: keep its wall-clock length
                end = start + wall
        if end <= start:
            when = start.astimezone(self.tz).strftime("%a %d %b %Y %H:%M")
            why = "has no end (no DTEND or DURATION)" if raw_end == raw_start else "ends before it starts"
            named = f"{_who(occ)} ({summary!r})" if occ.get("UID") else _who(occ)
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
            stamp=_stamp(occ),
        )


def _stamp(occ: Any) -> dt.datetime | None:
    """When an event was last changed: LAST-MODIFIED, else DTSTAMP, as aware UTC (None without either).
    Breaks the tie between two people's events with the same start and end (core/timeline.py)."""
    for key in ("LAST-MODIFIED", "DTSTAMP"):
        value = getattr(occ.get(key), "dt", None)
        if isinstance(value, dt.datetime):
            return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)
    return None


def parse_calendar(name: str, data: bytes, tz: zoneinfo.ZoneInfo) -> ParsedCalendar:
    """Parse one feed. Raises CalendarError (naming ``name``) when it is not usable iCalendar."""
    if not data.strip():
        raise CalendarError(name, "the calendar is empty")
    if not looks_like_icalendar(data):
        kind = "an HTML page" if b"<html" in data[:4096].lower() else "not iCalendar"
        raise CalendarError(name, f"the content is {kind} (it does not start with BEGIN:VCALENDAR)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "END:VCALENDAR" not in text.upper():
        raise CalendarError(name, "the calendar is truncated (no END:VCALENDAR)")
    lines, renamed = _isolate_custom_zones(_dates_without_zone(_quote_display_names(_logical_lines(text))))
    warnings: list[str] = []
    components = _read(name, lines, warnings)
    if not components:
        raise CalendarError(name, "no VCALENDAR in the file")
    for c in components:
        _prepare(name, c, tz, renamed, warnings)
    return ParsedCalendar(name, components, tz, warnings)


def _prepare(name: str, cal: Any, tz: zoneinfo.ZoneInfo, renamed: dict[str, str], warnings: list[str]) -> None:
    """Make the VEVENTs of one VCALENDAR ready for the expander, in place (see the module docstring).

    Each series (the events of one UID) is prepared on its own: one that trips over something no rule
    here foresaw is skipped with a warning, and the others are used."""
    floating, declared = _floating_zone(name, cal, tz, warnings)
    _usable_events(name, cal, tz, warnings)
    # where a UTC date-time of an all-day series may be a local midnight: the declared zone, the
    # series' own zones (see _all_dates), the feed's VTIMEZONEs, the configured zone
    zones = ([floating] if declared else [], [*_defined_zones(cal), tz])
    unknown: dict[str, set[str]] = {}  # unknown TZID -> the zones its times were read in
    wholly: dict[str, tuple[list[str], set[str]]] = {}  # unknown TZID -> series starting in it, zones overridden
    drop: set[int] = set()
    for group in _by_uid(cal):
        try:
            group = _one_series(name, group, warnings, drop)
            _anchor_series(group, floating, zones, renamed, unknown, wholly)
            for ev in group:
                _fix_until(ev)
                _count_from_dtstart(name, ev, warnings)
                if not _forwards(name, ev, tz, warnings):
                    drop.add(id(ev))
        except Exception as err:  # see the docstring
            warnings.append(f"calendar {name!r}: {_who(group[0])} cannot be read ({_clip(err)}); skipped")
            drop.update(id(ev) for ev in group)
    if drop:
        for holder in cal.walk():
            holder.subcomponents[:] = [sub for sub in holder.subcomponents if id(sub) not in drop]
    flo = _zone_name(floating, renamed)
    for tzid, used in sorted(unknown.items()):
        how = [f"{flo} wall time" for z in used if z == flo] + [
            f"{z} wall time where the DTSTART of its series is in {z}" for z in sorted(used) if z != flo]
        text = (f"calendar {name!r}: unknown time zone {_zone_name(tzid, renamed)!r}; its times are read as "
                + " and ".join(how))
        if tzid in wholly:
            uids, others = wholly[tzid]
            text += (f"; the series that start in it ({', '.join(map(repr, uids[:5]))}{', ...' if len(uids) > 5 else ''}) "
                     f"are read wholly so, on one wall clock"
                     + "".join(f", their times in {_zone_name(z, renamed)!r} too" for z in sorted(others)))
        warnings.append(text)


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
        return int(ev.get("SEQUENCE", 0) or 0), _stamp(ev) or oldest, k

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
    rules = _as_list(ev.get("RRULE"))
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
    warnings.append(f"calendar {name!r}: {_who(ev)}: DTSTART {wall.date()} is not on the rule's days ({days}); it is "
                    f"counted as the first of COUNT={count} occurrences (RFC 5545 3.3.10)")


def _by_uid(cal: Any) -> list[list[Any]]:
    """The VEVENTs of ``cal`` grouped into series by UID (an event without UID is a series of its own)."""
    groups: dict[int | str, list[Any]] = {}
    for ev in cal.walk("VEVENT"):
        groups.setdefault(str(ev["UID"]) if ev.get("UID") else id(ev), []).append(ev)
    return list(groups.values())


def _floating_zone(name: str, cal: Any, tz: zoneinfo.ZoneInfo, warnings: list[str]) -> tuple[zoneinfo.ZoneInfo, bool]:
    """The zone floating times of ``cal`` are read in, and whether the calendar declared it: its
    X-WR-TIMEZONE (Google, Apple, Outlook.com) when that names a zone, else the configured one."""
    declared = cal.get("X-WR-TIMEZONE")
    if declared is None:
        return tz, False
    key = str(declared).strip()
    try:
        return zoneinfo.ZoneInfo(_zone_key(key) or key), True
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError; "../x" a ValueError
        pass
    warnings.append(f"calendar {name!r}: X-WR-TIMEZONE {key!r} names no known time zone; floating times are "
                    f"read as {tz.key} wall time")
    return tz, False


def _defined_zones(cal: Any) -> list[Any]:
    """The zones of the calendar's VTIMEZONEs, as icalendar resolves them."""
    zones = []
    for component in cal.walk("VTIMEZONE"):
        try:
            zones.append(component.to_tz())
        except Exception:  # a definition icalendar cannot turn into a zone: the others still count
            continue
    return zones


def _zone_name(zone: Any, renamed: dict[str, str]) -> str:
    key = getattr(zone, "key", None) or str(zone)
    for new, old in renamed.items():
        if new in key:
            return old
    return key


def _anchor_series(group: list[Any], floating: Any, zones: tuple[list[Any], list[Any]], renamed: dict[str, str],
                   unknown: dict[str, set[str]], wholly: dict[str, tuple[list[str], set[str]]]) -> None:
    """Give each floating date-time of a series the zone that governs the series: its DTSTART's; and
    make the EXDATE, RDATE, RECURRENCE-ID and UNTIL values of an all-day series dates.

    recurring-ical-events 3.8.2 gives a whole series the zone of the first zoned value among DTSTART,
    DTEND, EXDATE and RDATE, so a series whose DTSTART is floating (or names a zone nobody knows, which
    icalendar leaves floating) while its DTEND, EXDATE or RDATE carries a zone or UTC moved by that zone's
    offset. Here, before expansion, a floating DTSTART becomes a time in the calendar's floating zone,
    and every other floating value of the series (DTEND, EXDATE, RDATE, RECURRENCE-ID, and a moved
    occurrence's DTSTART) a time in the zone of the series' DTSTART. Zoned and UTC values keep their
    own instants. Each unknown TZID met is noted in ``unknown`` with the zone its times were read in.

    A series whose DTSTART names a zone nobody knows is read wholly in the floating zone: each of its
    DTSTART, DTEND, EXDATE, RDATE and RECURRENCE-ID values with a TZID, known or not, is a wall time
    there (an exporter that names one zone two ways, "Customized Time Zone" and "Eastern Standard Time",
    means one zone; half a series in each would lengthen its events by the difference and miss its
    EXDATEs). UTC values keep their instants. Such series are noted in ``wholly`` under that TZID.

    All-day series: Outlook ends one with UNTIL at the local midnight of its last day, in UTC
    (``DTSTART;VALUE=DATE:20210210`` with ``UNTIL=20210701T220000Z`` in Central Europe), and writes its
    EXDATEs as zoned midnights. recurring-ical-events 3.8.2 cuts such an UNTIL to its UTC date (1 July,
    dropping Friday 2 July, which RFC 5545 3.3.10 includes) unless the series also has a zoned EXDATE,
    in which case it compares in that zone. Here those values become the dates they stand for (see
    _day_of), so an all-day series is all dates and its last day does not depend on its EXDATEs."""
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
            for i, prop in enumerate(_as_list(ev.get(key))):
                new = _anchored(prop, put_in, rezone=bool(lost))
                if new is None:
                    continue
                tzid = prop.params.get("TZID")
                if tzid and _naive(prop):
                    unknown.setdefault(str(tzid), set()).add(_zone_name(put_in, renamed))
                elif tzid:
                    others.add(str(tzid))
                if isinstance(ev[key], list):
                    ev[key][i] = new
                else:
                    ev[key] = new
    if lost:
        uids, overridden = wholly.setdefault(str(lost), ([], set()))
        uids.append(str(master.get("UID", "") or master.get("SUMMARY", "")))
        overridden.update(others)
    if all_day:
        _all_dates(group, zones)


def _naive(prop: Any) -> bool:
    """Whether ``prop`` (vDDDTypes or vDDDLists) holds a floating date-time."""
    values = [v.dt for v in prop.dts] if isinstance(prop, vDDDLists) else [prop.dt]
    return any(isinstance(v, dt.datetime) and v.tzinfo is None for v in _flat(values))


def _all_dates(group: list[Any], zones: tuple[list[Any], list[Any]]) -> None:
    """The EXDATE, RDATE, RECURRENCE-ID and UNTIL date-times of an all-day series as dates (see _day_of).
    ``zones``: the calendar's declared zone (if any), and its VTIMEZONEs' and the configured zone;
    the zones of the series' own values come between the two, and UTC itself last."""
    own = [v.tzinfo for ev in group for key in ("EXDATE", "RDATE", "RECURRENCE-ID") for prop in _as_list(ev.get(key))
           for v in _flat([d.dt for d in prop.dts] if isinstance(prop, vDDDLists) else [prop.dt])
           if isinstance(v, dt.datetime) and v.tzinfo is not None and not _is_utc(v)]
    for ev in group:  # the zones its dates were written with (see _dates_without_zone)
        own += [zoneinfo.ZoneInfo(key) for tzid in getattr(ev, "forwardd_date_zones", [])
                if (key := _zone_key(tzid)) and key != "UTC"]
    candidates = [*dict.fromkeys([*zones[0], *own, *zones[1], UTC])]
    for ev in group:
        for key in ("EXDATE", "RDATE", "RECURRENCE-ID"):
            for i, prop in enumerate(_as_list(ev.get(key))):
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
        for rule in _as_list(ev.get("RRULE")):
            until: Any = rule.get("UNTIL")
            if until and isinstance(until[0], dt.datetime):
                rule["UNTIL"] = [_day_of(until[0], candidates)]


def _is_utc(value: dt.datetime) -> bool:
    return str(value.tzname()).upper() in ("UTC", "Z")


def _day_of(value: dt.date, zones: list[Any]) -> dt.date:
    """The day a date-time of an all-day series stands for. Floating or zoned: its own date. UTC: the day
    whose start (Outlook: local midnight) or last second (23:59:59) it is in one of ``zones``, as
    exporters write a day of their zone in UTC; else its date in the first of ``zones``."""
    if not isinstance(value, dt.datetime):
        return value
    if value.tzinfo is None or not _is_utc(value):
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
        return isinstance(v, dt.datetime) and (v.tzinfo is None or (rezone and not _is_utc(v) and v.tzinfo != zone))

    def put(v: Any) -> Any:
        if isinstance(v, tuple):
            return tuple(put(x) for x in v)
        return v.replace(tzinfo=zone) if moves(v) else v

    values = [v.dt for v in prop.dts] if isinstance(prop, vDDDLists) else [prop.dt]
    if not any(moves(v) for v in _flat(values)):
        return None
    out = vDDDLists([put(v) for v in values]) if isinstance(prop, vDDDLists) else vDDDTypes(put(values[0]))
    out.params.update({k: v for k, v in prop.params.items() if k.upper() != "TZID"})
    return out


def _flat(values: list[Any]) -> list[Any]:
    return [x for v in values for x in (v if isinstance(v, tuple) else (v,))]


def _fix_until(ev: Any) -> None:
    """Make each UNTIL of a timed series a UTC instant, as recurring-ical-events reads it right.

    - an UNTIL date includes that whole day, local to the series (as calendar apps show it);
    - a floating UNTIL is a time in the series' zone: recurring-ical-events 3.8.2 reads it as UTC (it
      appends a Z when dateutil refuses a floating UNTIL on a zoned start), which dropped the last
      occurrence of a series west of Greenwich.
    Runs after _anchor_series, so a timed series' DTSTART always has a zone here."""
    start = ev["DTSTART"].dt
    if "RRULE" not in ev or not isinstance(start, dt.datetime) or start.tzinfo is None:
        return
    for rule in _as_list(ev["RRULE"]):
        until = rule.get("UNTIL")
        if not until:
            continue
        value = until[0]
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(23, 59, 59))
        if value.tzinfo is None:
            value = value.replace(tzinfo=start.tzinfo)
        rule["UNTIL"] = [value.astimezone(UTC)]


def _forwards(name: str, ev: Any, tz: zoneinfo.ZoneInfo, warnings: list[str]) -> bool:
    """Whether to keep ``ev``: False, with a warning, when it ends before it starts (recurring-ical-events
    3.8.2 would swap the two silently).

    A moved occurrence (RECURRENCE-ID) that ends before it starts is kept, but cancelled: removed, the
    occurrence it replaces would come back, in the slot its owner moved it out of. An event that ends
    before it starts only in real time, because it begins in the spring-forward gap, keeps its
    wall-clock length instead."""
    s, e = ev["DTSTART"], ev.get("DTEND")
    end = e.dt if e is not None else s.dt + ev["DURATION"].dt if "DURATION" in ev else None
    if end is None or _as_utc(end, tz) >= _as_utc(s.dt, tz):
        return True
    start = s.dt
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        wall = end.replace(tzinfo=None) - start.replace(tzinfo=None)
        if wall > dt.timedelta(0):  # begins in the spring-forward gap
            ev.pop("DURATION", None)
            ev["DTEND"] = vDDDTypes(_as_utc(start, tz) + wall)
            return True
    who = f"calendar {name!r}: {_who(ev)} ({str(ev.get('SUMMARY', ''))!r})"
    if "RECURRENCE-ID" in ev:
        was = _as_utc(ev["RECURRENCE-ID"].dt, tz).astimezone(tz).strftime("%a %d %b %Y %H:%M")
        warnings.append(f"{who}: the occurrence of {was} was moved to one that ends before it starts; "
                        "it is ignored and the original slot stays cancelled")
        ev.pop("DTEND", None)
        ev.pop("DURATION", None)
        ev["STATUS"] = "CANCELLED"
        return True
    warnings.append(f"{who} ends before it starts; ignored")
    return False


def _as_utc(value: Any, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """A DTSTART/DTEND value as an aware UTC instant: a date is local midnight, a floating time local."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


