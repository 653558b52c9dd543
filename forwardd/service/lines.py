"""The config's lines as the planner sees them (``LineSpec``), and a plan as the stable JSON of
``forwardd plan --json``. The core plans without knowing the config; this is where one becomes the other."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Mapping

from ..aql.carrier import settings_of
from ..config import Config, NumberSettings
from ..core.plan import LineSpec, Plan
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
    distinct value, so a thousand numbers on one policy share it."""
    policies: dict[tuple[Any, ...], Policy] = {}
    out = []
    for n in cfg.numbers:
        account = cfg.settings_of(n.voipnumber)
        key = (tuple((r.weekdays, r.start, r.end) for r in n.office_hours), cfg.fallback_of(n))
        policy = policies.get(key)
        if policy is None:
            policy = policies[key] = policy_for(cfg, n)
        out.append(LineSpec(n.voipnumber, n.name, n.rota, tuple(n.overrides), tuple(n.holidays), policy,
                            (n.rota, tuple(n.overrides), tuple(n.holidays), *key), account.window_wraps_midnight,
                            account.min_slack))
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
