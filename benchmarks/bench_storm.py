"""Benchmark 2, hand-over storm: 1,000 numbers all changing target at the same instant, against the fake
aql server (its own process) with 50 ms of latency per request. Each number takes getuser, changeuser,
getuser. Prints the time until the last one is confirmed against the floor (requests x latency /
concurrency), as a median of several runs, and how many numbers were left unconfirmed; at 20 and at 50
requests in flight (the fake and the client share the machine's two cores, so at 50 the client's own
CPU per request, not the latency, starts to set the pace)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

from forwardd.aql.carrier import AqlCarrier
from forwardd.aql.client import AqlClient
from forwardd.clock import VirtualClock
from forwardd.config import config_from_dict
from forwardd.core.compiler import Change
from forwardd.core.plan import NumberPlan
from forwardd.core.provider import Program
from forwardd.logs import configure
from forwardd.service.reconcile import Reconciler

UTC = dt.timezone.utc
PASSWORD = "bench-password"


def start_fake(numbers: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "forwardd", "fake-aql", "--port", "0", "--numbers", ",".join(numbers),
         "--username", "acme", "--password-env", "BENCH_FAKE_PW"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "BENCH_FAKE_PW": PASSWORD})
    url = json.loads(proc.stdout.readline())["url"]  # type: ignore[union-attr]
    return proc, url


def set_latency(url: str, seconds: float) -> None:
    base = url.rsplit("/", 2)[0]
    req = urllib.request.Request(f"{base}/_fake/latency", data=json.dumps({"seconds": seconds}).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).close()


async def storm(url: str, numbers: list[str], target: str, concurrency: int) -> tuple[float, int, int]:
    now = dt.datetime(2026, 12, 1, 9, tzinfo=UTC)
    program = Program(target, True)
    plans = [NumberPlan(n, [], [Change(now, now, program, True)]) for n in numbers]
    limit = asyncio.Semaphore(concurrency)
    async with AqlClient(url, "acme", PASSWORD, concurrency=concurrency, timeout=30) as client:
        cfg = config_from_dict({"numbers": [{"voipnumber": n, "fallback": target} for n in numbers]}, env={})
        rec = Reconciler(cfg, AqlCarrier("aql", client), None, None, VirtualClock(now))

        async def one(p: NumberPlan):  # noqa: ANN202
            async with limit:
                return await rec.reconcile(p)

        t = time.perf_counter()
        outs = await asyncio.gather(*(one(p) for p in plans))
        took = time.perf_counter() - t
    return took, sum(1 for o in outs if not o.ok), sum(o.attempts for o in outs)


def main(runs: int = 3, count: int = 1000, latency: float = 0.05, concurrency: int = 50) -> dict:
    configure("warning")
    numbers = [str(600000 + i) for i in range(count)]
    proc, url = start_fake(numbers)
    try:
        results = []
        targets = ["07700900001", "07700900002"]
        asyncio.run(storm(url, numbers, targets[1], concurrency))  # everyone on Bob, without latency
        set_latency(url, latency)
        for r in range(runs):
            took, unconfirmed, attempts = asyncio.run(storm(url, numbers, targets[r % 2], concurrency))
            results.append((took, unconfirmed, attempts))
    finally:
        proc.terminate()
        proc.wait(5)
    requests = 3 * count
    floor = requests * latency / concurrency
    med = statistics.median(r[0] for r in results)
    return {
        "numbers": count, "latency_s": latency, "concurrency": concurrency, "requests_per_storm": requests,
        "floor_s": round(floor, 3), "median_s": round(med, 3), "runs_s": [round(r[0], 3) for r in results],
        "over_floor": round(med / floor, 2), "unconfirmed_max": max(r[1] for r in results),
        "target": "<= 1.5 x floor, none unconfirmed",
    }


if __name__ == "__main__":
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    print(json.dumps({f"concurrency_{c}": main(runs, concurrency=c) for c in (20, 50)}, indent=2))
