"""The cluster lease: which one instance (the leader) may send to aql, when ``[cluster]`` is configured.

The lease is a PostgreSQL *session advisory lock* held on a connection of its own, not a lease row with
an expiry. The lock lives exactly as long as the session that took it: when the leader dies (kill -9, a
crash, a clean stop), the kernel closes its TCP connection, the server ends the session and frees the
lock at once, and a standby takes it at its next try (every ``check_every``). No expiry is compared
against anybody's clock, and nothing has to be renewed in time for the lease to stay where it is.

A leader cut off from the database (a dead host, a network cut) cannot close its connection. Its
session is then ended by the server's TCP keepalives and user timeout, which this connection sets so
that the server gives up about ``lease`` after it last heard from the leader, never sooner
(``tcp_user_timeout`` = lease): only then can a standby take the lock.

Fencing, so that a leader that may have lost the lease stops before anyone else starts:
- the leader confirms every ``check_every`` that its session still holds the lock (a query with a
  statement timeout on the lock's own connection), and wakes at once when the server closes it;
- ``may_send()`` (the reconciler asks it before each changeuser) is true only while the last
  successful confirmation *started* less than ``fence`` ago (fence < lease: the leader stops before the
  server could free the lock), and only once ``fence`` has passed since this instance took the lock, so
  that whatever the old leader was allowed to send has been sent before the new one sends anything
  (this holds even when the server restarts at once and frees every lock with it).
So two instances never send in overlapping spans, whatever the network does, as long as the two hosts'
clocks run at the same rate (they are never compared). The cost: a failover takes about
``check_every + fence`` after a crash, and about ``lease + check_every + fence`` after a host or network
failure (the server must first give up on the old leader).
"""

from __future__ import annotations

import datetime as dt
import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import psycopg
import structlog

from ..clock import Clock
from ..config import ClusterSettings
from ..store.pg_lease import claim_leadership, current_leader, holds_lock, release_lock, try_lock
from ..store.postgres import Database, DatabaseError, keepalives

log = structlog.get_logger("forwardd.lease")


@dataclass(frozen=True)
class LeaseEvent:
    """``acquired`` (this instance now leads; ``previous`` led before) or ``lost`` (``reason``)."""

    kind: str
    instance: str
    since: dt.datetime | None
    previous: str | None = None
    reason: str | None = None
    sending_from: dt.datetime | None = None  # acquired: when this instance may first send (after the fence)


@dataclass(frozen=True)
class LeaseStatus:
    """What this instance knows of the lease now, for status, the page and /healthz."""

    instance: str
    leading: bool  # this instance holds the lease
    sending: bool  # ... and may send now (not in its first fence, not cut off)
    leader: str | None  # who leads, as last seen (this instance when leading); None: nobody, or not known
    since: dt.datetime | None  # since when
    problem: str | None  # why this instance cannot tell, or cannot lead (the database is away)
    checked_at: dt.datetime | None  # the last time the database answered

    def as_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "leading": self.leading, "sending": self.sending, "leader": self.leader,
                "since": self.since.isoformat() if self.since else None, "problem": self.problem,
                "checked_at": self.checked_at.isoformat() if self.checked_at else None}


class Lease:
    """Run with ``start()`` (a thread of its own); ``may_send()`` is the fence; ``close()`` gives the lease up.

    ``on_event`` and ``on_trouble`` are called from the lease's thread: a leadership change, and the
    database becoming unreachable (a message) or reachable again (None)."""

    def __init__(self, db: Database, settings: ClusterSettings, clock: Clock,
                 on_event: Callable[[LeaseEvent], None] | None = None,
                 on_trouble: Callable[[str | None], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.instance = db.instance
        self.settings = settings
        self.clock = clock
        self.on_event = on_event
        self.on_trouble = on_trouble
        self._mono = monotonic
        self._check = settings.check_every.total_seconds()
        self._fence = settings.fence.total_seconds()
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._leading = False
        self._acquired_at = 0.0  # monotonic: when the lock was known taken
        self._confirmed_start = 0.0  # monotonic: when the last successful confirmation started
        self._since: dt.datetime | None = None
        self._leader: str | None = None
        self._leader_since: dt.datetime | None = None
        self._problem: str | None = None
        self._checked_at: dt.datetime | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self.first_look = threading.Event()  # set once the first try has an answer (taken, held by another, failed)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------ the fence

    def may_send(self) -> bool:
        """True while this instance leads, its fence is open (its last confirmation started less than
        ``fence`` ago) and its first fence after taking the lease has passed. Never blocks."""
        with self._lock:
            if not self._leading:
                return False
            now = self._mono()
            return now - self._confirmed_start < self._fence and now >= self._acquired_at + self._fence

    @property
    def leading(self) -> bool:
        with self._lock:
            return self._leading

    def ready_in(self) -> float | None:
        """Seconds until this instance may first send after taking the lease (0 when it may now); None
        when it does not lead."""
        with self._lock:
            if not self._leading:
                return None
            return max(0.0, self._acquired_at + self._fence - self._mono())

    def status(self) -> LeaseStatus:
        sending = self.may_send()
        with self._lock:
            return LeaseStatus(self.instance, self._leading, sending, self._leader, self._leader_since, self._problem,
                               self._checked_at)

    # --------------------------------------------------------------------------------------- thread

    def start(self) -> Lease:
        """Start trying to take the lease (again: nothing)."""
        if self._thread is not None or self._stop.is_set():
            return self
        self._thread = threading.Thread(target=self._run, name="forwardd-lease", daemon=True)
        self._thread.start()
        return self

    def _session_settings(self) -> dict[str, str]:
        """Server settings of the lock's session: the server ends it about ``lease`` after it last heard
        from this instance (never sooner: tcp_user_timeout), and a confirmation cannot hang."""
        lease = self.settings.lease.total_seconds()
        k = keepalives(lease)
        return {"tcp_keepalives_idle": str(k.idle), "tcp_keepalives_interval": str(k.interval),
                "tcp_keepalives_count": str(k.count), "tcp_user_timeout": str(k.user_timeout_ms),
                "statement_timeout": str(max(200, int(self._check * 1000))),
                "idle_in_transaction_session_timeout": str(k.user_timeout_ms)}

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._conn is None:
                try:
                    self._conn = self.db.connect("lease", settings=self._session_settings(),
                                                 keepalive_s=self.settings.lease.total_seconds(), schema=True,
                                                 connect_timeout=max(2.0, self._fence))
                except DatabaseError as err:
                    self._trouble(str(err))
                    self.first_look.set()
                    self._sleep(self._check)
                    continue
            try:
                if self._leading:
                    self._confirm(self._conn)
                else:
                    self._try_take(self._conn)
                if self._conn is not None:  # (not dropped by the confirmation: the database did answer)
                    self._contact()
            except Exception as err:  # noqa: BLE001 - whatever it was, stop leading and try again
                if isinstance(err, psycopg.Error):
                    reason = str(self.db.error("lost the connection to the cluster database", err))
                else:
                    log.exception("lease_failed", instance=self.instance)
                    reason = f"the lease failed ({type(err).__name__}: {err})"
                self._drop(reason)
                self.first_look.set()
                self._sleep(self._check)
                continue
            self.first_look.set()
            self._sleep(self._check, watch=self._conn if self._leading else None)
        self._release()

    def _sleep(self, seconds: float, watch: psycopg.Connection[Any] | None = None) -> None:
        """Wait ``seconds``, or less: when ``close()`` is called, or when the server writes to (or closes)
        the lock's connection while this instance leads, so that a session ended by the server is noticed
        at once rather than at the next confirmation."""
        fds = [self._wake_r]
        if watch is not None and not watch.closed:
            fds.append(watch.fileno())
        end = self._mono() + seconds
        while not self._stop.is_set():
            left = end - self._mono()
            if left <= 0:
                return
            ready, _, _ = select.select(fds, [], [], left)
            if ready:
                if self._wake_r in ready:
                    return
                time.sleep(0.02)  # the server spoke: confirm now (a few ms later, to read its whole message)
                return

    def _try_take(self, conn: psycopg.Connection[Any]) -> None:
        started = self._mono()
        if not try_lock(conn):
            lead = current_leader(conn)
            with self._lock:
                self._leader, self._leader_since = lead.instance, lead.since
            return
        known = self._mono()
        since, previous = claim_leadership(conn, self.instance)
        with self._lock:
            self._leading = True
            self._acquired_at, self._confirmed_start = known, started
            self._since = since
            self._leader, self._leader_since = self.instance, since
        sending_from = self.clock.now() + dt.timedelta(seconds=self._fence)
        log.info("lease_acquired", instance=self.instance, since=since.isoformat(), previous=previous,
                 sending_from=sending_from.isoformat())
        self._event(LeaseEvent("acquired", self.instance, since, previous=previous, sending_from=sending_from))

    def _confirm(self, conn: psycopg.Connection[Any]) -> None:
        started = self._mono()
        if holds_lock(conn):
            with self._lock:
                self._confirmed_start = max(self._confirmed_start, started)
            return
        self._drop("the database no longer shows this instance holding the lease")

    def _contact(self) -> None:
        with self._lock:
            self._checked_at = self.clock.now()
            had = self._problem
            self._problem = None
        if had is not None:
            log.info("lease_database_back", instance=self.instance)
            self._tell(None)

    def _trouble(self, message: str) -> None:
        with self._lock:
            had = self._problem
            self._problem = message
            if not self._leading:
                self._leader = self._leader_since = None  # not known any more
        if had != message:
            log.warning("lease_database_unreachable", instance=self.instance, error=message)
            self._tell(message)

    def _tell(self, message: str | None) -> None:
        if self.on_trouble is None:
            return
        try:
            self.on_trouble(message)
        except Exception:  # noqa: BLE001 - a broken alert path must not stop the lease
            log.exception("lease_trouble_callback_failed")

    def _drop(self, reason: str) -> None:
        """Stop leading (at once: the fence closes) and forget the connection (closing it frees the lock,
        if the server still had it)."""
        with self._lock:
            was = self._leading
            self._leading = False
            since = self._since
            self._since = None
            self._leader = self._leader_since = None
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass
        self._trouble(reason)
        if was:
            log.error("lease_lost", instance=self.instance, reason=reason)
            self._event(LeaseEvent("lost", self.instance, since, reason=reason))

    def _event(self, event: LeaseEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 - a broken journal or alert path must not stop the lease
            log.exception("lease_event_callback_failed")

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        with self._lock:
            was = self._leading
            self._leading = False
        if conn is None:
            return
        try:
            if was:
                release_lock(conn)
        except psycopg.Error:
            pass
        finally:
            conn.close()
        if was:
            log.info("lease_released", instance=self.instance)

    def close(self, timeout: float = 5.0) -> None:
        """Stop trying, and give the lease up if this instance holds it (safe to call twice)."""
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return  # stuck in a call to a dead database: its connection's timeouts will end it
            self._thread = None
        else:
            self._release()
        if self._wake_r < 0:
            return
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1
