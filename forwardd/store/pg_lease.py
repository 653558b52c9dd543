"""The SQL of the cluster lease: a session advisory lock (taken and confirmed by ``service.lease``), and the
row that says who holds it and since when (``current_leader``, for ``status`` and the page)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from .postgres import LOCK_CLASS, LOCK_ID, Database, _utc


@dataclass(frozen=True)
class Leadership:
    """Who holds the lease now (``instance``, None when nobody does) and since when; ``last`` and
    ``last_since``: who held it last, when nobody does now."""

    instance: str | None
    since: dt.datetime | None
    last: str | None = None
    last_since: dt.datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {"leader": self.instance, "since": self.since.isoformat() if self.since else None,
                "last_leader": self.last, "last_since": self.last_since.isoformat() if self.last_since else None}


_HELD_BY = ("SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted AND k.classid = %s AND k.objid = %s "
            "AND k.objsubid = 2 AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())")


def try_lock(conn: psycopg.Connection[Any]) -> bool:
    """Take the lease's session lock on ``conn`` if nobody holds it. Raises psycopg.Error."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, LOCK_ID)).fetchone()
    return bool(row and row[0])


def holds_lock(conn: psycopg.Connection[Any]) -> bool:
    """Whether the session of ``conn`` still holds the lease's lock. Raises psycopg.Error."""
    row = conn.execute(f"SELECT EXISTS ({_HELD_BY} AND k.pid = pg_backend_pid())", (LOCK_CLASS, LOCK_ID)).fetchone()
    return bool(row and row[0])


def claim_leadership(conn: psycopg.Connection[Any], instance: str) -> tuple[dt.datetime, str | None]:
    """Record that ``instance`` (holding the lock on ``conn``) leads from now, in database time. Returns
    that time and who led before (None for nobody). Raises psycopg.Error."""
    with conn.transaction():
        before = conn.execute("SELECT instance FROM forwardd_leader WHERE id = 1 FOR UPDATE").fetchone()
        row = conn.execute(
            "INSERT INTO forwardd_leader (id, instance, since, backend_pid) VALUES (1, %s, now(), pg_backend_pid()) "
            "ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, since = excluded.since, "
            "backend_pid = excluded.backend_pid RETURNING since", (instance,)).fetchone()
    assert row is not None
    return _utc(row[0]), (before[0] if before else None)


def release_lock(conn: psycopg.Connection[Any]) -> None:
    """Give the lease up (a clean stop). Raises psycopg.Error."""
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, LOCK_ID))


def current_leader(conn: psycopg.Connection[Any]) -> Leadership:
    """Who holds the lease now, by the lock itself (the row only names the holder). Raises psycopg.Error."""
    try:
        row = conn.execute(f"SELECT instance, since, EXISTS ({_HELD_BY} AND k.pid = l.backend_pid) "
                           "FROM forwardd_leader l WHERE id = 1", (LOCK_CLASS, LOCK_ID)).fetchone()
    except pg_errors.UndefinedTable:
        return Leadership(None, None)
    if row is None:
        return Leadership(None, None)
    if row[2]:
        return Leadership(row[0], _utc(row[1]))
    return Leadership(None, None, row[0], _utc(row[1]))


def read_leader(db: Database) -> Leadership:
    """``current_leader`` on a connection of its own (for ``status``). Raises DatabaseError."""
    conn = db.connect("status", settings={"statement_timeout": "10000"}, connect_timeout=5)
    try:
        return current_leader(conn)
    except psycopg.Error as err:
        raise db.error("cannot read who leads", err) from None
    finally:
        conn.close()
