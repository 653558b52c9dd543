"""Run every benchmark and print its figures (JSON), with the machine they ran on.

    .venv/bin/python benchmarks/run.py            # all of them, about 10 minutes on 2 cores
    .venv/bin/python benchmarks/run.py plan storm # some of them

Figures are medians of several runs; BENCH_RUNS (default 3) sets how many where it applies.
Everything talks only to 127.0.0.1 or runs in process."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Each benchmark runs in a process of its own: one's heap (a thousand numbers' plans) must not slow
# the next one's garbage collections.
BENCHMARKS = {"plan": "bench_plan.py", "storm": "bench_storm.py", "resilience": "bench_resilience.py",
              "footprint": "bench_footprint.py", "events": "bench_events.py", "page": "bench_page.py",
              "failover": "bench_failover.py"}


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    print(json.dumps({"date": dt.date.today().isoformat(), "cores": os.cpu_count(),
                      "python": platform.python_version(), "machine": platform.machine()}), flush=True)
    for name in names or list(BENCHMARKS):
        out = subprocess.run([sys.executable, str(HERE / BENCHMARKS[name])], capture_output=True, text=True)
        if out.returncode != 0:
            print(json.dumps({name: {"error": out.stderr.strip().splitlines()[-1:]}}), flush=True)
            continue
        print(json.dumps({name: json.loads(out.stdout)}, indent=2), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
