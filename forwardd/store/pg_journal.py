"""The cluster's journal in PostgreSQL: the same interface as the SQLite journal (``store.ports.JournalStore``),
shared by every instance, each entry naming the instance that wrote it. Written by the shared journal
writer (``writer.JournalWriter``): ``record`` never blocks and never raises."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import psycopg
import structlog
from psycopg import errors as pg_errors

from .journal import JournalError, confirmed_fields
from .postgres import RETRY_S, UNREACHABLE_S, Database, DatabaseError, _utc
from .writer import JournalWriter, Row, entries_query

log = structlog.get_logger("forwardd.postgres")

_INSERT = ("INSERT INTO forwardd_journal (at, kind, voipnumber, ok, instance, detail) "
           "VALUES (%s, %s, %s, %s, %s, %s::jsonb)")


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
    # a row, not the database (bad text, a constraint, a value too big to index): dropped alone
    refused = (pg_errors.DataError, pg_errors.IntegrityError, pg_errors.ProgramLimitExceeded)

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

    def _row(self, kind: str, at: dt.datetime, voipnumber: str | None, ok: bool | None, detail: str) -> Row:
        return (at, kind, voipnumber, ok, self.instance, detail)

    def _write(self, batch: list[Row]) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = self.db.connect("journal", schema=True, settings={"statement_timeout": "10000"},
                                         keepalive_s=10)
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(_INSERT, batch)

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
        """Entries of every instance, oldest first, by time then as written (the newest ``limit`` when given;
        none for a limit below 1). Raises JournalError."""
        sql, args = entries_query("id, at, kind, voipnumber, ok, instance, detail", "forwardd_journal", "%s",
                                  voipnumber, _utc(since) if since else None, kind, limit, derived=" AS newest")
        rows = self._read(sql, args)
        return [_entry(r) for r in rows]

    def last_confirmed(self, voipnumber: str) -> dict[str, str] | None:
        """The managed fields last confirmed by a read-back on any instance, or None (also when the
        database cannot be read)."""
        try:
            rows = self._read("SELECT voipnumber, detail FROM forwardd_journal WHERE voipnumber = %s AND "
                              "kind = 'readback' AND ok ORDER BY at DESC, id DESC LIMIT 1", (voipnumber,))
        except JournalError:
            return None
        return confirmed_fields(rows).get(voipnumber)

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


if TYPE_CHECKING:  # mypy holds the class to its port
    from .ports import JournalStore

    def _implements(store: PgJournal) -> JournalStore:
        return store
