"""Benchmark 7, failover: two `forwardd run` processes sharing a throwaway PostgreSQL server (started here,
as the tests do) and the fake aql server; the leader is killed with kill -9 at seeded random moments
(BENCH_KILLS, default 10), at the default lease settings, and the time until the standby may send is
measured each time, with the moment it took the lease (detection) apart.

    failover      = from the kill to the moment the standby may send (it took the lease and waited its fence)
    detect        = from the kill to the moment the standby took the lease
    first request = from the kill to the new leader's first request to aql (as the fake aql logged it)

The rota is the one of the tests: back-to-back shifts of 8 s, each boundary an exact hand-over. Talks only
to 127.0.0.1 and a unix socket in the temporary directory."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from forwardd.config import ClusterSettings  # noqa: E402
from tests.cluster_e2e import Cluster, kill_leaders, overlaps, rota  # noqa: E402
from tests.conftest import DB_PASSWORD, UTC  # noqa: E402
from tests.e2e import FakeProc, wait_for  # noqa: E402
from tests.pgserver import PgServer, find_bindir  # noqa: E402


def main(kills: int = 10, seed: int = 14) -> dict:
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL server binaries (initdb): install Debian's postgresql")
    server = PgServer(bindir).init()
    try:
        with tempfile.TemporaryDirectory(prefix="forwardd-failover-") as tmp_dir:
            tmp = Path(tmp_dir)
            fake = FakeProc(tmp)
            try:
                url = server.database("failover", "forwardd", DB_PASSWORD)
                t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=5)).replace(microsecond=0)
                cluster = Cluster(tmp, fake.url, url, rota(t0, 60, 8))
                cluster.start_all()
                try:
                    runs = kill_leaders(cluster, kills, random.Random(seed))
                    last = runs[-1]
                    wait_for(lambda: any(q["instance"] == last.leader and q["at"] > last.killed_at
                                         for q in fake.get("requests")["requests"]), timeout=30)
                finally:
                    cluster.stop_all()
                    cluster.kill_all()
                requests = fake.get("requests")["requests"]
                clashes = len(overlaps(requests))
            finally:
                fake.stop()
    finally:
        server.remove()
    defaults = ClusterSettings(database="postgresql://forwardd@db/forwardd")
    failover = [r.failover_s for r in runs]
    detect = [r.detect_s for r in runs]
    # the new leader's first request to aql (its start-up read, or a change due) after the kill
    first = [min(q["at"] for q in requests if q["instance"] == r.leader and q["at"] > r.killed_at) - r.killed_at
             for r in runs]
    return {
        "kills": kills, "seed": seed,
        "settings": {"check_every_s": defaults.check_every.total_seconds(), "fence_s": defaults.fence.total_seconds(),
                     "lease_s": defaults.lease.total_seconds()},
        "failover_s": [round(x, 2) for x in failover],
        "median_failover_s": round(statistics.median(failover), 2), "worst_failover_s": round(max(failover), 2),
        "median_detect_s": round(statistics.median(detect), 2), "worst_detect_s": round(max(detect), 2),
        "median_first_request_s": round(statistics.median(first), 2), "worst_first_request_s": round(max(first), 2),
        "overlapping_spans": clashes,
        "target": "a standby leads within 30 s of a kill -9; never two instances talking to aql at once",
    }


if __name__ == "__main__":
    print(json.dumps(main(int(os.environ.get("BENCH_KILLS", "10"))), indent=2))
