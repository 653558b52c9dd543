"""Benchmark 6, the page at scale: the week view of 1,000 numbers over a 14-day horizon (the corpus of
bench_plan.py, planned through Services as the daemon plans it).

Prints medians of several runs of what the daemon does for a request of ``/`` (build the week's view
model from the plan, render the HTML), and, beside it, the one-number page, ``/status`` for all
numbers, and the whole ``plan --html`` file (both weeks), with the sizes of what is sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus import write_corpus  # noqa: E402

NOW = dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


async def plan_corpus(folder: Path) -> tuple[Any, Any]:
    from forwardd.calendars.worker import InProcessExpander
    from forwardd.clock import VirtualClock
    from forwardd.config import load_config
    from forwardd.service.services import Services

    cfg = load_config(write_corpus(folder), env={"BENCH_AQL_PASSWORD": "x"}).model_copy(
        update={"state_dir": folder / "state"})
    sv = await Services.open(cfg, clock=VirtualClock(NOW), expander=InProcessExpander())
    try:
        await sv.refresh_calendars()
        plan = await sv.make_plan(NOW)
    finally:
        await sv.close()
    assert len(plan.numbers) == 1000 and not any(n.error for n in plan.numbers)
    return cfg, plan


def main(runs: int = 5) -> dict[str, Any]:
    from forwardd.web.render import plan_page, status_page, week_page
    from forwardd.web.views import Snapshot, status_view, week_view

    folder = Path(tempfile.mkdtemp(prefix="forwardd-bench-page-"))
    cfg, plan = asyncio.run(plan_corpus(folder))
    now = NOW + dt.timedelta(minutes=30)

    def page() -> bytes:  # what GET / does once it has the snapshot
        return week_page(cfg, [week_view(cfg, plan, 0, now=now)], plan, served=True).encode()

    def one() -> bytes:
        return week_page(cfg, [week_view(cfg, plan, 0, now=now, number="600007")], plan, served=True).encode()

    confirmed = {n.voipnumber: {"forwardto": "07700900100", "forwardactive": "1", "forwardstart": "00:00:00",
                                "forwardend": "23:59:59", "forwardcli": "1"} for n in cfg.numbers}
    snap = Snapshot(cfg, now, plan, confirmed=confirmed, read_at={v: now for v in confirmed})

    def status() -> bytes:
        return status_page(status_view(snap)).encode()

    page()  # templates compiled once, as in a running daemon
    view_s, _ = timed(lambda: week_view(cfg, plan, 0, now=now), runs)
    page_s, body = timed(page, runs)
    one_s, one_body = timed(one, runs)
    status_s, status_body = timed(status, runs)
    file_s, file_body = timed(lambda: plan_page(cfg, plan).encode(), max(3, runs // 2))
    return {
        "corpus": {"numbers": len(cfg.numbers), "horizon_days": 14, "segments": sum(len(n.segments) for n in plan.numbers)},
        "week_page_all_numbers_s": round(page_s, 3),
        "of_which_view_model_s": round(view_s, 3),
        "week_page_bytes": len(body),
        "one_number_page_s": round(one_s, 4),
        "one_number_page_bytes": len(one_body),
        "status_page_all_numbers_s": round(status_s, 3),
        "status_page_bytes": len(status_body),
        "plan_html_both_weeks_s": round(file_s, 3),
        "plan_html_bytes": len(file_body),
        "runs": runs,
        "targets": {"week_page_all_numbers_s": "< 0.5"},
    }


if __name__ == "__main__":
    print(json.dumps(main(int(os.environ.get("BENCH_RUNS", "5"))), indent=2))
