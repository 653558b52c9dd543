"""Reading feeds: how much forwardd's reading costs over the bare parse, how much memory the calendar
worker needs for a huge feed, and how many workers read the corpus fastest on this machine.

Prints JSON: each figure as min, median and max of BENCH_RUNS runs (default 3), each run in a fresh
process so that every one is as cold as the daemon's first read.

- ``bare_parse_s``: icalendar's ``Calendar.from_ical`` over every feed of the benchmark corpus
  (``corpus.py``: 50 rota calendars, 6,400 VEVENTs), the floor;
- ``expansion_s``: forwardd's ``expand`` of the same feeds over the window the daemon asks for (a day
  behind, the 14-day horizon, a week ahead): repairs, parse, policies, series and occurrences;
- ``expansion_over_parse``: their ratio, per run (the runs are paired in order) and of the medians;
- ``worker_peak_rss_mb_100k``: the calendar worker's own peak RSS (``RUSAGE_CHILDREN`` of a fresh parent
  that only runs the worker) reading a generated feed of 100,000 one-off events inside the window, and
  the parent's own peak (what the daemon holds once it has the occurrences);
- ``workers``: the corpus read through ``WorkerExpander`` with 1 to 4 worker processes, all 50 feeds
  asked for at once as a daemon's start-up does (the workers' start-up counted).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus import write_corpus  # noqa: E402
from procs import hwm_mb  # noqa: E402

NOW = dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)
# the window Sources asks a worker for: a day behind, the 14-day horizon, a week ahead
WINDOW = (NOW.replace(minute=0) - dt.timedelta(days=1), NOW.replace(minute=0) + dt.timedelta(days=21))
BIG_EVENTS = 100_000


def big_feed(n: int = BIG_EVENTS) -> bytes:
    """``n`` one-off events (Google's shape: a VTIMEZONE, TZID'd times, UIDs, stamps, a description)
    spread over the window, each 20 minutes to 3 hours long."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//forwardd benchmark//big feed//EN",
             "X-WR-CALNAME:Busy desk", "X-WR-TIMEZONE:Europe/London",
             "BEGIN:VTIMEZONE", "TZID:Europe/London", "BEGIN:DAYLIGHT", "TZOFFSETFROM:+0000", "TZOFFSETTO:+0100",
             "TZNAME:BST", "DTSTART:19700329T010000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
             "BEGIN:STANDARD", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0000", "TZNAME:GMT", "DTSTART:19701025T020000",
             "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD", "END:VTIMEZONE"]
    span = int((WINDOW[1] - WINDOW[0]).total_seconds()) - 4 * 3600
    for i in range(n):
        start = (WINDOW[0] + dt.timedelta(seconds=(i * 7919 * 61) % span)).astimezone(dt.timezone.utc)
        end = start + dt.timedelta(minutes=20 + (i * 37) % 160)
        lines += ["BEGIN:VEVENT", f"UID:busy-{i}@bench.forwardd", "DTSTAMP:20261101T120000Z",
                  f"DTSTART;TZID=Europe/London:{start:%Y%m%dT%H%M%S}", f"DTEND;TZID=Europe/London:{end:%Y%m%dT%H%M%S}",
                  f"SUMMARY:On call: person{i % 40:02d}", "DESCRIPTION:Cover for the desk\\, see the handover notes.",
                  "END:VEVENT"]
    return ("\r\n".join([*lines, "END:VCALENDAR", ""])).encode()


# ------------------------------------------------------------------------------ fresh-process children

def _parse_child(folder: str) -> dict:
    import icalendar

    blobs = [p.read_bytes() for p in sorted(Path(folder).glob("*.ics"))]
    t = time.perf_counter()
    for b in blobs:
        icalendar.Calendar.from_ical(b)
    return {"seconds": time.perf_counter() - t}


def _expand_child(folder: str) -> dict:
    from zoneinfo import ZoneInfo

    from forwardd.calendars.expand import expand
    from forwardd.calendars.limits import Limits

    tz = ZoneInfo("Europe/London")
    files = sorted(Path(folder).glob("*.ics"))
    blobs = [(p.stem, p.read_bytes()) for p in files]
    t = time.perf_counter()
    events = sum(len(expand(name, b, tz, *WINDOW, Limits()).events) for name, b in blobs)
    return {"seconds": time.perf_counter() - t, "occurrences": events}


def _worker_child(path: str) -> dict:
    """Read one feed through one worker process; the worker's peak RSS is this process's children's."""
    import asyncio
    import resource
    from zoneinfo import ZoneInfo

    from forwardd.calendars.limits import Limits
    from forwardd.calendars.worker import WorkerExpander

    data = Path(path).read_bytes()

    async def go() -> tuple[float, int]:
        ex = WorkerExpander(processes=1)
        t = time.perf_counter()
        got = await ex.expand("big", data, ZoneInfo("Europe/London"), *WINDOW, Limits(max_occurrences=10 * BIG_EVENTS))
        took = time.perf_counter() - t
        await ex.aclose()
        return took, len(got.events)

    took, events = asyncio.run(go())
    return {"seconds": took, "occurrences": events,
            "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "parent_peak_rss_mb": hwm_mb("self")}  # (its own: RUSAGE_SELF would carry the bench's from before exec)


def _pool_child(folder: str, processes: str) -> dict:
    """All the corpus' feeds asked for at once through ``processes`` workers, as at a daemon's start-up."""
    import asyncio
    from zoneinfo import ZoneInfo

    from forwardd.calendars.limits import Limits
    from forwardd.calendars.worker import WorkerExpander

    blobs = [(p.stem, p.read_bytes()) for p in sorted(Path(folder).glob("*.ics"))]
    tz = ZoneInfo("Europe/London")

    async def go() -> float:
        ex = WorkerExpander(processes=int(processes))
        t = time.perf_counter()
        await asyncio.gather(*(ex.expand(name, b, tz, *WINDOW, Limits()) for name, b in blobs))
        took = time.perf_counter() - t
        await ex.aclose()
        return took

    return {"seconds": asyncio.run(go())}


CHILDREN = {"--parse-child": _parse_child, "--expand-child": _expand_child, "--worker-child": _worker_child,
            "--pool-child": _pool_child}


def child(kind: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, kind, *args], capture_output=True, text=True, check=True)
    doc: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return doc


def spread(values: list[float], digits: int = 3) -> dict:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits), "runs": [round(v, digits) for v in values]}


def main(runs: int = 3, parts: tuple[str, ...] = ("ratio", "memory", "workers")) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="forwardd-bench-feeds-"))
    try:
        return _figures(folder, runs, parts)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the 100,000-event feed is 25 MB


def _figures(folder: Path, runs: int, parts: tuple[str, ...]) -> dict:
    write_corpus(folder)
    cals = str(folder / "calendars")
    figures: dict = {"runs": runs}
    if "ratio" in parts:
        parse, expand, occurrences = [], [], 0
        for _ in range(runs):  # alternated, so that a noisy spell of the machine touches both
            parse.append(child("--parse-child", cals)["seconds"])
            got = child("--expand-child", cals)
            expand.append(got["seconds"])
            occurrences = got["occurrences"]
        figures["corpus_occurrences_in_window"] = occurrences
        figures["bare_parse_s"] = spread(parse)
        figures["expansion_s"] = spread(expand)
        figures["expansion_over_parse"] = {**spread([e / p for e, p in zip(expand, parse)], 2),
                                           "of_medians": round(statistics.median(expand) / statistics.median(parse), 2)}
    if "memory" in parts:
        big = folder / "big.ics"
        big.write_bytes(big_feed())
        got = [child("--worker-child", str(big)) for _ in range(runs)]
        figures["big_feed"] = {"events": BIG_EVENTS, "bytes": big.stat().st_size,
                               "occurrences": got[0]["occurrences"]}
        figures["worker_peak_rss_mb_100k"] = spread([g["worker_peak_rss_mb"] for g in got], 1)
        figures["parent_peak_rss_mb_100k"] = spread([g["parent_peak_rss_mb"] for g in got], 1)
        figures["worker_read_s_100k"] = spread([g["seconds"] for g in got], 2)
    if "workers" in parts:
        figures["workers_corpus_s"] = {
            str(n): spread([child("--pool-child", cals, str(n))["seconds"] for _ in range(runs)])
            for n in (1, 2, 3, 4)}
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in CHILDREN:
        print(json.dumps(CHILDREN[sys.argv[1]](*sys.argv[2:])))
    else:
        chosen = tuple(sys.argv[1:]) or ("ratio", "memory", "workers")
        print(json.dumps(main(int(os.environ.get("BENCH_RUNS", "3")), chosen), indent=2))
