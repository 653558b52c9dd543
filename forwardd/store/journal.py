"""The journal: an append-only SQLite log (WAL) of every change sent, read-back, alert, calendar refresh
and override. Forwarding comes first: ``record`` never blocks and never raises. Entries go through a
queue to a writer thread that commits them (each within milliseconds, so a kill -9 loses at most the
last few); when the disk is full, the directory read-only or the file broken, entries wait in memory
(a bounded backlog), the journal reports itself degraded (``problem``, and the ``on_trouble`` callback,
which alerts without needing the journal), and writing resumes when it can.

A journal file that is not a database, or fails SQLite's quick check, is moved aside at start-up
(``journal.sqlite.corrupt-<time>``) by ``open_journal`` and a new one started.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

import structlog

from ..errors import ForwarddError
from ..files import make_private

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
CREATE INDEX IF NOT EXISTS entries_kind ON entries (kind, id);
"""
BACKLOG = 20_000  # entries kept in memory while the disk refuses them
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


class Journal:
    """``record(kind, ...)`` appends (asynchronously); ``entries(...)`` reads back. Kinds: change,
    readback, error, drift, alert, recovery, calendar, start, stop, override, notice, leader."""

    def __init__(self, path: Path, on_trouble: Callable[[str | None], None] | None = None,
                 write: bool = True) -> None:
        self.path = path
        self.on_trouble = on_trouble
        self.problem: str | None = None
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self._backlog: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=BACKLOG)
        self.dropped = 0
        self._pending = 0
        self._idle = threading.Condition()
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._writer: threading.Thread | None = None
        if write:
            self._writer = threading.Thread(target=self._write_loop, name="journal-writer", daemon=True)
            self._writer.start()

    @property
    def healthy(self) -> bool:
        return self.problem is None

    # ------------------------------------------------------------------------------------- writing

    def record(
        self, kind: str, at: dt.datetime, voipnumber: str | None = None, ok: bool | None = None, **detail: Any
    ) -> None:
        row = (at.astimezone(dt.timezone.utc).isoformat(), kind, voipnumber, None if ok is None else int(ok),
               json.dumps(detail, default=str))
        with self._idle:
            self._pending += 1
        self._queue.put(row)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every entry recorded so far is written (or held back by a failing disk)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _write_loop(self) -> None:
        db: sqlite3.Connection | None = None
        while True:
            item: tuple[Any, ...] | None | bool
            try:
                item = self._queue.get(timeout=RETRY_S if self._backlog else None)
            except queue.Empty:
                item = False  # nothing new: time to retry the backlog
            stop = item is None
            batch = list(self._backlog)
            taken = 0
            if isinstance(item, tuple):
                batch.append(item)
                taken = 1
            while taken < 500:  # take what else is waiting, to write it in one transaction
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
                taken += 1
            if batch:
                try:
                    if db is None:
                        db = _connect(self.path)
                    with db:
                        db.execute("BEGIN")
                        db.executemany("INSERT INTO entries (at, kind, voipnumber, ok, detail) VALUES (?, ?, ?, ?, ?)",
                                       batch)
                    self._backlog.clear()
                    if self.problem is not None:
                        self.problem = None
                        self._tell(None)
                except (sqlite3.Error, OSError) as err:
                    if db is not None:
                        try:
                            db.close()
                        except sqlite3.Error:
                            pass
                        db = None
                    kept = batch[-BACKLOG:]
                    self.dropped += len(batch) - len(kept)
                    self._backlog.clear()
                    self._backlog.extend(kept)
                    message = f"cannot write the journal {self.path}: {err}"
                    if self.problem != message:
                        self.problem = message
                        self._tell(message)
            with self._idle:
                self._pending -= taken
                self._idle.notify_all()
            if stop:
                if db is not None:
                    db.close()
                return

    def _tell(self, message: str | None) -> None:
        if message is None:
            log.info("journal_recovered", path=str(self.path))
        else:
            log.error("journal_failing", path=str(self.path), error=message, held_back=len(self._backlog))
        if self.on_trouble is not None:
            try:
                self.on_trouble(message)
            except Exception:  # noqa: BLE001 - a broken alert path must not stop the writer
                log.exception("journal_trouble_callback_failed")

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
        """Entries oldest first (the newest ``limit`` when given). Raises JournalError."""
        sql, args = "SELECT id, at, kind, voipnumber, ok, detail FROM entries WHERE 1=1", []
        if voipnumber:
            sql += " AND voipnumber = ?"
            args.append(voipnumber)
        if since:
            sql += " AND at >= ?"
            args.append(since.astimezone(dt.timezone.utc).isoformat())
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT {int(limit)})"
        rows = self._read(sql + " ORDER BY id", args)
        return [_entry(r) for r in rows]

    def last_confirmed(self, voipnumber: str) -> dict[str, str] | None:
        """The managed fields last confirmed by a read-back, or None (also when the journal is unreadable)."""
        try:
            rows = self._read("SELECT detail FROM entries WHERE voipnumber = ? AND kind = 'readback' AND ok = 1 "
                              "ORDER BY id DESC LIMIT 1", (voipnumber,))
        except JournalError:
            return None
        return json.loads(rows[0][0]).get("fields") if rows else None

    def confirmed_all(self) -> dict[str, dict[str, str]]:
        """Per number, the managed fields last confirmed by a read-back. Raises JournalError."""
        rows = self._read("SELECT voipnumber, detail FROM entries WHERE id IN (SELECT max(id) FROM entries "
                          "WHERE kind = 'readback' AND ok = 1 GROUP BY voipnumber)", ())
        out = {}
        for number, detail in rows:
            fields = json.loads(detail).get("fields")
            if isinstance(fields, dict):
                out[str(number)] = {str(k): str(v) for k, v in fields.items()}
        return out

    def close(self, timeout: float = 5.0) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout)
            self._writer = None
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def _entry(r: tuple[Any, ...]) -> dict[str, Any]:
    try:
        detail = json.loads(r[5])
    except ValueError:
        detail = {"detail": r[5]}
    return {"id": r[0], "at": r[1], "kind": r[2], "voipnumber": r[3], "ok": None if r[4] is None else bool(r[4]),
            **(detail if isinstance(detail, dict) else {"detail": detail})}
