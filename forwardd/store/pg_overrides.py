"""The cluster's command-line overrides and notice claims in PostgreSQL: the same interface as the SQLite
ones (``store.ports.OverrideStore``), shared by every instance, so that any host's override is applied by
whichever leads and no person hears the same notice twice."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import psycopg
from psycopg import errors as pg_errors

from ..core.notices import Told
from .overrides import Override, StoreError
from .postgres import UNREACHABLE_S, Database, DatabaseError, _utc
from .text import clean, clean_text


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
                    (clean_text(voipnumber), clean(forwardto), clean(person), _utc(start), _utc(end), clean_text(note),
                     clean_text(made_by), _utc(now), self.db.instance)).fetchone()
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
                                "WHERE id = %s AND cancelled_at IS NULL", (clean_text(by), _utc(now), override_id))
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
        return bool(self._rows("cannot read the notices", "SELECT 1 FROM forwardd_notices WHERE key = %s",
                               (clean_text(key),)))

    def record_notice(self, key: str, person: str, voipnumber: str, kind: str, shift_start: dt.datetime,
                      shift_end: dt.datetime, open_end: bool, now: dt.datetime) -> bool:
        """Claim a notice before it is sent: True when this is the first claim on any instance (send it),
        False when it was made before (never send it twice, across restarts and hosts)."""
        def claim(c: psycopg.Connection[Any]) -> bool:
            cur = c.execute(
                "INSERT INTO forwardd_notices (key, person, voipnumber, kind, shift_start, shift_end, open_end, "
                "made_at, instance) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                (clean_text(key), clean_text(person), clean_text(voipnumber), clean_text(kind), _utc(shift_start),
                 _utc(shift_end), open_end, _utc(now), self.db.instance))
            return cur.rowcount == 1

        return bool(self._run("cannot record a notice", claim))

    def notice_outcome(self, key: str, outcome: str) -> None:
        self._run("cannot record a notice's outcome",
                  lambda c: c.execute("UPDATE forwardd_notices SET outcome = %s WHERE key = %s",
                                      (clean_text(outcome), clean_text(key))))

    def told(self, since: dt.datetime) -> list[Told]:
        """What people were told about shifts that had not ended by ``since`` (to notice changes), oldest
        notice first (notices made at one instant by their key). Raises StoreError."""
        rows = self._rows("cannot read the notices",
                          "SELECT person, voipnumber, shift_start, shift_end, open_end, made_at FROM forwardd_notices "
                          "WHERE shift_end > %s AND kind != 'cancelled' "
                          'ORDER BY made_at, key COLLATE "C"', (_utc(since),))  # keys compared as SQLite does
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


if TYPE_CHECKING:  # mypy holds the class to its port
    from .ports import OverrideStore

    def _implements(store: PgOverrides) -> OverrideStore:
        return store
