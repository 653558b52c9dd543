"""Run the real reconcile logic on a virtual clock against the simulated account, and measure.

The daemon is "up" except during the given outages; while up it reconciles at start, at every planned
``apply_from`` and every ``reconcile_every``. ``naive`` instead sends one change per timeline transition,
at the transition (an all-day program or forwarding off), and nothing else: what a simple daemon does.
Misrouted seconds compare, second by second, the provider model under the settings the simulated
account actually held against the timeline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from ..aql.account import Account
from ..aql.simulated import SIMULATED_CREDENTIAL
from ..clock import VirtualClock
from ..config import Config
from ..core.compiler import Change
from ..core.plan import NumberPlan, Plan
from ..core.provider import Program, forwarding_intervals
from ..core.timeline import Segment, epoch
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
    services: Services, clock: VirtualClock, plan: Plan, outages: Sequence[Outage] = (), *, naive: bool = False
) -> dict[str, Any]:
    """Simulate ``plan`` over its horizon on ``services`` (built on ``clock`` and a simulated account);
    returns the ``--json`` figures."""
    cfg, rec, account = services.cfg, services.reconciler, services.account
    assert rec is not None and account is not None
    rec.backoff_s = 0.5
    numbers = [n for n in plan.numbers if not n.error]

    def up(t: dt.datetime) -> bool:
        return not any(o.start <= t < o.end for o in outages)

    plans = {
        n.voipnumber: NumberPlan(n.voipnumber, n.segments, _naive_changes(n.segments) if naive else n.changes)
        for n in numbers
    }
    # Every instant at which the daemon would wake, with the numbers it would look at then.
    wakes: dict[dt.datetime, set[str]] = {}
    for v, p in plans.items():
        for c in p.changes:
            wakes.setdefault(c.apply_from, set()).add(v)
    if not naive:
        t = plan.start
        while t < plan.end:
            wakes.setdefault(t, set()).update(plans)
            t += cfg.daemon.reconcile_every
        for o in outages:  # a restarted daemon reconciles at start-up
            if plan.start <= o.end < plan.end:
                wakes.setdefault(o.end, set()).update(plans)
    for t in sorted(wakes):
        if t >= plan.end or not up(t):
            continue
        clock.set(t)
        for v in sorted(wakes[t]):
            if naive:
                change = next((c for c in plans[v].changes if c.apply_from == t), None)
                if change is None:
                    continue
                sub = NumberPlan(v, [], [change])
            else:
                sub = plans[v]
            await rec.reconcile(sub, exact_at=t)
    results = []
    for v, p in plans.items():
        applied = [(h.at, Program.from_settings(h.fields)) for h in account.history if h.voipnumber == v]
        changes = p.changes
        results.append(
            {
                "voipnumber": v,
                "calls": len(applied),
                "exact_handovers": sum(1 for c in changes if c.exact),
                "min_slack_s": min((int(c.slack.total_seconds()) for c in changes[1:] if not c.exact), default=None),
                "misrouted_s": misrouted_seconds(applied, p.segments, cfg.tz, cfg.aql.window_wraps_midnight),
            }
        )
    return {
        "start": plan.start.isoformat(),
        "end": plan.end.isoformat(),
        "mode": "naive" if naive else "forwardd",
        "numbers": results,
        "total": {"calls": sum(r["calls"] for r in results), "misrouted_s": sum(r["misrouted_s"] for r in results)},
    }
