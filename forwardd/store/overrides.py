"""One-off overrides from the command line, and the notices already sent to people: rows in the state
directory's database (``journal.sqlite``, beside the journal), read and written synchronously, because
the person adding an override needs its ID and a notice must never go out twice.

A change counter (``meta.overrides_version``) moves with every add and cancel, so a running daemon
notices a new override by reading one row every second.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ..core.notices import Told
from ..errors import ForwarddError
from ..files import make_private
from .text import clean, clean_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    voipnumber TEXT NOT NULL,
    forwardto TEXT,
    person TEXT,
    start TEXT NOT NULL,
    "end" TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    made_by TEXT NOT NULL,
    made_at TEXT NOT NULL,
    cancelled_by TEXT,
    cancelled_at TEXT
);
CREATE INDEX IF NOT EXISTS overrides_end ON overrides ("end");
CREATE TABLE IF NOT EXISTS notices (
    key TEXT PRIMARY KEY,
    person TEXT NOT NULL,
    voipnumber TEXT NOT NULL,
    kind TEXT NOT NULL,
    shift_start TEXT NOT NULL,
    shift_end TEXT NOT NULL,
    open_end INTEGER NOT NULL DEFAULT 0,
    made_at TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'pending'
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


T = TypeVar("T")


class StoreError(ForwarddError):
    """The overrides cannot be read or written (the message says where and why)."""


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat()


@dataclass(frozen=True)
class Override:
    id: int
    voipnumber: str
    target: str | None  # None: no forwarding
    person: str | None
    start: dt.datetime
    end: dt.datetime
    note: str
    made_by: str
    made_at: dt.datetime
    cancelled_by: str | None = None
    cancelled_at: dt.datetime | None = None

    @property
    def reason(self) -> str:
        """How the timeline, ``plan``, ``status`` and the page show it."""
        return f"override by {self.made_by}" + (f": {self.note}" if self.note else "")

    def live(self, now: dt.datetime) -> bool:
        return self.cancelled_at is None and self.end > now

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "voipnumber": self.voipnumber, "to": self.target, "person": self.person,
                "from": self.start.isoformat(), "until": self.end.isoformat(), "note": self.note, "by": self.made_by,
                "at": self.made_at.isoformat(), "cancelled_by": self.cancelled_by,
                "cancelled_at": self.cancelled_at.isoformat() if self.cancelled_at else None}


def _storable(override_id: int) -> bool:
    """Whether SQLite can hold ``override_id`` (a 64-bit integer): no override has an ID it cannot, and
    asking with one would raise OverflowError."""
    return -(2**63) <= override_id < 2**63


def _bump(db: sqlite3.Connection) -> None:
    """Move the change counter (within the caller's transaction)."""
    db.execute("INSERT INTO meta (key, value) VALUES ('overrides_version', 1) "
               "ON CONFLICT(key) DO UPDATE SET value = value + 1")


def _override(r: tuple[Any, ...]) -> Override:
    when = dt.datetime.fromisoformat
    return Override(r[0], r[1], r[2], r[3], when(r[4]), when(r[5]), r[6], r[7], when(r[8]), r[9],
                    when(r[10]) if r[10] else None)


class SqliteOverrides:
    """Overrides and sent notices in ``path`` (the journal's database file)."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                if self.readonly:
                    self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                               timeout=10)
                else:
                    self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                               timeout=10)
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA cache_size=-256")
                    self._db.executescript(SCHEMA)
                    make_private(self.path)
            except sqlite3.Error as err:
                self._db = None
                raise StoreError(f"cannot open {self.path}: {err}") from None
        return self._db

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn().execute(sql, args).fetchall()
            except sqlite3.Error as err:
                if self.readonly and "no such table" in str(err):
                    return []
                raise StoreError(f"cannot use the overrides in {self.path}: {err}") from None

    def _transaction(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in one write transaction (taken at once: ``BEGIN IMMEDIATE``), committed, or
        rolled back when anything in it fails. Returns what ``fn`` returns; raises StoreError."""
        with self._lock:
            try:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise StoreError(f"cannot {what} in {self.path}: {err}") from None
        return out

    # ------------------------------------------------------------------------------------- overrides

    def add(self, voipnumber: str, forwardto: str | None, person: str | None, start: dt.datetime,
            end: dt.datetime, note: str, made_by: str, now: dt.datetime) -> Override:
        """Add an override and move the version, in one transaction. Returns it; raises StoreError."""
        def add(db: sqlite3.Connection) -> int:
            cur = db.execute(
                'INSERT INTO overrides (voipnumber, forwardto, person, start, "end", note, made_by, made_at) '
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (clean_text(voipnumber), clean(forwardto), clean(person), _iso(start), _iso(end), clean_text(note),
                 clean_text(made_by), _iso(now)))
            _bump(db)
            return int(cur.lastrowid or 0)

        got = self.get(self._transaction("add the override", add))
        assert got is not None
        return got

    def get(self, override_id: int) -> Override | None:
        """The override ``override_id``, or None. Raises StoreError."""
        if not _storable(override_id):
            return None
        rows = self._run("SELECT * FROM overrides WHERE id = ?", (override_id,))
        return _override(rows[0]) if rows else None

    def cancel(self, override_id: int, by: str, now: dt.datetime) -> Override | None:
        """Cancel an override and move the version, in one transaction. Returns it as it now is, or None
        when there is no such ID; one cancelled before stays as it was (its ``cancelled_by`` and
        ``cancelled_at`` are the first cancellation's, and the version does not move). Raises StoreError."""
        def cancel(db: sqlite3.Connection) -> None:
            cur = db.execute("UPDATE overrides SET cancelled_by = ?, cancelled_at = ? WHERE id = ? AND "
                             "cancelled_at IS NULL", (clean_text(by), _iso(now), override_id))
            if cur.rowcount:
                _bump(db)

        if not _storable(override_id):
            return None
        self._transaction("cancel the override", cancel)
        return self.get(override_id)

    def listed(self, now: dt.datetime, everything: bool = False) -> list[Override]:
        """Live overrides (not cancelled, not ended) by start; ``everything`` for all of them."""
        rows = self._run('SELECT * FROM overrides ORDER BY start, id')
        found = [_override(r) for r in rows]
        return found if everything else [o for o in found if o.live(now)]

    def version(self) -> int:
        rows = self._run("SELECT value FROM meta WHERE key = 'overrides_version'")
        return int(rows[0][0]) if rows else 0

    # --------------------------------------------------------------------------------------- notices

    def notice_made(self, key: str) -> bool:
        return bool(self._run("SELECT 1 FROM notices WHERE key = ?", (clean_text(key),)))

    def record_notice(self, key: str, person: str, voipnumber: str, kind: str, shift_start: dt.datetime,
                      shift_end: dt.datetime, open_end: bool, now: dt.datetime) -> bool:
        """Claim a notice before it is sent: True when this is the first claim (send it), False when it
        was made before (never send it twice, across restarts)."""
        with self._lock:
            try:
                cur = self._conn().execute(
                    "INSERT OR IGNORE INTO notices (key, person, voipnumber, kind, shift_start, shift_end, open_end, "
                    "made_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (clean_text(key), clean_text(person), clean_text(voipnumber), clean_text(kind), _iso(shift_start),
                     _iso(shift_end), int(open_end), _iso(now)))
            except sqlite3.Error as err:
                raise StoreError(f"cannot record a notice in {self.path}: {err}") from None
            return cur.rowcount == 1

    def notice_outcome(self, key: str, outcome: str) -> None:
        self._run("UPDATE notices SET outcome = ? WHERE key = ?", (clean_text(outcome), clean_text(key)))

    def told(self, since: dt.datetime) -> list[Told]:
        """What people were told about shifts that had not ended by ``since`` (to notice changes), oldest
        notice first (notices made at one instant by their key). Raises StoreError."""
        rows = self._run("SELECT person, voipnumber, shift_start, shift_end, open_end, made_at FROM notices "
                         "WHERE shift_end > ? AND kind != 'cancelled' ORDER BY made_at, key", (_iso(since),))
        when = dt.datetime.fromisoformat
        return [Told(r[0], r[1], when(r[2]), when(r[3]), bool(r[4]), when(r[5])) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


if TYPE_CHECKING:  # mypy holds the class to its port
    from .ports import OverrideStore

    def _implements(store: SqliteOverrides) -> OverrideStore:
        return store
