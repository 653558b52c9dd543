"""Two hosts, one writer, end to end: two ``forwardd run`` processes (instances alpha and beta) share one
real PostgreSQL database and one fake aql server, which records the instance behind each request
(``X-Forwardd-Instance``). What is checked is the fake's own request log and the shared journal: a
standby takes over within 30 s of a kill -9 at default settings, every due change is confirmed, no two
instances ever talk to aql at once, a leader cut off from its database stops sending, a rota change
while leadership moves is applied once, and the journal and the overrides are shared."""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from forwardd.config import config_from_dict
from forwardd.web.views import Snapshot, health, status_view

from .cluster_e2e import PHONES, Cluster, at, dump, kill_leaders, leading, overlaps, rota, sending_from
from .conftest import DB_PASSWORD, ROOT, UTC
from .e2e import NUMBER, PASSWORD, A, B, C, FakeProc, wait_for
from .test_daemon import _free_port

FENCE_S = 3.0  # the default fence


@pytest.fixture
def cluster_of() -> Iterator[Callable[..., Cluster]]:
    """Makes a Cluster whose processes are all gone after the test, whatever happened in it."""
    made: list[Cluster] = []

    def make(*args: Any, **kw: Any) -> Cluster:
        made.append(Cluster(*args, **kw))
        return made[-1]

    yield make
    for cluster in made:
        cluster.kill_all()


def _until(hours: float) -> list[tuple[dt.datetime, dt.datetime, str]]:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    return [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=hours), "Alice")]


def test_the_journal_and_overrides_are_shared_and_status_and_the_page_show_the_leader(
    tmp_path: Path, fake_proc: FakeProc, pg_url: str, cluster_of: Callable[..., Cluster]
) -> None:
    port = _free_port()
    cluster = cluster_of(tmp_path, fake_proc.url, pg_url, _until(2), extra={"alpha": f"[web]\nport = {port}\n"},
                      names=("alpha", "beta", "gamma"))  # gamma: a third host, for the command line only
    cluster.start("alpha")
    first = leading(cluster)
    assert first["instance"] == "alpha" and first["previous"] is None
    cluster.start("beta")
    wait_for(lambda: cluster.lease_sessions() == {"alpha", "beta"})
    wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A)
    # an override added on the standby's host is applied by the leader
    r = cluster.cli("beta", "override", "add", NUMBER, "--to", "carol", "--until", "+1h", "--note", "cover")
    assert r.returncode == 0, r.stdout + r.stderr
    added = r.stdout.split("added override ")[1].split()[0]
    wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == C)
    listed = cluster.cli("alpha", "override", "list", "--json")
    assert [o["to"] for o in json.loads(listed.stdout)] == [C]
    # so far the standby has not said a word to aql, and the leader sent as itself
    assert {r["instance"] for r in fake_proc.get("requests")["requests"]} == {"alpha"}
    # who leads, and since when: status (text and JSON) on either host (status reads the account itself),
    # and the page
    r = cluster.cli("beta", "status", "--json")
    doc = json.loads(r.stdout)
    assert doc["cluster"]["leader"] == "alpha" and doc["cluster"]["instance"] == "beta"
    assert abs(dt.datetime.fromisoformat(doc["cluster"]["since"]).timestamp() - first["t"]) < 1
    assert r.returncode == 0, r.stdout + r.stderr
    r = cluster.cli("beta", "status")
    assert "cluster: alpha leads since" in r.stdout and "(this host: beta, a standby)" in r.stdout
    # the command line is never a second writer: apply refuses while another instance leads
    r = cluster.cli("gamma", "apply")
    assert r.returncode == 1 and "forwardd alpha leads the cluster" in r.stderr, r.stdout + r.stderr
    r = cluster.cli("gamma", "check")
    assert "cluster database postgresql://forwardd@127.0.0.1" in r.stdout and "OK; alpha leads since" in r.stdout
    # a reload (SIGHUP) hands the lease over with the rest: alpha still leads, in the same term, and sends
    cluster.procs["alpha"].send_signal(signal.SIGHUP)
    wait_for(lambda: '"event": "reloaded"' in (tmp_path / "alpha" / "daemon1.log").read_text())
    r = cluster.cli("beta", "override", "cancel", added)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A)
    assert [e["instance"] for e in cluster.took_over(0)] == ["alpha"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as page:
        html = page.read().decode()
    assert 'data-leader="alpha"' in html and "leads the cluster since" in html and "this host: <b>alpha</b>, leader" in html

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/history", timeout=10) as page:
        html = page.read().decode()
    assert 'data-instance="beta"' in html and "alpha took the cluster lease" in html

    def healthy() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as h:
            return bool(json.load(h)["ok"])

    wait_for(healthy)
    # one history, written by both: the standby journals its calendar reads, the command line its override
    r = cluster.cli("alpha", "history", "--json")
    rows = json.loads(r.stdout)
    assert {e["instance"] for e in rows} == {"alpha", "beta"}
    assert any(e["kind"] == "override" and e["instance"] == "beta" for e in rows)
    assert any(e["kind"] == "leader" and e["instance"] == "alpha" for e in rows)
    text = cluster.cli("beta", "history").stdout
    assert " alpha: change " in text and " beta: calendar " in text
    codes = cluster.stop_all()
    assert codes == {"alpha": 0, "beta": 0}
    assert not (tmp_path / "gamma" / "state" / "journal.sqlite").exists()  # the journal is the shared one
    changes = [r for r in fake_proc.get("requests")["requests"] if r["action"] == "changeuser"]
    assert changes and {r["instance"] for r in changes} == {"alpha"}
    for out in (cluster.logs(), r.stdout, r.stderr, listed.stdout):
        assert DB_PASSWORD not in out and PASSWORD not in out


def test_a_wrong_database_password_is_reported_and_never_shown(tmp_path: Path, fake_proc: FakeProc, pg_url: str,
                                                               cluster_of: Callable[..., Cluster]) -> None:
    cluster = cluster_of(tmp_path, fake_proc.url, pg_url, _until(2), names=("alpha",))
    wrong = "wrong-" + DB_PASSWORD
    env = {**cluster.env(), "DB_PW": wrong}
    outputs = []
    for args in (["status", "--json"], ["history"], ["override", "list"]):
        r = subprocess.run([sys.executable, "-m", "forwardd", *args, "--config", str(cluster.config("alpha"))],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
        outputs.append((r.stdout, r.stderr))
        assert r.returncode != 0
    problem = json.loads(outputs[0][0])["cluster"]["problem"]
    assert "password authentication failed" in problem
    assert all("password authentication failed" in err for _, err in outputs[1:]), outputs
    assert not any(wrong in o or DB_PASSWORD in o for pair in outputs for o in pair)


def test_health_says_when_no_instance_leads() -> None:
    from forwardd.service.lease import LeaseStatus

    cfg = config_from_dict({"numbers": [{"voipnumber": NUMBER, "fallback": "07700 900999"}]}, env={})
    now = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)
    nobody = LeaseStatus("beta", False, False, None, None, "cannot connect to the cluster database (...)", None)
    h = health(Snapshot(cfg, now, cluster=nobody))
    assert not h.ok and "cluster: no instance leads: nothing is sent to aql" in h.reasons
    assert any(r.startswith("cluster: cannot connect") for r in h.reasons)
    taking = LeaseStatus("beta", True, False, "beta", now, None, now)
    assert any("beta leads but may not send now" in r for r in health(Snapshot(cfg, now, cluster=taking)).reasons)
    view = status_view(Snapshot(cfg, now, cluster=LeaseStatus("beta", False, False, "alpha", now, None, now)))
    assert view.cluster is not None and (view.cluster.leader, view.cluster.role) == ("alpha", "standby")
    assert view.cluster.since == "Tue 01 Dec 12:00:00"


def test_kill_9_of_the_leader_at_five_seeded_moments(tmp_path: Path, fake_proc: FakeProc, pg_url: str,
                                                    cluster_of: Callable[..., Cluster]) -> None:
    """At default lease settings: each time, the standby leads within 30 s; every shift is confirmed before it
    ends; and no two instances ever talk to aql (reads or changes) in overlapping spans. The failover
    figures themselves are the benchmark's (benchmarks/bench_failover.py)."""
    seg = 8
    t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=5)).replace(microsecond=0)
    events = rota(t0, 40, seg)
    cluster = cluster_of(tmp_path, fake_proc.url, pg_url, events)
    cluster.start_all()
    try:
        failovers = kill_leaders(cluster, 5, random.Random(14))  # (ten and more: bench_failover.py)
        end = time.time()
    finally:
        cluster.stop_all()
    kills = [f.killed_at for f in failovers]
    for f in failovers:
        assert f.leader != f.killed and f.previous == f.killed, f
        assert f.failover_s < 30, f
    requests = fake_proc.get("requests")["requests"]
    assert all(r["instance"] in cluster.names for r in requests)
    assert overlaps(requests) == [], dump(overlaps(requests))
    # every shift that began once the first leader could send, and ended before the last take-over, was
    # confirmed by a read-back before it ended: during the shift (an exact hand-over is sent at its
    # boundary, or at a take-over), or just before it (the first shift is pre-armed, after a gap)
    readbacks = [e for e in cluster.journal("readback") if e["ok"]]
    first = min(e["t"] for e in cluster.journal("leader"))
    for a, b, who in events:
        if a.timestamp() >= first + FENCE_S and b.timestamp() <= end:
            assert any(a.timestamp() - seg <= e["t"] < b.timestamp() and e["fields"]["forwardto"] == PHONES[who]
                       for e in readbacks), (at(a.timestamp()), who, [at(k) for k in kills], dump(
                [(at(e["t"]), e["instance"], e["kind"], e.get("event"), e.get("fields", {}).get("forwardto"))
                 for e in cluster.journal() if e["kind"] in ("readback", "leader", "change", "error", "start")]))
    print(json.dumps({"failover_s": [round(f.failover_s, 2) for f in failovers]}))


def test_a_leader_cut_off_from_its_database_stops_sending_and_one_leads_again_after(
    tmp_path: Path, fake_proc: FakeProc, pg_own_server: Any, cluster_of: Callable[..., Cluster]
) -> None:
    """The database server stops under a running leader (its connection is cut; the process lives on):
    from a fence after the cut, nothing is sent to aql, though hand-overs fall due; once the server is
    back, one instance takes the lease again and applies the shift in force."""
    url = pg_own_server.database("cut", "forwardd", DB_PASSWORD)
    seg = 6
    t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=5)).replace(microsecond=0)
    events = rota(t0, 40, seg)
    cluster = cluster_of(tmp_path, fake_proc.url, url, events)
    cluster.start_all()
    try:
        entry = leading(cluster)
        leader = entry["instance"]
        wait_for(lambda: cluster.lease_sessions() == set(cluster.names), timeout=30)
        # cut it a second before a hand-over, and keep it cut over the next one too: two exact hand-overs
        # fall due while nobody may send
        boundary = next(a.timestamp() for a, _, _ in events if a.timestamp() > time.time() + 2)
        time.sleep(max(0.0, boundary - 1 - time.time()))
        pg_own_server.stop()
        cut = time.time()
        time.sleep(max(0.0, boundary + seg + 1 - time.time()))  # the outage spans two boundaries
        assert all(cluster.alive(n) for n in cluster.names)
        pg_own_server.start()
        back = time.time()
        again = leading(cluster, after=back - 1, timeout=30)

        def in_force() -> str:
            return PHONES[next(who for a, b, who in events if a.timestamp() <= time.time() < b.timestamp())]

        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == in_force(), timeout=15)
        # the leader that was cut off said so, once the journal could be written again
        wait_for(lambda: any(e["event"] == "lost" and e["instance"] == leader for e in cluster.journal("leader")),
                 timeout=20)
    finally:
        codes = cluster.stop_all()
    assert codes == {"alpha": 0, "beta": 0}
    requests = fake_proc.get("requests")["requests"]
    silent = [r for r in requests if r["action"] == "changeuser" and cut + FENCE_S <= r["at"] <= back]
    assert silent == [], dump(silent)
    assert not [r for r in requests if r["instance"] == leader and cut + FENCE_S <= r["at"] <= again["t"]]
    assert any(r["action"] == "changeuser" and r["at"] > back for r in requests)  # it did take over, and sent
    assert overlaps(requests) == [], dump(overlaps(requests))
    assert DB_PASSWORD not in cluster.logs()


def test_a_rota_change_while_leadership_moves_is_applied_once(tmp_path: Path, fake_proc: FakeProc, pg_url: str,
                                                               cluster_of: Callable[..., Cluster]) -> None:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    shift = (now - dt.timedelta(hours=1), now + dt.timedelta(hours=2))
    cluster = cluster_of(tmp_path, fake_proc.url, pg_url, [(*shift, "Alice")])
    cluster.start_all()
    try:
        first = leading(cluster)["instance"]
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == A)
        wait_for(lambda: cluster.lease_sessions() == set(cluster.names), timeout=30)
        # 1. the rota changes, and the leader dies before it has read it: the standby applies it
        cluster.set_rota([(*shift, "Bob")])
        killed = cluster.kill(first)
        second = leading(cluster, after=killed)["instance"]
        wait_for(lambda: fake_proc.get("state")[NUMBER]["forwardto"] == B)
        cluster.start(first)
        wait_for(lambda: cluster.lease_sessions() == set(cluster.names), timeout=30)
        # 2. the rota changes, and the leader dies with its change sent but not yet read back (aql is slow):
        # the next leader finds the account right and does not send it again
        fake_proc.post("latency", {"seconds": 0.5})
        changed = time.time()
        cluster.set_rota([(*shift, "Carol")])
        wait_for(lambda: any(r["action"] == "changeuser" and r["at"] > changed
                             for r in fake_proc.get("requests")["requests"]), timeout=15)
        killed = cluster.kill(second)
        third = leading(cluster, after=killed)
        assert third["instance"] == first
        # the new leader has looked at the number (a read of its own), and found Carol there
        wait_for(lambda: any(r["instance"] == first and r["action"] == "getuser" and r["at"] >= sending_from(third)
                             for r in fake_proc.get("requests")["requests"]), timeout=30)
    finally:
        codes = cluster.stop_all()
    assert codes[first] == 0
    history = fake_proc.get("history")
    sent_to = [h["changed"].get("forwardto") for h in history if "forwardto" in h["changed"]]
    assert sent_to.count(B) == 1 and sent_to.count(C) == 1, sent_to
    assert fake_proc.get("state")[NUMBER]["forwardto"] == C
    requests = fake_proc.get("requests")["requests"]
    assert overlaps(requests) == [], dump(overlaps(requests))


def test_the_systemd_drop_in_hands_over_the_credential_the_code_reads() -> None:
    from forwardd.config import DB_CREDENTIAL_NAME

    text = (ROOT / "systemd" / "forwardd.service.d" / "cluster.conf").read_text()
    assert f"LoadCredential={DB_CREDENTIAL_NAME}:/etc/forwardd/{DB_CREDENTIAL_NAME}" in text.splitlines()
    assert "[Service]" in text


def test_in_a_cluster_only_the_holder_of_the_lease_ever_sends(tmp_path: Path, fake: Any, pg_url: str) -> None:
    """status builds a reconciler too: in a cluster, a set of services without the lease is fenced for good."""
    import asyncio

    from forwardd.logs import redact
    from forwardd.service.reconcile import Failure
    from forwardd.service.services import Services

    from .conftest import PASSWORD as FAKE_PASSWORD

    cfg = config_from_dict({"state_dir": str(tmp_path / "state"),
                            "aql": {"url": fake.url, "username": "acme", "password_env": "AQL_PW"},
                            "numbers": [{"voipnumber": "606309", "fallback": "07700 900999"}],
                            "cluster": {"database": pg_url, "password_env": "DB_PW", "instance": "gamma"}}, env={})

    async def go() -> None:
        sv = await Services.open(cfg, aql=True, journal="read", env={"AQL_PW": FAKE_PASSWORD, "DB_PW": DB_PASSWORD})
        try:
            rec = sv.accounts["aql"].reconciler
            assert sv.lease is None and rec.fenced()
            assert DB_PASSWORD not in redact(f"dsn: password={DB_PASSWORD}")  # registered as a secret by open
            sv.plan = await sv.make_plan()
            out = await rec.reconcile(sv.plan.numbers[0])
            assert out.skipped and not out.ok and out.failure is Failure.FENCED
        finally:
            await sv.close()

    asyncio.run(go())
    assert fake.requests == 0


def test_a_reload_refused_for_a_taken_port_keeps_the_lease(tmp_path: Path, fake: Any, pg_url: str) -> None:
    """A reload whose page cannot bind its port is rejected and the running set carries on: with the lease
    it still holds, not with a lease the rejected set gave up on its way out."""
    import asyncio
    import socket

    from forwardd.errors import ForwarddError
    from forwardd.service.services import Services

    from .conftest import PASSWORD as FAKE_PASSWORD

    env = {"AQL_PW": FAKE_PASSWORD, "DB_PW": DB_PASSWORD}
    base = {"state_dir": str(tmp_path / "state"),
            "aql": {"url": fake.url, "username": "acme", "password_env": "AQL_PW"},
            "numbers": [{"voipnumber": "606309", "fallback": "07700 900999"}],
            "cluster": {"database": pg_url, "password_env": "DB_PW", "instance": "alpha"}}

    async def go() -> None:
        sv = await Services.open(config_from_dict(base, env={}), aql=True, exclusive=True, journal="write", env=env)
        assert sv.lease is not None
        sv.lease.start()
        await asyncio.get_running_loop().run_in_executor(None, sv.lease.first_look.wait, 10)
        assert sv.lease.leading
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            cfg = config_from_dict({**base, "web": {"port": taken.getsockname()[1]}}, env={})
            with pytest.raises(ForwarddError):
                await Services.open(cfg, aql=True, exclusive=True, journal="write", env=env, state=sv.state,
                                    web=lambda: None, lease=sv.lease)  # type: ignore[arg-type,return-value]
        await asyncio.sleep(1.5)  # more than one check_every: a closed lease would have let go by now
        try:
            assert sv.lease.leading and sv.lease.status().problem is None
        finally:
            await sv.close()

    asyncio.run(go())
