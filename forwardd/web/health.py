"""The health view: whether forwardd does what it should now, with the reasons (``/healthz``, and the
headline of ``/status``).

Four states, the most serious first:
- ``starting`` (HTTP 503): the daemon has not yet confirmed every line once (``Snapshot.starting``), or
  has no plan yet;
- ``unhealthy`` (503): a line is not confirmed to hold its program for now (or was changed by hand, or
  has no plan), a calendar has no good copy or one older than its ``max_age``, the journal cannot be
  written, or (in a cluster) nobody may send;
- ``degraded`` (200): the calls go where they should, but something needs a look: a calendar fails
  while its last good copy is still within ``max_age``, an account has a problem, or an alert stands;
- ``ok`` (200): none of these.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..core.plan import NumberPlan, Plan, program_at
from ..notify.keys import AlertKind
from .presentation import duration, interval, plural
from .snapshot import AccountState, Snapshot, Starting

OK, DEGRADED, STARTING, UNHEALTHY = "ok", "degraded", "starting", "unhealthy"
LISTED = 10  # lines named one by one for each kind of problem; more are counted
LISTED_WHEN_MORE = 5


@dataclass(frozen=True)
class Health:
    """``status`` (see the module), the reasons (the most serious first), and how many of the lines are
    confirmed to hold their program for now."""

    status: str
    reasons: tuple[str, ...]
    numbers: int
    confirmed: int
    starting: Starting | None = None
    accounts: tuple[AccountState, ...] = ()

    @property
    def ok(self) -> bool:
        """True when ``/healthz`` answers 200: the calls go where the calendars say (``ok`` or ``degraded``)."""
        return self.status in (OK, DEGRADED)

    @property
    def headline(self) -> str:
        """The state in words, the first reason first: ``Degraded: calendar rota: failing ...``."""
        if self.status == OK:
            return (f"Healthy: all {plural(self.numbers, 'line')} confirmed, calendars fresh, no alert standing")
        first = self.reasons[0] if self.reasons else ""
        more = f" (and {plural(len(self.reasons) - 1, 'more problem')})" if len(self.reasons) > 1 else ""
        return f"{self.status.capitalize()}: {first}{more}"

    def json(self, now: dt.datetime) -> dict[str, Any]:
        """The ``/healthz`` document."""
        return {"ok": self.ok, "status": self.status, "at": now.isoformat(), "numbers": self.numbers,
                "confirmed": self.confirmed, "reasons": list(self.reasons),
                "starting": None if self.starting is None else {"confirmed": self.starting.confirmed,
                                                                "total": self.starting.total},
                "accounts": [account_json(a) for a in self.accounts]}


def account_json(a: AccountState) -> dict[str, Any]:
    """One account for ``/healthz``: its lines, its drift checks as configured and in effect (and in words)."""
    return {"name": a.name, "numbers": a.numbers, "drift_check_every_s": int(a.drift_every.total_seconds()),
            "drift_check_effective_s": int(a.drift_effective.total_seconds()), "drift_check": drift_words(a),
            "problem": a.problem}


def drift_words(a: AccountState) -> str:
    """How often the account's lines are read for hand-made changes: ``every 1h``, or, when the request
    cap allows less, ``every 3h20m (configured: every 1h; the request cap allows no more)``."""
    every, effective = interval(a.drift_every.total_seconds()), interval(a.drift_effective.total_seconds())
    if a.drift_effective == a.drift_every:
        return f"every {every}"
    why = "the request cap allows no more" if a.drift_effective > a.drift_every else "more often than configured"
    return f"every {effective} (configured: every {every}; {why})"


def starting_words(s: Starting) -> str:
    """``starting: 3,200 of 10,000 numbers confirmed``."""
    return f"starting: {s.confirmed:,} of {s.total:,} numbers confirmed"


def _lines(kind: str, labels: list[str]) -> list[str]:
    """One reason per line when there are few; the first few and a count when there are many."""
    if len(labels) <= LISTED:
        return [f"{label}: {kind}" for label in labels]
    rest = len(labels) - LISTED_WHEN_MORE
    return [*(f"{label}: {kind}" for label in labels[:LISTED_WHEN_MORE]), f"{rest:,} more lines: {kind}"]


def _calendars(snap: Snapshot, unhealthy: list[str], degraded: list[str]) -> set[str]:
    """Each calendar's problem, into ``unhealthy`` (no good copy, or one past max_age) or ``degraded``
    (failing, its last good copy still within max_age). Returns the names of the calendars with one."""
    now, named = snap.now, set()
    for name, st in snap.sources.items():
        max_age = duration(st.settings.max_age.total_seconds())
        age = st.age(now)
        if not st.loaded:
            unhealthy.append(f"calendar {name}: no good copy ({st.error or 'not read yet'})")
        elif st.stale(now):
            unhealthy.append(f"calendar {name}: the last good copy is {duration(age.total_seconds()) if age else '?'} "
                             f"old, older than its max_age {max_age}" + (f" ({st.error})" if st.error else ""))
        elif st.error:
            degraded.append(f"calendar {name}: failing ({st.error}); its last good copy"
                            f"{', ' + duration(age.total_seconds()) + ' old,' if age else ''} is used until it is "
                            f"older than its max_age {max_age}")
        else:
            continue
        named.add(name)
    return named


def _alerts(snap: Snapshot, calendars: set[str]) -> list[str]:
    """The alerts standing that no other reason says already (a line's drift, a calendar's failure)."""
    out = []
    for key, standing in sorted(snap.alerts.items(), key=lambda kv: kv[1].since):
        if key.kind is AlertKind.DRIFT or (key.kind is AlertKind.CALENDAR and key.calendar in calendars):
            continue
        out.append(f"alert: {standing.message}")
    if len(out) > LISTED:
        out = [*out[:LISTED_WHEN_MORE], f"{len(out) - LISTED_WHEN_MORE:,} more alerts standing"]
    return out


def health(snap: Snapshot) -> Health:
    """The state of ``snap`` (see the module) and its reasons, one per problem (lines of one kind of
    problem counted once there are more than a few)."""
    cfg, now = snap.cfg, snap.now
    unhealthy: list[str] = []
    degraded: list[str] = []
    first: list[str] = []
    starting = snap.starting
    if starting is not None:
        first.append(starting_words(starting))
    if snap.plan is None:
        first.append("not planned yet (starting up)")
    confirmed = 0
    if snap.plan is not None:
        by_number = plan_index(snap.plan)
        drifting = {k.number for k in snap.alerts if k.kind is AlertKind.DRIFT}
        in_force: dict[int, bool] = {}  # per list of changes: whether a program is planned for now
        problems: dict[str, list[str]] = {}
        for number in cfg.numbers:
            v, label = number.voipnumber, number.label
            np_ = by_number.get(v)
            if np_ is None or np_.error:
                problems.setdefault(f"no plan ({np_.error if np_ else 'not in the plan'})", []).append(label)
                continue
            key = id(np_.changes)
            if key not in in_force:
                in_force[key] = program_at(np_.changes, now) is not None
            if not in_force[key]:
                problems.setdefault("no program planned for now", []).append(label)
            elif v in drifting:
                problems.setdefault("the account was changed by hand (drift)", []).append(label)
            elif v in snap.unconfirmed or v not in snap.confirmed:
                if starting is None:  # while starting, the count above says it
                    problems.setdefault("not confirmed: the account has not been read back holding the program "
                                        "for now", []).append(label)
            else:
                confirmed += 1
        for kind, labels in problems.items():
            unhealthy += _lines(kind, labels)
    calendars = _calendars(snap, unhealthy, degraded)
    if snap.journal is not None and snap.journal.problem:
        unhealthy.append(f"journal: {snap.journal.problem}")
    lease = snap.cluster
    if lease is not None:
        if lease.problem:
            unhealthy.append(f"cluster: {lease.problem}")
        if lease.leader is None:
            unhealthy.append("cluster: no instance leads: nothing is sent to aql")
        elif lease.leading and not lease.sending:
            unhealthy.append(f"cluster: {lease.instance} leads but may not send now (taking over, or its lease is "
                             "not confirmed)")
    degraded += [f"account {a.name}: {a.problem}" for a in snap.accounts if a.problem]
    degraded += _alerts(snap, calendars)
    status = STARTING if first else UNHEALTHY if unhealthy else DEGRADED if degraded else OK
    return Health(status, (*first, *unhealthy, *degraded), len(cfg.numbers), confirmed, starting, snap.accounts)


def plan_index(plan: Plan) -> dict[str, NumberPlan]:
    """Each line's plan by its number (``Plan.for_number`` looks through the list: too slow for 10,000)."""
    return {n.voipnumber: n for n in plan.numbers}


def number_plan(plan: Plan | None, voipnumber: str) -> NumberPlan | None:
    """The number's plan, or None (no plan yet, or the number is not in it)."""
    if plan is None:
        return None
    try:
        return plan.for_number(voipnumber)
    except KeyError:
        return None

