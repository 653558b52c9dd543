"""Benchmark 4, daemon footprint and politeness with 1,000 numbers (the plan benchmark's corpus, simulated
account), at default settings:
- requests sent to aql in one simulated day (`forwardd simulate`, the daemon's own rules on a virtual
  clock: start-up, every planned change, a drift check per number per hour), against the 30,000 target
  and against the 5-minute polling of before (288 reads per number per day); and on the second day (a
  two-day run minus the first day), when start-up's programming is behind it;
- CPU seconds per simulated day (a day's run minus an hour's, scaled to 24 h, so start-up is not counted;
  both cold: the feeds' remembered occurrences are removed before every run), median of BENCH_RUNS;
- peak RSS of the simulator after an hour and after a day;
- RSS of a real `forwardd run` process (and, apart, of its calendar worker) once every one of the 1,000
  numbers is confirmed (its `started` line), 20 s later, and after 500 page requests; it starts cold, so
  its worker parses the feeds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus import write_corpus  # noqa: E402
from procs import calendar_worker, hwm_mb, rss_mb, run_measured, spread  # noqa: E402

START = "2026-12-01T00:00:00+00:00"


BEFORE = {"requests_per_day": 290_000, "cpu_s_per_simulated_day": 135,
          "how": "every number read every 5 minutes (reconcile_every = 5m), figures from benchmarks/README.md"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, gz: bool) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Accept-Encoding": "gzip"} if gz else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return len(r.read())
    except urllib.error.HTTPError as err:
        return len(err.read())


def live_daemon(cfg: Path, log: Path, idle_s: float = 20, page_rounds: int = 100) -> dict:
    """A real ``forwardd run`` with its page on: RSS once every line is confirmed, ``idle_s`` later, and
    after ``page_rounds`` rounds of ``/``, ``/status``, a second page and a search (half of them gzipped),
    as a team's browsers and a probe would ask over a day."""
    live = cfg.with_name("live.toml")
    port = free_port()
    live.write_text(cfg.read_text() + f"\n[web]\nport = {port}\n")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "forwardd", "run", "--config", str(live)], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "BENCH_AQL_PASSWORD": "x"})
    try:
        deadline = time.monotonic() + 300
        while '"event": "started"' not in log.read_text():  # every line confirmed once
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the daemon did not finish its first pass:\n" + log.read_text()[-2000:])
            time.sleep(0.5)
        after_first = rss_mb(proc.pid)
        worker_pid = calendar_worker(proc.pid)
        worker = rss_mb(worker_pid) if worker_pid else None
        time.sleep(idle_s)
        after_idle = rss_mb(proc.pid)
        for i in range(page_rounds):
            for path in ("/", "/status", "/?page=2", "/status?q=6001", "/healthz"):
                get(port, path, gz=i % 2 == 0)
        time.sleep(2)
        after_pages = rss_mb(proc.pid)
        peak = hwm_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {"rss_after_first_pass_mb": round(after_first, 1), "rss_after_idle_mb": round(after_idle, 1),
            "idle_seconds": idle_s, "page_requests": page_rounds * 5, "rss_after_pages_mb": round(after_pages, 1),
            "peak_rss_mb": round(peak, 1), "calendar_worker_rss_mb": round(worker, 1) if worker else None}


def cold(folder: Path) -> None:
    """Forget the feeds' remembered occurrences, so the next run parses them as a fresh machine would."""
    shutil.rmtree(folder / "state" / "calendars", ignore_errors=True)


def simulate(sim: list[str], days: float, folder: Path, env: dict[str, str]) -> tuple[float, float, str]:
    cold(folder)
    return run_measured([*sim, "--days", str(days)], env=env, ok=(0, 1))


def main(runs: int = 3) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="forwardd-footprint-"))
    cfg = write_corpus(folder)
    sim = [sys.executable, "-m", "forwardd", "simulate", "--config", str(cfg), "--start", START, "--json"]
    env = {**os.environ, "BENCH_AQL_PASSWORD": "x"}
    per_day, hours, rss_hours, rss_days = [], [], [], []
    for _ in range(runs):
        cpu_hour, rss_hour, _ = simulate(sim, 1 / 24, folder, env)
        cpu_day, rss_day, out = simulate(sim, 1, folder, env)
        per_day.append((cpu_day - cpu_hour) * 24 / 23)
        hours.append(cpu_hour)
        rss_hours.append(rss_hour)
        rss_days.append(rss_day)
    day = json.loads(out)
    two = json.loads(simulate(sim, 2, folder, env)[2])
    second = {k: two["total"]["requests"][k] - day["total"]["requests"][k] for k in day["total"]["requests"]}
    per_number = sorted(n["requests_per_day"] for n in day["numbers"])
    cold(folder)  # the live daemon starts as on a fresh machine: it parses, in its calendar worker
    return {
        "numbers": 1000,
        "runs": runs,
        "requests_in_a_simulated_day": day["total"]["requests"],
        "requests_per_day": day["total"]["requests_per_day"],
        "requests_on_the_second_day": second,
        "requests_per_number_per_day_median": per_number[len(per_number) // 2],
        "misrouted_s": day["total"]["misrouted_s"] + two["total"]["misrouted_s"],
        "cpu_s_per_simulated_day": spread(per_day, 1),
        "cpu_s_first_hour_incl_startup": spread(hours, 1),
        "simulate_1h_peak_rss_mb": spread(rss_hours, 1),
        "simulate_1d_peak_rss_mb": spread(rss_days, 1),
        "live_daemon": live_daemon(cfg, folder / "daemon.log"),
        "before": BEFORE,
        "targets": {"requests_per_day": "<= 30,000", "cpu_s_per_simulated_day": "<= 20",
                    "live_daemon_rss_mb": "<= 80"},
    }


if __name__ == "__main__":
    print(json.dumps(main(int(os.environ.get("BENCH_RUNS", "3"))), indent=2))
