"""``forwardd simulate``: the daemon's own engine (``engine.Engine``, unchanged) on a virtual clock against
the simulated accounts, and what it did, measured.

This module holds no rule of when forwardd reads or writes: it builds the services as the daemon does
(simulated accounts, a driven virtual clock), lets time run, and stages the scenario around the engine
as the world would: the daemon is killed at the start of each ``--outage`` and started afresh at its
end (a new process: it remembers what the journal holds, not what it read), and at ``--drift AT``
someone changes every line by hand in the provider's portal. Then it compares, second by second, what
the accounts actually did (the provider model under the settings they held) with the timeline, and
counts the requests each line cost. ``naive`` swaps the window compiler for one change at every
transition of the timeline, sent at its second: what a simple daemon would do (the same engine, so it
also checks for drift and retries).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from ..aql.account import Account
from ..aql.carrier import program_of
from ..aql.simulated import SIMULATED_CREDENTIAL
from ..clock import VirtualClock
from ..config import Config
from ..core.compiler import Change, compile_timeline
from ..core.provider import Program, forwarding_intervals
from ..core.timeline import Segment, epoch
from .engine import Engine
from .lanes import PassRequest
from .reconcile import Outcome
from .services import Services

HAND_MADE_TARGET = "07700900666"  # what --drift sets by hand, as someone in the aql portal would


@dataclass
class Outage:
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def parse(cls, text: str) -> Outage:
        """'2027-03-26T17:00:00+00:00/PT2H' (ISO 8601 start/duration). Raises ValueError."""
        start_text, sep, dur = text.partition("/")
        m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", dur)
        if not sep or not m or not any(m.groups()):
            raise ValueError(f"{text!r} is not START/DURATION such as 2027-03-26T17:00:00+00:00/PT2H")
        start = dt.datetime.fromisoformat(start_text)
        if start.tzinfo is None:
            raise ValueError(f"{text!r}: the start needs a UTC offset")
        d, h, mi, s = (int(g or 0) for g in m.groups())
        return cls(start, start + dt.timedelta(days=d, hours=h, minutes=mi, seconds=s))


def naive_changes(segments: Sequence[Segment], tz: ZoneInfo, **_: Any) -> list[Change]:
    """One change at every transition of the timeline, each sent at its second (no windows, no slack)."""
    out: list[Change] = []
    last_target: str | None = None
    for s in segments:
        if out and s.target == out[-1].program.target and out[-1].program.active == (s.target is not None):
            continue
        prog = Program(s.target, True) if s.target else Program(last_target, False)
        last_target = s.target or last_target
        out.append(Change(s.start, s.start, prog, exact=True))
    return out


def fresh_accounts(cfg: Config, clock: VirtualClock) -> dict[str, Account]:
    """The simulated accounts a simulation starts from: every line with forwarding off."""
    return {name: Account.with_numbers(SIMULATED_CREDENTIAL, SIMULATED_CREDENTIAL,
                                       [n.voipnumber for n in cfg.numbers_of(name)],
                                       wraps=cfg.account(name).window_wraps_midnight, clock=clock.now)
            for name in cfg.account_names}


async def simulate(cfg: Config, start: dt.datetime, days: float, outages: Sequence[Outage] = (), *,
                   naive: bool = False, drift_at: dt.datetime | None = None) -> dict[str, Any]:
    """Run the engine over ``[start, start + days)``; returns the ``--json`` figures."""
    clock = VirtualClock(start, driven=True)
    accounts = fresh_accounts(cfg, clock)
    sv = await Services.open(cfg, aql=True, clock=clock, simulated_accounts=accounts, overrides=False,
                             compile=naive_changes if naive else compile_timeline)
    try:
        await sv.refresh_calendars()
        reference = await sv.make_plan(start, days=days)
        end = reference.end
        detected: dict[str, float] = {}

        def seen(v: str, req: PassRequest, out: Outcome, now: dt.datetime) -> None:
            if drift_at is not None and now >= drift_at and out.drift and v not in detected:
                detected[v] = (now - drift_at).total_seconds()

        engine: Engine | None = None
        intervals: dict[str, dt.timedelta] = {}
        moments = sorted({start, end, *(t for o in outages for t in (o.start, o.end) if start < t < end),
                          *([drift_at] if drift_at is not None and start <= drift_at < end else [])})
        for t in moments:
            # what falls due at the end belongs to the next day; at an outage's start, to the outage (the
            # daemon is down from that instant: a change due then is not sent)
            await clock.run_until(t, inclusive=t < end and not any(o.start == t for o in outages))
            up = not any(o.start <= t < o.end for o in outages) and t < end
            if engine is not None and not up:
                engine.crash()  # killed: nothing in flight finishes
                await clock.settle()
                engine = None
            if t == drift_at:
                for account in accounts.values():
                    for v in list(account.users):
                        account.set_fields(v, {"forwardto": HAND_MADE_TARGET, "forwardactive": "1",
                                               "forwardstart": "00:00:00", "forwardend": "23:59:59"})
            if engine is None and up:
                for edges in sv.accounts.values():  # a new process: what the journal holds, not what it read
                    edges.reconciler.read_at.clear()
                    edges.reconciler.auth_failed_at = None
                engine = Engine(sv, clock, publish=False, on_outcome=seen)
                await engine.start()
                intervals = {name: lane.grid.interval for name, lane in engine.lanes.items()}
        if engine is not None:
            engine.crash()
            await clock.settle()
        return _results(cfg, sv, accounts, reference, days, drift_at, detected, naive, intervals)
    finally:
        await sv.close()


def _results(cfg: Config, sv: Services, accounts: dict[str, Account], reference: Any, days: float,
             drift_at: dt.datetime | None, detected: dict[str, float], naive: bool,
             intervals: dict[str, dt.timedelta]) -> dict[str, Any]:
    results = []
    for n in reference.numbers:
        if n.error:
            continue
        v = n.voipnumber
        name = cfg.account_of(v)
        account = accounts[name]
        held = [(h.at, program_of(h.fields)) for h in account.history if h.voipnumber == v]
        ours = [(h.at, program_of(h.fields)) for h in account.history if h.voipnumber == v
                and h.fields.get("forwardto") != HAND_MADE_TARGET]
        requests = {a: account.requests.get((v, a), 0) for a in ("getuser", "changeuser")}
        requests["listusers"] = 0
        changes = n.changes
        row: dict[str, Any] = {
            "voipnumber": v,
            "calls": len(ours),
            "changes_planned": len(changes) - 1,
            "exact_handovers": sum(1 for c in changes if c.exact),
            "min_slack_s": min((int(c.slack.total_seconds()) for c in changes[1:] if not c.exact), default=None),
            "misrouted_s": misrouted_seconds(held if drift_at is not None else ours, n.segments, cfg.tz,
                                             cfg.settings_of(v).window_wraps_midnight),
            "requests": requests,
            "requests_per_day": round(sum(requests.values()) / days, 2) if days else None,
        }
        if len(cfg.account_names) > 1:
            row["account"] = name
        if drift_at is not None:
            row["drift_detected_after_s"] = detected.get(v)
        results.append(row)
    actions = ("getuser", "changeuser", "listusers")
    total_requests = {a: sum(r["requests"][a] for r in results) for a in actions}
    per_account: dict[str, dict[str, Any]] = {}
    for name, edges in sv.accounts.items():
        mine = [r for r in results if cfg.account_of(r["voipnumber"]) == name]
        interval = intervals.get(name, cfg.daemon.drift_check_every)  # as the engine's lanes had it
        per_account[name] = {"requests": {a: sum(r["requests"][a] for r in mine) for a in actions},
                             "drift_interval_s": int(interval.total_seconds()),
                             "throttled": edges.budget.throttled}
    out: dict[str, Any] = {
        "start": reference.start.isoformat(),
        "end": reference.end.isoformat(),
        "mode": "naive" if naive else "forwardd",
        "drift_check_every_s": int(cfg.daemon.drift_check_every.total_seconds()),
        "numbers": results,
        "accounts": per_account,
        "total": {"calls": sum(r["calls"] for r in results), "misrouted_s": sum(r["misrouted_s"] for r in results),
                  "requests": total_requests, "requests_per_day": round(sum(total_requests.values()) / days, 1)
                  if days else None, "throttled": sum(a["throttled"] for a in per_account.values())},
    }
    if drift_at is not None:
        seen = [r["drift_detected_after_s"] for r in results if r["drift_detected_after_s"] is not None]
        out["drift"] = {"at": drift_at.isoformat(), "numbers": len(results), "never_seen": len(results) - len(seen),
                        "worst_detected_after_s": max(seen, default=None),
                        "bound_s": max((int(a["drift_interval_s"]) for a in per_account.values()), default=None)}
    return out


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
            actual.append((fa, fb, prog.target))
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
            if target != seg.target:
                bad += min(b, e) - max(a, s)
            j += 1
    return bad
