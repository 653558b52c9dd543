"""From calendar events and a number's policy to who gets its calls, second by second. Pure.

Rules, in order, for every instant of the horizon:
1. inside office hours on a day that is not a holiday: no forwarding ("office hours");
2. else an override event: its person ("override: Bob");
3. else a rota event: its person ("rota: Alice");
4. else the fallback number ("fallback"), or no forwarding with a warning when the fallback is "none".
A holiday calendar's all-day event closes the office for whole local days, a timed one ("shut from
13:00") for its span; during what would have been office hours then, the reason says so
("holiday: Christmas Day (rota: Alice)"). Where events of one calendar overlap, the one that started later wins for the overlap
(a swap usually covers part of a shift); equal starts: the one ending sooner; equal starts and ends: the
one changed last (LAST-MODIFIED, else DTSTAMP), then by UID; an overlap of two people is warned about.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from .phone import find_numbers

UTC = dt.timezone.utc


def epoch(t: dt.datetime) -> int:
    """Aware datetime -> integer epoch seconds. Raises ValueError on a naive one."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t!r}: forwardd's core only takes timezone-aware instants")
    return int(t.timestamp() // 1)


def from_epoch(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True)
class Event:
    """One occurrence of a calendar event, as aware UTC instants."""

    start: dt.datetime
    end: dt.datetime
    summary: str = ""
    location: str = ""
    description: str = ""
    uid: str = ""
    calendar: str = ""
    stamp: dt.datetime | None = None  # when the event was last changed (LAST-MODIFIED, else DTSTAMP), aware UTC


@dataclass(frozen=True)
class Segment:
    """``[start, end)`` (aware UTC) in which calls go to ``forwardto`` (None: not forwarded)."""

    start: dt.datetime
    end: dt.datetime
    forwardto: str | None
    reason: str


@dataclass(frozen=True)
class OfficeRule:
    """Office hours on some weekdays (0 = Monday); ``end`` None is midnight at the end of the day."""

    weekdays: frozenset[int]
    start: dt.time
    end: dt.time | None


@dataclass
class Policy:
    """Everything that decides one number's routing, apart from the events themselves."""

    people: Mapping[str, str]
    office_hours: Sequence[OfficeRule] = ()
    fallback: str | None = None
    name_patterns: list[tuple[str, re.Pattern[str]]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.name_patterns = [(name, _name_pattern(name)) for name in self.people]


@functools.lru_cache(maxsize=4096)
def _name_pattern(name: str) -> re.Pattern[str]:
    """A person's name as a whole word, any case ("On call: ALICE" names alice; "Malice" does not)."""
    return re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)", re.IGNORECASE)


def display_name(name: str) -> str:
    return name.title() if name.islower() else name


def resolve_person(event: Event, policy: Policy) -> tuple[str | None, str | None, str | None]:
    """Who an event names: (number, label, warning). A warning means the event counts as none."""
    return _resolve(event.summary, event.location, event.description, tuple(policy.people.items()))


@functools.lru_cache(maxsize=65536)
def _resolve(
    summary: str, location: str, description: str, people_items: tuple[tuple[str, str], ...]
) -> tuple[str | None, str | None, str | None]:
    people = dict(people_items)
    names = [n for n in people if _name_pattern(n).search(summary)]
    if len(names) == 1:
        return people[names[0]], display_name(names[0]), None
    if len(names) > 1:
        return None, None, f"names more than one person ({', '.join(map(display_name, names))})"
    numbers: list[str] = []
    for text in (summary, location, description):
        for n in find_numbers(text or ""):
            if n not in numbers:
                numbers.append(n)
    if len(numbers) == 1:
        by_number = {v: k for k, v in people.items()}
        label = display_name(by_number[numbers[0]]) if numbers[0] in by_number else numbers[0]
        return numbers[0], label, None
    if len(numbers) > 1:
        return None, None, f"carries more than one phone number ({', '.join(numbers)})"
    return None, None, "names nobody in [people] and carries no phone number"


def _local(day: dt.date, t: dt.time | None, tz: ZoneInfo) -> dt.datetime:
    if t is None:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
    return dt.datetime.combine(day, t, tz)


def _days(start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> Iterable[dt.date]:
    d = start.astimezone(tz).date() - dt.timedelta(days=1)
    last = end.astimezone(tz).date() + dt.timedelta(days=1)
    while d <= last:
        yield d
        d += dt.timedelta(days=1)


def describe_span(a: dt.datetime, b: dt.datetime, tz: ZoneInfo) -> str:
    la, lb = a.astimezone(tz), b.astimezone(tz)
    return f"{la:%a %d %b %H:%M}-{lb:%a %d %b %H:%M} {lb:%Z}"


@dataclass(frozen=True)
class _Claim:
    start: int
    end: int
    number: str
    label: str
    rank: tuple[int, int, int, str]  # higher wins an overlap: later start, sooner end, changed later, uid


def _claims(events: Sequence[Event], policy: Policy, kind: str, tz: ZoneInfo, warnings: list[str]) -> list[_Claim]:
    out = []
    for ev in events:
        number, label, problem = resolve_person(ev, policy)
        if problem:
            warnings.append(
                f"{kind} event {ev.summary!r} ({describe_span(ev.start, ev.end, tz)}) in calendar "
                f"{ev.calendar!r} {problem}; ignored"
            )
            continue
        assert number is not None and label is not None
        s, e = epoch(ev.start), epoch(ev.end)
        out.append(_Claim(s, e, number, label, (s, -e, epoch(ev.stamp) if ev.stamp else -(2**62), ev.uid)))
    out.sort(key=lambda c: c.rank)
    for a, b in zip(out, out[1:]):
        if b.start < a.end and (a.number, a.label) != (b.number, b.label):
            warnings.append(
                f"{kind} events overlap: {b.label} ({describe_span(from_epoch(b.start), from_epoch(b.end), tz)}) "
                f"starts during {a.label} ({describe_span(from_epoch(a.start), from_epoch(a.end), tz)}); "
                f"{b.label} wins for the overlap"
            )
    return out


def _winner_at(claims: list[_Claim], t: int) -> _Claim | None:
    best = None
    for c in claims:
        if c.start > t:
            break
        if c.end > t and (best is None or c.rank > best.rank):
            best = c
    return best


def build_timeline(
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    policy: Policy,
    rota: Sequence[Event] = (),
    overrides: Sequence[Event] = (),
    holidays: Sequence[Event] = (),
) -> tuple[list[Segment], list[str]]:
    """The desired routing over ``[start, end)`` as contiguous, merged segments, and warnings.

    ``start``/``end`` must be aware; raises ValueError otherwise or when ``end <= start``.
    """
    h0, h1 = epoch(start), epoch(end)
    if h1 <= h0:
        raise ValueError("the horizon must end after it starts")
    warnings: list[str] = []

    # Holiday spans: an all-day event covers whole local days (the expander gives local midnights);
    # a timed one ("office shuts at 13:00") just its own span.
    closed = sorted((epoch(ev.start), epoch(ev.end), ev.summary or "holiday") for ev in holidays if ev.end > ev.start)

    office: list[tuple[int, int]] = []
    for day in _days(start, end, tz):
        for rule in policy.office_hours:
            if day.weekday() in rule.weekdays:
                a, b = epoch(_local(day, rule.start, tz)), epoch(_local(day, rule.end, tz))
                if a < h1 and b > h0 and a < b:
                    office.append((a, b))
    office.sort()

    over = _claims(overrides, policy, "override", tz, warnings)
    rot = _claims(rota, policy, "rota", tz, warnings)

    cuts = {h0, h1}
    for a, b in office:
        cuts.update((a, b))
    for a, b, _name in closed:
        cuts.update((a, b))
    for c in (*over, *rot):
        cuts.update((c.start, c.end))
    points = sorted(t for t in cuts if h0 <= t <= h1)

    raw: list[tuple[int, int, str | None, str]] = []
    oi = 0
    for a, b in zip(points, points[1:]):
        while oi < len(office) and office[oi][1] <= a:
            oi += 1
        in_office = oi < len(office) and office[oi][0] <= a < office[oi][1]
        holiday = next((name for ca, cb, name in closed if ca <= a < cb), None) if in_office else None
        if in_office and holiday is None:
            raw.append((a, b, None, "office hours"))
            continue
        o = _winner_at(over, a)
        r = _winner_at(rot, a) if o is None else None
        if o is not None:
            target, reason = o.number, f"override: {o.label}"
        elif r is not None:
            target, reason = r.number, f"rota: {r.label}"
        elif policy.fallback is not None:
            target, reason = policy.fallback, "fallback"
        else:
            target, reason = None, "nobody on call, no fallback"
        if holiday is not None:
            reason = f"holiday: {holiday} ({reason})"
        raw.append((a, b, target, reason))

    merged: list[tuple[int, int, str | None, str]] = []
    for seg in raw:
        if merged and merged[-1][2:] == seg[2:]:
            merged[-1] = (merged[-1][0], seg[1], *seg[2:])
        else:
            merged.append(seg)
    for a, b, target, reason in merged:
        if target is None and "no fallback" in reason:
            warnings.append(
                f"gap: nobody is on call {describe_span(from_epoch(a), from_epoch(b), tz)} and the fallback "
                "is 'none', so calls are not forwarded"
            )
    return [Segment(from_epoch(a), from_epoch(b), t, r) for a, b, t, r in merged], warnings


def target_at(segments: Sequence[Segment], instant: dt.datetime) -> str | None:
    """The desired target at ``instant``. Raises ValueError outside the timeline."""
    i = _find(segments, instant)
    return segments[i].forwardto


def _find(segments: Sequence[Segment], instant: dt.datetime) -> int:
    lo, hi = 0, len(segments)
    while lo < hi:
        mid = (lo + hi) // 2
        if segments[mid].end <= instant:
            lo = mid + 1
        else:
            hi = mid
    if lo == len(segments) or segments[lo].start > instant:
        raise ValueError(f"{instant} is outside the timeline")
    return lo
