"""Benchmark 5, planning cost against the number of events: one number whose rota has 1,250 to 10,000
events in a 14-day horizon (random times and lengths among 20 people, so many overlap), planned through
the Planner as the daemon does (timeline, overlap resolution, window compiler). Prints the median of
several runs per size and the growth factor each time the events double: about 2 is n log n, about 4
would be quadratic. Target: 10,000 events planned in at most 2 s."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import time

from forwardd.config import config_from_dict
from forwardd.core.plan import CalendarEvents, Planner
from forwardd.core.timeline import Event
from forwardd.service.lines import line_specs

UTC = dt.timezone.utc
START = dt.datetime(2026, 12, 1, tzinfo=UTC)
HORIZON = dt.timedelta(days=14)
PEOPLE = {f"person{i:02d}": f"07700 900{100 + i:03d}" for i in range(20)}


def rota(n: int, seed: int = 1) -> CalendarEvents:
    rng = random.Random(seed)
    span = HORIZON.total_seconds()
    events = []
    for i in range(n):
        a = START + dt.timedelta(seconds=int(rng.uniform(0, span)))
        b = a + dt.timedelta(seconds=int(rng.uniform(60, 1800)))
        events.append(Event(a, b, f"On call: person{rng.randrange(20):02d}", uid=f"ev{i}", calendar="rota"))
    events.sort(key=lambda e: (e.start, e.end, e.uid))
    return CalendarEvents("rota", f"bench-{n}-{seed}", tuple(events))


def main(runs: int = 3) -> dict:
    cfg = config_from_dict({"people": PEOPLE, "calendars": {"rota": {"source": "https://example.invalid/rota.ics"}},
                            "numbers": [{"voipnumber": "606309", "rota": "rota", "office_hours": ["Mon-Fri 09:00-17:30"],
                                         "fallback": "07700 900999"}]}, env={})
    sizes = [1250, 2500, 5000, 10000]
    rows = []
    for n in sizes:
        cal = rota(n)
        times = []
        for _ in range(runs):
            planner = Planner(line_specs(cfg), cfg.tz)  # nothing memoised between runs
            t = time.perf_counter()
            plan = planner.plan({"rota": cal}, START, START + HORIZON)
            times.append(time.perf_counter() - t)
        number = plan.numbers[0]
        rows.append({"events": n, "segments": len(number.segments), "changes": len(number.changes),
                     "median_s": round(statistics.median(times), 3), "runs_s": [round(x, 3) for x in times]})
    growth = [round(b["median_s"] / a["median_s"], 2) for a, b in zip(rows, rows[1:])]
    return {"horizon_days": HORIZON.days, "sizes": rows, "growth_per_doubling": growth,
            "target": "10,000 events in <= 2 s; growth ~2 per doubling (n log n), not ~4"}


if __name__ == "__main__":
    print(json.dumps(main(int(os.environ.get("BENCH_RUNS", "3"))), indent=2))
