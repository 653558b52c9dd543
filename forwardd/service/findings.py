"""What a plan found that people must hear of: events that route calls nowhere and coverage gaps are
alerted (once each: the alert state outlives restarts); the rest is logged, once per re-plan, and
summed up where it repeats (a feed of 80,000 overlapping events gives one line per calendar, not one
per overlap)."""

from __future__ import annotations

import collections
import datetime as dt

import structlog

from ..config import Config
from ..core.plan import Plan
from ..core.timeline import Finding, FindingKind, Kind
from ..notify.alerts import Alerts
from ..notify.keys import AlertKey, AlertKind

log = structlog.get_logger("forwardd.plan")
SHOWN = 3  # findings of one kind logged one by one before they are only counted


def alert_findings(cfg: Config, plan: Plan, alerts: Alerts, now: dt.datetime) -> None:
    """Alert an event that routes calls nowhere (it names nobody, two people, or a number nobody allowed),
    and a coverage gap starting within ``alerts.gap_ahead``, one alert per gap whatever the numbers it
    leaves uncovered. Past ones never; one no longer planned is cleared. Other findings are logged."""
    seen: set[AlertKey] = set()
    others: dict[tuple[str | None, FindingKind], list[Finding]] = collections.defaultdict(list)
    for v, f in plan.warnings:
        if f.kind.routes_nowhere and f.end is not None and f.end > now:
            key = AlertKey(AlertKind.EVENT, number=v, detail=f.key)
            seen.add(key)
            alerts.raise_(key, f"{_label(cfg, v) + ': ' if v else ''}{f.message[:1].upper()}{f.message[1:]}", now)
        elif f.kind is not FindingKind.GAP:
            others[(f.calendar, f.kind)].append(f)
    for (calendar, kind), found in others.items():
        if len(found) <= SHOWN:
            for f in found:
                log.info("plan_warning", kind=kind.value, calendar=calendar, message=f.message)
        else:
            log.info("plan_warning", kind=kind.value, calendar=calendar, count=len(found),
                     message=f"{len(found):,} {kind.value} findings; first: {found[0].message}")
    ahead = now + cfg.alerts.gap_ahead
    gaps: dict[tuple[dt.datetime, dt.datetime], list[str]] = {}
    for n in plan.numbers:
        for s in n.segments:
            if s.kind is Kind.GAP and s.end > now and s.start < ahead:
                gaps.setdefault((s.start, s.end), []).append(cfg.number(n.voipnumber).label)
    tz = cfg.tz
    for (a, b), labels in gaps.items():
        key = AlertKey(AlertKind.GAP, detail=f"{int(a.timestamp())}-{int(b.timestamp())}")
        seen.add(key)
        alerts.raise_(key, f"Nobody is on call and there is no fallback from {a.astimezone(tz):%a %d %b %H:%M} "
                           f"to {b.astimezone(tz):%a %d %b %H:%M %Z} for {', '.join(labels)}", now)
    for key in [k for k in alerts.active if k.kind in (AlertKind.GAP, AlertKind.EVENT) and k not in seen]:
        alerts.clear(key, now)


def _label(cfg: Config, voipnumber: str | None) -> str:
    try:
        return cfg.number(voipnumber).label if voipnumber else ""
    except KeyError:
        return voipnumber or ""
