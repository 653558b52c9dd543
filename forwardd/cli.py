"""The ``forwardd`` command. One top-level handler turns forwardd's errors into messages (no traceback)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import warnings
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from .calendars.sources import Sources
from .config import Config, load_config
from .core.plan import Plan, plan_json, program_at
from .errors import AqlError, ConfigError, ForwarddError
from .logs import configure
from .service.services import horizon_start, make_client, now_utc, plan_from, state_dir

DEFAULT_CONFIG = os.environ.get("FORWARDD_CONFIG", "/etc/forwardd/forwardd.toml")


def _when(t: dt.datetime, cfg: Config, year: bool = False) -> str:
    return t.astimezone(cfg.tz).strftime("%a %d %b %Y %H:%M" if year else "%a %d %b %H:%M:%S")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _parse_start(text: str | None, default: dt.datetime) -> dt.datetime:
    if text is None:
        return default
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ForwarddError(f"--start {text!r} is not an ISO 8601 date or time") from None
    if t.tzinfo is None:
        raise ForwarddError(f"--start {text!r} needs a UTC offset, e.g. 2026-11-30T00:00:00+00:00")
    return t


def _load(args: argparse.Namespace) -> Config:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load_config(args.config)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return cfg


def _sources(cfg: Config, now: dt.datetime) -> Sources:
    sources = Sources(cfg, state_dir(cfg))
    sources.refresh_all(now)
    return sources


# ------------------------------------------------------------------------------------------------ check


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args)
    now = now_utc()
    print(f"config {args.config}: OK ({len(cfg.numbers)} number(s), {len(cfg.calendars)} calendar(s))")
    sources = _sources(cfg, now)
    errors = 0
    for name, st in sources.states.items():
        if st.calendar is None:
            errors += 1
            print(f"calendar {name}: ERROR {st.error}")
            continue
        events, notes = st.calendar.events_between(now - dt.timedelta(days=1), now + dt.timedelta(days=365))
        span = f"{_when(events[0].start, cfg, year=True)} .. {_when(events[-1].end, cfg, year=True)}" if events else "no events"
        status = "OK" if st.error is None else f"STALE COPY (now failing: {st.error})"
        print(f"calendar {name}: {status}, {len(events)} event(s) in the coming year, {span}")
        for w in [*st.warnings, *notes]:
            print(f"  warning: {w}")
        if st.stale(now):
            print(f"  warning: the last good copy is older than max_age ({st.settings.max_age})")
    plan = plan_from(cfg, sources, now, days=14)
    for v, msg in plan.warnings:
        if v is not None:
            print(f"number {v}: warning: {msg}")
    if args.online:
        errors += asyncio.run(_check_online(cfg))
    return 1 if errors else 0


async def _check_online(cfg: Config) -> int:
    client, _ = make_client(cfg, state_dir(cfg))
    async with client:
        try:
            owned = set(await client.listusers())
        except AqlError as err:
            print(f"aql: ERROR {err}")
            return 1
    missing = [n.voipnumber for n in cfg.numbers if n.voipnumber not in owned]
    for m in missing:
        print(f"number {m}: ERROR not in the account's listusers")
    print(f"aql: OK, the account has {len(owned)} number(s)")
    return len(missing)


# ------------------------------------------------------------------------------------------------- plan


def cmd_plan(args: argparse.Namespace) -> int:
    cfg = _load(args)
    now = now_utc()
    start = _parse_start(args.start, now)
    sources = _sources(cfg, now)
    failed = [f"calendar {n}: {st.error}" for n, st in sources.states.items() if st.error]
    plan = plan_from(cfg, sources, start, days=args.days)
    if args.json:
        doc = plan_json(plan)
        doc["warnings"] = [{"voipnumber": None, "message": m} for m in failed] + doc["warnings"]
        print(json.dumps(doc, indent=2))
    else:
        _print_plan(cfg, plan, failed)
    return 0


def _print_plan(cfg: Config, plan: Plan, failed: list[str]) -> None:
    con = Console(width=max(Console().width, 120))
    tzname = plan.start.astimezone(cfg.tz).tzname()
    con.print(f"[bold]forwardd plan[/] {_when(plan.start, cfg)} .. {_when(plan.end, cfg)} ({cfg.timezone}, {tzname})")
    warns = failed + [f"{v + ': ' if v else ''}{m}" for v, m in plan.warnings]
    if warns:
        con.print(f"\n[yellow bold]{len(warns)} warning(s)[/]")
        for w in warns:
            con.print(f"  [yellow]![/] {w}")
    for n in plan.numbers:
        con.print(f"\n[bold]Number {n.voipnumber}[/]")
        if n.error:
            con.print(f"  [red]{n.error}[/]")
            continue
        t = Table("from", "until", "calls go to", "why", box=None, pad_edge=False)
        for s in n.segments:
            t.add_row(_when(s.start, cfg), _when(s.end, cfg), s.forwardto or "[dim]not forwarded[/]", s.reason)
        con.print(t)
        exact = sum(c.exact for c in n.changes)
        con.print(f"  [bold]{len(n.changes)} change(s) to send[/], {exact} exact hand-over(s)")
        c_t = Table("send between", "and", "slack", "program", box=None, pad_edge=False)
        for i, c in enumerate(n.changes):
            slack = "in force at start" if i == 0 else ("[red]exact[/]" if c.exact else _duration(c.slack.total_seconds()))
            c_t.add_row(_when(c.apply_from, cfg), _when(c.apply_by, cfg), slack, c.program.describe())
        con.print(c_t)


# --------------------------------------------------------------------------------------------- simulate


def cmd_simulate(args: argparse.Namespace) -> int:
    from .service.simulate import Outage, simulate

    cfg = _load(args)
    now = now_utc()
    start = _parse_start(args.start, now)
    try:
        outages = [Outage.parse(o) for o in args.outage]
    except ValueError as err:
        raise ForwarddError(f"--outage: {err}") from None
    sources = _sources(cfg, now)
    plan = plan_from(cfg, sources, start, days=args.days)
    result = simulate(cfg, plan, outages, naive=args.naive)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"simulated {result['mode']} {result['start']} .. {result['end']}, {len(outages)} outage(s)")
    for r in result["numbers"]:
        slack = "-" if r["min_slack_s"] is None else _duration(r["min_slack_s"])
        print(f"  {r['voipnumber']}: {r['calls']} call(s), {r['exact_handovers']} exact hand-over(s), "
              f"smallest slack {slack}, misrouted {r['misrouted_s']} s")
    print(f"  total: {result['total']['calls']} call(s), misrouted {result['total']['misrouted_s']} s")
    return 0


# ------------------------------------------------------------------------------------- apply and status


def cmd_apply(args: argparse.Namespace) -> int:
    from .service.daemon import one_pass

    cfg = _load(args)
    outcomes = asyncio.run(one_pass(cfg))
    bad = [o for o in outcomes if not o.ok]
    for o in outcomes:
        print(f"{o.voipnumber}: {'OK' if o.ok else 'FAILED'}{' (changed)' if o.changed else ''}"
              f"{' (drift)' if o.drift else ''}{': ' + o.error if o.error else ''}")
    return 1 if bad else 0


def cmd_status(args: argparse.Namespace) -> int:
    from .service.reconcile import differing

    cfg = _load(args)
    now = now_utc()
    sources = _sources(cfg, now)
    plan = plan_from(cfg, sources, horizon_start(now))

    async def read() -> tuple[dict[str, Any], set[str] | None]:
        client, _ = make_client(cfg, state_dir(cfg))
        async with client:
            try:
                owned: set[str] | None = set(await client.listusers())
            except AqlError as err:
                print(f"aql: listusers failed: {err}", file=sys.stderr)
                owned = None
            got: dict[str, Any] = {}
            for n in cfg.numbers:
                try:
                    got[n.voipnumber] = await client.getuser(n.voipnumber)
                except AqlError as err:
                    got[n.voipnumber] = err
            return got, owned

    accounts, owned = asyncio.run(read())
    rows, bad = [], 0
    for n in cfg.numbers:
        np_ = plan.for_number(n.voipnumber)
        found = program_at(np_.changes, now)
        acct = accounts[n.voipnumber]
        row: dict[str, Any] = {"voipnumber": n.voipnumber, "in_account": None if owned is None else n.voipnumber in owned}
        if isinstance(acct, Exception):
            row.update(error=str(acct), match=False)
        else:
            row["account"] = {k: acct.get(k) for k in ("forwardto", "forwardactive", "forwardstart", "forwardend", "forwardcli")}
        if found:
            i, c = found
            row["should_be"] = c.program.describe()
            if not isinstance(acct, Exception):
                row["match"] = not differing(acct, c.program, n.forwardcli)
            nxt = np_.changes[i + 1] if i + 1 < len(np_.changes) else None
            if nxt:
                row["next_change"] = {"apply_from": nxt.apply_from.isoformat(), "apply_by": nxt.apply_by.isoformat(),
                                      "slack_s": int(nxt.slack.total_seconds()), "program": nxt.program.describe()}
        bad += not row.get("match") or row["in_account"] is False
        rows.append(row)
    if args.json:
        print(json.dumps({"at": now.isoformat(), "numbers": rows}, indent=2))
    else:
        for r in rows:
            acct_desc = r.get("error") or (
                "forwarding off" if r["account"]["forwardactive"] != "1"
                else f"{r['account']['forwardto']} {r['account']['forwardstart']}-{r['account']['forwardend']}")
            print(f"{r['voipnumber']}: account has {acct_desc}; should be {r.get('should_be', '?')}: "
                  f"{'MATCH' if r.get('match') else 'MISMATCH'}"
                  f"{'' if r['in_account'] is not False else ' (NOT IN THIS ACCOUNT)'}")
            if "next_change" in r:
                nc = r["next_change"]
                print(f"    next: {nc['program']} between {nc['apply_from']} and {nc['apply_by']} "
                      f"(slack {_duration(nc['slack_s'])})")
    return 1 if bad else 0


def cmd_history(args: argparse.Namespace) -> int:
    from .store.journal import Journal

    cfg = _load(args)
    since = _parse_start(args.since, now_utc() - dt.timedelta(days=7)) if args.since else None
    path = state_dir(cfg) / "journal.sqlite"
    if not path.exists():
        print("no journal yet (forwardd has not run with this state directory)")
        return 0
    rows = Journal(path).entries(voipnumber=args.number, since=since)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        extra = {k: v for k, v in r.items() if k not in ("id", "at", "kind", "voipnumber", "ok")}
        ok = "" if r["ok"] is None else (" ok" if r["ok"] else " FAILED")
        print(f"{r['at']} {r['kind']:<9} {r['voipnumber'] or '-':<7}{ok} {json.dumps(extra)}")
    return 0


# ------------------------------------------------------------------------------------------ run & fake


def cmd_run(args: argparse.Namespace) -> int:
    from .service.daemon import run_daemon

    cfg = _load(args)
    return run_daemon(cfg, args.config)


def cmd_fake_aql(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .aql.account import Account
    from .aql.fake import FakeAqlServer

    password = os.environ.get(args.password_env, "") if args.password_env else "secret"
    account = Account.with_numbers(args.username, password, args.numbers.split(","), wraps=args.wraps)
    srv = FakeAqlServer(account, port=args.port).start()
    print(json.dumps({"url": srv.url, "port": srv.server_address[1]}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    srv.stop()
    return 0


# ------------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="forwardd",
        description="Keep aql VoIP numbers forwarded to whoever the rota and holiday calendars say.",
        epilog="Start with: forwardd check --config config/example.toml, then forwardd plan, then forwardd run.",
    )
    p.add_argument("--log-level", help="debug, info, warning (default: info; warning for simulate)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
        return sp

    sp = with_config("run", "run the daemon: keep every number right, continuously")
    sp.set_defaults(func=cmd_run)
    sp = with_config("check", "validate the config and load every calendar")
    sp.add_argument("--online", action="store_true", help="also confirm the numbers belong to the aql account")
    sp.set_defaults(func=cmd_check)
    sp = with_config("plan", "show who gets each number's calls, and the changes forwardd will send")
    sp.add_argument("--start", help="ISO 8601 instant with offset (default now)")
    sp.add_argument("--days", type=float, default=7, help="days to show (default 7)")
    sp.add_argument("--json", action="store_true", help="print the stable JSON form")
    sp.set_defaults(func=cmd_plan)
    sp = with_config("simulate", "run the reconcile logic on a virtual clock and count misrouted seconds")
    sp.add_argument("--start", required=True, help="ISO 8601 instant with offset")
    sp.add_argument("--days", type=float, required=True, help="days to simulate")
    sp.add_argument("--outage", action="append", default=[], help="daemon down: START/DURATION, e.g. 2027-03-26T17:00:00+00:00/PT2H")
    sp.add_argument("--naive", action="store_true", help="one change per transition, at the transition")
    sp.add_argument("--json", action="store_true", help="print figures as JSON")
    sp.set_defaults(func=cmd_simulate)
    sp = with_config("apply", "one reconcile pass now, then exit (non-zero if a number is not confirmed)")
    sp.set_defaults(func=cmd_apply)
    sp = with_config("status", "each number: what the account has, what it should have, the next change")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_status)
    sp = with_config("history", "show the journal: changes, read-backs, alerts, calendar refreshes")
    sp.add_argument("--number", help="only this voipnumber")
    sp.add_argument("--since", help="ISO 8601 instant with offset")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_history)
    sp = sub.add_parser("fake-aql", help="serve a fake aql account on 127.0.0.1 (for tests and trials)")
    sp.add_argument("--port", type=int, default=8080)
    sp.add_argument("--numbers", default="606309", help="comma-separated VoIP numbers")
    sp.add_argument("--username", default="acme")
    sp.add_argument("--password-env", help="environment variable holding the password (default 'secret')")
    sp.add_argument("--wraps", action="store_true", help="accept forwardstart > forwardend")
    sp.set_defaults(func=cmd_fake_aql)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level or ("warning" if args.command == "simulate" else "info")
    configure(level, stream=sys.stderr if args.command != "run" else sys.stdout)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"forwardd: {err}", file=sys.stderr)
        return 2
    except ForwarddError as err:
        print(f"forwardd: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `forwardd plan | head`: the reader left; that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
