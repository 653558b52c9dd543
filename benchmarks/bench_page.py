"""Benchmark 6, the page at scale: ``/``, ``/status`` and ``/healthz`` at 1,000, 2,000, 5,000 and 10,000
numbers over a 14-day horizon (the corpus of bench_plan.py, ``corpus.write_corpus(numbers=N)``, planned
through Services as the daemon plans it).

Each request goes through the page's WSGI application (``forwardd.web.app.App``) as a request does once
it has taken the snapshot: cold (the first request after a new snapshot: the view model, the HTML, and
for ``gzip`` its compression) and cached (the same page again before the next snapshot). Figures are
medians of several runs, with their min and max; sizes are the bytes sent, raw and gzipped, and the
number of HTML elements. ``/status`` and ``/healthz`` are also measured during a start-up (3,200 of the
numbers confirmed), and the whole ``plan --html`` file (every line, both weeks) beside them.

Other benchmarks can call ``measure(numbers)`` (one corpus size) or ``main(sizes)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus import write_corpus  # noqa: E402

NOW = dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)
SIZES = (1000, 2000, 5000, 10000)
PAGES = {"/": "", "/status": "", "/healthz": "", "/?number=600007": "number=600007"}
_TAG = re.compile(rb"<[a-zA-Z]")


async def plan_corpus(folder: Path, numbers: int = 1000) -> tuple[Any, Any]:
    """The corpus of ``numbers`` numbers written into ``folder`` and planned as the daemon plans it:
    (config, plan)."""
    from forwardd.calendars.worker import InProcessExpander
    from forwardd.clock import VirtualClock
    from forwardd.config import load_config
    from forwardd.service.services import Services

    cfg = load_config(write_corpus(folder, numbers=numbers), env={"BENCH_AQL_PASSWORD": "x"}).model_copy(
        update={"state_dir": folder / "state"})
    sv = await Services.open(cfg, clock=VirtualClock(NOW), expander=InProcessExpander())
    try:
        await sv.refresh_calendars()
        plan = await sv.make_plan(NOW)
    finally:
        await sv.close()
    assert len(plan.numbers) == numbers and not any(n.error for n in plan.numbers)
    return cfg, plan


def _stats(times: list[float]) -> dict[str, float]:
    """Median, min and max of ``times`` (seconds), in milliseconds."""
    return {"median": round(1000 * statistics.median(times), 3), "min": round(1000 * min(times), 3),
            "max": round(1000 * max(times), 3)}


class _Client:
    """Calls the WSGI app as the server would, and times it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def get(self, path: str, gz: bool = False) -> tuple[float, int, bytes]:
        route, _, query = path.partition("?")
        got: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            got["status"] = int(status.split()[0])

        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": route, "QUERY_STRING": query, "HTTP_HOST": "127.0.0.1",
                   **({"HTTP_ACCEPT_ENCODING": "gzip"} if gz else {})}
        t = time.perf_counter()
        body = b"".join(self.app(environ, start_response))
        return time.perf_counter() - t, got["status"], body


def _page(client: _Client, publish: Callable[[], None], path: str, runs: int) -> dict[str, Any]:
    """``path`` cold (a new snapshot before each run), cached, and cold with gzip."""
    cold, cached, cold_gz = [], [], []
    status, body, gz_body = 0, b"", b""
    for _ in range(runs):
        publish()
        s, status, body = client.get(path)
        cold.append(s)
        cached.append(client.get(path)[0])
        publish()
        s, _, gz_body = client.get(path, gz=True)
        cold_gz.append(s)
    return {"status": status, "bytes": len(body), "bytes_gzip": len(gz_body), "elements": len(_TAG.findall(body)),
            "cold_ms": _stats(cold), "cached_ms": _stats(cached), "cold_gzip_ms": _stats(cold_gz)}


def measure(numbers: int, runs: int = 5, folder: Path | None = None) -> dict[str, Any]:
    """The page at ``numbers`` numbers: for ``/``, ``/status``, ``/healthz`` and one number's week, the
    bytes (raw and gzipped), the elements, and the time of a request cold, cached and cold with gzip
    (medians of ``runs``, with min and max); and ``/status`` and ``/healthz`` during a start-up."""
    from forwardd.web.app import App
    from forwardd.web.render import plan_page
    from forwardd.web.snapshot import Snapshot, Starting

    folder = folder or Path(tempfile.mkdtemp(prefix=f"forwardd-bench-page-{numbers}-"))
    t = time.perf_counter()
    cfg, plan = asyncio.run(plan_corpus(folder, numbers))
    plan_s = time.perf_counter() - t
    now = NOW + dt.timedelta(minutes=30)
    fields = {"forwardto": "07700900100", "forwardactive": "1", "forwardstart": "00:00:00", "forwardend": "23:59:59",
              "forwardcli": "1"}
    confirmed = {n.voipnumber: fields for n in cfg.numbers}
    current = [Snapshot(cfg, now, plan, confirmed=confirmed, read_at={v: now for v in confirmed}, version=1)]

    def publish() -> None:  # what the engine does after something changes: a new snapshot, a new version
        current[0] = dataclasses.replace(current[0], version=current[0].version + 1)

    client = _Client(App(lambda: current[0]))
    client.get("/")  # templates compiled once, as in a running daemon
    pages = {path: _page(client, publish, path, runs) for path in PAGES}
    started = dict(list(confirmed.items())[: numbers * 8 // 25])  # 3,200 of 10,000
    current[0] = Snapshot(cfg, now, plan, confirmed=started, read_at={v: now for v in started},
                          unconfirmed=frozenset(set(confirmed) - set(started)),
                          starting=Starting(len(started), numbers), version=current[0].version + 1)
    starting = {path: _page(client, publish, path, runs) for path in ("/status", "/healthz")}
    file_times, file_body = [], b""
    for _ in range(max(2, runs // 2)):  # every line, both weeks: what ``forwardd plan --html`` writes
        t = time.perf_counter()
        file_body = plan_page(cfg, plan).encode()
        file_times.append(time.perf_counter() - t)
    return {"numbers": numbers, "segments": sum(len(n.segments) for n in plan.numbers), "plan_s": round(plan_s, 2),
            "pages": pages, "starting": starting,
            "plan_html": {"bytes": len(file_body), "elements": len(_TAG.findall(file_body)), "ms": _stats(file_times)}}


def main(sizes: Sequence[int] = SIZES, runs: int = 5) -> dict[str, Any]:
    """``measure`` at each of ``sizes``, and the targets."""
    return {"sizes": [measure(n, runs) for n in sizes], "runs": runs,
            "targets": {"/ and /status bytes": "< 1 MB at 10,000 numbers", "/ and /status cold_ms": "< 500",
                        "/healthz, / and /status at any moment": "< 1 s"}}


if __name__ == "__main__":
    sizes = tuple(int(s) for s in os.environ.get("BENCH_SIZES", ",".join(map(str, SIZES))).split(","))
    print(json.dumps(main(sizes, int(os.environ.get("BENCH_RUNS", "5"))), indent=2))
