"""Helpers for the cluster's end-to-end tests and the failover benchmark: two (or more) ``forwardd run``
processes, each with its own config, state directory and instance name, sharing one PostgreSQL database
and one fake aql server; and reading what happened from the fake's request log and the shared journal."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from .conftest import DB_PASSWORD, ROOT, UTC
from .e2e import PASSWORD, A, B, C, ics, wait_for, write_config

NAMES = ("alpha", "beta")
PHONES = {"Alice": A, "Bob": B, "Carol": C}


def rota(t0: dt.datetime, segments: int, seconds: int) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """Back-to-back shifts of ``seconds`` each from ``t0``: every boundary is an exact hand-over (a change of
    target while forwarding continues), which only a daemon alive at that second can make."""
    people = ["Alice", "Bob", "Carol"]
    return [(t0 + dt.timedelta(seconds=seconds * k), t0 + dt.timedelta(seconds=seconds * (k + 1)), people[k % 3])
            for k in range(segments)]


def cluster_section(url: str, name: str, timings: str = "") -> str:
    """The [cluster] table of one instance (default lease timings unless ``timings`` says otherwise)."""
    return f'\n[cluster]\ndatabase = "{url}"\npassword_env = "DB_PW"\ninstance = "{name}"\n{timings}\n'


@dataclass
class Cluster:
    """Instances named ``names``, each in ``tmp/<name>`` (config, rota.ics, state, log)."""

    tmp: Path
    aql_url: str
    db_url: str
    events: list[Any]
    names: tuple[str, ...] = NAMES
    extra: dict[str, str] = field(default_factory=dict)  # per instance: more config (after [daemon])
    timings: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.names:
            (self.tmp / name).mkdir(exist_ok=True)
            write_config(self.tmp / name, self.aql_url, self.events,
                         extra=self.extra.get(name, "") + cluster_section(self.db_url, name, self.timings))

    def config(self, name: str) -> Path:
        return self.tmp / name / "forwardd.toml"

    def env(self) -> dict[str, str]:
        return {**os.environ, "AQL_PW": PASSWORD, "DB_PW": DB_PASSWORD}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        self.starts[name] = self.starts.get(name, 0) + 1
        log = open(self.tmp / name / f"daemon{self.starts[name]}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "forwardd", "run", "--config", str(self.config(name))],
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env())
        self.procs[name] = proc
        return proc

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def kill(self, name: str) -> float:
        """kill -9; returns the time it was sent (epoch seconds)."""
        proc = self.procs[name]
        at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return at

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            codes[name] = proc.wait(20)
        return codes

    def kill_all(self) -> None:
        """kill -9 whatever still runs (a test's teardown, whatever happened)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def alive(self, name: str) -> bool:
        return name in self.procs and self.procs[name].poll() is None

    def set_rota(self, events: list[Any]) -> None:
        """Write the same rota for every instance (each reads its own copy, as two hosts would)."""
        for name in self.names:
            path = self.tmp / name / "rota.ics"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(ics(events))
            tmp.replace(path)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for name in self.names
                       for p in sorted((self.tmp / name).glob("daemon*.log")))

    def cli(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "forwardd", *args, "--config", str(self.config(name))],
                              capture_output=True, text=True, cwd=ROOT, env=self.env(), timeout=60)

    # --------------------------------------------------------------------------- the shared database

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.db_url, password=DB_PASSWORD, autocommit=True, connect_timeout=5)

    def journal(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The shared journal, oldest first; [] while the database or its tables are not there."""
        try:
            with self.db() as conn:
                rows = conn.execute("SELECT extract(epoch FROM at), kind, voipnumber, ok, instance, detail "
                                    "FROM forwardd_journal WHERE %s::text IS NULL OR kind = %s ORDER BY at, id",
                                    (kind, kind)).fetchall()
        except psycopg.Error:
            return []
        return [{"t": float(t), "kind": k, "voipnumber": v, "ok": ok, "instance": i, **d} for t, k, v, ok, i, d in rows]

    def took_over(self, after: float) -> list[dict[str, Any]]:
        """The ``leader`` entries (an instance took the lease) since ``after`` (epoch seconds)."""
        return [e for e in self.journal("leader") if e["event"] == "acquired" and e["t"] >= after]

    def lease_sessions(self) -> set[str]:
        """The instances whose lease connection is open now (a standby polling, or the leader)."""
        try:
            with self.db() as conn:
                rows = conn.execute("SELECT application_name FROM pg_stat_activity "
                                    "WHERE application_name LIKE 'forwardd % lease'").fetchall()
        except psycopg.Error:
            return set()
        return {str(r[0]).split()[1] for r in rows}


def sending_from(entry: dict[str, Any]) -> float:
    """When the instance of a ``leader`` entry could first send (epoch seconds)."""
    return dt.datetime.fromisoformat(entry["sending_from"]).timestamp()


def leading(cluster: Cluster, after: float = 0.0, timeout: float = 30) -> dict[str, Any]:
    """Wait for an instance to take the lease after ``after`` (epoch seconds) and to be past its first
    fence; returns its ``leader`` entry."""
    found: list[dict[str, Any]] = []

    def took() -> bool:
        found[:] = cluster.took_over(after)
        return bool(found) and time.time() >= sending_from(found[-1])

    wait_for(took, timeout)
    return found[-1]


@dataclass(frozen=True)
class Failover:
    killed: str
    leader: str  # who took over
    previous: str | None  # who the new leader says led before it
    killed_at: float  # epoch seconds
    taken_at: float  # the new leader took the lease
    sending_from: float  # ... and could send

    @property
    def detect_s(self) -> float:
        return self.taken_at - self.killed_at

    @property
    def failover_s(self) -> float:
        return self.sending_from - self.killed_at


def kill_leaders(cluster: Cluster, rounds: int, rng: random.Random, pause: tuple[float, float] = (0.0, 3.0),
                 timeout: float = 30) -> list[Failover]:
    """``rounds`` times: wait until a leader may send and the other instance polls for the lease, wait a
    seeded random moment, kill -9 the leader, wait (``timeout`` at most) until another may send, and start
    the killed one again as a standby."""
    out = []
    entry = leading(cluster, timeout=timeout)
    for _ in range(rounds):
        leader = entry["instance"]
        others = {n for n in cluster.names if n != leader}
        wait_for(lambda: others <= cluster.lease_sessions(), timeout=timeout)
        time.sleep(rng.uniform(*pause))
        killed = cluster.kill(leader)
        entry = leading(cluster, after=killed, timeout=timeout)
        out.append(Failover(leader, entry["instance"], entry["previous"], killed, entry["t"], sending_from(entry)))
        cluster.start(leader)
    return out


def spans(requests: list[dict[str, Any]], actions: tuple[str, ...] = ("getuser", "changeuser")
          ) -> list[tuple[str | None, float, float]]:
    """The fake's requests of ``actions`` in the order they arrived, cut into runs by the instance that sent
    them: (instance, first arrival, last answer) per run."""
    out: list[tuple[str | None, float, float]] = []
    for r in sorted((r for r in requests if r["action"] in actions), key=lambda r: r["at"]):
        if out and out[-1][0] == r["instance"]:
            who, a, b = out[-1]
            out[-1] = (who, a, max(b, r["done"]))
        else:
            out.append((r["instance"], r["at"], r["done"]))
    return out


def overlaps(requests: list[dict[str, Any]], actions: tuple[str, ...] = ("getuser", "changeuser")
             ) -> list[tuple[tuple[str | None, float, float], tuple[str | None, float, float]]]:
    """Pairs of consecutive runs of two instances where the second began before the first had been
    answered: two instances talking to aql at once. [] when they never did."""
    runs = spans(requests, actions)
    return [(a, b) for a, b in zip(runs, runs[1:]) if b[1] < a[2]]


def at(t: float) -> str:
    return dt.datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def dump(obj: Any) -> str:
    return json.dumps(obj, default=str)[:20000]
