"""``forwardd plan``: who gets each number's calls, and the changes forwardd will send, as a table, the
stable JSON form, or the week view as one page."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import Config
from ..core.plan import Plan
from ..core.words import duration
from ..errors import ForwarddError
from ..service.lines import plan_json
from ..service.services import Services
from .common import line_label, load, names, parse_when, person_words, when, with_services


def cmd_plan(args: argparse.Namespace) -> int:
    cfg = load(args)
    if args.days <= 0:
        raise ForwarddError(f"--days {args.days:g}: a plan needs a horizon of more than 0 days")

    async def body(sv: Services) -> tuple[Plan, list[str], int]:
        now = sv.clock.now()
        start = parse_when(args.start, cfg, "--start", now) if args.start else now.replace(microsecond=0)
        await sv.refresh_calendars()
        failed, status = [], 0
        for n, st in sv.sources.states.items():
            if not st.loaded:
                failed.append(f"calendar {n}: no usable copy ({st.error})")
                status = 1
            elif st.stale(now):
                failed.append(f"calendar {n}: the last good copy is older than max_age ({st.error or 'stale'})")
                status = 1
            elif st.error:
                failed.append(f"calendar {n}: failing now ({st.error}); planning with the last good copy")
        return await sv.make_plan(start, days=args.days), failed, status

    plan, failed, status = with_services(cfg, body)
    if args.html:
        _write_plan_page(cfg, plan, failed, args.html)
    if args.json:
        doc = plan_json(plan)
        for number in doc["numbers"]:  # each line's account, as status says it
            number["aql_account"] = cfg.account_of(number["voipnumber"])
        doc["warnings"] = [{"voipnumber": None, "kind": "calendar", "message": m} for m in failed] + doc["warnings"]
        print(json.dumps(doc, indent=2))
    elif not args.html:
        _print_plan(cfg, plan, failed)
    for m in failed:
        print(f"warning: {m}", file=sys.stderr)
    return status


def _write_plan_page(cfg: Config, plan: Plan, failed: list[str], out: str) -> None:
    """``plan --html OUT``: the week view of the plan as one self-contained page. Raises ForwarddError."""
    from ..web.render import plan_page

    try:
        Path(out).write_text(plan_page(cfg, plan, failed), encoding="utf-8")
    except OSError as err:
        raise ForwarddError(f"--html: cannot write {out}: {err.strerror or err}") from None
    print(f"wrote {out}: {len(plan.numbers)} number(s), {when(plan.start, cfg)} .. {when(plan.end, cfg)}",
          file=sys.stderr)


def _print_plan(cfg: Config, plan: Plan, failed: list[str]) -> None:
    from rich.console import Console  # here: the daemon, which never prints a plan, never loads rich
    from rich.markup import escape
    from rich.table import Table

    con = Console(width=max(Console().width, 120), highlight=False)
    con.print(f"[bold]forwardd plan[/] {when(plan.start, cfg, year=True)} .. {when(plan.end, cfg, year=True)} "
              f"({cfg.timezone})")
    warns = failed + [f"{v + ': ' if v else ''}{f.message}" for v, f in plan.warnings]
    if warns:
        con.print(f"\n[yellow bold]{len(warns)} warning(s)[/]")
        for w in warns:
            con.print(f"  [yellow]![/] {escape(w)}")
    for n in plan.numbers:
        con.print(f"\n[bold]Number {escape(line_label(cfg, n.voipnumber))}[/]")
        if n.error:
            con.print(f"  [red]{escape(n.error)}[/]")
            continue
        t = Table("from", "until", "calls go to", "why", box=None, pad_edge=False)
        for s in n.segments:
            who = escape(person_words(cfg, s.target, s.person)) if s.target else "[dim]not forwarded[/]"
            t.add_row(when(s.start, cfg), when(s.end, cfg), who, escape(s.reason))
        con.print(t)
        exact = sum(c.exact for c in n.changes)
        people = names(cfg)
        con.print(f"  [bold]{len(n.changes)} change(s) to send[/], {exact} exact hand-over(s)")
        c_t = Table("send between", "and", "slack", "program", box=None, pad_edge=False)
        for i, c in enumerate(n.changes):
            slack = "in force at start" if i == 0 else ("[red]exact[/]" if c.exact else duration(c.slack.total_seconds()))
            c_t.add_row(when(c.apply_from, cfg), when(c.apply_by, cfg), slack, escape(c.program.describe(people)))
        con.print(c_t)


