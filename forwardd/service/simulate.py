"""Run the real reconcile logic on a virtual clock against the simulated account, and measure.

The daemon is "up" except during the given outages, and follows the daemon's own rules (``budget``):
at every start, numbers whose program for now differs from what was last confirmed are reconciled at
once and every other number gets a start-up read paced by the request budget; every planned change is
applied at its ``apply_from`` (an exact hand-over at its boundary, without a read first); each number
gets a drift check in its slot once per ``drift_check_every`` unless it was read for a change; a pass
that did not confirm is retried. ``--drift AT`` changes every number by hand at AT (another target),
and reports how long each took to notice. ``naive`` instead sends one change per timeline transition,
at the transition, and nothing else: what a simple daemon does. Misrouted seconds compare, second by
second, the provider model under the settings the simulated account actually held with the timeline;
requests are counted per number and action as the account received them.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from ..aql.account import Account
from ..aql.simulated import SIMULATED_CREDENTIAL
from ..clock import VirtualClock
from ..config import Config
from ..core.compiler import Change
from ..core.plan import NumberPlan, Plan, program_at
from ..core.provider import Program, forwarding_intervals
from ..core.timeline import Segment, epoch
from .budget import DriftSchedule, RetryQueue, planned_reads
from .reconcile import differing
from .services import Services


def misrouted_seconds(
    applied: Sequence[tuple[dt.datetime, Program]], segments: Sequence[Segment], tz: ZoneInfo, wraps: bool
) -> int:
    """Seconds of the timeline in which the provider, running ``applied`` (each program in force from
    its instant until the next), routes calls other than the segments want."""
    if not segments:
        return 0
    h0, h1 = epoch(segments[0].start), epoch(segments[-1].end)
    actual: list[tuple[int, int, str | None]] = []  # (from, to, target) covering [h0, h1)
    progs = sorted(((epoch(t), p) for t, p in applied), key=lambda x: x[0])
    pieces: list[tuple[int, int, Program]] = []
    current, cursor = Program(None, False), h0
    for t, p in progs:
        if t > cursor:
            pieces.append((cursor, min(t, h1), current))
            cursor = min(max(t, cursor), h1)
        current = p
    if cursor < h1:
        pieces.append((cursor, h1, current))
    for a, b, prog in pieces:
        if a >= b:
            continue
        cur = a
        for fa, fb in forwarding_intervals(prog, tz, a, b, wraps=wraps or prog.wraps):
            if fa > cur:
                actual.append((cur, fa, None))
            actual.append((fa, fb, prog.forwardto))
            cur = fb
        if cur < b:
            actual.append((cur, b, None))
    bad, i = 0, 0
    for seg in segments:
        s, e = epoch(seg.start), epoch(seg.end)
        while i < len(actual) and actual[i][1] <= s:
            i += 1
        j = i
        while j < len(actual) and actual[j][0] < e:
            a, b, target = actual[j]
            if target != seg.forwardto:
                bad += min(b, e) - max(a, s)
            j += 1
    return bad


@dataclass
class Outage:
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def parse(cls, text: str) -> Outage:
        """'2027-03-26T17:00:00+00:00/PT2H' (ISO 8601 start/duration). Raises ValueError."""
        import re

        start_text, sep, dur = text.partition("/")
        m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", dur)
        if not sep or not m or not any(m.groups()):
            raise ValueError(f"{text!r} is not START/DURATION such as 2027-03-26T17:00:00+00:00/PT2H")
        start = dt.datetime.fromisoformat(start_text)
        if start.tzinfo is None:
            raise ValueError(f"{text!r}: the start needs a UTC offset")
        d, h, mi, s = (int(g or 0) for g in m.groups())
        return cls(start, start + dt.timedelta(days=d, hours=h, minutes=mi, seconds=s))


def _naive_changes(segments: Sequence[Segment]) -> list[Change]:
    out: list[Change] = []
    last_target: str | None = None
    for s in segments:
        if out and s.forwardto == out[-1].program.forwardto and out[-1].program.active == (s.forwardto is not None):
            continue
        prog = Program(s.forwardto, True) if s.forwardto else Program(last_target, False)
        last_target = s.forwardto or last_target
        out.append(Change(s.start, s.start, prog, exact=True))
    return out


def fresh_account(cfg: Config, clock: VirtualClock) -> Account:
    """The simulated account a simulation starts from: every number with forwarding off."""
    return Account.with_numbers(SIMULATED_CREDENTIAL, SIMULATED_CREDENTIAL, [n.voipnumber for n in cfg.numbers],
                                wraps=cfg.aql.window_wraps_midnight, clock=clock.now)


async def simulate(
    services: Services, clock: VirtualClock, plan: Plan, outages: Sequence[Outage] = (), *, naive: bool = False,
    drift_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Simulate ``plan`` over its horizon on ``services`` (built on ``clock`` and a simulated account);
    returns the ``--json`` figures."""
    cfg, rec, account = services.cfg, services.reconciler, services.account
    assert rec is not None and account is not None
    numbers = [n for n in plan.numbers if not n.error]
    plans = {
        n.voipnumber: NumberPlan(n.voipnumber, n.segments, _naive_changes(n.segments) if naive else n.changes)
        for n in numbers
    }

    def up(t: dt.datetime) -> bool:
        return not any(o.start <= t < o.end for o in outages)

    events: list[tuple[dt.datetime, int, str, str, Any]] = []
    order = itertools.count()

    def at(t: dt.datetime, kind: str, number: str = "", payload: Any = None) -> None:
        if t < plan.end:
            heapq.heappush(events, (t, next(order), kind, number, payload))

    for v, p in plans.items():
        for c in p.changes[0 if naive else 1:]:
            at(c.apply_from, "change", v, c)
    detected: dict[str, float] = {}
    if not naive:
        at(plan.start, "start")
        for o in outages:  # a restarted daemon starts again
            if plan.start <= o.end < plan.end:
                at(o.end, "start")
        if drift_at is not None:
            at(drift_at, "hand-made")
    budget = services.budget
    drift = DriftSchedule(list(plans), cfg.daemon.drift_check_every, plan.start)
    retries = RetryQueue()
    queued: dict[str, dt.datetime] = {}  # the next drift-check event of each number

    def next_check(v: str) -> dt.datetime | None:
        upcoming = planned_reads({v: plans[v].changes}, clock.now()).get(v)
        return drift.next_due(v, rec.read_at.get(v), rec.read_for_change_at.get(v), upcoming)

    def plan_check(v: str) -> None:
        due = next_check(v)
        if due is None:
            queued.pop(v, None)  # a planned change reads it first
        elif v not in queued or queued[v] != due:
            queued[v] = due
            at(due, "drift", v, due)

    async def run(v: str, **kw: Any) -> None:
        out = await rec.reconcile(plans[v], **kw)
        now = clock.now()
        if out.ok:
            retries.confirmed(v)
        elif not out.skipped:
            at(retries.failed(v, now), "retry", v)
        if drift_at is not None and v not in detected and now >= drift_at and out.drift:
            detected[v] = (now - drift_at).total_seconds()
        plan_check(v)

    while events:
        t, _, kind, v, payload = heapq.heappop(events)
        if not up(t):
            continue
        clock.set(t)
        if kind == "change":
            c = payload
            if naive:
                await rec.reconcile(NumberPlan(v, [], [c]), exact_at=t)
            else:
                await run(v, exact_at=t if c.exact else None, keep_trying_until=max(c.apply_by, t + _PERSIST))
        elif kind == "start":
            rec.read_at.clear()  # a new process remembers what the journal holds, not what it read
            rec.read_for_change_at.clear()
            queued.clear()
            for v2, p in plans.items():
                found = program_at(p.changes, t)
                last = rec.confirmed.get(v2)
                if found is not None and (last is None or differing(last, found[1].program,
                                                                    cfg.number(v2).forwardcli)):
                    await run(v2, unread=last is None)
                else:
                    plan_check(v2)
        elif kind == "drift":
            if queued.get(v) != payload:
                continue  # superseded: the number was read meanwhile
            due = next_check(v)
            if due is None or due > t:
                plan_check(v)
                continue
            go = budget.reserve(t) if budget is not None else t
            if go > t:
                queued[v] = go
                at(go, "drift", v, go)  # the budget's turn for it
                continue
            queued.pop(v, None)
            await run(v, background=True, paced=False)  # its budget turn was taken above
        elif kind == "retry":
            if retries.due_at.get(v) is not None and retries.due_at[v] <= t:
                await run(v)
        elif kind == "hand-made":
            for v2 in plans:
                account.set_fields(v2, {"forwardto": HAND_MADE_TARGET, "forwardactive": "1",
                                        "forwardstart": "00:00:00", "forwardend": "23:59:59"})
    days = (plan.end - plan.start).total_seconds() / 86400
    results = []
    for v, p in plans.items():
        applied = [(h.at, Program.from_settings(h.fields)) for h in account.history if h.voipnumber == v
                   and h.fields.get("forwardto") != HAND_MADE_TARGET]
        changes = p.changes
        requests = {a: account.requests.get((v, a), 0) for a in ("getuser", "changeuser")}
        requests["listusers"] = 0
        row: dict[str, Any] = {
            "voipnumber": v,
            "calls": sum(1 for h in account.history if h.voipnumber == v and h.fields.get("forwardto")
                         != HAND_MADE_TARGET),
            "changes_planned": len(changes) - 1,
            "exact_handovers": sum(1 for c in changes if c.exact),
            "min_slack_s": min((int(c.slack.total_seconds()) for c in changes[1:] if not c.exact), default=None),
            "misrouted_s": misrouted_seconds(applied if drift_at is None else _held(account, v), p.segments, cfg.tz,
                                             cfg.aql.window_wraps_midnight),
            "requests": requests,
            "requests_per_day": round(sum(requests.values()) / days, 2) if days else None,
        }
        if drift_at is not None:
            row["drift_detected_after_s"] = detected.get(v)
        results.append(row)
    total_requests = {a: sum(r["requests"][a] for r in results) for a in ("getuser", "changeuser", "listusers")}
    return {
        "start": plan.start.isoformat(),
        "end": plan.end.isoformat(),
        "mode": "naive" if naive else "forwardd",
        "drift_check_every_s": int(cfg.daemon.drift_check_every.total_seconds()),
        "numbers": results,
        "total": {"calls": sum(r["calls"] for r in results), "misrouted_s": sum(r["misrouted_s"] for r in results),
                  "requests": total_requests, "requests_per_day": round(sum(total_requests.values()) / days, 1)
                  if days else None, "throttled": budget.throttled if budget is not None else 0},
    }


HAND_MADE_TARGET = "07700900666"  # what --drift sets by hand, as someone in the aql portal would
_PERSIST = dt.timedelta(seconds=60)


def _held(account: Account, v: str) -> list[tuple[dt.datetime, Program]]:
    """Every program the account held, hand-made ones included (misrouting counts them too)."""
    return [(h.at, Program.from_settings(h.fields)) for h in account.history if h.voipnumber == v]
