"""``forwardd apply`` (one reconcile pass now) and ``forwardd status`` (each number: the account now,
what it should be, the next change)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from typing import Any

from ..core.plan import Plan, program_at
from ..core.words import duration
from ..errors import CarrierError
from ..service.services import Services
from ..store.journal import Journal, check_database
from ..store.statedir import write_problem
from .cluster import cluster_line, cluster_status
from .common import load, names, person_words, with_services


def cmd_apply(args: argparse.Namespace) -> int:
    cfg = load(args)

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


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load(args)

    async def body(sv: Services) -> tuple[dt.datetime, Plan, dict[str, Any], set[str] | None, str | None,
                                          dict[str, Any] | None]:
        now = sv.clock.now()
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
        return now, plan, got, owned, journal_problem, cluster

    now, plan, accounts, owned, journal_problem, cluster = with_services(cfg, body, aql=True, journal="read")
    rows, bad = [], 0
    for n in cfg.numbers:
        np_ = plan.for_number(n.voipnumber)
        found = program_at(np_.changes, now)
        acct = accounts[n.voipnumber]
        row: dict[str, Any] = {"voipnumber": n.voipnumber, "name": n.name,
                               "in_account": None if owned is None else n.voipnumber in owned}
        if len(cfg.account_names) > 1:
            row["aql_account"] = cfg.account_of(n.voipnumber)
        if isinstance(acct, Exception):
            row.update(error=str(acct), match=False)
        else:
            row["account"] = dict(acct.record)
        seg = next((s for s in np_.segments if s.start <= now < s.end), None)
        if seg is not None:
            row["now"] = {"forwardto": seg.target, "person": seg.person, "reason": seg.reason,
                          "kind": seg.kind.value}
        if found:
            i, c = found
            row["should_be"] = c.program.describe(names(cfg))
            if not isinstance(acct, Exception):
                row["match"] = acct.state.holds(c.program, n.forwardcli)
            nxt = np_.changes[i + 1] if i + 1 < len(np_.changes) else None
            if nxt:
                row["next_change"] = {"apply_from": nxt.apply_from.isoformat(), "apply_by": nxt.apply_by.isoformat(),
                                      "slack_s": int(nxt.slack.total_seconds()),
                                      "program": nxt.program.describe(names(cfg))}
        bad += not row.get("match") or row["in_account"] is False
        rows.append(row)
    doc = {"at": now.isoformat(), "journal": {"ok": journal_problem is None, "problem": journal_problem},
           "numbers": rows}
    if cluster is not None:
        doc["cluster"] = cluster
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        if cluster is not None:
            print(cluster_line(cfg, cluster))
        if journal_problem:
            print(f"DEGRADED: {journal_problem}")
        for r in rows:
            acct_desc = r.get("error") or (
                "forwarding off" if r["account"]["forwardactive"] != "1"
                else f"{r['account']['forwardto']} {r['account']['forwardstart']}-{r['account']['forwardend']}")
            who = r.get("now", {})
            who_text = f" ({person_words(cfg, who.get('forwardto'), who.get('person'))}: {who.get('reason')})" if who else ""
            label = cfg.number(r["voipnumber"]).label
            print(f"{label}: account has {acct_desc}; should be {r.get('should_be', '?')}{who_text}: "
                  f"{'MATCH' if r.get('match') else 'MISMATCH'}"
                  f"{'' if r['in_account'] is not False else ' (NOT IN THIS ACCOUNT)'}")
            if "next_change" in r:
                nc = r["next_change"]
                print(f"    next: {nc['program']} between {nc['apply_from']} and {nc['apply_by']} "
                      f"(slack {duration(nc['slack_s'])})")
    leaderless = cluster is not None and cluster["leader"] is None
    return 1 if bad or journal_problem or leaderless else 0
