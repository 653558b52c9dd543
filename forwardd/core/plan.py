"""Lines + calendars' events + a horizon -> every line's timeline and changes. Pure: no clock, no I/O, no
config (the service layer describes each line as a ``LineSpec``; the sources hand over plain events; the
horizon is passed in)."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from .compiler import Change, compile_timeline
from .events import epoch, from_epoch
from .provider import Program, forwarding_intervals
from .timeline import Event, Finding, FindingKind, Kind, Manual, Policy, Segment, build_timeline, display_name

Compile = Callable[..., list[Change]]  # (segments, tz, wraps=..., min_slack=...) -> changes


@dataclass(frozen=True)
class LineSpec:
    """One managed line as the planner needs it: its calendars, its policy, and its account's window rules
    (``wraps``: overnight windows allowed; ``min_slack``: the overlap a hand-over should get). ``key``
    identifies the policy by value: lines with equal keys and equal calendars share one timeline."""

    voipnumber: str
    name: str | None
    rota: str | None
    overrides: tuple[str, ...]
    holidays: tuple[str, ...]
    policy: Policy
    key: tuple[Any, ...]
    wraps: bool = False
    min_slack: dt.timedelta = dt.timedelta(minutes=5)
    # Lines that differ only in their fallback share a timeline: built once with ``shape_policy`` (its
    # fallback a placeholder) under ``shape_key``, then given each line's own fallback. None where the
    # fallback decides more than the gaps (a number that only the fallback's own allowance lets through).
    shape_key: tuple[Any, ...] | None = None
    shape_policy: Policy | None = None

    @property
    def calendars(self) -> list[str]:
        return [c for c in [self.rota, *self.overrides, *self.holidays] if c]


@dataclass(frozen=True)
class CalendarEvents:
    """One calendar's occurrences (sorted by start) over the window the sources layer expanded, and
    what it noticed while reading them. ``version`` changes whenever the events may have changed."""

    name: str
    version: str
    events: tuple[Event, ...]
    findings: tuple[Finding, ...] = ()
    _starts: tuple[dt.datetime, ...] = field(default=(), repr=False, compare=False)
    _longest: dt.timedelta = field(default=dt.timedelta(0), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(e.start for e in self.events))
        longest = max((e.end - e.start for e in self.events), default=dt.timedelta(0))
        object.__setattr__(self, "_longest", longest)

    def between(self, start: dt.datetime, end: dt.datetime) -> list[Event]:
        """The occurrences overlapping ``[start, end)``."""
        lo = bisect.bisect_left(self._starts, start - self._longest)
        hi = bisect.bisect_left(self._starts, end)
        return [e for e in self.events[lo:hi] if e.end > start]


@dataclass
class NumberPlan:
    voipnumber: str
    segments: list[Segment]
    changes: list[Change]
    warnings: list[Finding] = field(default_factory=list)
    error: str | None = None  # set when no plan could be made (a calendar has never loaded)
    name: str | None = None


@dataclass
class Plan:
    start: dt.datetime
    end: dt.datetime
    numbers: list[NumberPlan]
    warnings: list[tuple[str | None, Finding]]

    _index: dict[str, NumberPlan] = field(default_factory=dict, repr=False, compare=False)

    def for_number(self, voipnumber: str) -> NumberPlan:
        """One number's plan. Raises KeyError."""
        if len(self._index) != len(self.numbers):
            self._index = {n.voipnumber: n for n in self.numbers}
        return self._index[voipnumber]


class Planner:
    """Plans with memory. Numbers sharing calendars and policy share one timeline and one compilation
    (memoised by value), so a thousand numbers on fifty rotas cost fifty compilations, not a thousand;
    and across re-plans of the same horizon only what a changed calendar touches is recomputed.
    What the last plan did not use is forgotten, so memory stays bounded. One Planner per config.
    ``compile`` turns a timeline into changes (the window compiler; the simulator's naive daemon gives
    one change per transition instead)."""

    def __init__(self, lines: Sequence[LineSpec], tz: ZoneInfo, compile: Compile = compile_timeline) -> None:
        self.lines = list(lines)
        self.tz = tz
        self.compile = compile
        self._events: dict[tuple[Any, ...], list[Event]] = {}
        self._timelines: dict[tuple[Any, ...], tuple[list[Segment], list[Finding]]] = {}
        self._compiled: dict[tuple[Any, ...], list[Change]] = {}

    def plan(
        self,
        calendars: Mapping[str, CalendarEvents | None],
        start: dt.datetime,
        end: dt.datetime,
        manual: Mapping[str, Sequence[Manual]] | None = None,
    ) -> Plan:
        """Plan ``[start, end)`` (aware) for every configured number; ``manual`` holds each number's
        command-line overrides."""
        tz = self.tz
        manual = manual or {}
        events: dict[str, list[Event]] = {}
        event_keys: dict[str, tuple[Any, ...]] = {}
        warnings: list[tuple[str | None, Finding]] = []
        used_events: dict[tuple[Any, ...], list[Event]] = {}
        used_timelines: dict[tuple[Any, ...], tuple[list[Segment], list[Finding]]] = {}
        used_compiled: dict[tuple[Any, ...], list[Change]] = {}
        for name, cal in calendars.items():
            if cal is None:
                continue
            key = (name, cal.version, start, end)
            evs = self._events.get(key)
            if evs is None:
                evs = cal.between(start, end)
            used_events[key] = evs
            events[name], event_keys[name] = evs, key
            warnings += [(None, f) for f in cal.findings]

        out: list[NumberPlan] = []
        for n in self.lines:
            needed = n.calendars
            missing = [c for c in needed if c not in events]
            if missing:
                msg = f"no good copy of calendar(s) {', '.join(missing)} yet: this number is left as it is"
                out.append(NumberPlan(n.voipnumber, [], [], [Finding(FindingKind.CALENDAR, msg)], error=msg, name=n.name))
                warnings.append((n.voipnumber, Finding(FindingKind.CALENDAR, msg, key=f"missing:{n.voipnumber}")))
                continue
            mine = tuple(manual.get(n.voipnumber, ()))
            shaped = n.shape_key is not None and n.shape_policy is not None
            policy = n.shape_policy if shaped and n.shape_policy is not None else n.policy
            tkey = (n.shape_key if shaped else n.key, tuple(event_keys[c] for c in needed), mine, start, end)
            timeline = self._timelines.get(tkey) or used_timelines.get(tkey)
            if timeline is None:
                timeline = build_timeline(
                    start, end, tz, policy,
                    rota=events[n.rota] if n.rota else [],
                    overrides=[e for c in n.overrides for e in events[c]],
                    holidays=[e for c in n.holidays for e in events[c]],
                    manual=mine,
                )
            used_timelines[tkey] = timeline
            segments, notes = timeline
            if shaped:
                segments = _with_fallback(segments, n.policy)
            ckey = (tuple((s.start, s.end, s.target) for s in segments), n.wraps, n.min_slack)
            changes = self._compiled.get(ckey) or used_compiled.get(ckey)
            if changes is None:
                changes = self._compile_shape(segments, n, used_compiled)
            used_compiled[ckey] = changes
            out.append(NumberPlan(n.voipnumber, segments, changes, list(notes), name=n.name))
            warnings += [(n.voipnumber, w) for w in notes]
        self._events, self._timelines, self._compiled = used_events, used_timelines, used_compiled
        return Plan(start, end, out, warnings)

    def _compile_shape(self, segments: Sequence[Segment], n: LineSpec,
                       used: dict[tuple[Any, ...], list[Change]]) -> list[Change]:
        """Compile by shape: timelines that differ only in who the calls go to (a distinct fallback per
        line, the same rota) compile alike, so the compiler runs once per shape and each line's changes
        are the shape's with its own numbers put back. The labels keep the numbers' order, so the
        compiler's ties fall the same way as on the numbers themselves."""
        targets = sorted({s.target for s in segments if s.target is not None})
        label = {t: f"{i:06d}" for i, t in enumerate(targets)}
        shape = [Segment(s.start, s.end, label[s.target] if s.target is not None else None, "") for s in segments]
        skey = ("shape", tuple((s.start, s.end, s.target) for s in shape), n.wraps, n.min_slack)
        compiled = self._compiled.get(skey) or used.get(skey)
        if compiled is None:
            compiled = self.compile(shape, self.tz, wraps=n.wraps, min_slack=n.min_slack)
        used[skey] = compiled
        number = {v: k for k, v in label.items()}
        return [Change(c.apply_from, c.apply_by, Program(number[p.target], p.active, p.start, p.end), c.exact)
                if (p := c.program).target in number else c for c in compiled]


FALLBACK_PLACEHOLDER = "\x00fallback"  # never a number an event can carry


def _with_fallback(segments: list[Segment], policy: Policy) -> list[Segment]:
    """A shape's timeline with the line's own fallback where the shape has the placeholder."""
    if not any(s.kind is Kind.FALLBACK for s in segments):
        return segments
    person = display_name(policy.fallback_person) if policy.fallback_person else None
    return [Segment(s.start, s.end, policy.fallback, s.reason, s.kind, person, s.holiday) if s.kind is Kind.FALLBACK
            else s for s in segments]


def program_at(changes: Sequence[Change], instant: dt.datetime) -> tuple[int, Change] | None:
    """The change whose program should be in force at ``instant``: the last with apply_from <= instant."""
    i = bisect.bisect_right(changes, instant, key=_apply_from)
    return (i - 1, changes[i - 1]) if i > 0 else None


def right_until(program: Program, segments: Sequence[Segment], tz: ZoneInfo, start: dt.datetime, limit: dt.datetime,
                wraps: bool = False) -> dt.datetime:
    """The first instant from ``start`` at which the provider, running ``program``, would send calls other
    than ``segments`` want; ``limit`` when it does right all the way there (or the segments end first).
    Another program than the plan's may be as right for a while: a line holding one needs no change yet.
    Works segment by segment and stops at the first wrong second."""
    a, b = epoch(start), epoch(min(limit, segments[-1].end if segments else start))
    if a >= b:
        return limit if a >= epoch(limit) else start
    for seg in segments[max(0, bisect.bisect_right(segments, start, key=_seg_start) - 1):]:
        s, e = max(epoch(seg.start), a), min(epoch(seg.end), b)
        if s >= b:
            break
        if s >= e:
            continue
        if seg.target is not None and seg.target != program.target:
            return from_epoch(s)
        t = s  # forwarding must cover [s, e) for a target, and touch none of it for nobody
        for fa, fb in forwarding_intervals(program, tz, s, e, wraps=wraps or program.wraps):
            if seg.target is None:
                return from_epoch(fa)
            if fa > t:
                return from_epoch(t)
            t = fb
        if seg.target is not None and t < e:
            return from_epoch(t)
    return limit if b == epoch(limit) else from_epoch(b)


def _seg_start(s: Segment) -> dt.datetime:
    return s.start


def _apply_from(c: Change) -> dt.datetime:
    return c.apply_from
