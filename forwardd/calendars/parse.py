"""iCalendar text -> events between two aware instants. Pure (bytes in, events out).

Expansion of RRULE/RDATE/EXDATE/RECURRENCE-ID is recurring-ical-events' job (which also applies
X-WR-TIMEZONE); icalendar maps Windows zone names (Outlook's "GMT Standard Time") to IANA ones. Around
them, forwardd settles what the libraries leave open:

- bounds are always aware; instants come out as aware UTC;
- STATUS:CANCELLED occurrences are dropped;
- all-day values cover whole local days of the configured zone; floating times are read in that zone;
- a TZID that names no known zone and no VTIMEZONE of the feed is read as floating, with a warning;
- a custom VTIMEZONE ("Customized Time Zone") is renamed per feed and definition before parsing,
  because icalendar caches zones by TZID for the whole process and two feeds would collide;
- an UNTIL given as a date on a date-time series includes that whole day (local to the event), as
  calendar apps show it;
- an event whose end, in real time, is not after its start because it begins in the spring-forward
  gap keeps its wall-clock length; one whose DTEND really precedes DTSTART is dropped with a warning;
- an event with a DTSTART time but no DTEND or DURATION has no length and is dropped with a warning;
  an all-day one without DTEND lasts one day.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Callable

import icalendar
import recurring_ical_events
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from ..core.timeline import UTC, Event
from ..errors import CalendarError

MAX_BYTES = 20 * 1024 * 1024
_KNOWN_ZONES = zoneinfo.available_timezones()
_LINE_BREAK = re.compile(r"\r?\n")
_TZID_IN_LINE = re.compile(r";\s*TZID\s*=", re.IGNORECASE)
_SAFE_TZID = re.compile(r"[^A-Za-z0-9+_./-]+")


def looks_like_icalendar(data: bytes) -> bool:
    """Whether ``data`` starts as an iCalendar stream (not an HTML login page or JSON)."""
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    return head.startswith(b"BEGIN:VCALENDAR")


def _known_zone(tzid: str) -> bool:
    tzid = tzid.strip().strip('"')
    return tzid in _KNOWN_ZONES or tzid in WINDOWS_TO_OLSON or tzid.upper() in ("UTC", "GMT", "Z")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Unfold the text (RFC 5545 3.1): each content line with the number of its first physical line."""
    out: list[tuple[int, str]] = []
    for number, line in enumerate(_LINE_BREAK.split(text), 1):
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + line[1:])
        else:
            out.append((number, line))
    return out


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


def _isolate_custom_zones(lines: list[tuple[int, str]]) -> tuple[list[tuple[int, str]], set[str]]:
    """Rename each non-standard VTIMEZONE's TZID to one unique to its definition, in the VTIMEZONE and in
    every TZID parameter that names it; return the lines and the TZIDs the feed defines.

    The TZID is TEXT in a VTIMEZONE (Exchange escapes its commas: ``Bangkok\\, Hanoi``) but a parameter,
    perhaps quoted, in an event (``TZID="Bangkok, Hanoi"``), so both are compared decoded; and some
    exporters write ``TZID: 1`` and ``TZID= 1``, which the parser trims on one side only, so surrounding
    whitespace does not count either.
    """
    defined: set[str] = set()
    renames: dict[str, str] = {}
    out = list(lines)
    start = None
    for i, (_, line) in enumerate(out):
        key = line.strip().upper()
        if key == "BEGIN:VTIMEZONE":
            start = i
        elif key == "END:VTIMEZONE" and start is not None:
            block = [text for _, text in out[start:i + 1]]
            for j in range(start + 1, i):
                head, value = _split_line(out[j][1])
                if _split_params(head)[0].strip().upper() == "TZID":
                    tzid = _text_value(value).strip()
                    defined.add(tzid)
                    if not _known_zone(tzid):
                        digest = hashlib.sha256("\n".join(block).encode()).hexdigest()[:10]
                        renames[tzid] = f"forwardd-{digest}/{_SAFE_TZID.sub('_', tzid)[:40]}"
                        out[j] = (out[j][0], f"TZID:{renames[tzid]}")
                    break
            start = None
    if not renames:
        return out, defined
    for i, (number, line) in enumerate(out):
        if not _TZID_IN_LINE.search(line):
            continue
        head, value = _split_line(line)
        parts = _split_params(head)
        changed = False
        for k, part in enumerate(parts[1:], 1):
            pname, eq, pvalue = part.partition("=")
            new = renames.get(_param_value(pvalue)) if eq and pname.strip().upper() == "TZID" else None
            if new is not None:
                parts[k], changed = f'{pname}="{new}"', True
        if changed:
            out[i] = (number, ";".join(parts) + ":" + value)
    return out, defined | set(renames.values())


def _tzid_params(lines: list[tuple[int, str]]) -> set[str]:
    """Every TZID parameter value used in the feed, decoded."""
    found = set()
    for _, line in lines:
        if _TZID_IN_LINE.search(line):
            for part in _split_params(_split_line(line)[0])[1:]:
                pname, eq, pvalue = part.partition("=")
                if eq and pname.strip().upper() == "TZID":
                    found.add(_param_value(pvalue))
    return found


@dataclass
class ParsedCalendar:
    """A feed parsed once; ``events_between`` can be asked many times."""

    name: str
    components: list[Any]
    tz: zoneinfo.ZoneInfo
    warnings: list[str] = field(default_factory=list)
    _queries: list[Any] = field(default_factory=list, repr=False)

    def events_between(self, start: dt.datetime, end: dt.datetime) -> tuple[list[Event], list[str]]:
        """Occurrences overlapping ``[start, end)`` (aware bounds), and what was dropped and why."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("events_between needs timezone-aware bounds")
        events: list[Event] = []
        notes: list[str] = []
        try:
            if not self._queries:
                self._queries = [recurring_ical_events.of(c, skip_bad_series=True) for c in self.components]
            found = [occ for q in self._queries for occ in q.between(start, end)]
        except Exception as err:  # the libraries' errors are not a documented tree
            raise CalendarError(self.name, f"cannot expand events: {err}") from err
        for occ in found:
            try:
                ev = self._event(occ, notes)
            except Exception as err:  # one unreadable occurrence must not hide the rest
                notes.append(f"calendar {self.name!r}: cannot read an event ({err}); ignored")
                continue
            if ev is not None and ev.end > start and ev.start < end:
                events.append(ev)
        events.sort(key=lambda e: (e.start, e.end, e.uid))
        return events, notes

    def _event(self, occ: Any, notes: list[str]) -> Event | None:
        if str(occ.get("STATUS", "")).upper() == "CANCELLED":
            return None
        summary = str(occ.get("SUMMARY", "") or "")
        if "DTSTART" not in occ:
            notes.append(f"calendar {self.name!r}: event {summary!r} has no DTSTART; ignored")
            return None
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
            notes.append(f"calendar {self.name!r}: event {summary!r} on {when} {why}; ignored")
            return None
        return Event(
            start=start,
            end=end,
            summary=summary,
            location=str(occ.get("LOCATION", "") or ""),
            description=str(occ.get("DESCRIPTION", "") or ""),
            uid=str(occ.get("UID", "") or ""),
            calendar=self.name,
        )


def _fix_date_until(component: Any) -> None:
    """An UNTIL date on a date-time series: make it the end of that day, local to the event."""
    for ev in component.walk("VEVENT"):
        rrule, start = ev.get("RRULE"), ev.get("DTSTART")
        if rrule is None or start is None or not isinstance(start.dt, dt.datetime):
            continue
        rules = rrule if isinstance(rrule, list) else [rrule]
        for rule in rules:
            until = rule.get("UNTIL")
            if until and type(until[0]) is dt.date:
                tz = start.dt.tzinfo
                end_of_day = dt.datetime.combine(until[0], dt.time(23, 59, 59), tz)
                rule["UNTIL"] = [end_of_day.astimezone(UTC) if tz is not None else end_of_day]


def parse_calendar(name: str, data: bytes, tz: zoneinfo.ZoneInfo) -> ParsedCalendar:
    """Parse one feed. Raises CalendarError (naming ``name``) when it is not usable iCalendar."""
    if not data.strip():
        raise CalendarError(name, "the calendar is empty")
    if len(data) > MAX_BYTES:
        raise CalendarError(name, f"the calendar is {len(data) // 1048576} MB, over the {MAX_BYTES // 1048576} MB limit")
    if not looks_like_icalendar(data):
        kind = "an HTML page" if b"<html" in data[:4096].lower() else "not iCalendar"
        raise CalendarError(name, f"the content is {kind} (it does not start with BEGIN:VCALENDAR)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "END:VCALENDAR" not in text.upper():
        raise CalendarError(name, "the calendar is truncated (no END:VCALENDAR)")
    lines, defined = _isolate_custom_zones(_logical_lines(text))
    text = "\r\n".join(line for _, line in lines) + "\r\n"
    warnings = []
    stripped = {d.strip() for d in defined}
    unknown = sorted(t for t in _tzid_params(lines) if t.strip() not in stripped and not _known_zone(t))
    for tzid in unknown:
        warnings.append(f"calendar {name!r}: unknown time zone {tzid!r}; its times are read as {tz.key} wall time")
    try:
        components = icalendar.Calendar.from_ical(text, multiple=True)
    except Exception as err:  # icalendar raises ValueError, KeyError, IndexError... on broken input
        raise CalendarError(name, f"cannot parse: {err}") from err
    if not components:
        raise CalendarError(name, "no VCALENDAR in the file")
    try:
        for c in components:
            _fix_date_until(c)
            warnings += _drop_backwards_events(name, c, tz)
    except Exception as err:  # a broken property surfaces only when it is read
        raise CalendarError(name, f"cannot parse: {err}") from err
    return ParsedCalendar(name, list(components), tz, warnings)


def _drop_backwards_events(name: str, component: Any, tz: zoneinfo.ZoneInfo) -> list[str]:
    """Remove events whose DTEND is before their DTSTART (the expander would swap them silently)."""
    notes = []
    for holder in [component, *component.walk()]:
        keep = []
        for sub in holder.subcomponents:
            s, e = sub.get("DTSTART"), sub.get("DTEND")
            if sub.name == "VEVENT" and s is not None and e is not None and _as_utc(e.dt, tz) < _as_utc(s.dt, tz):
                notes.append(f"calendar {name!r}: event {str(sub.get('SUMMARY', ''))!r} ends before it starts; ignored")
                continue
            keep.append(sub)
        holder.subcomponents[:] = keep
    return notes


def _as_utc(value: Any, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """A DTSTART/DTEND value as an aware UTC instant: a date is local midnight, a floating time local."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


@functools.lru_cache(maxsize=1)
def _cache_version() -> str:
    from importlib.metadata import version

    from .. import __version__

    return f"forwardd {__version__}, icalendar {version('icalendar')}, rie {version('recurring-ical-events')}"


class RememberedCalendar:
    """A feed held as its occurrences over a window, saved after a parse of the same bytes.

    ``events_between`` inside the window answers from those occurrences; outside it, the bytes are
    parsed again and a new window remembered. Holding occurrences instead of the parsed tree keeps a
    daemon with many feeds small, and a saved copy lets a restart skip parsing. Safe because a saved
    copy is keyed by the feed's SHA-256, the time zone and the versions of the code that expanded it.
    """

    def __init__(
        self, name: str, data: bytes, tz: zoneinfo.ZoneInfo, saved: dict[str, Any],
        on_remember: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.name, self._data, self.tz = name, data, tz
        self.on_remember = on_remember  # told of each new window, to keep the saved copy current
        self._load(saved)

    def _load(self, saved: dict[str, Any]) -> None:
        self.saved = saved
        self.digest: str = saved["digest"]
        self.window = (dt.datetime.fromisoformat(saved["window"][0]), dt.datetime.fromisoformat(saved["window"][1]))
        self.warnings: list[str] = list(saved["warnings"])
        self._notes: list[str] = list(saved["notes"])
        self._events = [
            Event(dt.datetime.fromtimestamp(a, UTC), dt.datetime.fromtimestamp(b, UTC), s, loc, desc, uid, self.name)
            for a, b, s, loc, desc, uid in saved["events"]
        ]

    def events_between(self, start: dt.datetime, end: dt.datetime) -> tuple[list[Event], list[str]]:
        if not (self.window[0] <= start and end <= self.window[1]):
            parsed = parse_calendar(self.name, self._data, self.tz)
            self._load(remember(parsed, self.digest, start - REMEMBER_BEHIND, end + REMEMBER_AHEAD))
            if self.on_remember is not None:
                self.on_remember(self.saved)
        return [e for e in self._events if e.end > start and e.start < end], list(self._notes)


# The window remembered around a plan's horizon: small, so that remembering costs about what the plan's
# own expansion would (the plan then reads the remembered occurrences); the horizon moves on by the
# hour, so a new window (one parse) is needed every few days.
REMEMBER_BEHIND = dt.timedelta(days=1)
REMEMBER_AHEAD = dt.timedelta(days=3)


def remember(cal: ParsedCalendar, digest: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """What to save so that a restart can skip parsing these bytes: occurrences over [start, end)."""
    events, notes = cal.events_between(start, end)
    return {
        "digest": digest, "tz": cal.tz.key, "version": _cache_version(),
        "window": [start.isoformat(), end.isoformat()], "warnings": cal.warnings, "notes": notes,
        "events": [[int(e.start.timestamp()), int(e.end.timestamp()), e.summary, e.location, e.description, e.uid]
                   for e in events],
    }


def recall(name: str, data: bytes, digest: str, tz: zoneinfo.ZoneInfo, saved: Any) -> RememberedCalendar | None:
    """A RememberedCalendar if ``saved`` was made from exactly these bytes by this code, else None."""
    try:
        if saved["digest"] != digest or saved["tz"] != tz.key or saved["version"] != _cache_version():
            return None
        return RememberedCalendar(name, data, tz, saved)
    except (KeyError, TypeError, ValueError):
        return None
