"""The journal: an append-only SQLite log (WAL) of every change sent, read-back, alert and calendar
refresh. Each entry is committed on its own, so a kill -9 loses at most the entry being written.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    voipnumber TEXT,
    ok INTEGER,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_number ON entries (voipnumber, at);
"""


class Journal:
    """``record(kind, ...)`` appends; ``entries(...)`` reads back. Kinds: change, readback, alert,
    recovery, calendar, drift, start, stop."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One connection, used from the event loop and from calendar-refresh threads: serialise it.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def record(
        self, kind: str, at: dt.datetime, voipnumber: str | None = None, ok: bool | None = None, **detail: Any
    ) -> None:
        row = (at.astimezone(dt.timezone.utc).isoformat(), kind, voipnumber, None if ok is None else int(ok),
               json.dumps(detail, default=str))
        with self._lock:
            self._db.execute("INSERT INTO entries (at, kind, voipnumber, ok, detail) VALUES (?, ?, ?, ?, ?)", row)

    def entries(
        self, voipnumber: str | None = None, since: dt.datetime | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
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
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [
            {"id": r[0], "at": r[1], "kind": r[2], "voipnumber": r[3], "ok": None if r[4] is None else bool(r[4]),
             **json.loads(r[5])}
            for r in rows
        ]

    def last_confirmed(self, voipnumber: str) -> dict[str, str] | None:
        """The managed fields last confirmed by a read-back, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT detail FROM entries WHERE voipnumber = ? AND kind = 'readback' AND ok = 1 "
                "ORDER BY id DESC LIMIT 1", (voipnumber,),
            ).fetchone()
        return json.loads(row[0]).get("fields") if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
