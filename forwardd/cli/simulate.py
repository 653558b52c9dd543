"""``forwardd simulate``: the daemon's rules on a virtual clock against the simulated account."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json

from ..core.words import duration
from ..errors import ForwarddError
from .common import load, now, parse_when, when


def cmd_simulate(args: argparse.Namespace) -> int:
    from ..service.simulate import Outage, simulate

    cfg = load(args)
    if args.days <= 0:
        raise ForwarddError(f"--days {args.days:g}: simulate more than 0 days")
    start = parse_when(args.start, cfg, "--start", now())
    try:
        outages = [Outage.parse(o) for o in args.outage]
    except ValueError as err:
        raise ForwarddError(f"--outage: {err}") from None
    drift_at = parse_when(args.drift, cfg, "--drift", now()) if args.drift else None
    result = asyncio.run(simulate(cfg, start, args.days, outages, naive=args.naive, drift_at=drift_at))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    span = (f"{when(dt.datetime.fromisoformat(result['start']), cfg, year=True)} .. "
            f"{when(dt.datetime.fromisoformat(result['end']), cfg, year=True)}")
    print(f"simulated {result['mode']} {span}, {len(outages)} outage(s)")
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


