"""The cluster's store in PostgreSQL (psycopg 3), when the config has ``[cluster]``: the journal, the
command-line overrides and the notices sent, shared by every instance, so that each host shows the same
history and applies the same overrides, and two hosts never send a person the same notice. The same
interfaces as the SQLite classes (``journal.Journal``, ``overrides.SqliteOverrides``); every journal entry
also names the instance that wrote it. The calendar cache stays in each host's state directory.

Also here: the SQL of the lease (a session advisory lock, taken and confirmed by ``service.lease``) and
of the row that says who holds it and since when (``current_leader``, for ``status`` and the page).

Connections are made with the password apart from the URL (the config refuses one in the URL), and
every error message is passed through ``logs.redact``: the password never shows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import psycopg
import structlog
from psycopg import errors as pg_errors
from pydantic import SecretStr

from ..core.notices import Told
from ..errors import ForwarddError
from ..logs import redact
from .journal import JournalError, confirmed_fields
from .overrides import Override, StoreError
from .writer import JournalWriter

log = structlog.get_logger("forwardd.postgres")

UTC = dt.timezone.utc
RETRY_S = 2.0  # a journal writer whose database is away tries again this often
UNREACHABLE_S = 3.0  # after a failed connection, reads fail at once for this long (never stall the daemon)
# The lease: pg_try_advisory_lock(LOCK_CLASS, LOCK_ID), the two-int form (pg_locks: objsubid = 2).
LOCK_CLASS = 0x66776464  # "fwdd"
LOCK_ID = 1
SCHEMA_LOCK = 0x66776465  # serialises the CREATE ... IF NOT EXISTS of two instances starting together

SCHEMA = """
CREATE TABLE IF NOT EXISTS forwardd_journal (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    voipnumber text,
    ok boolean,
    instance text NOT NULL,
    detail jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS forwardd_journal_number ON forwardd_journal (voipnumber, at);
CREATE INDEX IF NOT EXISTS forwardd_journal_kind ON forwardd_journal (kind, at);
CREATE INDEX IF NOT EXISTS forwardd_journal_confirmed ON forwardd_journal (voipnumber, at DESC, id DESC)
    WHERE kind = 'readback' AND ok;
CREATE TABLE IF NOT EXISTS forwardd_overrides (
    id bigserial PRIMARY KEY,
    voipnumber text NOT NULL,
    forwardto text,
    person text,
    start timestamptz NOT NULL,
    "end" timestamptz NOT NULL,
    note text NOT NULL DEFAULT '',
    made_by text NOT NULL,
    made_at timestamptz NOT NULL,
    cancelled_by text,
    cancelled_at timestamptz,
    instance text NOT NULL
);
CREATE INDEX IF NOT EXISTS forwardd_overrides_end ON forwardd_overrides ("end");
CREATE TABLE IF NOT EXISTS forwardd_notices (
    key text PRIMARY KEY,
    person text NOT NULL,
    voipnumber text NOT NULL,
    kind text NOT NULL,
    shift_start timestamptz NOT NULL,
    shift_end timestamptz NOT NULL,
    open_end boolean NOT NULL DEFAULT false,
    made_at timestamptz NOT NULL,
    outcome text NOT NULL DEFAULT 'pending',
    instance text NOT NULL
);
CREATE TABLE IF NOT EXISTS forwardd_meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS forwardd_leader (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    instance text NOT NULL,
    since timestamptz NOT NULL,
    backend_pid integer NOT NULL
);
"""


class DatabaseError(ForwarddError):
    """The cluster database cannot be reached or used (the message says which and why, never the password)."""


def _utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(UTC)


@dataclass(frozen=True)
class Keepalives:
    idle: int  # s of silence before the first probe
    interval: int  # s between probes
    count: int  # unanswered probes before giving up
    user_timeout_ms: int  # unacknowledged data is given up on after this long


def keepalives(seconds: float) -> Keepalives:
    """TCP keepalives and user timeout under which a silent peer is given up on after ``seconds``, never
    sooner (rounded up to whole seconds: idle + interval * count >= seconds), for libpq on this side of a
    connection and for the server's side of the lease's."""
    idle = max(1, int(seconds / 3))
    return Keepalives(idle, 1, max(1, math.ceil(seconds) - idle), math.ceil(seconds * 1000))


class Database:
    """Where the cluster's database is and who this instance is; makes connections. Thread-safe."""

    def __init__(self, url: str, password: SecretStr | None, instance: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.instance = instance
        self._password = password
        self.connect_timeout = max(2, int(connect_timeout))
        self._schema_ready = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Database(url={self.url!r}, instance={self.instance!r}, password=**********)"

    def error(self, what: str, err: BaseException) -> DatabaseError:
        """``err`` as a DatabaseError: one line, naming the database, the password redacted."""
        text = " ".join(str(err).split()) or type(err).__name__
        return DatabaseError(redact(f"{what} ({self.url}): {text}"))

    def connect(self, purpose: str, *, settings: dict[str, str] | None = None, keepalive_s: float | None = None,
                schema: bool = False, connect_timeout: float | None = None) -> psycopg.Connection[Any]:
        """A new autocommit connection. ``settings``: server settings for the session; ``keepalive_s``: libpq's
        TCP keepalives and user timeout, so that a call on a dead link fails within about that long;
        ``schema``: create the tables first if they are missing. Raises DatabaseError."""
        kw: dict[str, Any] = {"autocommit": True, "application_name": f"forwardd {self.instance} {purpose}"[:63],
                              "connect_timeout": max(2, int(connect_timeout or self.connect_timeout))}
        if self._password is not None:
            kw["password"] = self._password.get_secret_value()
        if keepalive_s is not None:
            k = keepalives(keepalive_s)
            kw.update(keepalives=1, keepalives_idle=k.idle, keepalives_interval=k.interval, keepalives_count=k.count,
                      tcp_user_timeout=k.user_timeout_ms)
        if settings:
            kw["options"] = " ".join(f"-c {k}={v}" for k, v in settings.items())
        try:
            conn = psycopg.connect(self.url, **kw)
        except psycopg.Error as err:
            raise self.error("cannot connect to the cluster database", err) from None
        if schema:
            try:
                self._ensure_schema(conn)
            except psycopg.Error as err:
                conn.close()
                raise self.error("cannot create forwardd's tables in the cluster database", err) from None
        return conn

    def _ensure_schema(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if self._schema_ready:
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                conn.execute(SCHEMA)
            self._schema_ready = True


_INSERT = ("INSERT INTO forwardd_journal (at, kind, voipnumber, ok, instance, detail) "
           "VALUES (%s, %s, %s, %s, %s, %s::jsonb)")
_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")  # a JSON escape of NUL (not an escaped backslash's "u0000")


def _json(value: Any) -> Any:
    return value if isinstance(value, (dict, list)) else json.loads(value)


# ------------------------------------------------------------------------------------------ journal


class PgJournal(JournalWriter):
    """The journal in the cluster database: the interface of ``journal.Journal``. ``record`` never blocks
    and never raises: a writer thread commits entries in batches; while the database is away they wait in
    a bounded backlog, ``problem`` says so (and ``on_trouble`` is told), and writing resumes by itself.
    Reads raise JournalError; after a failed connection they fail at once for a few seconds, so that a
    database that went away never stalls the daemon's event loop for long."""

    retry_s = RETRY_S
    failures = (DatabaseError, psycopg.Error)

    def __init__(self, db: Database, on_trouble: Callable[[str | None], None] | None = None,
                 write: bool = True) -> None:
        self.db = db
        self.instance = db.instance
        self.where = f"the cluster database {db.url}"
        self._conn: psycopg.Connection[Any] | None = None  # the writer thread's
        self._read_lock = threading.Lock()
        self._reader: psycopg.Connection[Any] | None = None
        self._unreachable_until = 0.0
        super().__init__(on_trouble, write)

    def record(
        self, kind: str, at: dt.datetime, voipnumber: str | None = None, ok: bool | None = None, **detail: Any
    ) -> None:
        # jsonb refuses the NUL character (\u0000), which json.dumps writes for a NUL in any text (say, a
        # field aql echoed): dropped, or the entry would be refused for ever
        text = _NUL.sub(r"\1", json.dumps(detail, default=str))
        self._enqueue((_utc(at), kind, voipnumber, ok, self.instance, text))

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = self.db.connect("journal", schema=True, settings={"statement_timeout": "10000"},
                                         keepalive_s=10)
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.executemany(_INSERT, batch)
        except (pg_errors.DataError, pg_errors.IntegrityError):
            self._write_each(batch)

    def _write_each(self, batch: list[tuple[Any, ...]]) -> None:
        """A batch the database refused for what is in it, not for being away: row by row, dropping (and
        logging) the rows it refuses, so that one bad entry never holds up the journal."""
        assert self._conn is not None
        for row in batch:
            try:
                with self._conn.transaction():
                    self._conn.execute(_INSERT, row)
            except (pg_errors.DataError, pg_errors.IntegrityError) as err:
                self.dropped += 1
                log.error("journal_entry_refused", where=self.where, kind=row[1], voipnumber=row[2],
                          error=str(self.db.error("the database refused a journal entry", err)))

    def _describe(self, err: BaseException) -> str:
        return str(err) if isinstance(err, DatabaseError) else str(
            self.db.error("cannot write the journal to the cluster database", err))

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # ------------------------------------------------------------------------------------- reading

    def _read(self, sql: str, args: list[Any] | tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._read_lock:
            if self._reader is None and time.monotonic() < self._unreachable_until:
                raise JournalError(f"cannot read the journal: {self.where} was unreachable a moment ago")
            try:
                if self._reader is None or self._reader.closed:
                    self._reader = self.db.connect("journal-reader", settings={"statement_timeout": "10000"},
                                                   keepalive_s=10, connect_timeout=3)
                return list(self._reader.execute(sql, args).fetchall())
            except (DatabaseError, psycopg.Error) as err:
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
                if isinstance(err, pg_errors.UndefinedTable):
                    return []
                self._unreachable_until = time.monotonic() + UNREACHABLE_S
                reason = str(err) if isinstance(err, DatabaseError) else str(
                    self.db.error("cannot read the journal", err))
                raise JournalError(reason) from None

    def entries(
        self, voipnumber: str | None = None, since: dt.datetime | None = None, kind: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Entries of every instance, oldest first (by their time, then as written); the newest ``limit``
        when given. Raises JournalError."""
        sql = "SELECT id, at, kind, voipnumber, ok, instance, detail FROM forwardd_journal WHERE true"
        args: list[Any] = []
        if voipnumber:
            sql += " AND voipnumber = %s"
            args.append(voipnumber)
        if since:
            sql += " AND at >= %s"
            args.append(_utc(since))
        if kind:
            sql += " AND kind = %s"
            args.append(kind)
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY at DESC, id DESC LIMIT {int(limit)}) AS newest"
        rows = self._read(sql + " ORDER BY at, id", args)
        return [_entry(r) for r in rows]

    def last_confirmed(self, voipnumber: str) -> dict[str, str] | None:
        """The managed fields last confirmed by a read-back on any instance, or None (also when the
        database cannot be read)."""
        try:
            rows = self._read("SELECT detail FROM forwardd_journal WHERE voipnumber = %s AND kind = 'readback' AND ok "
                              "ORDER BY at DESC, id DESC LIMIT 1", (voipnumber,))
        except JournalError:
            return None
        return _json(rows[0][0]).get("fields") if rows else None

    def confirmed_all(self) -> dict[str, dict[str, str]]:
        """Per number, the managed fields last confirmed by a read-back on any instance. Raises JournalError."""
        return confirmed_fields(self._read("SELECT DISTINCT ON (voipnumber) voipnumber, detail FROM forwardd_journal "
                                           "WHERE kind = 'readback' AND ok ORDER BY voipnumber, at DESC, id DESC", ()))

    def close(self, timeout: float = 5.0) -> None:
        self._stop_writer(timeout)
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def _entry(r: tuple[Any, ...]) -> dict[str, Any]:
    detail = _json(r[6])
    return {"id": r[0], "at": _utc(r[1]).isoformat(), "kind": r[2], "voipnumber": r[3], "ok": r[4], "instance": r[5],
            **(detail if isinstance(detail, dict) else {"detail": detail})}


# ---------------------------------------------------------------------------------------- overrides


class PgOverrides:
    """Overrides and sent notices in the cluster database: the interface of ``overrides.SqliteOverrides``.
    A notice is claimed by inserting its key: of two hosts claiming it, one wins (``record_notice``)."""

    def __init__(self, db: Database, readonly: bool = False) -> None:
        self.db = db
        self.readonly = readonly
        self.where = f"the cluster database {db.url}"
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._unreachable_until = 0.0

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            if time.monotonic() < self._unreachable_until:
                raise StoreError(f"{self.where} was unreachable a moment ago")
            try:
                self._conn = self.db.connect("overrides", schema=not self.readonly, keepalive_s=10, connect_timeout=3,
                                             settings={"statement_timeout": "10000"})
            except DatabaseError as err:
                self._unreachable_until = time.monotonic() + UNREACHABLE_S
                raise StoreError(str(err)) from None
        return self._conn

    def _run(self, what: str, fn: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        with self._lock:
            try:
                return fn(self._connection())
            except psycopg.Error as err:
                if self._conn is not None and (self._conn.closed or self._conn.broken):
                    self._conn.close()
                    self._conn = None
                if isinstance(err, pg_errors.UndefinedTable) and self.readonly:
                    return None
                raise StoreError(str(self.db.error(what, err))) from None

    def _rows(self, what: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._run(what, lambda c: list(c.execute(sql, args).fetchall())) or []

    # ------------------------------------------------------------------------------------- overrides

    def add(self, voipnumber: str, forwardto: str | None, person: str | None, start: dt.datetime,
            end: dt.datetime, note: str, made_by: str, now: dt.datetime) -> Override:
        def add(c: psycopg.Connection[Any]) -> int:
            with c.transaction():
                row = c.execute(
                    'INSERT INTO forwardd_overrides (voipnumber, forwardto, person, start, "end", note, made_by, '
                    "made_at, instance) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (voipnumber, forwardto, person, _utc(start), _utc(end), note, made_by, _utc(now),
                     self.db.instance)).fetchone()
                _bump(c)
            assert row is not None
            return int(row[0])

        new_id = self._run("cannot add the override", add)
        got = self.get(new_id)
        assert got is not None
        return got

    def get(self, override_id: int) -> Override | None:
        rows = self._rows("cannot read the overrides", f"SELECT {_OVERRIDE} FROM forwardd_overrides WHERE id = %s",
                          (override_id,))
        return _override(rows[0]) if rows else None

    def cancel(self, override_id: int, by: str, now: dt.datetime) -> Override | None:
        """Cancel an override; returns it, or None when there is no such ID. Cancelling twice is harmless."""
        def cancel(c: psycopg.Connection[Any]) -> None:
            with c.transaction():
                cur = c.execute("UPDATE forwardd_overrides SET cancelled_by = %s, cancelled_at = %s "
                                "WHERE id = %s AND cancelled_at IS NULL", (by, _utc(now), override_id))
                if cur.rowcount:
                    _bump(c)

        self._run("cannot cancel the override", cancel)
        return self.get(override_id)

    def listed(self, now: dt.datetime, everything: bool = False) -> list[Override]:
        """Live overrides (not cancelled, not ended) by start; ``everything`` for all of them."""
        where = "" if everything else ' WHERE cancelled_at IS NULL AND "end" > %s'
        rows = self._rows("cannot read the overrides",
                          f"SELECT {_OVERRIDE} FROM forwardd_overrides{where} ORDER BY start, id",
                          () if everything else (_utc(now),))
        return [_override(r) for r in rows]

    def version(self) -> int:
        rows = self._rows("cannot read the overrides", "SELECT value FROM forwardd_meta WHERE key = 'overrides_version'")
        return int(rows[0][0]) if rows else 0

    # --------------------------------------------------------------------------------------- notices

    def notice_made(self, key: str) -> bool:
        return bool(self._rows("cannot read the notices", "SELECT 1 FROM forwardd_notices WHERE key = %s", (key,)))

    def record_notice(self, key: str, person: str, voipnumber: str, kind: str, shift_start: dt.datetime,
                      shift_end: dt.datetime, open_end: bool, now: dt.datetime) -> bool:
        """Claim a notice before it is sent: True when this is the first claim on any instance (send it),
        False when it was made before (never send it twice, across restarts and hosts)."""
        def claim(c: psycopg.Connection[Any]) -> bool:
            cur = c.execute(
                "INSERT INTO forwardd_notices (key, person, voipnumber, kind, shift_start, shift_end, open_end, "
                "made_at, instance) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                (key, person, voipnumber, kind, _utc(shift_start), _utc(shift_end), open_end, _utc(now),
                 self.db.instance))
            return cur.rowcount == 1

        return bool(self._run("cannot record a notice", claim))

    def notice_outcome(self, key: str, outcome: str) -> None:
        self._run("cannot record a notice's outcome",
                  lambda c: c.execute("UPDATE forwardd_notices SET outcome = %s WHERE key = %s", (outcome, key)))

    def told(self, since: dt.datetime) -> list[Told]:
        """What people were told about shifts that had not ended by ``since`` (to notice changes)."""
        rows = self._rows("cannot read the notices",
                          "SELECT person, voipnumber, shift_start, shift_end, open_end, made_at FROM forwardd_notices "
                          "WHERE shift_end > %s AND kind != 'cancelled' ORDER BY made_at", (_utc(since),))
        return [Told(r[0], r[1], _utc(r[2]), _utc(r[3]), bool(r[4]), _utc(r[5])) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_OVERRIDE = ('id, voipnumber, forwardto, person, start, "end", note, made_by, made_at, cancelled_by, cancelled_at')


def _bump(c: psycopg.Connection[Any]) -> None:
    c.execute("INSERT INTO forwardd_meta (key, value) VALUES ('overrides_version', 1) "
              "ON CONFLICT (key) DO UPDATE SET value = forwardd_meta.value + 1")


def _override(r: tuple[Any, ...]) -> Override:
    return Override(int(r[0]), r[1], r[2], r[3], _utc(r[4]), _utc(r[5]), r[6], r[7], _utc(r[8]), r[9],
                    _utc(r[10]) if r[10] else None)


# ------------------------------------------------------------------------------------------- the lease


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
