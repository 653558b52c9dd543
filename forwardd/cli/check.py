"""``forwardd check``: the config, the state directory, every calendar, the plan's warnings for the days
ahead, and with ``--online`` each account's numbers."""

from __future__ import annotations

import argparse
import datetime as dt

from ..config import SIMULATED, aql_password
from ..core.timeline import FindingKind, Kind
from ..core.words import duration
from ..errors import CarrierError, ConfigError, ForwarddError
from ..service.budget import drift_interval, drift_note
from ..service.planning import horizon_start
from ..service.services import Services
from ..store.statedir import check_state_dir
from .cluster import cluster_line, cluster_status
from .common import load, person_words, state_words, when, with_services


def cmd_check(args: argparse.Namespace) -> int:
    cfg = load(args)
    if args.days <= 0:
        raise ForwarddError(f"--days {args.days:g}: look at least some time ahead (default 60)")
    print(f"config {args.config}: OK ({len(cfg.numbers)} number(s), {len(cfg.calendars)} calendar(s))")
    errors = 0
    state = cfg.resolve_state_dir()
    try:
        check_state_dir(state)
        print(f"state directory {state}: OK ({state_words(cfg)})")
    except ForwarddError as err:
        print(f"ERROR {err} ({state_words(cfg)})")
        errors += 1
    if cfg.cluster is not None:
        try:
            cluster = with_services(cfg, cluster_status, journal="read")
        except ConfigError as err:
            cluster = {"problem": "; ".join(reason for _, reason in err.problems), "database": cfg.cluster.database}
        if cluster is not None and cluster["problem"]:
            print(f"ERROR cluster database {cluster['database']}: {cluster['problem']}")
            errors += 1
        elif cluster is not None:
            print(f"cluster database {cluster['database']}: OK; {cluster_line(cfg, cluster).removeprefix('cluster: ')}")
    for name in cfg.account_names:  # how often each line is read for hand-made changes, and why if longer
        settings = cfg.account(name)
        count = len(cfg.numbers_of(name))
        every = drift_interval(count, cfg.daemon.drift_check_every, settings.max_requests_per_minute)
        note = drift_note(count, cfg.daemon.drift_check_every, settings.max_requests_per_minute)
        where = f"account {name}" if len(cfg.account_names) > 1 else "drift checks"
        print(f"{where}: {'warning: ' + note if note else f'each of {count:,} line(s) read every {duration(every.total_seconds())}'}")
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
            span = (f"{when(evs[0].start, cfg, year=True)} .. {when(evs[-1].end, cfg, year=True)}"
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
                    print(f"number {n.voipnumber}: note: nobody on call {when(s.start, cfg)} .. {when(s.end, cfg)}; "
                          f"the fallback {person_words(cfg, s.target, s.person)} takes the calls")
        if args.online:
            found += await _check_online(sv)
        return found

    errors += with_services(cfg, body, aql=args.online)
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


