"""The config's lines as the planner sees them (``LineSpec``), and a plan as the stable JSON of
``forwardd plan --json``. The core plans without knowing the config; this is where one becomes the other."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable, Mapping

from ..aql.carrier import settings_of
from ..config import Config, NumberSettings
from ..core.phone import number_allowed
from ..core.plan import FALLBACK_PLACEHOLDER, LineSpec, Plan
from ..core.provider import Program
from ..core.timeline import OfficeRule, Policy


def policy_for(cfg: Config, n: NumberSettings) -> Policy:
    """A number's routing policy: people, office hours, fallback, allowed numbers."""
    fallback, fallback_person = cfg.fallback_of(n)
    return Policy(
        people=cfg.phones,
        office_hours=[OfficeRule(r.weekdays, r.start, r.end) for r in n.office_hours],
        fallback=fallback,
        fallback_person=fallback_person,
        allowed=tuple(cfg.allowed_numbers),
    )


def line_specs(cfg: Config) -> list[LineSpec]:
    """Every configured number as a LineSpec, in the config's order. Policies are built once per
    distinct value, so a thousand numbers on one policy share it; lines that differ only in a fallback
    that decides nothing but the gaps share a shape (``LineSpec.shape_key``)."""
    policies: dict[tuple[Any, ...], Policy] = {}
    shapes: dict[tuple[Any, ...], Policy] = {}
    numbers = set(cfg.phones.values())
    out = []
    for n in cfg.numbers:
        account = cfg.settings_of(n.voipnumber)
        hours = tuple((r.weekdays, r.start, r.end) for r in n.office_hours)
        fallback = cfg.fallback_of(n)
        key = (hours, fallback)
        policy = policies.get(key)
        if policy is None:
            policy = policies[key] = policy_for(cfg, n)
        calendars = (n.rota, tuple(n.overrides), tuple(n.holidays))
        shape_key, shape_policy = None, None
        # an event carrying the fallback's number is let through because it is the fallback: only where the
        # number would be let through anyway does the fallback decide nothing but the gaps
        if fallback[0] is not None and (fallback[0] in numbers or number_allowed(fallback[0], policy.allowed)):
            shape_key = (*calendars, hours, "fallback")
            shape_policy = shapes.get(shape_key)
            if shape_policy is None:
                shape_policy = shapes[shape_key] = dataclasses.replace(policy, fallback=FALLBACK_PLACEHOLDER,
                                                                      fallback_person=None)
        out.append(LineSpec(n.voipnumber, n.name, n.rota, tuple(n.overrides), tuple(n.holidays), policy,
                            (*calendars, *key), account.window_wraps_midnight, account.min_slack, shape_key,
                            shape_policy))
    return out


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def plan_json(plan: Plan, settings: Callable[[str, Program], Mapping[str, Any]] = lambda v, p: settings_of(p)
              ) -> dict[str, Any]:
    """The stable JSON form of a plan (see the README: "The plan JSON"); ``settings(voipnumber, program)``
    says a program in the line's carrier's own fields (aql's, the one carrier)."""
    return {
        "start": _iso(plan.start),
        "end": _iso(plan.end),
        "numbers": [
            {
                "voipnumber": n.voipnumber,
                "name": n.name,
                "timeline": [
                    {"start": _iso(s.start), "end": _iso(s.end), "forwardto": s.target, "reason": s.reason,
                     "kind": s.kind.value, "person": s.person, "holiday": s.holiday}
                    for s in n.segments
                ],
                "changes": [
                    {
                        "apply_from": _iso(c.apply_from),
                        "apply_by": _iso(c.apply_by),
                        "exact": c.exact,
                        "slack_s": int(c.slack.total_seconds()),
                        "settings": dict(settings(n.voipnumber, c.program)),
                    }
                    for c in n.changes
                ],
                **({"error": n.error} if n.error else {}),
            }
            for n in plan.numbers
        ],
        "warnings": [{"voipnumber": v, "kind": f.kind, "message": f.message} for v, f in plan.warnings],
    }
