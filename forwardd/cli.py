"""The ``forwardd`` command. One top-level handler turns forwardd's errors into messages (no traceback).

Every command builds its edges through ``Services`` (the composition root), asking only for what it
needs: ``plan``, ``check``, ``history`` and ``simulate`` never talk to aql, so they never need the
password; only ``run`` and ``apply`` take the state directory's lock.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .config import SIMULATED, Config, ConfigWarning, aql_password, load_config, parse_duration
from .core.plan import Plan, program_at
from .core.timeline import FindingKind, Kind, display_name
from .core.words import duration
from .errors import CarrierError, ConfigError, ForwarddError
from .logs import configure
from .service.lines import plan_json
from .service.services import Services, horizon_start
from .store.journal import Journal, check_database
from .store.statedir import check_state_dir, write_problem

DEFAULT_CONFIG = os.environ.get("FORWARDD_CONFIG", "/etc/forwardd/forwardd.toml")
T = TypeVar("T")


def _when(t: dt.datetime, cfg: Config, year: bool = False) -> str:
    return t.astimezone(cfg.tz).strftime("%a %d %b %Y %H:%M" if year else "%a %d %b %H:%M:%S")


def parse_when(text: str, cfg: Config, what: str, now: dt.datetime | None = None) -> dt.datetime:
    """An instant from the command line: ISO 8601 with an offset, a local ``YYYY-MM-DD HH:MM`` or a plain
    date (in the configured timezone), or ``+90m`` / ``+2h`` / ``+1d`` from ``now``. Raises ForwarddError."""
    text = text.strip()
    if text.startswith("+") and now is not None:
        try:
            return now + parse_duration(text[1:])
        except ValueError:
            raise ForwarddError(f"{what} {text!r} is not a time such as +90m or +2h") from None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ForwarddError(f"{what} {text!r} is not a date or time: use 2026-12-01, '2026-12-01 18:00' "
                            f"(in {cfg.timezone}) or 2026-12-01T18:00:00+00:00") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=cfg.tz)


def _load(args: argparse.Namespace) -> Config:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load_config(args.config)
    for w in caught:
        if issubclass(w.category, ConfigWarning):  # not the libraries' deprecation notes
            print(f"warning: {w.message}", file=sys.stderr)
    return cfg


def _run(cfg: Config, body: Callable[[Services], Awaitable[T]], **needs: Any) -> T:
    """Open the services a command needs, run ``body`` with them, close them."""

    async def go() -> T:
        sv = await Services.open(cfg, **needs)
        try:
            return await body(sv)
        finally:
            await sv.close()

    return asyncio.run(go())


def _names(cfg: Config) -> dict[str, str]:
    """Each person's number -> their name, as shown."""
    return {p.phone: display_name(name) for name, p in cfg.people.items()}


def _person(cfg: Config, number: str | None, person: str | None) -> str:
    if number is None:
        return "not forwarded"
    return f"{person} ({number})" if person and person != number else number


# ------------------------------------------------------------------------------------------------ check


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if args.days <= 0:
        raise ForwarddError(f"--days {args.days:g}: look at least some time ahead (default 60)")
    print(f"config {args.config}: OK ({len(cfg.numbers)} number(s), {len(cfg.calendars)} calendar(s))")
    errors = 0
    state = cfg.resolve_state_dir()
    try:
        check_state_dir(state)
        print(f"state directory {state}: OK")
    except ForwarddError as err:
        print(f"ERROR {err}")
        errors += 1
    if cfg.cluster is not None:
        try:
            cluster = _run(cfg, _cluster_status, journal="read")
        except ConfigError as err:
            cluster = {"problem": "; ".join(reason for _, reason in err.problems), "database": cfg.cluster.database}
        if cluster is not None and cluster["problem"]:
            print(f"ERROR cluster database {cluster['database']}: {cluster['problem']}")
            errors += 1
        elif cluster is not None:
            print(f"cluster database {cluster['database']}: OK; {_cluster_line(cfg, cluster).removeprefix('cluster: ')}")
    if cfg.aql.url != SIMULATED and not args.online:
        try:
            aql_password(cfg)
        except ConfigError as err:
            print(f"warning: the aql password is not available here ({err.problems[0][1]}); run, apply and "
                  "status need it")

    async def body(sv: Services) -> int:
        now = sv.clock.now()
        found = 0
        await sv.refresh_calendars()
        horizon = (now - dt.timedelta(days=1), now + dt.timedelta(days=args.days))
        snapshot = await sv.sources.snapshot(*horizon)
        for name, st in sv.sources.states.items():
            events = snapshot.get(name)
            if events is None:
                found += 1
                print(f"calendar {name}: ERROR {st.error}")
                continue
            evs = events.between(*horizon)
            span = (f"{_when(evs[0].start, cfg, year=True)} .. {_when(evs[-1].end, cfg, year=True)}"
                    if evs else "no events")
            status = "OK" if st.error is None else f"STALE COPY (now failing: {st.error})"
            print(f"calendar {name}: {status}, {len(evs)} event(s) in the next {args.days:g} days, {span}")
            for w in events.findings:
                print(f"  warning: {w.message}")
            if st.stale(now):
                found += 1
                print(f"  ERROR: the last good copy is older than max_age ({st.settings.max_age})")
        plan = await sv.make_plan(horizon_start(now), days=args.days)
        for v, finding in plan.warnings:
            if v is not None:
                print(f"number {v}: warning: {finding.message}")
                if finding.kind is FindingKind.GAP or finding.kind.routes_nowhere:
                    found += 1
        for n in plan.numbers:
            for s in n.segments:
                if s.kind is Kind.FALLBACK:
                    print(f"number {n.voipnumber}: note: nobody on call {_when(s.start, cfg)} .. {_when(s.end, cfg)}; "
                          f"the fallback {_person(cfg, s.target, s.person)} takes the calls")
        if args.online:
            found += await _check_online(sv)
        return found

    errors += _run(cfg, body, aql=args.online)
    return 1 if errors else 0


async def _check_online(sv: Services) -> int:
    """Each account's listusers: it answers, and owns every number that names it."""
    found = 0
    many = len(sv.accounts) > 1
    for name, edges in sv.accounts.items():
        what = f"aql account {name}" if many else "aql"
        try:
            owned = set(await edges.carrier.list_numbers())
        except CarrierError as err:
            print(f"{what}: ERROR {err}")
            found += 1
            continue
        missing = [n.voipnumber for n in sv.cfg.numbers_of(name) if n.voipnumber not in owned]
        for m in missing:
            print(f"number {m}: ERROR not in {'account ' + name if many else 'the account'}'s listusers")
        print(f"{what}: OK, the account has {len(owned)} number(s)")
        found += len(missing)
    return found


# ------------------------------------------------------------------------------------------------- plan


def cmd_plan(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if args.days <= 0:
        raise ForwarddError(f"--days {args.days:g}: a plan needs a horizon of more than 0 days")

    async def body(sv: Services) -> tuple[Plan, list[str], int]:
        now = sv.clock.now()
        start = parse_when(args.start, cfg, "--start") if args.start else now.replace(microsecond=0)
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

    plan, failed, status = _run(cfg, body)
    if args.html:
        _write_plan_page(cfg, plan, failed, args.html)
    if args.json:
        doc = plan_json(plan)
        doc["warnings"] = [{"voipnumber": None, "kind": "calendar", "message": m} for m in failed] + doc["warnings"]
        print(json.dumps(doc, indent=2))
    elif not args.html:
        _print_plan(cfg, plan, failed)
    for m in failed:
        print(f"warning: {m}", file=sys.stderr)
    return status


def _write_plan_page(cfg: Config, plan: Plan, failed: list[str], out: str) -> None:
    """``plan --html OUT``: the week view of the plan as one self-contained page. Raises ForwarddError."""
    from .web.render import plan_page

    try:
        Path(out).write_text(plan_page(cfg, plan, failed), encoding="utf-8")
    except OSError as err:
        raise ForwarddError(f"--html: cannot write {out}: {err.strerror or err}") from None
    print(f"wrote {out}: {len(plan.numbers)} number(s), {_when(plan.start, cfg)} .. {_when(plan.end, cfg)}",
          file=sys.stderr)


def _print_plan(cfg: Config, plan: Plan, failed: list[str]) -> None:
    con = Console(width=max(Console().width, 120), highlight=False)
    tzname = plan.start.astimezone(cfg.tz).tzname()
    con.print(f"[bold]forwardd plan[/] {_when(plan.start, cfg)} .. {_when(plan.end, cfg)} ({cfg.timezone}, {tzname})")
    warns = failed + [f"{v + ': ' if v else ''}{f.message}" for v, f in plan.warnings]
    if warns:
        con.print(f"\n[yellow bold]{len(warns)} warning(s)[/]")
        for w in warns:
            con.print(f"  [yellow]![/] {escape(w)}")
    for n in plan.numbers:
        number = cfg.number(n.voipnumber)
        con.print(f"\n[bold]Number {escape(number.label)}[/]")
        if n.error:
            con.print(f"  [red]{escape(n.error)}[/]")
            continue
        t = Table("from", "until", "calls go to", "why", box=None, pad_edge=False)
        for s in n.segments:
            who = escape(_person(cfg, s.target, s.person)) if s.target else "[dim]not forwarded[/]"
            t.add_row(_when(s.start, cfg), _when(s.end, cfg), who, escape(s.reason))
        con.print(t)
        exact = sum(c.exact for c in n.changes)
        names = _names(cfg)
        con.print(f"  [bold]{len(n.changes)} change(s) to send[/], {exact} exact hand-over(s)")
        c_t = Table("send between", "and", "slack", "program", box=None, pad_edge=False)
        for i, c in enumerate(n.changes):
            slack = "in force at start" if i == 0 else ("[red]exact[/]" if c.exact else duration(c.slack.total_seconds()))
            c_t.add_row(_when(c.apply_from, cfg), _when(c.apply_by, cfg), slack, escape(c.program.describe(names)))
        con.print(c_t)


# --------------------------------------------------------------------------------------------- simulate


def cmd_simulate(args: argparse.Namespace) -> int:
    from .service.simulate import Outage, simulate

    cfg = _load(args)
    if args.days <= 0:
        raise ForwarddError(f"--days {args.days:g}: simulate more than 0 days")
    start = parse_when(args.start, cfg, "--start")
    try:
        outages = [Outage.parse(o) for o in args.outage]
    except ValueError as err:
        raise ForwarddError(f"--outage: {err}") from None
    drift_at = parse_when(args.drift, cfg, "--drift") if args.drift else None
    result = asyncio.run(simulate(cfg, start, args.days, outages, naive=args.naive, drift_at=drift_at))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"simulated {result['mode']} {result['start']} .. {result['end']}, {len(outages)} outage(s)")
    for r in result["numbers"]:
        slack = "-" if r["min_slack_s"] is None else duration(r["min_slack_s"])
        req = r["requests"]
        drift = (f", hand-made change noticed after {duration(r['drift_detected_after_s'])}"
                 if r.get("drift_detected_after_s") is not None else "")
        print(f"  {r['voipnumber']}: {r['calls']} call(s), {r['exact_handovers']} exact hand-over(s), "
              f"smallest slack {slack}, misrouted {r['misrouted_s']} s; requests: {req['getuser']} getuser, "
              f"{req['changeuser']} changeuser ({r['requests_per_day']} a day){drift}")
    print(f"  total: {result['total']['calls']} call(s), misrouted {result['total']['misrouted_s']} s, "
          f"{result['total']['requests_per_day']} requests a day")
    return 0


# ------------------------------------------------------------------------------------- apply and status


def cmd_apply(args: argparse.Namespace) -> int:
    cfg = _load(args)

    async def body(sv: Services) -> list[Any]:
        await sv.wait_for_lease()  # in a cluster: only where no other instance leads, and after a fence
        await sv.refresh_calendars()
        sv.plan = await sv.make_plan()
        return list(await asyncio.gather(*(sv.edges_of(n.voipnumber).reconciler.reconcile(n)
                                           for n in sv.plan.numbers)))

    outcomes = _run(cfg, body, aql=True, exclusive=True, journal="write")
    for o in outcomes:
        print(f"{o.voipnumber}: {'OK' if o.ok else 'FAILED'}{' (changed)' if o.changed else ''}"
              f"{' (drift)' if o.drift else ''}{': ' + o.error if o.error else ''}")
    return 1 if any(not o.ok for o in outcomes) else 0


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _load(args)

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
        cluster = await _cluster_status(sv)
        if cluster is not None and cluster["problem"]:
            journal_problem = cluster["problem"]  # the journal is in that database too
        return now, plan, got, owned, journal_problem, cluster

    now, plan, accounts, owned, journal_problem, cluster = _run(cfg, body, aql=True, journal="read")
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
            row["should_be"] = c.program.describe(_names(cfg))
            if not isinstance(acct, Exception):
                row["match"] = acct.state.holds(c.program, n.forwardcli)
            nxt = np_.changes[i + 1] if i + 1 < len(np_.changes) else None
            if nxt:
                row["next_change"] = {"apply_from": nxt.apply_from.isoformat(), "apply_by": nxt.apply_by.isoformat(),
                                      "slack_s": int(nxt.slack.total_seconds()),
                                      "program": nxt.program.describe(_names(cfg))}
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
            print(_cluster_line(cfg, cluster))
        if journal_problem:
            print(f"DEGRADED: {journal_problem}")
        for r in rows:
            acct_desc = r.get("error") or (
                "forwarding off" if r["account"]["forwardactive"] != "1"
                else f"{r['account']['forwardto']} {r['account']['forwardstart']}-{r['account']['forwardend']}")
            who = r.get("now", {})
            who_text = f" ({_person(cfg, who.get('forwardto'), who.get('person'))}: {who.get('reason')})" if who else ""
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


async def _cluster_status(sv: Services) -> dict[str, Any] | None:
    """Who leads the cluster and since when, as the database says (None without [cluster])."""
    if sv.db is None:
        return None
    doc: dict[str, Any] = {"instance": sv.db.instance, "database": sv.db.url, "problem": None}
    try:
        lead = await sv.leadership()
    except (ForwarddError, TimeoutError) as err:
        return {**doc, "leader": None, "since": None, "last_leader": None, "last_since": None,
                "problem": str(err) or "no answer from the cluster database"}
    assert lead is not None
    return {**doc, **lead.as_json()}


def _cluster_line(cfg: Config, c: dict[str, Any]) -> str:
    here = f"this host: {c['instance']}"
    if c["leader"] is not None:
        role = "the leader" if c["leader"] == c["instance"] else "a standby"
        since = _when(dt.datetime.fromisoformat(c["since"]), cfg, year=True)
        return f"cluster: {c['leader']} leads since {since} ({here}, {role})"
    if c["problem"]:
        return f"cluster: UNKNOWN who leads: {c['problem']} ({here})"
    last = (f"; {c['last_leader']} led from {_when(dt.datetime.fromisoformat(c['last_since']), cfg, year=True)}"
            if c["last_leader"] else "")
    return f"cluster: NO LEADER: nothing is sent to aql{last} ({here})"


def cmd_history(args: argparse.Namespace) -> int:
    cfg = _load(args)
    since = parse_when(args.since, cfg, "--since") if args.since else None
    path = cfg.resolve_state_dir() / "journal.sqlite"
    if cfg.cluster is None and not path.exists():
        print(f"no journal yet in {path.parent} (forwardd has not run with this state directory)")
        return 0

    async def body(sv: Services) -> list[dict[str, Any]]:
        assert sv.journal is not None
        return sv.journal.entries(voipnumber=args.number, since=since)

    rows = _run(cfg, body, journal="read")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    names = {p.phone: name for name, p in cfg.people.items()}
    for r in rows:
        extra = {k: v for k, v in r.items() if k not in ("id", "at", "kind", "voipnumber", "ok")}
        ok = "" if r["ok"] is None else (" ok" if r["ok"] else " FAILED")
        fields = extra.get("fields")
        who = names.get(str(fields.get("forwardto", ""))) if isinstance(fields, dict) else None
        host = f"{extra.pop('instance')}: " if "instance" in extra else ""  # in a cluster, who wrote it
        print(f"{r['at']} {host}{r['kind']:<9} {r['voipnumber'] or '-':<7}{ok}{' [' + who + ']' if who else ''} "
              f"{json.dumps(extra)}")
    return 0


# -------------------------------------------------------------------------------------------- override


def _who_am_i() -> str:
    """The person behind the command: the one who ran sudo, else the OS user."""
    import getpass

    return os.environ.get("SUDO_USER") or getpass.getuser()


def _number_arg(cfg: Config, text: str) -> str:
    for n in cfg.numbers:
        if text == n.voipnumber or (n.name and text.strip().lower() == n.name.lower()):
            return n.voipnumber
    known = ", ".join(n.label for n in cfg.numbers)
    raise ForwarddError(f"{text!r} is not a number in the config ({known})")


def _target_arg(cfg: Config, text: str) -> tuple[str | None, str | None]:
    """--to: a person, a phone number, or off. Returns (phone or None, person or None)."""
    from .core.phone import PhoneError, normalise, number_allowed

    if text.strip().lower() == "off":
        return None, None
    person = cfg.person_named(text)
    if person is not None:
        return cfg.people[person].phone, person
    try:
        phone = normalise(text)
    except PhoneError:
        people = ", ".join(sorted(cfg.people)) or "none defined"
        raise ForwarddError(f"--to {text!r} is not a person in [people] ({people}), a phone number, or off") from None
    by_phone = {p.phone: name for name, p in cfg.people.items()}
    if phone in by_phone:
        return phone, by_phone[phone]
    fallbacks = {cfg.fallback_of(n)[0] for n in cfg.numbers}
    if phone not in fallbacks and not number_allowed(phone, cfg.allowed_numbers):
        raise ForwarddError(f"--to {text!r}: {phone} is not in [people] and does not match allowed_numbers "
                            f"({', '.join(cfg.allowed_numbers)}); add it to [people] to send calls there")
    return phone, None


def _override_line(cfg: Config, o: Any) -> str:
    who = "no forwarding" if o.target is None else _person(cfg, o.target, display_name(o.person)
                                                                if o.person else None)
    span = f"{_when(o.start, cfg, year=True)} .. {_when(o.end, cfg, year=True)} {o.end.astimezone(cfg.tz):%Z}"
    state = "cancelled" if o.cancelled_at else ""
    return f"{o.id:>4}  {cfg.number(o.voipnumber).label}: {who}, {span}, {o.reason}{' (' + state + ')' if state else ''}"


def cmd_override(args: argparse.Namespace) -> int:
    cfg = _load(args)

    async def body(sv: Services) -> int:
        store = sv.overrides
        if store is None:
            raise ForwarddError(f"no state directory at {cfg.resolve_state_dir()}: nothing to list")
        now = sv.clock.now().replace(microsecond=0)
        if args.action == "add":
            number = _number_arg(cfg, args.number)
            phone, person = _target_arg(cfg, args.to)
            start = parse_when(args.start, cfg, "--from", now) if args.start else now.replace(microsecond=0)
            end = parse_when(args.until, cfg, "--until", now)
            if end <= now:
                raise ForwarddError(f"--until {args.until!r} is in the past")
            if end <= start:
                raise ForwarddError(f"--until {args.until!r} is not after --from ({start.isoformat()})")
            made = store.add(number, phone, person, start, end, args.note or "", _who_am_i(), now)
            if sv.journal is not None:
                sv.journal.record("override", now, number, None, id=made.id, reason=made.reason, to=phone,
                                  person=person, start=start.isoformat(), end=end.isoformat(), note=made.note,
                                  by=made.made_by)
            who = "no forwarding" if phone is None else _person(cfg, phone, display_name(person) if person else None)
            print(f"{cfg.number(number).label}: {who} from {_when(start, cfg, year=True)} until "
                  f"{_when(end, cfg, year=True)} {end.astimezone(cfg.tz):%Z} ({made.reason})")
            print(f"added override {made.id}")
            return 0
        if args.action == "cancel":
            gone = store.cancel(args.id, _who_am_i(), now)
            if gone is None:
                raise ForwarddError(f"there is no override {args.id} (see forwardd override list --all)")
            if sv.journal is not None:
                sv.journal.record("override", now, gone.voipnumber, None, id=gone.id, cancelled=True,
                                  reason=f"{gone.reason} (cancelled by {gone.cancelled_by})", by=gone.cancelled_by)
            print(f"cancelled override {gone.id}: {_override_line(cfg, gone).strip()}")
            return 0
        listed = store.listed(now, everything=args.all)
        if args.json:
            print(json.dumps([o.as_json() for o in listed], indent=2))
        elif not listed:
            print("no overrides" + ("" if args.all else " in force or to come (--all shows past ones)"))
        else:
            for o in listed:
                print(_override_line(cfg, o))
        return 0

    return _run(cfg, body, journal="write" if args.action != "list" else "read")


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
    p.add_argument("--version", action="version", version=f"forwardd {__version__}")
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
    sp.add_argument("--days", type=float, default=60, help="look this far ahead for gaps and unknown names (default 60)")
    sp.set_defaults(func=cmd_check)
    sp = with_config("plan", "show who gets each number's calls, and the changes forwardd will send")
    sp.add_argument("--start", help="ISO 8601 instant, or a local date or 'YYYY-MM-DD HH:MM' (default now)")
    sp.add_argument("--days", type=float, default=7, help="days to show (default 7)")
    sp.add_argument("--json", action="store_true", help="print the stable JSON form")
    sp.add_argument("--html", metavar="OUT.html", help="write the week view as one self-contained page")
    sp.set_defaults(func=cmd_plan)
    sp = with_config("simulate", "run the reconcile logic on a virtual clock and count misrouted seconds")
    sp.add_argument("--start", required=True, help="ISO 8601 instant, or a local date")
    sp.add_argument("--days", type=float, required=True, help="days to simulate")
    sp.add_argument("--outage", action="append", default=[], help="daemon down: START/DURATION, e.g. 2027-03-26T17:00:00+00:00/PT2H")
    sp.add_argument("--naive", action="store_true", help="one change per transition, at the transition")
    sp.add_argument("--drift", help="at this time, change every number by hand (another target), as in the aql portal")
    sp.add_argument("--json", action="store_true", help="print figures as JSON")
    sp.set_defaults(func=cmd_simulate)
    sp = with_config("apply", "one reconcile pass now, then exit (non-zero if a number is not confirmed)")
    sp.set_defaults(func=cmd_apply)
    sp = with_config("status", "each number: what the account has, what it should have, the next change")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_status)
    sp = with_config("history", "show the journal: changes, read-backs, alerts, calendar refreshes")
    sp.add_argument("--number", help="only this voipnumber")
    sp.add_argument("--since", help="a date (2026-12-01), a local 'YYYY-MM-DD HH:MM', or ISO 8601 with offset")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_history)
    ov = sub.add_parser("override", help="one-off overrides: add, list, cancel",
                        description="One-off overrides: who gets a number's calls for a while, whatever the "
                                    "calendars say. A running daemon applies them within seconds.")
    ovs = ov.add_subparsers(dest="action", required=True, metavar="ACTION")

    def ov_parser(name: str, help: str) -> argparse.ArgumentParser:
        sp = ovs.add_parser(name, help=help, description=help)
        sp.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
        sp.set_defaults(func=cmd_override)
        return sp

    sp = ov_parser("add", "send a number's calls to someone (or nowhere) from --from until --until")
    sp.add_argument("number", metavar="NUMBER", help="the voipnumber (or the number's name)")
    sp.add_argument("--to", required=True, help="a person from [people], a phone number, or off")
    sp.add_argument("--from", dest="start", help="when it starts (default now): ISO 8601, 'YYYY-MM-DD HH:MM', +90m")
    sp.add_argument("--until", required=True, help="when it ends: ISO 8601, 'YYYY-MM-DD HH:MM' (local), +2h")
    sp.add_argument("--note", help="why, for the journal, the plan and the page")
    sp = ov_parser("list", "the overrides in force or to come")
    sp.add_argument("--all", action="store_true", help="past and cancelled ones too")
    sp.add_argument("--json", action="store_true")
    sp = ov_parser("cancel", "cancel an override (by the ID add printed)")
    sp.add_argument("id", metavar="ID", type=int)
    sp = sub.add_parser("fake-aql", help="serve a fake aql account on 127.0.0.1 (for tests and trials)")
    sp.add_argument("--port", type=int, default=8080)
    sp.add_argument("--numbers", default="606309", help="comma-separated VoIP numbers")
    sp.add_argument("--username", default="acme")
    sp.add_argument("--password-env", help="environment variable holding the password (default 'secret')")
    sp.add_argument("--wraps", action="store_true", help="accept forwardstart > forwardend")
    sp.set_defaults(func=cmd_fake_aql)
    from .initcmd import add_init_parser  # forwardd init (issue 21), to move into the CLI package

    add_init_parser(sub)
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
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("forwardd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `forwardd plan | head`: the reader left; that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())



