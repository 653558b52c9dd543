"""The cluster's store in PostgreSQL (psycopg 3), when the config has ``[cluster]``: the journal, the
command-line overrides and the notices sent, shared by every instance, so that each host shows the same
history and applies the same overrides, and two hosts never send a person the same notice. The same
interfaces as the SQLite classes (``journal.Journal``, ``overrides.SqliteOverrides``); every journal entry
also names the instance that wrote it. The calendar cache stays in each host's state directory.

Here: the connection (``Database``) and the schema; beside it the journal (``pg_journal``), the
overrides and notice claims (``pg_overrides``) and the SQL of the lease (``pg_lease``).

Connections are made with the password apart from the URL (the config refuses one in the URL), and
every error message is passed through ``logs.redact``: the password never shows.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from pydantic import SecretStr

from ..errors import ForwarddError
from ..logs import redact

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


