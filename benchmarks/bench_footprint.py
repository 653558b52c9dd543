"""Benchmark 4, daemon footprint with 1,000 numbers (the plan benchmark's corpus, simulated account):
- peak RSS of the real reconcile logic after an hour of virtual operation (`forwardd simulate`, which
  reconciles every number every 5 minutes and at every planned change, on a virtual clock);
- CPU seconds per simulated day (a day's run minus an hour's, scaled to 24 h, so start-up is not counted);
- RSS of a real `forwardd run` process once its first reconcile pass over the 1,000 numbers is done and
  again after it has idled through a few periodic passes (real time, reconcile_every = 5s)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus import write_corpus  # noqa: E402

START = "2026-12-01T00:00:00+00:00"


def run_child(args: list[str]) -> tuple[float, float]:
    """Run a command to completion; return (CPU seconds, peak RSS MB) of that child alone."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "BENCH_AQL_PASSWORD": "x"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, after.ru_maxrss / 1024  # ru_maxrss is the largest child so far: run the small one first


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def live_daemon(cfg: Path, log: Path, idle_s: float = 20) -> dict:
    text = cfg.read_text().replace('url = "simulated"', 'url = "simulated"') + '\n[daemon]\nreconcile_every = "5s"\n'
    live = cfg.with_name("live.toml")
    live.write_text(text)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "forwardd", "run", "--config", str(live)], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "BENCH_AQL_PASSWORD": "x"})
    try:
        deadline = time.monotonic() + 300
        while "reconcile_pass" not in log.read_text():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the daemon did not finish its first pass:\n" + log.read_text()[-2000:])
            time.sleep(0.5)
        after_first = rss_mb(proc.pid)
        time.sleep(idle_s)
        after_idle = rss_mb(proc.pid)
        passes = log.read_text().count("reconcile_pass")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {"rss_after_first_pass_mb": round(after_first, 1), "rss_after_idle_mb": round(after_idle, 1),
            "idle_seconds": idle_s, "passes_seen": passes}


def main() -> dict:
    folder = Path(tempfile.mkdtemp(prefix="forwardd-footprint-"))
    cfg = write_corpus(folder)
    sim = [sys.executable, "-m", "forwardd", "simulate", "--config", str(cfg), "--start", START, "--json"]
    cpu_hour, rss_hour = run_child([*sim, "--days", str(1 / 24)])
    cpu_day, rss_day = run_child([*sim, "--days", "1"])
    per_day = (cpu_day - cpu_hour) * 24 / 23
    return {
        "numbers": 1000,
        "simulate_1h_peak_rss_mb": round(rss_hour, 1),
        "simulate_1d_peak_rss_mb": round(rss_day, 1),
        "cpu_s_per_simulated_day": round(per_day, 1),
        "cpu_s_first_hour_incl_startup": round(cpu_hour, 1),
        "live_daemon": live_daemon(cfg, folder / "daemon.log"),
        "target": "<= 80 MB RSS",
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
