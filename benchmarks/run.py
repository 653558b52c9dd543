"""Run every benchmark and print its figures (JSON), with the machine they ran on.

    .venv/bin/python benchmarks/run.py            # all of them, about 25 minutes on 2 cores
    .venv/bin/python benchmarks/run.py plan storm # some of them

Figures are medians of several runs; BENCH_RUNS (default 3) sets how many where it applies. The whole
run is also written to benchmarks/latest.json (BENCH_OUT to change it; naming some benchmarks replaces
only theirs there), which ``report.py`` turns into the table of benchmarks/README.md. Everything talks only to 127.0.0.1 or runs in process."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Each benchmark runs in a process of its own: one's heap (a thousand numbers' plans) must not slow
# the next one's garbage collections.
BENCHMARKS = {"plan": "bench_plan.py", "storm": "bench_storm.py", "resilience": "bench_resilience.py",
              "footprint": "bench_footprint.py", "events": "bench_events.py", "page": "bench_page.py",
              "failover": "bench_failover.py", "scale": "bench_scale.py", "feeds": "bench_feed_memory.py"}


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    machine = {"date": dt.date.today().isoformat(), "cores": os.cpu_count(), "python": platform.python_version(),
               "machine": platform.machine(), "runs": int(os.environ.get("BENCH_RUNS", "3"))}
    print(json.dumps(machine), flush=True)
    target = Path(os.environ.get("BENCH_OUT", HERE / "latest.json"))
    results: dict = {"machine": machine}
    if names and target.exists():  # some of them again: the others' figures stay, each with its own date
        results = {**json.loads(target.read_text()), "machine": machine}
    for name in names or list(BENCHMARKS):
        t = time.monotonic()
        out = subprocess.run([sys.executable, str(HERE / BENCHMARKS[name])], capture_output=True, text=True)
        if out.returncode != 0:
            results[name] = {"error": out.stderr.strip().splitlines()[-3:]}
        else:
            results[name] = json.loads(out.stdout)
            results[name]["took_s"] = round(time.monotonic() - t)
            results[name]["date"] = machine["date"]
        print(json.dumps({name: results[name]}, indent=2), flush=True)
        target.write_text(json.dumps(results, indent=2) + "\n")  # (after each: a long run keeps what it has)


if __name__ == "__main__":
    main(sys.argv[1:])
