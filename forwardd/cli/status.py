"""``forwardd apply`` (one reconcile pass now) and ``forwardd status`` (each number: the account now,
what it should be, who has the calls and until when, and the next change: who gets them from when, and
when it is sent). People and times are said as the page says them (``web.presentation``: ``Names``,
``now_and_next``, ``until``); the JSON form keeps its keys and ISO instants, for machines."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..core.carrier import LineState
from ..core.plan import Plan, program_at
from ..errors import CarrierError
from ..service.due import next_apply_by, right_as_is
from ..service.services import Services
from ..store.journal import Journal, check_database
from ..store.statedir import describe_lock, write_problem
from ..web.presentation import Names, next_change_words, now_and_next
from .cluster import cluster_line, cluster_status
from .common import line_label, load, names, when, with_services


def cmd_apply(args: argparse.Namespace) -> int:
    cfg = load(args)
    describe_lock(args.config, "apply")

    async def body(sv: Services) -> list[Any]:
        await sv.wait_for_lease()  # in a cluster: only where no other instance leads, and after a fence
        await sv.refresh_calendars()
        sv.plan = await sv.make_plan()
        return list(await asyncio.gather(*(sv.edges_of(n.voipnumber).reconciler.reconcile(n)
                                           for n in sv.plan.numbers)))

    outcomes = with_services(cfg, body, aql=True, exclusive=True, journal="write")
    for o in outcomes:
        print(f"{o.voipnumber}: {'OK' if o.ok else 'FAILED'}{' (changed)' if o.changed else ''}"
              f"{' (drift)' if o.drift else ''}{': ' + o.error if o.error else ''}")
    return 1 if any(not o.ok for o in outcomes) else 0


@dataclass
class _Seen:
    """What status found: the plan, each number's account (or why it could not be read), the numbers
    each account lists, the journal's problem, the cluster, each line's credit (in words, and as JSON)."""

    now: dt.datetime
    plan: Plan
    got: dict[str, Any]
    owned: set[str] | None
    journal_problem: str | None
    cluster: dict[str, Any] | None
    credit: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)
    confirmed: dict[str, LineState | None] = field(default_factory=dict)  # what the journal last confirmed


async def _look(sv: Services) -> _Seen:
    cfg = sv.cfg
    now = sv.clock.now().replace(microsecond=0)
    await sv.refresh_calendars()
    plan = await sv.make_plan()
    owned: set[str] | None = set()
    for name, edges in sv.accounts.items():
        try:
            listed = set(await edges.carrier.list_numbers())
        except CarrierError as err:
            print(f"aql: listusers of account {name} failed: {err}", file=sys.stderr)
            listed = {n.voipnumber for n in cfg.numbers_of(name)}  # unknown: not said missing
            owned = None if len(sv.accounts) == 1 else owned
        if owned is not None:
            owned |= listed
    got: dict[str, Any] = {}
    for n in cfg.numbers:
        try:
            got[n.voipnumber] = await sv.edges_of(n.voipnumber).carrier.read(n.voipnumber)
        except CarrierError as err:
            got[n.voipnumber] = err
    journal_problem = None
    if isinstance(sv.journal, Journal):
        journal_problem = write_problem(sv.journal.path.parent) or (
            f"the journal {sv.journal.path} is damaged ({damage})"
            if (damage := check_database(sv.journal.path)) else None)
    cluster = await cluster_status(sv)
    if cluster is not None and cluster["problem"]:
        journal_problem = cluster["problem"]  # the journal is in that database too
    credit: dict[str, tuple[str, dict[str, Any] | None]] = {}
    if sv.credit is not None:  # what this read found, judged against the week the daemon kept
        for v, acct in got.items():
            live = None if isinstance(acct, Exception) else acct.credit
            credit[v] = (sv.credit.in_words(v, now, live=live), sv.credit.as_json(v, now, live=live))
    confirmed = {n.voipnumber: _last_confirmed(sv, n.voipnumber) for n in cfg.numbers}
    return _Seen(now, plan, got, owned, journal_problem, cluster, credit, confirmed)


def _last_confirmed(sv: Services, voipnumber: str) -> LineState | None:
    """What the journal last confirmed for the line (in a cluster too, where the reconcilers leave the
    shared journal to the daemon's bulk load); None when unknown or unreadable."""
    try:
        found = sv.edges_of(voipnumber).reconciler.last_confirmed(voipnumber, lookup=True)
    except Exception:  # noqa: BLE001 - a journal that cannot be read is reported above; here it is unknown
        return None
    return found.state if found is not None else None


def _row(cfg: Config, seen: _Seen, voipnumber: str, people: Names) -> dict[str, Any]:
    """One number's row of ``status --json`` (its keys are an interface; more may be added)."""
    n, now = cfg.number(voipnumber), seen.now
    np_ = seen.plan.for_number(voipnumber)
    found = program_at(np_.changes, now)
    acct = seen.got[voipnumber]
    row: dict[str, Any] = {"voipnumber": voipnumber, "name": n.name, "aql_account": cfg.account_of(voipnumber),
                           "in_account": None if seen.owned is None else voipnumber in seen.owned}
    if isinstance(acct, Exception):
        row.update(error=str(acct), match=False)
    else:
        row["account"] = dict(acct.record)
    seg = next((s for s in np_.segments if s.start <= now < s.end), None)
    if seg is not None:
        row["now"] = {"forwardto": seg.target, "person": seg.person, "reason": seg.reason, "kind": seg.kind.value}
        words = now_and_next(np_.segments, now, people)
        if words is not None:
            row["now"]["words"] = words.words(now, cfg.tz)
    if seen.credit.get(voipnumber, ("", None))[1] is not None:
        row["credit"] = seen.credit[voipnumber][1]
    if found:
        i, c = found
        row["should_be"] = c.program.describe(names(cfg))
        if not isinstance(acct, Exception):
            row["match"] = acct.state.holds(c.program, n.forwardcli)
            last = seen.confirmed.get(voipnumber)
            if not row["match"] and last is not None and last.effect() == acct.state.effect():
                # what forwardd last confirmed (not a hand-made change), still sending calls where they should:
                # as right as the plan's program until the next change must be in (forwardd leaves it), or
                # until a change forwardd has due
                limit = next_apply_by(np_, i)
                right = right_as_is(cfg, np_, acct.state, now, limit)
                row["match"] = right >= limit
                if now < right < limit:
                    row["pending_until"] = right.isoformat()
        nxt = np_.changes[i + 1] if i + 1 < len(np_.changes) else None
        if nxt:
            row["next_change"] = {"apply_from": nxt.apply_from.isoformat(), "apply_by": nxt.apply_by.isoformat(),
                                  "slack_s": int(nxt.slack.total_seconds()), "exact": nxt.exact,
                                  "program": nxt.program.describe(names(cfg)),
                                  "words": next_change_words(np_, now, people, cfg.tz)}
    return row


def _print(cfg: Config, seen: _Seen, rows: list[dict[str, Any]], people: Names) -> None:
    print(f"forwardd status at {when(seen.now, cfg, year=True)} ({cfg.timezone})")
    if seen.cluster is not None:
        print(cluster_line(cfg, seen.cluster))
    if seen.journal_problem:
        print(f"DEGRADED: {seen.journal_problem}")
    for r in rows:
        np_ = seen.plan.for_number(r["voipnumber"])
        found = program_at(np_.changes, seen.now)
        wanted = people.program(found[1].program) if found else "nothing planned"
        missing = " (NOT IN THIS ACCOUNT)" if r["in_account"] is False else ""
        label = line_label(cfg, r["voipnumber"])
        if "error" in r:
            print(f"{label}: UNKNOWN: the account could not be read ({r['error']}); the plan wants {wanted}{missing}")
        elif r.get("match"):
            print(f"{label}: MATCH: the account holds {people.fields(r['account'])}, as the plan wants{missing}")
        elif "pending_until" in r:
            until = when(dt.datetime.fromisoformat(r["pending_until"]), cfg)
            print(f"{label}: PENDING: the account holds {people.fields(r['account'])}, still right until {until}; "
                  f"forwardd sets {wanted} before then{missing}")
        else:
            print(f"{label}: MISMATCH: the account holds {people.fields(r['account'])}; the plan wants "
                  f"{wanted}{missing}")
        if "now" in r:
            words, why = r["now"].get("words", "?"), r["now"]["reason"]
            print(f"    now: {words}" + ("" if why in words else f" ({why})"))
        if "next_change" in r and r["next_change"]["words"]:
            print(f"    next: {r['next_change']['words']}")
        credit = seen.credit.get(r["voipnumber"], ("", None))[0]
        if credit:
            print(f"    {credit}")


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load(args)
    seen = with_services(cfg, _look, aql=True, journal="read")
    people = Names(cfg)
    rows = [_row(cfg, seen, n.voipnumber, people) for n in cfg.numbers]
    bad = sum(not (r.get("match") or "pending_until" in r) or r["in_account"] is False for r in rows)
    doc: dict[str, Any] = {"at": seen.now.isoformat(),
                           "journal": {"ok": seen.journal_problem is None, "problem": seen.journal_problem},
                           "numbers": rows}
    if seen.cluster is not None:
        doc["cluster"] = seen.cluster
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print(cfg, seen, rows, people)
    leaderless = seen.cluster is not None and seen.cluster["leader"] is None
    return 1 if bad or seen.journal_problem or leaderless else 0
