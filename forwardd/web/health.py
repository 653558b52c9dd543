"""The health view: whether forwardd does what it should now, with the reasons (``/healthz``, and the
headline of ``/status``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..core.plan import NumberPlan, Plan, program_at
from ..notify.keys import AlertKind
from ..presentation import duration
from .snapshot import Snapshot


@dataclass(frozen=True)
class Health:
    ok: bool
    reasons: tuple[str, ...]
    numbers: int
    confirmed: int

    def json(self, now: dt.datetime) -> dict[str, Any]:
        return {"ok": self.ok, "status": "ok" if self.ok else "unhealthy", "at": now.isoformat(),
                "numbers": self.numbers, "confirmed": self.confirmed, "reasons": list(self.reasons)}


def health(snap: Snapshot) -> Health:
    """Healthy when every number is confirmed to hold its program for now, every calendar has a copy
    younger than its max_age, the journal can be written, and (in a cluster) an instance leads and may
    send; otherwise the reasons, one per problem."""
    cfg, now = snap.cfg, snap.now
    reasons: list[str] = []
    confirmed = 0
    if snap.plan is None:
        reasons.append("not planned yet (starting up)")
    drifting = {k.number for k in snap.alerts if k.kind is AlertKind.DRIFT}
    for number in cfg.numbers:
        v, label = number.voipnumber, number.label
        np_ = number_plan(snap.plan, v)
        if snap.plan is None:
            continue
        if np_ is None or np_.error:
            reasons.append(f"{label}: no plan ({np_.error if np_ else 'not in the plan'})")
        elif program_at(np_.changes, now) is None:
            reasons.append(f"{label}: no program planned for now")
        elif v in drifting:
            reasons.append(f"{label}: the account was changed by hand (drift)")
        elif v in snap.unconfirmed or v not in snap.confirmed:
            reasons.append(f"{label}: not confirmed: the account has not been read back holding the program "
                           "for now")
        else:
            confirmed += 1
    for name, st in snap.sources.items():
        if not st.loaded:
            reasons.append(f"calendar {name}: no good copy ({st.error or 'not read yet'})")
        elif st.stale(now):
            age = st.age(now)
            reasons.append(f"calendar {name}: the last good copy is {duration(age.total_seconds()) if age else '?'} "
                           f"old, older than its max_age {duration(st.settings.max_age.total_seconds())}"
                           + (f" ({st.error})" if st.error else ""))
    if snap.journal is not None and snap.journal.problem:
        reasons.append(f"journal: {snap.journal.problem}")
    lease = snap.cluster
    if lease is not None:
        if lease.problem:
            reasons.append(f"cluster: {lease.problem}")
        if lease.leader is None:
            reasons.append("cluster: no instance leads: nothing is sent to aql")
        elif lease.leading and not lease.sending:
            reasons.append(f"cluster: {lease.instance} leads but may not send now (taking over, or its lease is "
                           "not confirmed)")
    return Health(not reasons, tuple(reasons), len(cfg.numbers), confirmed)


def number_plan(plan: Plan | None, voipnumber: str) -> NumberPlan | None:
    """The number's plan, or None (no plan yet, or the number is not in it)."""
    if plan is None:
        return None
    try:
        return plan.for_number(voipnumber)
    except KeyError:
        return None
