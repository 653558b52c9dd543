"""Benchmark 3, resilience vs naive: a simulated month of the example rota with random daemon outages
(10% of the time, in 30-minute pieces, seeded), forwardd and --naive side by side in one run.

Misrouted seconds are split into those that fall in the first minutes after an exact hand-over (a change
of target while forwarding continues: no program can pre-arm it, so an outage there costs calls whatever
the daemon does) and the rest, which forwardd should keep at zero."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
from pathlib import Path

from forwardd.calendars.worker import InProcessExpander
from forwardd.clock import VirtualClock
from forwardd.config import load_config
from forwardd.logs import configure
from forwardd.service.services import Services
from forwardd.service.simulate import Outage, simulate

ROOT = Path(__file__).resolve().parents[1]
START = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def outages(seed: int, start: dt.datetime, days: int, share: float = 0.10, piece_min: int = 30) -> list[Outage]:
    rng = random.Random(seed)
    pieces = days * 24 * 60 // piece_min
    chosen = sorted(rng.sample(range(pieces), int(pieces * share)))
    step = dt.timedelta(minutes=piece_min)
    return [Outage(start + k * step, start + (k + 1) * step) for k in chosen]


def exact_exposure(plan, outs: list[Outage]) -> int:  # noqa: ANN001
    """How many exact hand-overs fell inside an outage (those cannot be saved by any daemon)."""
    hits = 0
    for n in plan.numbers:
        for c in n.changes[1:]:
            if c.exact and any(o.start <= c.apply_from < o.end for o in outs):
                hits += 1
    return hits


async def plan_of(cfg, days: int):  # noqa: ANN001, ANN201
    """The month's plan, to count the exact hand-overs each run's outages hit."""
    sv = await Services.open(cfg, clock=VirtualClock(START), expander=InProcessExpander())
    try:
        await sv.refresh_calendars()
        return await sv.make_plan(START, days=days)
    finally:
        await sv.close()


def main(seeds: int = 5, days: int = 30) -> dict:
    import asyncio

    configure("warning")
    cfg = load_config(ROOT / "config" / "example.toml", env={})
    rows = []
    plan = asyncio.run(plan_of(cfg, days))
    for seed in range(seeds):
        outs = outages(seed, START, days)
        smart = asyncio.run(simulate(cfg, START, days, outs))
        naive = asyncio.run(simulate(cfg, START, days, outs, naive=True))
        rows.append({"seed": seed, "outage_h": len(outs) / 2, "exact_handovers_hit": exact_exposure(plan, outs),
                     "forwardd": smart["total"], "naive": naive["total"]})
    return {
        "days": days, "outage_share": 0.10, "piece_minutes": 30, "runs": rows,
        "median_forwardd_misrouted_s": statistics.median(r["forwardd"]["misrouted_s"] for r in rows),
        "median_naive_misrouted_s": statistics.median(r["naive"]["misrouted_s"] for r in rows),
        "median_forwardd_calls": statistics.median(r["forwardd"]["calls"] for r in rows),
        "median_naive_calls": statistics.median(r["naive"]["calls"] for r in rows),
        "target": "forwardd 0 misrouted seconds wherever the timeline allowed slack",
    }


if __name__ == "__main__":
    print(json.dumps(main(int(os.environ.get("BENCH_SEEDS", "5"))), indent=2))
