"""Config + loaded calendars + a horizon -> every number's timeline and changes. Pure: no clock, no
I/O (calendars are already parsed; the horizon is passed in)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from ..config import Config, NumberSettings
from .compiler import Change, compile_timeline
from .timeline import Event, OfficeRule, Policy, Segment, build_timeline


class _Calendar(Protocol):
    def events_between(self, start: dt.datetime, end: dt.datetime) -> tuple[list[Event], list[str]]: ...


@dataclass
class NumberPlan:
    voipnumber: str
    segments: list[Segment]
    changes: list[Change]
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # set when no plan could be made (a calendar has never loaded)


@dataclass
class Plan:
    start: dt.datetime
    end: dt.datetime
    numbers: list[NumberPlan]
    warnings: list[tuple[str | None, str]]

    def for_number(self, voipnumber: str) -> NumberPlan:
        for n in self.numbers:
            if n.voipnumber == voipnumber:
                return n
        raise KeyError(voipnumber)


def _policy_key(n: NumberSettings) -> tuple[Any, ...]:
    return (
        n.rota,
        tuple(n.overrides),
        tuple(n.holidays),
        tuple((r.weekdays, r.start, r.end) for r in n.office_hours),
        n.fallback_number,
    )


class Planner:
    """Plans with memory. Numbers sharing calendars and policy share one timeline and one compilation
    (memoised by value), so a thousand numbers on fifty rotas cost fifty compilations, not a thousand;
    and across re-plans of the same horizon only what a changed calendar touches is recomputed.
    What the last plan did not use is forgotten, so memory stays bounded. One Planner per config."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._events: dict[tuple[Any, ...], tuple[_Calendar, list[Event], list[str]]] = {}
        self._timelines: dict[tuple[Any, ...], tuple[list[Segment], list[str]]] = {}
        self._compiled: dict[tuple[Any, ...], list[Change]] = {}

    def plan(self, calendars: Mapping[str, _Calendar | None], start: dt.datetime, end: dt.datetime) -> Plan:
        """Plan ``[start, end)`` (aware) for every configured number."""
        cfg, tz = self.cfg, self.cfg.tz
        events: dict[str, list[Event]] = {}
        event_keys: dict[str, tuple[Any, ...]] = {}
        warnings: list[tuple[str | None, str]] = []
        used_events: dict[tuple[Any, ...], tuple[_Calendar, list[Event], list[str]]] = {}
        used_timelines: dict[tuple[Any, ...], tuple[list[Segment], list[str]]] = {}
        used_compiled: dict[tuple[Any, ...], list[Change]] = {}
        for name, cal in calendars.items():
            if cal is None:
                continue
            key = (name, id(cal), start, end)
            hit = self._events.get(key)
            if hit is None or hit[0] is not cal:
                evs, notes = cal.events_between(start, end)
                hit = (cal, evs, notes)
            used_events[key] = hit
            events[name], event_keys[name] = hit[1], key
            warnings += [(None, w) for w in [*getattr(cal, "warnings", []), *hit[2]]]

        out: list[NumberPlan] = []
        for n in cfg.numbers:
            needed = [c for c in [n.rota, *n.overrides, *n.holidays] if c]
            missing = [c for c in needed if c not in events]
            if missing:
                msg = f"no good copy of calendar(s) {', '.join(missing)} yet: this number is left as it is"
                out.append(NumberPlan(n.voipnumber, [], [], [msg], error=msg))
                warnings.append((n.voipnumber, msg))
                continue
            tkey = (_policy_key(n), tuple(event_keys[c] for c in needed), start, end)
            timeline = self._timelines.get(tkey) or used_timelines.get(tkey)
            if timeline is None:
                policy = Policy(
                    people=cfg.people,
                    office_hours=[OfficeRule(r.weekdays, r.start, r.end) for r in n.office_hours],
                    fallback=n.fallback_number,
                )
                timeline = build_timeline(
                    start, end, tz, policy,
                    rota=events[n.rota] if n.rota else [],
                    overrides=[e for c in n.overrides for e in events[c]],
                    holidays=[e for c in n.holidays for e in events[c]],
                )
            used_timelines[tkey] = timeline
            segments, notes = timeline
            ckey = tuple((s.start, s.end, s.forwardto) for s in segments)
            changes = self._compiled.get(ckey) or used_compiled.get(ckey)
            if changes is None:
                changes = compile_timeline(segments, tz, wraps=cfg.aql.window_wraps_midnight,
                                           min_slack=cfg.aql.min_slack)
            used_compiled[ckey] = changes
            out.append(NumberPlan(n.voipnumber, segments, changes, list(notes)))
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
                "timeline": [
                    {"start": _iso(s.start), "end": _iso(s.end), "forwardto": s.forwardto, "reason": s.reason}
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
        "warnings": [{"voipnumber": v, "message": m} for v, m in plan.warnings],
    }


def program_at(changes: Sequence[Change], instant: dt.datetime) -> tuple[int, Change] | None:
    """The change whose program should be in force at ``instant``: the last with apply_from <= instant."""
    found = None
    for i, c in enumerate(changes):
        if c.apply_from <= instant:
            found = (i, c)
        else:
            break
    return found
