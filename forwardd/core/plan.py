"""Config + calendars' events + a horizon -> every number's timeline and changes. Pure: no clock, no I/O
(the sources layer hands over plain events; the horizon is passed in)."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..config import Config, NumberSettings
from .compiler import Change, compile_timeline
from .timeline import Event, Finding, FindingKind, Manual, OfficeRule, Policy, Segment, build_timeline


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

    def for_number(self, voipnumber: str) -> NumberPlan:
        for n in self.numbers:
            if n.voipnumber == voipnumber:
                return n
        raise KeyError(voipnumber)


def policy_for(cfg: Config, n: NumberSettings) -> Policy:
    fallback, fallback_person = cfg.fallback_of(n)
    return Policy(
        people=cfg.phones,
        office_hours=[OfficeRule(r.weekdays, r.start, r.end) for r in n.office_hours],
        fallback=fallback,
        fallback_person=fallback_person,
        allowed=tuple(cfg.allowed_numbers),
    )


def _policy_key(cfg: Config, n: NumberSettings) -> tuple[Any, ...]:
    return (
        n.rota,
        tuple(n.overrides),
        tuple(n.holidays),
        tuple((r.weekdays, r.start, r.end) for r in n.office_hours),
        cfg.fallback_of(n),
    )


class Planner:
    """Plans with memory. Numbers sharing calendars and policy share one timeline and one compilation
    (memoised by value), so a thousand numbers on fifty rotas cost fifty compilations, not a thousand;
    and across re-plans of the same horizon only what a changed calendar touches is recomputed.
    What the last plan did not use is forgotten, so memory stays bounded. One Planner per config."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
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
        cfg, tz = self.cfg, self.cfg.tz
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
        for n in cfg.numbers:
            needed = [c for c in [n.rota, *n.overrides, *n.holidays] if c]
            missing = [c for c in needed if c not in events]
            if missing:
                msg = f"no good copy of calendar(s) {', '.join(missing)} yet: this number is left as it is"
                out.append(NumberPlan(n.voipnumber, [], [], [Finding(FindingKind.CALENDAR, msg)], error=msg, name=n.name))
                warnings.append((n.voipnumber, Finding(FindingKind.CALENDAR, msg, key=f"missing:{n.voipnumber}")))
                continue
            mine = tuple(manual.get(n.voipnumber, ()))
            tkey = (_policy_key(cfg, n), tuple(event_keys[c] for c in needed), mine, start, end)
            timeline = self._timelines.get(tkey) or used_timelines.get(tkey)
            if timeline is None:
                timeline = build_timeline(
                    start, end, tz, policy_for(cfg, n),
                    rota=events[n.rota] if n.rota else [],
                    overrides=[e for c in n.overrides for e in events[c]],
                    holidays=[e for c in n.holidays for e in events[c]],
                    manual=mine,
                )
            used_timelines[tkey] = timeline
            segments, notes = timeline
            ckey = tuple((s.start, s.end, s.forwardto) for s in segments)
            changes = self._compiled.get(ckey) or used_compiled.get(ckey)
            if changes is None:
                changes = compile_timeline(segments, tz, wraps=cfg.aql.window_wraps_midnight,
                                           min_slack=cfg.aql.min_slack)
            used_compiled[ckey] = changes
            out.append(NumberPlan(n.voipnumber, segments, changes, list(notes), name=n.name))
            warnings += [(n.voipnumber, w) for w in notes]
        self._events, self._timelines, self._compiled = used_events, used_timelines, used_compiled
        return Plan(start, end, out, warnings)


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def plan_json(plan: Plan) -> dict[str, Any]:
    """The stable JSON form of a plan (see the README: "The plan JSON")."""
    return {
        "start": _iso(plan.start),
        "end": _iso(plan.end),
        "numbers": [
            {
                "voipnumber": n.voipnumber,
                "name": n.name,
                "timeline": [
                    {"start": _iso(s.start), "end": _iso(s.end), "forwardto": s.forwardto, "reason": s.reason,
                     "kind": s.kind.value, "person": s.person, "holiday": s.holiday}
                    for s in n.segments
                ],
                "changes": [
                    {
                        "apply_from": _iso(c.apply_from),
                        "apply_by": _iso(c.apply_by),
                        "exact": c.exact,
                        "slack_s": int(c.slack.total_seconds()),
                        "settings": c.program.settings(),
                    }
                    for c in n.changes
                ],
                **({"error": n.error} if n.error else {}),
            }
            for n in plan.numbers
        ],
        "warnings": [{"voipnumber": v, "kind": f.kind, "message": f.message} for v, f in plan.warnings],
    }


def program_at(changes: Sequence[Change], instant: dt.datetime) -> tuple[int, Change] | None:
    """The change whose program should be in force at ``instant``: the last with apply_from <= instant."""
    i = bisect.bisect_right([c.apply_from for c in changes], instant)
    return (i - 1, changes[i - 1]) if i > 0 else None
