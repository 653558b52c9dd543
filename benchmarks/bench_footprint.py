"""Benchmark 4, daemon footprint and politeness with 1,000 numbers (the plan benchmark's corpus, simulated
account), at default settings:
- requests sent to aql in one simulated day (`forwardd simulate`, the daemon's own rules on a virtual
  clock: start-up, every planned change, a drift check per number per hour), against the 30,000 target
  and against the 5-minute polling of before (288 reads per number per day);
- CPU seconds per simulated day (a day's run minus an hour's, scaled to 24 h, so start-up is not counted);
- peak RSS of the simulator after an hour and after a day;
- RSS of a real `forwardd run` process (and, apart, of its calendar worker) once every one of the 1,000
  numbers is confirmed (its `started` line) and again after 20 s more."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus import write_corpus  # noqa: E402
from procs import calendar_worker, rss_mb, run_measured  # noqa: E402

START = "2026-12-01T00:00:00+00:00"


BEFORE = {"requests_per_day": 290_000, "cpu_s_per_simulated_day": 135,
          "how": "every number read every 5 minutes (reconcile_every = 5m), figures from benchmarks/README.md"}


def live_daemon(cfg: Path, log: Path, idle_s: float = 20) -> dict:
    live = cfg.with_name("live.toml")
    live.write_text(cfg.read_text())
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
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {"rss_after_first_pass_mb": round(after_first, 1), "rss_after_idle_mb": round(after_idle, 1),
            "idle_seconds": idle_s, "calendar_worker_rss_mb": round(worker, 1) if worker else None}


def main() -> dict:
    folder = Path(tempfile.mkdtemp(prefix="forwardd-footprint-"))
    cfg = write_corpus(folder)
    sim = [sys.executable, "-m", "forwardd", "simulate", "--config", str(cfg), "--start", START, "--json"]
    env = {**os.environ, "BENCH_AQL_PASSWORD": "x"}
    cpu_hour, rss_hour, _ = run_measured([*sim, "--days", str(1 / 24)], env=env, ok=(0, 1))
    cpu_day, rss_day, out = run_measured([*sim, "--days", "1"], env=env, ok=(0, 1))
    per_day = (cpu_day - cpu_hour) * 24 / 23
    day = json.loads(out)
    per_number = sorted(n["requests_per_day"] for n in day["numbers"])
    return {
        "numbers": 1000,
        "requests_in_a_simulated_day": day["total"]["requests"],
        "requests_per_day": day["total"]["requests_per_day"],
        "requests_per_number_per_day_median": per_number[len(per_number) // 2],
        "misrouted_s": day["total"]["misrouted_s"],
        "cpu_s_per_simulated_day": round(per_day, 1),
        "cpu_s_first_hour_incl_startup": round(cpu_hour, 1),
        "simulate_1h_peak_rss_mb": round(rss_hour, 1),
        "simulate_1d_peak_rss_mb": round(rss_day, 1),
        "live_daemon": live_daemon(cfg, folder / "daemon.log"),
        "before": BEFORE,
        "targets": {"requests_per_day": "<= 30,000", "cpu_s_per_simulated_day": "<= 20",
                    "live_daemon_rss_mb": "<= 80"},
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
