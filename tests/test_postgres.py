"""The cluster's store and lease against a real PostgreSQL server (the ``pg_server`` fixture): the shared
journal and overrides, notice claims that only one host wins, the journal riding out a database that went
away, and the lease: one leader, the fence, a failover, a leader cut off or wedged."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from forwardd.clock import SystemClock
from forwardd.config import ClusterSettings
from forwardd.errors import ForwarddError
from forwardd.service.lease import Lease, LeaseEvent
from forwardd.store.pg_journal import PgJournal
from forwardd.store.pg_lease import read_leader
from forwardd.store.pg_overrides import PgOverrides
from forwardd.store.postgres import Database

from .conftest import DB_PASSWORD, UTC
from .e2e import wait_for as _wait_for

T0 = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)


def wait_for(cond: Any, timeout: float = 15) -> None:
    """``e2e.wait_for``, also while the store still says the database is away."""
    def ok() -> bool:
        try:
            return bool(cond())
        except ForwarddError:
            return False

    _wait_for(ok, timeout)


def db(url: str, instance: str) -> Database:
    return Database(url, SecretStr(DB_PASSWORD), instance)


def settings(url: str, check: float = 0.2, fence: float = 0.8, lease: float = 3.0) -> ClusterSettings:
    return ClusterSettings(database=url, check_every=check, fence=fence, lease=lease)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- journal


def test_journal_is_shared_and_names_each_entrys_instance(pg_url: str) -> None:
    a, b = PgJournal(db(pg_url, "alpha")), PgJournal(db(pg_url, "beta"))
    try:
        a.record("start", T0, None, None, pid=1)
        b.record("readback", T0 + dt.timedelta(seconds=1), "606309", True, fields={"forwardto": "07700900001"})
        a.record("readback", T0 + dt.timedelta(seconds=2), "606309", False, fields={"forwardto": "x"})
        a.record("readback", T0 + dt.timedelta(seconds=3), "606310", True, fields={"forwardto": "07700900002"})
        assert a.flush() and b.flush()
        rows = b.entries()
        assert [(r["kind"], r["instance"]) for r in rows] == [("start", "alpha"), ("readback", "beta"),
                                                             ("readback", "alpha"), ("readback", "alpha")]
        assert rows[1]["fields"] == {"forwardto": "07700900001"} and rows[1]["ok"] is True
        assert rows[0]["at"] == T0.isoformat()
        assert [r["instance"] for r in a.entries(voipnumber="606309")] == ["beta", "alpha"]
        assert len(a.entries(limit=2)) == 2 and a.entries(limit=2)[-1]["voipnumber"] == "606310"
        assert a.entries(kind="start")[0]["pid"] == 1
        assert len(a.entries(since=T0 + dt.timedelta(seconds=2))) == 2
        # a read-back that failed confirms nothing: the last confirmation is beta's, seen from alpha too
        assert a.last_confirmed("606309") == {"forwardto": "07700900001"}
        assert a.confirmed_all() == {"606309": {"forwardto": "07700900001"}, "606310": {"forwardto": "07700900002"}}
        assert a.healthy and a.problem is None
    finally:
        a.close()
        b.close()


def test_the_latest_confirmation_is_the_latest_in_time_not_the_last_written(pg_url: str) -> None:
    """A leader cut off from the database writes its backlog when it comes back, after the new leader's
    entries: what was confirmed last is still the newer confirmation."""
    new, old = PgJournal(db(pg_url, "new")), PgJournal(db(pg_url, "old"))
    try:
        new.record("readback", T0 + dt.timedelta(minutes=5), "606309", True, fields={"forwardto": "B"})
        assert new.flush()
        old.record("readback", T0, "606309", True, fields={"forwardto": "A"})
        assert old.flush()
        assert new.last_confirmed("606309") == {"forwardto": "B"}
        assert new.confirmed_all() == {"606309": {"forwardto": "B"}}
    finally:
        new.close()
        old.close()


def test_record_never_blocks_while_the_database_is_away_and_catches_up_after(pg_own_server: Any) -> None:
    url = pg_own_server.database("journal_away", "forwardd", DB_PASSWORD)
    troubles: list[str | None] = []
    journal = PgJournal(db(url, "alpha"), on_trouble=troubles.append)
    try:
        journal.record("start", T0)
        assert journal.flush() and journal.healthy
        pg_own_server.stop()
        started = time.monotonic()
        for i in range(2000):
            journal.record("calendar", T0 + dt.timedelta(seconds=i), None, True, calendar="rota")
        assert time.monotonic() - started < 0.5  # a queue, never the database
        assert journal.flush(10)  # held back counts as done
        assert journal.problem is not None and "cluster database" in journal.problem
        assert troubles and troubles[-1] == journal.problem
        assert DB_PASSWORD not in journal.problem
        with pytest.raises(Exception, match="journal"):
            journal.entries()
        assert journal.last_confirmed("606309") is None  # unreadable: nothing confirmed, no exception
        pg_own_server.start()
        wait_for(lambda: journal.healthy, timeout=20)
        assert troubles[-1] is None
        wait_for(lambda: len(journal.entries(kind="calendar")) == 2000, timeout=20)
        assert journal.dropped == 0
    finally:
        journal.close()


def test_an_entry_the_database_refuses_never_holds_up_the_others(pg_url: str) -> None:
    """jsonb refuses the NUL character, which an aql answer or a calendar title may carry: the NUL is
    dropped. An entry that cannot be made (here, one without a kind) is dropped alone, and logged: the
    entries recorded with it, and after it, are all there. (A row the database itself refuses is dropped
    alone too: tests/test_store_contract.py, on both backends.)"""
    journal = PgJournal(db(pg_url, "alpha"))
    try:
        journal.record("error", T0, "606309", False, error="aql said: bad\x00value", raw="a\\u0000b")
        journal.record(None, T0 + dt.timedelta(seconds=1))  # type: ignore[arg-type]
        journal.record("start", T0 + dt.timedelta(seconds=2), pid=7)
        assert journal.flush(10)
        rows = journal.entries()
        assert [r["kind"] for r in rows] == ["error", "start"]
        assert rows[0]["error"] == "aql said: badvalue" and rows[0]["raw"] == "a\\u0000b"
        assert journal.dropped == 1 and journal.healthy
        journal.record("stop", T0 + dt.timedelta(seconds=3))
        assert journal.flush(10) and [r["kind"] for r in journal.entries()][-1] == "stop"
    finally:
        journal.close()


# ----------------------------------------------------------------------------------------- overrides


def test_overrides_added_on_one_host_are_seen_and_cancelled_on_another(pg_url: str) -> None:
    a, b = PgOverrides(db(pg_url, "alpha")), PgOverrides(db(pg_url, "beta"))
    try:
        assert b.version() == 0 and b.listed(T0) == []
        made = a.add("606309", "07700900003", "carol", T0, T0 + dt.timedelta(hours=2), "cover", "ann", T0)
        assert made.id >= 1 and made.reason == "override by ann: cover"
        seen = b.listed(T0 + dt.timedelta(minutes=1))
        assert [(o.id, o.target, o.person, o.start, o.end) for o in seen] == [
            (made.id, "07700900003", "carol", T0, T0 + dt.timedelta(hours=2))]
        assert b.version() == 1
        gone = b.cancel(made.id, "bob", T0 + dt.timedelta(minutes=2))
        assert gone is not None and gone.cancelled_by == "bob"
        assert b.cancel(made.id, "bob", T0) is not None and a.version() == 2  # twice is harmless, counted once
        assert a.listed(T0) == [] and len(a.listed(T0, everything=True)) == 1
        assert a.cancel(9999, "bob", T0) is None and a.get(9999) is None
    finally:
        a.close()
        b.close()


def test_a_read_only_store_on_an_empty_database_lists_nothing(pg_url: str) -> None:
    store = PgOverrides(db(pg_url, "alpha"), readonly=True)
    try:
        assert store.listed(T0) == [] and store.version() == 0
    finally:
        store.close()


def test_two_hosts_claiming_one_notice_at_once_only_one_sends_it(pg_url: str) -> None:
    stores = [PgOverrides(db(pg_url, name)) for name in ("alpha", "beta")]
    stores[0].version()  # tables made
    wins: list[bool] = []
    go = threading.Barrier(2)

    def claim(store: PgOverrides) -> None:
        go.wait()
        for k in range(20):
            wins.append(store.record_notice(f"notice-{k}", "alice", "606309", "start", T0, T0 + dt.timedelta(hours=1),
                                            False, T0))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert len(wins) == 40 and sum(wins) == 20
        assert len(stores[1].told(T0)) == 20
    finally:
        for s in stores:
            s.close()


# --------------------------------------------------------------------------------------------- lease


class Recorder:
    def __init__(self) -> None:
        self.events: list[LeaseEvent] = []
        self.troubles: list[str | None] = []


def lease(url: str, name: str, rec: Recorder | None = None, **timings: float) -> Lease:
    rec = rec or Recorder()
    return Lease(db(url, name), settings(url, **timings), SystemClock(), on_event=rec.events.append,
                 on_trouble=rec.troubles.append).start()


def test_one_leader_sends_after_its_first_fence_and_a_standby_takes_over_when_it_stops(pg_url: str) -> None:
    ra, rb = Recorder(), Recorder()
    a = lease(pg_url, "alpha", ra)
    wait_for(lambda: a.leading, timeout=10)
    took = time.monotonic()
    b = lease(pg_url, "beta", rb)
    try:
        assert b.first_look.wait(10) and not b.leading and not b.may_send()
        assert not a.may_send() or time.monotonic() - took > 0.5  # the first fence: nothing sent at once
        wait_for(lambda: a.may_send(), timeout=5)
        wait_for(lambda: b.status().leader == "alpha", timeout=5)
        assert b.status().since == a.status().since
        assert read_leader(db(pg_url, "status")).instance == "alpha"
        assert [e.kind for e in ra.events] == ["acquired"] and ra.events[0].previous is None
        a.close()
        gone = time.monotonic()
        assert not a.may_send()
        wait_for(lambda: b.leading, timeout=5)
        assert b.ready_in() is not None
        wait_for(lambda: b.may_send(), timeout=5)
        took_over = time.monotonic() - gone
        assert took_over >= 0.8  # the new leader waited out a fence
        assert [(e.kind, e.previous) for e in rb.events] == [("acquired", "alpha")]
        leader = read_leader(db(pg_url, "status"))
        assert leader.instance == "beta" and leader.since is not None
    finally:
        a.close()
        b.close()
    after = read_leader(db(pg_url, "status"))
    assert after.instance is None and after.last == "beta"


def test_a_killed_leaders_lock_is_freed_at_once(pg_url: str) -> None:
    """kill -9 of the leader: its connection closes, the server ends the session, the lock is free."""
    a = lease(pg_url, "alpha")
    wait_for(lambda: a.leading, timeout=10)
    b = lease(pg_url, "beta")
    try:
        assert b.first_look.wait(10) and not b.leading
        assert a._conn is not None
        os.close(a._conn.fileno())  # what the kernel does to a killed process's sockets
        wait_for(lambda: b.leading, timeout=5)
    finally:
        a.close()
        b.close()


def test_a_leader_whose_database_stops_stops_sending_at_once_and_leads_again_after(pg_own_server: Any) -> None:
    url = pg_own_server.database("lease_stop", "forwardd", DB_PASSWORD)
    rec = Recorder()
    a = lease(url, "alpha", rec)
    try:
        wait_for(lambda: a.may_send(), timeout=10)
        pg_own_server.stop()
        stopped = time.monotonic()
        wait_for(lambda: not a.may_send(), timeout=5)
        assert time.monotonic() - stopped < 0.8  # the server closed the session: noticed before the fence
        wait_for(lambda: [e.kind for e in rec.events] == ["acquired", "lost"], timeout=5)
        assert a.status().problem is not None and DB_PASSWORD not in (a.status().problem or "")
        assert rec.troubles and rec.troubles[-1] is not None
        pg_own_server.start()
        wait_for(lambda: a.may_send(), timeout=15)
        assert [e.kind for e in rec.events] == ["acquired", "lost", "acquired"] and rec.troubles[-1] is None
    finally:
        a.close()


def test_a_wedged_lock_session_closes_the_fence_without_any_error(pg_url: str, pg_server: Any) -> None:
    """The lock's server process stops answering (SIGSTOP): no error reaches the leader, its confirmation
    just hangs; it stops sending within the fence all the same, and sends again once it is answered."""
    a = lease(pg_url, "alpha", fence=0.8)
    wait_for(lambda: a.may_send(), timeout=10)
    with pg_server.admin() as admin:
        row = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'forwardd alpha lease'").fetchone()
    assert row is not None
    pid = int(row[0])
    os.kill(pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        wait_for(lambda: not a.may_send(), timeout=5)
        assert time.monotonic() - stopped <= 0.8 + 0.3
        time.sleep(1.0)
        assert not a.may_send() and a.leading  # still holds the lock, but may not use it
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        wait_for(lambda: a.may_send(), timeout=10)
    finally:
        a.close()


def test_the_lock_session_tells_the_server_to_give_up_on_a_silent_leader_after_the_lease(pg_url: str) -> None:
    """The server frees a cut-off leader's lock about ``lease`` after it last heard from it, never sooner
    (tcp_user_timeout), and a confirmation cannot hang on the server for longer than check_every."""
    a = lease(pg_url, "alpha", lease=4.0)
    wait_for(lambda: a.leading, timeout=10)
    try:
        assert a._conn is not None
        shown = {name: a._conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                 for name in ("tcp_user_timeout", "tcp_keepalives_idle", "tcp_keepalives_count", "statement_timeout")}
        assert shown == {"tcp_user_timeout": "4000", "tcp_keepalives_idle": "1", "tcp_keepalives_count": "3",
                         "statement_timeout": "200ms"}
    finally:
        a.close()


def test_the_database_password_never_shows_in_an_error(pg_url: str) -> None:
    wrong = "not-" + DB_PASSWORD
    bad = Database(pg_url, SecretStr(wrong), "alpha")
    from forwardd.logs import register_secret

    register_secret(wrong)
    with pytest.raises(Exception) as info:
        bad.connect("test")
    assert wrong not in str(info.value) and "password authentication failed" in str(info.value)
    assert wrong not in repr(bad)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_url, password=wrong).close()


@pytest.mark.parametrize("seconds", [0.5, 3.0, 4.0, 6.0, 6.9, 10.2])
def test_keepalives_give_up_on_a_silent_peer_never_sooner_than_asked(seconds: float) -> None:
    from forwardd.store.postgres import keepalives

    k = keepalives(seconds)
    assert k.idle + k.interval * k.count >= seconds and k.user_timeout_ms >= seconds * 1000
    assert k.idle + k.interval * k.count < seconds + 2 and k.user_timeout_ms < seconds * 1000 + 1  # and not much later


def test_an_unexpected_error_in_the_lease_stops_leading_and_it_leads_again(pg_url: str, monkeypatch: Any) -> None:
    """Not only a database error: whatever goes wrong in a confirmation, the leader lets go (its lock too,
    or no host would lead until a restart), says so once, and takes the lease again when it can."""
    import forwardd.service.lease as lease_module

    real, failures = lease_module.holds_lock, [1]

    def flaky(conn: Any) -> bool:
        if failures:
            failures.pop()
            raise RuntimeError("a bug")
        return real(conn)

    rec = Recorder()
    monkeypatch.setattr(lease_module, "holds_lock", flaky)
    a = lease(pg_url, "alpha", rec)
    b = None
    try:
        wait_for(lambda: [e.kind for e in rec.events] == ["acquired", "lost", "acquired"], timeout=10)
        assert "RuntimeError: a bug" in (rec.events[1].reason or "")
        assert rec.troubles[0] is not None and "a bug" in rec.troubles[0] and rec.troubles[-1] is None
        wait_for(lambda: a.may_send(), timeout=5)
        b = lease(pg_url, "beta")
        assert b.first_look.wait(10) and not b.leading  # one leader, the lock held again
    finally:
        a.close()
        if b is not None:
            b.close()


def test_a_lease_found_gone_stays_a_problem_until_the_lease_is_taken_again(pg_url: str, monkeypatch: Any) -> None:
    """The database no longer shows the leader holding its lock: it stops, and the problem it reports is
    not cleared in the same breath, but once it has reconnected and taken the lease again."""
    import forwardd.service.lease as lease_module

    real, gone = lease_module.holds_lock, [False]
    monkeypatch.setattr(lease_module, "holds_lock", lambda conn: gone.pop() if gone else real(conn))
    both: list[str] = []
    a = Lease(db(pg_url, "alpha"), settings(pg_url), SystemClock(), on_event=lambda e: both.append(e.kind),
              on_trouble=lambda m: both.append("problem" if m else "clear")).start()
    try:
        wait_for(lambda: both.count("acquired") == 2, timeout=10)
        wait_for(lambda: "clear" in both, timeout=5)
        assert both == ["acquired", "problem", "lost", "acquired", "clear"]
    finally:
        a.close()
