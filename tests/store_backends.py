"""The store's two backends for the contract suites (``test_store_contract.py``, the journal, and
``test_store_contract_overrides.py``, the overrides and notices): SQLite in the test's directory and
PostgreSQL on the session's throwaway server (``tests/pgserver.py``; under CI=true it must run). Each
suite's ``backend`` fixture is ``make_backend`` over ``BACKENDS``."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import psycopg
import pytest
from pydantic import SecretStr

from forwardd.errors import ForwarddError
from forwardd.store.journal import Journal
from forwardd.store.overrides import SqliteOverrides
from forwardd.store.pg_journal import PgJournal
from forwardd.store.pg_overrides import PgOverrides
from forwardd.store.postgres import Database

from .conftest import DB_PASSWORD, UTC
from .e2e import wait_for as _wait_for

BACKENDS = ["sqlite", "postgres"]
T0 = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)
S = dt.timedelta(seconds=1)
H = dt.timedelta(hours=1)
PARIS = ZoneInfo("Europe/Paris")
RETRY_S = 0.05  # a failing store is tried again this often in these tests


def wait_for(cond: Callable[[], object], timeout: float = 20) -> None:
    """``e2e.wait_for``, also while a store still says it cannot be read."""
    def ok() -> bool:
        try:
            return bool(cond())
        except ForwarddError:
            return False

    _wait_for(ok, timeout)


@dataclass
class Backend:
    """Makes stores of one backend on one database (``journal`` and ``overrides`` may be called more than
    once: each call is another store object on the same database, as another process or host would have);
    ``execute`` runs SQL on that database, as its administrator would; ``unwritable`` makes a journal whose
    database is not there yet, and returns it with what makes the database appear."""

    name: str
    journal: Callable[..., Any]
    overrides: Callable[[], Any]
    execute: Callable[[str], None]
    unwritable: Callable[[Callable[[str | None], None]], tuple[Any, Callable[[], None]]]


def _sqlite(tmp_path: Path) -> Backend:
    path = tmp_path / "journal.sqlite"

    def execute(sql: str) -> None:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.executescript(sql)

    def unwritable(on_trouble: Callable[[str | None], None]) -> tuple[Journal, Callable[[], None]]:
        later = tmp_path / "not-yet"  # no such directory: the file cannot be made until it exists
        return Journal(later / "journal.sqlite", on_trouble), later.mkdir

    return Backend("sqlite", lambda write=True: Journal(path, write=write), lambda: SqliteOverrides(path), execute,
                   unwritable)


def _postgres(pg_server: Any, pg_url: str) -> Backend:
    names = iter(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])

    def database(url: str) -> Database:
        return Database(url, SecretStr(DB_PASSWORD), next(names, "omega"))

    def execute(sql: str) -> None:
        with psycopg.connect(pg_url, password=DB_PASSWORD, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def unwritable(on_trouble: Callable[[str | None], None]) -> tuple[PgJournal, Callable[[], None]]:
        name = pg_url.rsplit("/", 1)[1] + "_later"  # no such database: made by the repair

        def repair() -> None:
            pg_server.database(name, "forwardd", DB_PASSWORD)

        return PgJournal(database(pg_url.rsplit("/", 1)[0] + "/" + name), on_trouble), repair

    return Backend("postgres", lambda write=True: PgJournal(database(pg_url), write=write),
                   lambda: PgOverrides(database(pg_url)), execute, unwritable)


def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The backend ``request.param`` names, on a database of the test's own."""
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    return _postgres(request.getfixturevalue("pg_server"), request.getfixturevalue("pg_url"))
