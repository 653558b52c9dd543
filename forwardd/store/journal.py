"""The journal: an append-only SQLite log (WAL) of every change sent, read-back, alert, calendar refresh
and override. Forwarding comes first: ``record`` never blocks and never raises. Entries go through a
queue to a writer thread (``writer.JournalWriter``) that commits them (each within milliseconds, so a kill -9 loses at most the
last few); when the disk is full, the directory read-only or the file broken, entries wait in memory
(a bounded backlog), the journal reports itself degraded (``problem``, and the ``on_trouble`` callback,
which alerts without needing the journal), and writing resumes when it can.

A journal file that is not a database, or fails SQLite's quick check, is moved aside at start-up
(``journal.sqlite.corrupt-<time>``) by ``open_journal`` and a new one started.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import structlog

from ..errors import ForwarddError
from ..files import make_private
from .writer import JournalWriter, Row, entries_query

log = structlog.get_logger("forwardd.journal")

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    voipnumber TEXT,
    ok INTEGER,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_number ON entries (voipnumber, at);
DROP INDEX IF EXISTS entries_kind;
CREATE INDEX IF NOT EXISTS entries_kind_at ON entries (kind, at);
CREATE INDEX IF NOT EXISTS entries_at ON entries (at);
CREATE INDEX IF NOT EXISTS entries_confirmed ON entries (voipnumber, at) WHERE kind = 'readback' AND ok = 1;
"""
# Entries are ordered by their time (``at``: UTC ISO text, which sorts as time does), then as written (``id``):
# the order of ``store.ports.JournalStore``. Each index above ends, implicitly, in the rowid (``id``).
RETRY_S = 5.0


class JournalError(ForwarddError):
    """The journal cannot be read (for the commands that show it)."""


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-512")  # 512 KB: entries are appended, rarely read back by the daemon
    db.executescript(SCHEMA)
    for suffix in ("", "-wal", "-shm"):
        make_private(Path(str(path) + suffix))
    return db


def move_aside(path: Path, now: dt.datetime) -> Path:
    """Rename a broken database (and its -wal, -shm) to ``<name>.corrupt-<time>``; returns the new path."""
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(str(target) + suffix))
    return target


def check_database(path: Path) -> str | None:
    """None when ``path`` is missing or a sound SQLite database, else why not."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            row = db.execute("PRAGMA quick_check").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        return str(err)
    return None if row and row[0] == "ok" else f"quick_check: {row[0] if row else 'no answer'}"


def open_journal(
    path: Path, now: dt.datetime, on_trouble: Callable[[str | None], None] | None = None
) -> tuple[Journal, str | None]:
    """Open the journal for writing, moving a corrupt one aside first. Returns the journal and, when a
    file was moved aside, a message saying so (for an alert)."""
    note = None
    problem = check_database(path)
    if problem is not None:
        try:
            moved = move_aside(path, now)
            note = f"the journal {path} was corrupt ({problem}); moved aside to {moved.name}, a new one started"
        except OSError as err:
            note = f"the journal {path} is corrupt ({problem}) and cannot be moved aside ({err.strerror})"
    return Journal(path, on_trouble), note


class Journal(JournalWriter):
    """``record(kind, ...)`` appends (asynchronously); ``entries(...)`` reads back. Kinds: change,
    readback, error, drift, alert, recovery, calendar, start, stop, override, notice, leader."""

    retry_s = RETRY_S
    failures = (sqlite3.Error, OSError)
    refused = (sqlite3.IntegrityError, sqlite3.DataError)

    def __init__(self, path: Path, on_trouble: Callable[[str | None], None] | None = None,
                 write: bool = True) -> None:
        self.path = path
        self.where = f"the journal {path}"
        self._db: sqlite3.Connection | None = None  # the writer thread's
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        super().__init__(on_trouble, write)

    # ------------------------------------------------------------------------------------- writing

    def _row(self, kind: str, at: dt.datetime, voipnumber: str | None, ok: bool | None, detail: str) -> Row:
        return (at.isoformat(), kind, voipnumber, None if ok is None else int(ok), detail)

    def _write(self, batch: list[Row]) -> None:
        if self._db is None:
            self._db = _connect(self.path)
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO entries (at, kind, voipnumber, ok, detail) VALUES (?, ?, ?, ?, ?)", batch)

    def _disconnect(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass

    # ------------------------------------------------------------------------------------- reading

    def _read(self, sql: str, args: list[Any] | tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._read_lock:
            try:
                if self._reader is None:
                    if not self.path.exists():
                        return []
                    self._reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                                   timeout=10)
                return self._reader.execute(sql, args).fetchall()
            except sqlite3.Error as err:
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
                if "no such table" in str(err):
                    return []
                raise JournalError(f"cannot read the journal {self.path}: {err}") from None

    def entries(
        self, voipnumber: str | None = None, since: dt.datetime | None = None, kind: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Entries oldest first, by time then as written (the newest ``limit`` when given; none for a limit
        below 1). Raises JournalError."""
        sql, args = entries_query("id, at, kind, voipnumber, ok, detail", "entries", "?", voipnumber,
                                  since.astimezone(dt.timezone.utc).isoformat() if since else None, kind, limit)
        rows = self._read(sql, args)
        return [_entry(r) for r in rows]

    def last_confirmed(self, voipnumber: str) -> dict[str, str] | None:
        """The managed fields of the newest read-back that confirmed them, or None (also when the journal is
        unreadable)."""
        try:
            rows = self._read("SELECT voipnumber, detail FROM entries WHERE voipnumber = ? AND kind = 'readback' "
                              "AND ok = 1 ORDER BY at DESC, id DESC LIMIT 1", (voipnumber,))
        except JournalError:
            return None
        return confirmed_fields(rows).get(voipnumber)

    def confirmed_all(self) -> dict[str, dict[str, str]]:
        """Per number, the managed fields of its newest read-back that confirmed them. Raises JournalError."""
        return confirmed_fields(self._read(
            "SELECT voipnumber, detail FROM (SELECT voipnumber, detail, row_number() OVER (PARTITION BY voipnumber "
            "ORDER BY at DESC, id DESC) AS newest FROM entries WHERE kind = 'readback' AND ok = 1) WHERE newest = 1",
            ()))

    def close(self, timeout: float = 5.0) -> None:
        self._stop_writer(timeout)
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def confirmed_fields(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, str]]:
    """(number, detail) rows of read-backs as number -> the managed fields they confirmed; ``detail`` is
    JSON text (SQLite) or already decoded (PostgreSQL's jsonb)."""
    out = {}
    for number, detail in rows:
        fields = (detail if isinstance(detail, dict) else json.loads(detail)).get("fields")
        if isinstance(fields, dict):
            out[str(number)] = {str(k): str(v) for k, v in fields.items()}
    return out


def _entry(r: tuple[Any, ...]) -> dict[str, Any]:
    try:
        detail = json.loads(r[5])
    except ValueError:
        detail = {"detail": r[5]}
    return {"id": r[0], "at": r[1], "kind": r[2], "voipnumber": r[3], "ok": None if r[4] is None else bool(r[4]),
            **(detail if isinstance(detail, dict) else {"detail": detail})}


if TYPE_CHECKING:  # mypy holds the class to its port
    from .ports import JournalStore

    def _implements(store: Journal) -> JournalStore:
        return store
