"""Benchmark: forwardd at 1,000, 2,000, 5,000 and 10,000 numbers on one account (issue 18), on the plan
benchmark's corpus (``corpus.write_corpus``) at default settings. At each size:

- simulate: ``forwardd simulate --days 1 --drift <noon> --json`` as a process of its own: numbers whose
  hand-made change was never seen (must be 0), the worst ``drift_detected_after_s`` against the bound the
  engine said, requests that day, CPU seconds, and the child's own peak RSS (``os.wait4``: that process
  alone, never its parent's);
- start-up: ``forwardd run`` from a fresh state directory against the project's fake aql (its own
  process, 20 ms per request), ``/healthz`` probed every 0.2 s: its worst answer time, the programming
  rate (numbers confirmed per second, read off the journal's read-backs), and the time until healthy;
- stop: another fresh start-up, SIGTERM once a third of the numbers are confirmed: seconds until the
  process exits, its exit code, and whether the journal is whole (``PRAGMA integrity_check``);
- page: ``/`` and ``/status`` bytes and cold render time (``bench_page.measure``).

Then the storm benchmark's rate at 1,000 numbers against the same fake at 20 ms and the corpus's
concurrency, so the start-up rate can be given as a share of it (issue 18: at least 70%).

    .venv/bin/python benchmarks/bench_scale.py                      # every size, 3 runs each
    BENCH_SIZES=1000,2000 BENCH_RUNS=1 .venv/bin/python benchmarks/bench_scale.py

Figures are medians of BENCH_RUNS runs, with min and max. Everything talks only to 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from corpus import write_corpus  # noqa: E402
from procs import run_measured, spread  # noqa: E402

SIZES = (1_000, 2_000, 5_000, 10_000)
START = "2026-12-07T00:00:00+00:00"
DRIFT_AT = "2026-12-07T12:00:00+00:00"
LATENCY = 0.02
PASSWORD = "bench-password"
ENV = {**os.environ, "BENCH_AQL_PASSWORD": PASSWORD, "BENCH_FAKE_PW": PASSWORD}


def simulate_day(cfg: Path) -> dict[str, Any]:
    cpu, rss, text = run_measured([sys.executable, "-m", "forwardd", "simulate", "--config", str(cfg), "--start",
                                   START, "--days", "1", "--drift", DRIFT_AT, "--json"], env=ENV, cwd=ROOT, ok=(0, 1))
    doc = json.loads(text)
    drift = doc["drift"]
    return {"never_seen": drift["never_seen"], "worst_detected_after_s": drift["worst_detected_after_s"],
            "bound_s": drift["bound_s"], "requests": doc["total"]["requests"],
            "cpu_s": cpu, "peak_rss_mb": rss}


class Fake:
    """The project's fake aql server, its own process, with every number of the corpus."""

    def __init__(self, numbers: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forwardd", "fake-aql", "--port", "0", "--numbers",
             ",".join(str(600000 + i) for i in range(numbers)), "--username", "acme", "--password-env",
             "BENCH_FAKE_PW"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV, cwd=ROOT)
        self.url = json.loads(self.proc.stdout.readline())["url"]  # type: ignore[union-attr]
        base = self.url.rsplit("/", 2)[0]
        req = urllib.request.Request(f"{base}/_fake/latency", data=json.dumps({"seconds": LATENCY}).encode(),
                                     method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(port: int) -> tuple[float, bytes]:
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=20) as r:
            body = r.read()
    except urllib.error.HTTPError as err:
        body = err.read()
    except OSError:
        body = b""  # not listening yet
    return time.perf_counter() - t, body


def confirmed_of(body: bytes, numbers: int) -> int | None:
    """How many numbers /healthz says are confirmed (all of them once it is no longer starting)."""
    m = re.search(rb"starting: ([\d,]+) of", body)
    if m:
        return int(m.group(1).replace(b",", b""))
    if b'"status": "ok"' in body or b'"status": "degraded"' in body:
        return numbers
    return None


def readback_span(state: Path) -> tuple[int, float]:
    """(read-backs that confirmed, seconds from the first to the last), off the journal."""
    db = sqlite3.connect(f"file:{state / 'journal.sqlite'}?mode=ro", uri=True, timeout=10)
    try:
        count, first, last = db.execute("SELECT count(*), min(at), max(at) FROM entries "
                                        "WHERE kind = 'readback' AND ok = 1").fetchone()
    finally:
        db.close()
    from datetime import datetime
    return count, (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()


def integrity(state: Path) -> str:
    db = sqlite3.connect(f"file:{state / 'journal.sqlite'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def live(folder: Path, numbers: int, stop_when: Callable[[int], bool] | None = None) -> dict[str, Any]:
    """A fresh ``forwardd run`` against the fake; until healthy (or until ``stop_when`` the confirmed count,
    then SIGTERM)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    fake = Fake(numbers)
    try:
        port = free_port()
        cfg = write_corpus(folder, numbers=numbers, url=fake.url)
        cfg.write_text(cfg.read_text() + f"\n[web]\nport = {port}\n")
        t0 = time.perf_counter()
        with open(folder / "daemon.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "forwardd", "run", "--config", str(cfg)], stdout=log,
                                    stderr=subprocess.STDOUT, env=ENV, cwd=ROOT)
        worst, healthy_s, count, term_s = 0.0, None, 0, None
        try:
            while time.perf_counter() - t0 < 600 and proc.poll() is None:
                took, body = probe(port)
                if body:
                    worst = max(worst, took)
                count = confirmed_of(body, numbers) or count
                if stop_when is not None and stop_when(count):
                    t = time.perf_counter()
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
                    term_s = time.perf_counter() - t
                    break
                if count == numbers:
                    healthy_s = time.perf_counter() - t0
                    break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
        state = folder / "state"
        if stop_when is not None:
            return {"sigterm_s": term_s, "exit_code": proc.returncode, "confirmed_at_sigterm": count,
                    "journal": integrity(state)}
        confirmed, span = readback_span(state)
        return {"healthz_worst_s": worst, "healthy_after_s": healthy_s, "confirmed": confirmed,
                "numbers_per_s": confirmed / span if span else None}
    finally:
        fake.stop()


def storm_rate(concurrency: int = 50) -> float:
    """The storm benchmark's rate (numbers confirmed per second) at 1,000 numbers, 20 ms, this concurrency."""
    import bench_storm

    from forwardd.logs import configure

    configure("warning")
    numbers = [str(600000 + i) for i in range(1_000)]
    proc, url = bench_storm.start_fake(numbers)
    try:
        asyncio.run(bench_storm.storm(url, numbers, "07700900002", concurrency))
        bench_storm.set_latency(url, LATENCY)
        took = [asyncio.run(bench_storm.storm(url, numbers, f"0770090000{r % 2 + 1}", concurrency))[0]
                for r in range(3)]
    finally:
        proc.terminate()
        proc.wait(5)
    return len(numbers) / statistics.median(took)


def size(numbers: int, runs: int, base: Path) -> dict[str, Any]:
    import bench_page

    folder = base / f"sim{numbers}"
    folder.mkdir(parents=True, exist_ok=True)
    cfg = write_corpus(folder, numbers=numbers)
    sims = [simulate_day(cfg) for _ in range(runs)]
    starts = [live(base / f"live{numbers}", numbers) for _ in range(runs)]
    stops = [live(base / f"stop{numbers}", numbers, stop_when=lambda c: c >= numbers // 3) for _ in range(runs)]
    page = bench_page.measure(numbers, runs=3, folder=base / f"page{numbers}")
    return {
        "numbers": numbers,
        "simulate_day": {
            "never_seen_max": max(s["never_seen"] for s in sims),
            "worst_detected_after_s_max": max(s["worst_detected_after_s"] or 0 for s in sims),
            "bound_s": sims[0]["bound_s"],
            "requests": sims[0]["requests"],
            "cpu_s": spread([s["cpu_s"] for s in sims], 1),
            "peak_rss_mb": spread([s["peak_rss_mb"] for s in sims], 0),
        },
        "start_up": {
            "healthz_worst_s": spread([s["healthz_worst_s"] for s in starts], 3),
            "numbers_per_s": spread([s["numbers_per_s"] for s in starts], 0),
            "healthy_after_s": spread([s["healthy_after_s"] for s in starts], 1),
            "confirmed_min": min(s["confirmed"] for s in starts),
        },
        "sigterm_during_start_up": {
            "exit_s": spread([s["sigterm_s"] for s in stops], 2),
            "exit_codes": sorted({s["exit_code"] for s in stops}),
            "journal": sorted({s["journal"] for s in stops}),
        },
        "page": {path: {"bytes": page["pages"][path]["bytes"], "bytes_gzip": page["pages"][path]["bytes_gzip"],
                        "cold_ms": page["pages"][path]["cold_ms"]} for path in ("/", "/status")},
    }


def growth(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How each figure grows from the smallest size to the largest, against the growth in numbers."""
    a, b = rows[0], rows[-1]
    pick = {
        "simulate_cpu_s": lambda r: r["simulate_day"]["cpu_s"]["median"],
        "simulate_peak_rss_mb": lambda r: r["simulate_day"]["peak_rss_mb"]["median"],
        "requests": lambda r: sum(r["simulate_day"]["requests"].values()),
        "healthy_after_s": lambda r: r["start_up"]["healthy_after_s"]["median"],
        "numbers_per_s": lambda r: r["start_up"]["numbers_per_s"]["median"],
        "page_bytes": lambda r: r["page"]["/"]["bytes"],
        "status_bytes": lambda r: r["page"]["/status"]["bytes"],
    }
    return {"numbers": round(b["numbers"] / a["numbers"], 1),
            **{k: round(f(b) / f(a), 2) if f(a) else None for k, f in pick.items()}}


def main(sizes: tuple[int, ...] = SIZES, runs: int = 3) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="forwardd-bench-scale-"))
    try:
        rows = [size(n, runs, base) for n in sizes]
        storm = storm_rate()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for r in rows:
        r["start_up"]["share_of_storm_rate"] = round(r["start_up"]["numbers_per_s"]["median"] / storm, 2)
    return {
        "runs": runs, "latency_s": LATENCY, "storm_numbers_per_s_at_1000": round(storm),
        "sizes": rows,
        "growth_smallest_to_largest": growth(rows) if len(rows) > 1 else None,
        "targets": {"never_seen": 0, "worst_detected_after_s": "<= bound_s", "healthz_worst_s": "< 1",
                    "sigterm exit_s": "< 5, exit code 0, journal ok", "share_of_storm_rate": ">= 0.7",
                    "/ and /status": "< 1 MB and < 500 ms at 10,000 numbers"},
    }


if __name__ == "__main__":
    sizes = tuple(int(s) for s in os.environ.get("BENCH_SIZES", ",".join(map(str, SIZES))).split(","))
    print(json.dumps(main(sizes, int(os.environ.get("BENCH_RUNS", "3"))), indent=2))
