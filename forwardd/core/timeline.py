"""From calendar events and a number's policy to who gets its calls, second by second. Pure.

Rules, in order, for every instant of the horizon:
0. a one-off override from the command line: its target, or no forwarding for ``off`` ("override by
   USER: NOTE"); it wins over everything else, office hours included;
1. inside office hours on a day that is not a holiday: no forwarding ("office hours");
2. else an override event: its person ("override: Bob");
3. else a rota event: its person ("rota: Alice");
4. else the fallback ("fallback"), or no forwarding and a gap when the fallback is "none".
A holiday calendar's all-day event closes the office for whole local days, a timed one ("shut from
13:00") for its span; during what would have been office hours then, the segment carries the holiday's
name. Where events of one calendar overlap, the one that started later wins for the overlap (a swap
usually covers part of a shift); equal starts: the one ending sooner; equal spans: the one changed last
(LAST-MODIFIED, else DTSTAMP), then the greater UID, with a warning.

Each segment carries a ``kind`` (which rule decided it) and the person's name beside the number, so
that alerts and pages key on structure, never on wording. Overlaps are resolved by a sweep over the
cut points with a heap of the events in force: n log n in the number of events.
"""

from __future__ import annotations

import datetime as dt
import heapq
from dataclasses import dataclass
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from .events import (
    UTC,
    Event,
    Finding,
    FindingKind,
    Kind,
    Manual,
    OfficeRule,
    Policy,
    Segment,
    epoch,
    from_epoch,
)
from .people import display_name, resolve_person

__all__ = ["UTC", "Event", "Finding", "FindingKind", "Kind", "Manual", "OfficeRule", "Policy", "Segment", "build_timeline",
           "describe_span", "display_name", "epoch", "from_epoch", "resolve_person", "segment_index", "target_at"]


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


_NO_STAMP = dt.datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Claim:
    start: int
    end: int
    number: str | None
    label: str | None
    reason: str
    kind: Kind
    # higher wins an overlap: later start, then sooner end, then later stamp, then greater uid
    rank: tuple[object, ...]
    calendar: str | None = None


def _claims(
    events: Sequence[Event], policy: Policy, kind: Kind, tz: ZoneInfo, findings: list[Finding]
) -> list[_Claim]:
    word = kind.value
    out = []
    for ev in events:
        number, label, problem = resolve_person(ev, policy)
        if problem:
            findings.append(Finding(
                problem.kind,
                f"{word} event {ev.summary!r} ({describe_span(ev.start, ev.end, tz)}) in calendar "
                f"{ev.calendar!r} {problem.message}; ignored",
                ev.start, ev.end, key=f"{problem.kind.value}:{ev.calendar}:{ev.uid}:{epoch(ev.start)}",
                calendar=ev.calendar))
            continue
        s, e = epoch(ev.start), epoch(ev.end)
        out.append(_Claim(s, e, number, label, f"{word}: {label}", kind, (s, -e, ev.stamp or _NO_STAMP, ev.uid),
                          ev.calendar))
    out.sort(key=lambda c: c.rank)
    # Overlaps of two people: after sorting by start, a claim overlaps the one before it that reaches
    # furthest; comparing with that one alone keeps this linear.
    reach: _Claim | None = None
    for b in out:
        if reach is not None and b.start < reach.end and b.number != reach.number:
            if (b.start, b.end) == (reach.start, reach.end):
                findings.append(Finding(
                    FindingKind.TIE, f"{word} events for {reach.label} and {b.label} have the same start and end "
                    f"({describe_span(from_epoch(b.start), from_epoch(b.end), tz)}); {b.label} wins, as the one "
                    "changed last (LAST-MODIFIED, else DTSTAMP) or, unchanged, the greater UID",
                    from_epoch(b.start), from_epoch(b.end),
                    key=f"tie:{word}:{b.start}:{b.end}", calendar=b.calendar))
            else:
                findings.append(Finding(
                    FindingKind.OVERLAP, f"{word} events overlap: {b.label} "
                    f"({describe_span(from_epoch(b.start), from_epoch(b.end), tz)}) starts during {reach.label} "
                    f"({describe_span(from_epoch(reach.start), from_epoch(reach.end), tz)}); {b.label} wins "
                    "for the overlap", from_epoch(b.start), from_epoch(min(b.end, reach.end)),
                    key=f"overlap:{word}:{b.start}:{reach.start}", calendar=b.calendar))
        if reach is None or b.end > reach.end:
            reach = b
    return out


class _Sweep:
    """The claim in force at increasing instants: claims enter at their start and leave (lazily) at their
    end; the heap's top is the highest-ranked claim still in force."""

    def __init__(self, claims: list[_Claim]) -> None:
        self._claims = sorted(claims, key=lambda c: c.start)
        self._i = 0
        self._heap: list[tuple[_Desc, int, _Claim]] = []

    def at(self, t: int) -> _Claim | None:
        while self._i < len(self._claims) and self._claims[self._i].start <= t:
            c = self._claims[self._i]
            heapq.heappush(self._heap, (_Desc(c.rank), self._i, c))
            self._i += 1
        while self._heap and self._heap[0][2].end <= t:
            heapq.heappop(self._heap)
        return self._heap[0][2] if self._heap else None


class _Desc:
    """Reverses the order of a rank, so that heapq's min-heap yields the highest rank first."""

    __slots__ = ("rank",)

    def __init__(self, rank: tuple[object, ...]) -> None:
        self.rank = rank

    def __lt__(self, other: _Desc) -> bool:
        return self.rank > other.rank  # type: ignore[operator]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.rank == other.rank


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def build_timeline(
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    policy: Policy,
    rota: Sequence[Event] = (),
    overrides: Sequence[Event] = (),
    holidays: Sequence[Event] = (),
    manual: Sequence[Manual] = (),
) -> tuple[list[Segment], list[Finding]]:
    """The desired routing over ``[start, end)`` as contiguous, merged segments, and findings.

    ``start``/``end`` must be aware; raises ValueError otherwise or when ``end <= start``.
    """
    h0, h1 = epoch(start), epoch(end)
    if h1 <= h0:
        raise ValueError("the horizon must end after it starts")
    findings: list[Finding] = []

    office = _merged([
        (a, b)
        for day in _days(start, end, tz)
        for rule in policy.office_hours if day.weekday() in rule.weekdays
        for a, b in [(epoch(_local(day, rule.start, tz)), epoch(_local(day, rule.end, tz)))]
        if a < h1 and b > h0 and a < b
    ])
    # Holiday spans: an all-day event covers whole local days (the expander gives local midnights); a
    # timed one ("office shuts at 13:00") its own span. Of two at once, the one that started first names it.
    closed = [_Claim(epoch(ev.start), epoch(ev.end), None, None, ev.summary or "holiday", Kind.OFFICE_HOURS,
                     (-epoch(ev.start), ev.uid)) for ev in holidays if ev.end > ev.start]
    manual_claims = [_Claim(epoch(m.start), epoch(m.end), m.target, m.person, m.reason, Kind.MANUAL,
                            (m.rank,)) for m in manual if m.end > m.start]
    over = _claims(overrides, policy, Kind.OVERRIDE, tz, findings)
    rot = _claims(rota, policy, Kind.ROTA, tz, findings)

    cuts = {h0, h1}
    for a, b in office:
        cuts.update((a, b))
    for c in (*closed, *manual_claims, *over, *rot):
        cuts.update((c.start, c.end))
    points = sorted(t for t in cuts if h0 <= t <= h1)

    raw: list[tuple[int, int, str | None, str, Kind, str | None, str | None]] = []
    sweeps = [_Sweep(manual_claims), _Sweep(over), _Sweep(rot)]
    holiday_sweep = _Sweep(closed)
    oi = 0
    for a, b in zip(points, points[1:]):
        while oi < len(office) and office[oi][1] <= a:
            oi += 1
        in_office = oi < len(office) and office[oi][0] <= a < office[oi][1]
        m, o, r = (s.at(a) for s in sweeps)
        hol = holiday_sweep.at(a)
        holiday = hol.reason if in_office and hol is not None else None
        if m is not None:
            raw.append((a, b, m.number, m.reason, Kind.MANUAL, m.label, None))
            continue
        if in_office and holiday is None:
            raw.append((a, b, None, "office hours", Kind.OFFICE_HOURS, None, None))
            continue
        chosen = o or r
        if chosen is not None:
            target, reason, kind, person = chosen.number, chosen.reason, chosen.kind, chosen.label
        elif policy.fallback is not None:
            person = display_name(policy.fallback_person) if policy.fallback_person else None
            target, reason, kind = policy.fallback, "fallback", Kind.FALLBACK
        else:
            target, reason, kind, person = None, "nobody on call, no fallback", Kind.GAP, None
        if holiday is not None:
            reason = f"holiday: {holiday} ({reason})"
        raw.append((a, b, target, reason, kind, person, holiday))

    merged: list[tuple[int, int, str | None, str, Kind, str | None, str | None]] = []
    for seg in raw:
        if merged and merged[-1][2:] == seg[2:]:
            merged[-1] = (merged[-1][0], seg[1], *seg[2:])
        else:
            merged.append(seg)
    for a, b, _target, _reason, kind, _person, _holiday in merged:
        if kind is Kind.GAP:
            findings.append(Finding(
                FindingKind.GAP, f"gap: nobody is on call {describe_span(from_epoch(a), from_epoch(b), tz)} and the fallback "
                "is 'none', so calls are not forwarded", from_epoch(a), from_epoch(b), key=f"gap:{a}"))
    segments = [Segment(from_epoch(a), from_epoch(b), t, r, k, p, h) for a, b, t, r, k, p, h in merged]
    return segments, findings


def target_at(segments: Sequence[Segment], instant: dt.datetime) -> str | None:
    """The desired target at ``instant``. Raises ValueError outside the timeline."""
    return segments[segment_index(segments, instant)].target


def segment_index(segments: Sequence[Segment], instant: dt.datetime) -> int:
    """The index of the segment holding ``instant``. Raises ValueError outside the timeline."""
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
