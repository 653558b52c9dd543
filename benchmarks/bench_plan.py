"""Benchmark 1, plan at scale: 1,000 numbers sharing 50 rota calendars (a year of weekly RRULEs with
EXDATEs and moved instances) plus built-in bank holidays, 14-day horizon.

Prints medians of several runs: bare icalendar parse of the corpus in a fresh process (the floor, as
cold as the plans it is compared with; the warm in-process figure is printed too); a cold full plan in a
fresh process as the daemon makes it (with a state directory) and without one, each as a ratio to the
floor; a restart with unchanged feeds; a warm re-plan for a new horizon (nothing memoised but the
calendars); a re-plan of the same horizon; a re-plan after one calendar changes; the peak RSS of a
cold plan (the daemon process's own high-water mark, VmHWM, and its calendar worker's: never a figure
inherited from this parent); and the warm re-plan again on a corpus where every number has a fallback of
its own, so no two of the 1,000 plans are alike.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus import write_corpus  # noqa: E402
from procs import calendar_worker, hwm_mb  # noqa: E402

NOW = dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)


async def atimed(fn, runs: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def timed(fn, runs: int) -> tuple[float, list[float]]:  # noqa: ANN001
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def _cold_plan_child(cfg_path: str, state: str) -> None:
    """Run in a fresh process: open the services as the daemon does (the calendars are expanded in the
    worker process), refresh every feed and plan; print time and peak RSS of this process."""
    import asyncio

    from forwardd.clock import VirtualClock
    from forwardd.config import load_config
    from forwardd.service.services import Services

    cfg = load_config(cfg_path, env={"BENCH_AQL_PASSWORD": "x"}).model_copy(update={"state_dir": Path(state)})

    async def go() -> tuple[float, float | None]:
        t = time.perf_counter()
        sv = await Services.open(cfg, clock=VirtualClock(NOW))
        await sv.refresh_calendars()
        plan = await sv.make_plan(NOW)
        took = time.perf_counter() - t
        assert len(plan.numbers) == len(cfg.numbers) and not any(n.error for n in plan.numbers)
        worker_pid = calendar_worker(os.getpid())
        worker = hwm_mb(worker_pid) if worker_pid else None
        await sv.close()
        return took, worker

    took, worker = asyncio.run(go())
    print(json.dumps({"seconds": took, "peak_rss_mb": hwm_mb("self"), "worker_peak_rss_mb": worker}))


def _parse_child(folder: str) -> None:
    """Run in a fresh process: parse every feed with icalendar alone (the floor, measured as cold as
    the plans are)."""
    import icalendar

    blobs = [p.read_bytes() for p in sorted(Path(folder).glob("*.ics"))]
    t = time.perf_counter()
    for b in blobs:
        icalendar.Calendar.from_ical(b)
    print(json.dumps({"seconds": time.perf_counter() - t}))


def child(cfg: Path, state: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(cfg), str(state)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(runs: int = 3) -> dict:
    import asyncio

    import icalendar

    return asyncio.run(_main(runs, icalendar))


async def _main(runs: int, icalendar) -> dict:  # noqa: ANN001
    from forwardd.core.plan import Planner
    from forwardd.service.lines import line_specs

    folder = Path(tempfile.mkdtemp(prefix="forwardd-bench-"))
    cfg_path = write_corpus(folder)
    files = sorted((folder / "calendars").glob("*.ics"))
    blobs = [p.read_bytes() for p in files]
    size = sum(map(len, blobs))
    events = sum(len(icalendar.Calendar.from_ical(b).walk("VEVENT")) for b in blobs)
    parse_warm, _ = timed(lambda: [icalendar.Calendar.from_ical(b) for b in blobs], runs)
    parse = statistics.median(
        json.loads(subprocess.run([sys.executable, __file__, "--parse-child", str(folder / "calendars")],
                                  capture_output=True, text=True, check=True).stdout)["seconds"]
        for _ in range(runs))

    # as the daemon runs it, with a state directory: a fresh one expands every feed (and remembers the
    # occurrences), an existing one with unchanged feeds is a restart
    fresh_runs = [child(cfg_path, folder / f"state-{k}") for k in range(runs)]
    fresh = statistics.median(r["seconds"] for r in fresh_runs)
    rss = max(r["peak_rss_mb"] for r in fresh_runs)
    worker_rss = max((r["worker_peak_rss_mb"] or 0) for r in fresh_runs)
    restart = statistics.median(child(cfg_path, folder / "state-0")["seconds"] for _ in range(runs))

    sv, cfg, new_horizon = await planned(cfg_path, folder / "state-live")
    warm_new = await atimed(new_horizon, 2 * runs + 1)
    planner = sv.planner = Planner(line_specs(cfg), cfg.tz)
    await sv.make_plan(NOW)
    warm_same = await atimed(lambda: sv.make_plan(NOW), 2 * runs + 1)

    target = files[7]
    original = target.read_bytes()
    flips = iter(range(1000))

    async def one_changed() -> None:
        k = next(flips)
        target.write_bytes(original.replace(b"(swapped)", f"(swapped {k})".encode()))
        assert await sv.sources.refresh("rota07", NOW) is True
        assert sv.planner is planner
        await sv.make_plan(NOW)

    await one_changed()
    after_one = await atimed(one_changed, 2 * runs + 1)
    target.write_bytes(original)
    await sv.close()
    distinct = await distinct_replan(folder / "distinct", runs)

    figures = {
        "corpus": {"calendars": len(files), "bytes": size, "events": events, "numbers": len(cfg.numbers),
                   "horizon_days": cfg.daemon.horizon.days},
        "bare_parse_s": round(parse, 3),
        "bare_parse_warm_in_process_s": round(parse_warm, 3),
        "cold_full_plan_s": round(fresh, 3),
        "cold_plan_over_parse": round(fresh / parse, 2),
        "cold_plan_peak_rss_mb_daemon_process": round(rss, 1),
        "cold_plan_peak_rss_mb_calendar_worker": round(worker_rss, 1),
        "restart_unchanged_feeds_s": round(restart, 3),
        "restart_over_parse": round(restart / parse, 2),
        "warm_replan_new_horizon_s": round(warm_new, 3),
        "warm_replan_same_horizon_s": round(warm_same, 3),
        "replan_after_one_calendar_changed_s": round(after_one, 3),
        "distinct_plans": distinct,
        "targets": {"cold_plan_over_parse": "<= 1.5", "warm_replan_s": "<= 0.5", "replan_after_one_change_s": "<= 0.2"},
    }
    return figures


async def planned(cfg_path: Path, state_dir: Path) -> tuple[Any, Any, Callable[[], Awaitable[None]]]:
    """Services planned once on the config (feeds expanded in this process), with a function that makes
    a plan for a new horizon with a fresh Planner, so only the calendars' occurrences are reused."""
    from forwardd.calendars.worker import InProcessExpander
    from forwardd.clock import VirtualClock
    from forwardd.config import load_config
    from forwardd.core.plan import Planner
    from forwardd.service.lines import line_specs
    from forwardd.service.services import Services

    cfg = load_config(cfg_path, env={"BENCH_AQL_PASSWORD": "x"}).model_copy(update={"state_dir": state_dir})
    sv = await Services.open(cfg, clock=VirtualClock(NOW), expander=InProcessExpander())
    await sv.refresh_calendars()
    await sv.make_plan(NOW)
    shifts = iter(range(1, 1000))

    async def new_horizon() -> None:
        sv.planner = Planner(line_specs(cfg), cfg.tz)
        await sv.make_plan(NOW + dt.timedelta(hours=next(shifts)))

    return sv, cfg, new_horizon


async def distinct_replan(folder: Path, runs: int) -> dict:
    """The warm re-plan for a new horizon when every number has a fallback of its own (1,000 distinct
    plans, where the corpus's 1,000 numbers share 200)."""
    sv, cfg, new_horizon = await planned(write_corpus(folder, distinct=True), folder / "state")
    try:
        times = []
        for _ in range(2 * runs + 1):
            t = time.perf_counter()
            await new_horizon()
            times.append(time.perf_counter() - t)
        fallbacks = len({n.fallback for n in cfg.numbers})
    finally:
        await sv.close()
    return {"numbers": len(cfg.numbers), "distinct_fallbacks": fallbacks,
            "warm_replan_new_horizon_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3), "max_s": round(max(times), 3)}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _cold_plan_child(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--parse-child":
        _parse_child(sys.argv[2])
    else:
        print(json.dumps(main(int(os.environ.get("BENCH_RUNS", "3"))), indent=2))
