"""One contract for the store, run against both backends: SQLite (one host, in ``tmp_path``) and PostgreSQL
(a cluster, on the throwaway server of ``tests/pgserver.py``). Every test here takes ``backend`` and says
what ``store.ports.JournalStore`` and ``store.ports.OverrideStore`` promise, whichever store keeps them;
what only one backend does (the cluster's instance names, its lease) is tested in its own module."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import sqlite3
import threading
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
from forwardd.store.ports import EntryKind, JournalStore, OverrideStore
from forwardd.store.postgres import Database

from .conftest import DB_PASSWORD, UTC
from .e2e import wait_for as _wait_for

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


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    return _postgres(request.getfixturevalue("pg_server"), request.getfixturevalue("pg_url"))


@pytest.fixture
def journal(backend: Backend) -> Any:
    j: JournalStore = backend.journal()
    yield j
    j.close()


@pytest.fixture
def store(backend: Backend) -> Any:
    s: OverrideStore = backend.overrides()
    yield s
    s.close()


def kinds(rows: list[dict[str, Any]]) -> list[str]:
    return [r["kind"] for r in rows]


# ------------------------------------------------------------------------------------------ journal


def test_entries_come_back_as_recorded_oldest_first(journal: JournalStore) -> None:
    journal.record("start", T0, None, None, config="/etc/forwardd.toml", pid=42)
    journal.record(EntryKind.CHANGE, T0 + S, "606309", None, fields={"forwardto": "07700900001"}, account="aql")
    journal.record("readback", T0 + 2 * S, "606309", True, fields={"forwardto": "07700900001"})
    journal.record("readback", T0 + 3 * S, "606310", False, fields={"forwardto": "x"})
    assert journal.flush()
    rows = journal.entries()
    assert kinds(rows) == ["start", "change", "readback", "readback"]
    assert [r["voipnumber"] for r in rows] == [None, "606309", "606309", "606310"]
    assert [r["ok"] for r in rows] == [None, None, True, False]
    assert [dt.datetime.fromisoformat(r["at"]) for r in rows] == [T0, T0 + S, T0 + 2 * S, T0 + 3 * S]
    assert rows[0]["config"] == "/etc/forwardd.toml" and rows[0]["pid"] == 42
    assert rows[1]["fields"] == {"forwardto": "07700900001"} and rows[1]["account"] == "aql"
    assert len({r["id"] for r in rows}) == 4
    assert journal.healthy and journal.problem is None


def test_entries_are_ordered_by_their_time_then_as_written(journal: JournalStore) -> None:
    """The order is the entries' time, not the order of writing: a backlog written late (a host that was
    cut off) takes its place in time. Entries of one instant keep the order they were recorded in."""
    journal.record("readback", T0 + 10 * S, "606309", True, fields={"forwardto": "B"})
    journal.record("calendar", T0 + 10 * S, None, True, calendar="rota")
    journal.record("readback", T0, "606309", True, fields={"forwardto": "A"})
    journal.record("drift", T0 + 5 * S, "606309", None, found={}, wanted={})
    assert journal.flush()
    assert kinds(journal.entries()) == ["readback", "drift", "readback", "calendar"]
    assert [r.get("fields") for r in journal.entries(kind="readback")] == [{"forwardto": "A"}, {"forwardto": "B"}]
    assert kinds(journal.entries(limit=2)) == ["readback", "calendar"]  # the newest two in time


def test_times_in_any_zone_come_back_as_the_same_instants_in_utc(journal: JournalStore) -> None:
    local = dt.datetime(2026, 12, 1, 13, 0, 0, 250_000, tzinfo=PARIS)  # 12:00:00.25 UTC
    journal.record("stop", local)
    journal.record("start", T0)  # earlier, though written after
    assert journal.flush()
    rows = journal.entries()
    assert kinds(rows) == ["start", "stop"]
    at = dt.datetime.fromisoformat(rows[1]["at"])
    assert at == local and at.utcoffset() == dt.timedelta(0)
    assert journal.entries(since=local) == rows[1:]  # microseconds count


def test_entries_filter_by_number_time_and_kind_and_limit_takes_the_newest(journal: JournalStore) -> None:
    for i in range(10):
        journal.record("readback" if i % 2 else "change", T0 + i * S, "606309" if i < 6 else "606310", bool(i % 2),
                       n=i)
    assert journal.flush()
    ns = lambda rows: [r["n"] for r in rows]  # noqa: E731
    assert ns(journal.entries(voipnumber="606310")) == [6, 7, 8, 9]
    assert ns(journal.entries(since=T0 + 7 * S)) == [7, 8, 9]  # since is inclusive
    assert ns(journal.entries(kind="change")) == [0, 2, 4, 6, 8]
    assert ns(journal.entries(kind=EntryKind.READBACK)) == [1, 3, 5, 7, 9]
    assert ns(journal.entries(limit=3)) == [7, 8, 9]
    assert ns(journal.entries(voipnumber="606309", kind="readback", since=T0 + 2 * S, limit=2)) == [3, 5]
    assert ns(journal.entries(limit=100)) == list(range(10))
    assert journal.entries(limit=0) == [] and journal.entries(limit=-1) == []
    assert journal.entries(voipnumber="999999") == [] and journal.entries(kind="leader") == []
    assert journal.entries(since=T0 + 10 * S) == []


AWKWARD: dict[str, Any] = {
    "message": "Zoë's «shift» — 夜勤 🚨 ﷽ e\u0301 \u200b\t\n\r end",
    "quotes": "it's \"quoted\" \\ back\\slash /solidus \\u0000 as text",
    "empty": "",
    "nothing": None,
    "flags": [True, False, None],
    "numbers": [0, -1, 2**63 + 1, 0.1, -2.5, 1e-07],
    "nested": {"a": {"b": {"c": ["deep", {"d": []}]}}, "": "empty key", "ключ": "значение"},
    "fields": {"forwardto": "07700900001", "forwardactive": "1"},
}


def test_details_round_trip_text_in_any_script_and_awkward_json(journal: JournalStore) -> None:
    journal.record("alert", T0, "606309", None, **AWKWARD)
    assert journal.flush()
    (row,) = journal.entries()
    assert {k: row[k] for k in AWKWARD} == AWKWARD


def test_what_json_cannot_say_is_kept_as_text_and_never_stops_the_journal(journal: JournalStore) -> None:
    """``record`` never raises, and no entry stops the writer: NUL characters (which PostgreSQL cannot
    store) are dropped, a lone surrogate becomes U+FFFD, what JSON cannot hold becomes its text (NaN,
    infinities, other objects, a structure that contains itself), and keys become text as JSON makes them."""
    loop: list[Any] = ["me"]
    loop.append(loop)
    journal.record("error", T0, "6063\x0009", False, error="aql said: bad\x00value", lone="a\ud800b",
                   pair="\ud83d\ude00", nan=math.nan, inf=-math.inf, when=T0, loop=loop,
                   keys={1: "one", None: "none", False: "no", 2.5: "half", (2, 3): "tuple"}, things={3},
                   deep=_nested(5000))
    journal.record("error\x00", T0 + S, "606309\ud800", None)
    journal.record("start", T0 + 2 * S)
    assert journal.flush()
    rows = journal.entries()
    assert kinds(rows) == ["error", "error", "start"]
    first = rows[0]
    assert first["voipnumber"] == "606309" and first["error"] == "aql said: badvalue"
    assert first["lone"] == "a\ufffdb" and first["pair"] == "😀"
    assert (first["nan"], first["inf"]) == ("nan", "-inf")
    assert first["when"] == str(T0) and first["things"] == "{3}"
    assert first["loop"][0] == "me" and isinstance(first["loop"][1], str)
    assert first["keys"] == {"1": "one", "null": "none", "false": "no", "2.5": "half", "(2, 3)": "tuple"}
    assert isinstance(first["deep"], dict)
    assert rows[1]["voipnumber"] == "606309\ufffd"
    assert journal.healthy


def _nested(depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(depth):
        out = {"in": out}
    return out


def test_an_entry_that_cannot_be_made_is_dropped_alone(journal: JournalStore) -> None:
    journal.record(None, T0)  # type: ignore[arg-type]
    journal.record("start", "yesterday")  # type: ignore[arg-type]
    journal.record("start", T0 + S, pid=1)
    assert journal.flush()
    assert kinds(journal.entries()) == ["start"]
    assert journal.healthy


def test_a_row_the_store_refuses_is_dropped_alone_and_the_writer_goes_on(backend: Backend,
                                                                         journal: JournalStore) -> None:
    journal.record("start", T0)
    assert journal.flush()
    if backend.name == "sqlite":  # as a constraint would refuse it
        backend.execute("CREATE TRIGGER no_poison BEFORE INSERT ON entries WHEN NEW.kind = 'poison' "
                        "BEGIN SELECT RAISE(ABORT, 'poison'); END")
    else:
        backend.execute("ALTER TABLE forwardd_journal ADD CONSTRAINT no_poison CHECK (kind <> 'poison')")
    journal.record("calendar", T0 + S, None, True, calendar="rota")
    journal.record("poison", T0 + 2 * S)
    journal.record("stop", T0 + 3 * S)
    assert journal.flush()
    assert kinds(journal.entries()) == ["start", "calendar", "stop"]
    assert journal.healthy and journal.dropped == 1
    journal.record("start", T0 + 4 * S)
    assert journal.flush() and kinds(journal.entries())[-1] == "start"


def test_the_newest_read_back_in_time_is_what_was_confirmed(journal: JournalStore) -> None:
    assert journal.last_confirmed("606309") is None and journal.confirmed_all() == {}
    journal.record("readback", T0 + 5 * S, "606309", True, fields={"forwardto": "B", "forwardactive": "1"})
    journal.record("readback", T0, "606309", True, fields={"forwardto": "A"})  # older, written later
    journal.record("readback", T0 + 6 * S, "606309", False, fields={"forwardto": "X"})  # did not confirm
    journal.record("change", T0 + 7 * S, "606309", None, fields={"forwardto": "Y"})  # not a read
    journal.record("readback", T0 + 1 * S, "606310", True, fields={"forwardto": "C"})
    journal.record("readback", T0 + 1 * S, "606310", True, fields={"forwardto": "D"})  # same time, written after
    journal.record("readback", T0, "700001", True, note="no fields")
    assert journal.flush()
    assert journal.last_confirmed("606309") == {"forwardto": "B", "forwardactive": "1"}
    assert journal.last_confirmed("606310") == {"forwardto": "D"}
    assert journal.last_confirmed("700001") is None and journal.last_confirmed("999999") is None
    assert journal.confirmed_all() == {"606309": {"forwardto": "B", "forwardactive": "1"},
                                       "606310": {"forwardto": "D"}}


def test_a_reader_on_the_same_database_sees_what_the_writer_wrote(backend: Backend, journal: JournalStore) -> None:
    reader: JournalStore = backend.journal(write=False)
    try:
        assert reader.entries() == [] and reader.confirmed_all() == {}
        journal.record("readback", T0, "606309", True, fields={"forwardto": "A"})
        assert journal.flush()
        assert kinds(reader.entries()) == ["readback"]
        assert reader.last_confirmed("606309") == {"forwardto": "A"}
    finally:
        reader.close()


def test_close_writes_what_was_recorded_and_the_next_store_reads_it(backend: Backend) -> None:
    first: JournalStore = backend.journal()
    for i in range(300):
        first.record("calendar", T0 + i * S, None, True, calendar="rota", n=i)
    first.close()  # no flush first
    again: JournalStore = backend.journal()
    try:
        assert [r["n"] for r in again.entries()] == list(range(300))
    finally:
        again.close()


def test_record_returns_while_the_writer_is_stuck(journal: JournalStore) -> None:
    """``record`` only queues: with the writer held inside a write, a thousand entries are recorded and
    still waiting; they are written once it is let go."""
    held, inside = threading.Event(), threading.Event()
    write = journal._write  # type: ignore[attr-defined]

    def stuck(batch: list[Any]) -> None:
        inside.set()
        held.wait(60)
        write(batch)

    journal._write = stuck  # type: ignore[attr-defined]
    journal.record("start", T0)
    assert inside.wait(30)
    for i in range(1000):
        journal.record("calendar", T0 + i * S, None, True, calendar="rota")
    assert not held.is_set() and journal.flush(0) is False  # recorded, not written
    held.set()
    assert journal.flush(30)
    assert len(journal.entries(kind="calendar")) == 1000


def test_a_journal_that_cannot_write_says_why_keeps_taking_entries_and_recovers(backend: Backend) -> None:
    told: list[str | None] = []
    journal, repair = backend.unwritable(told.append)
    journal.retry_s = RETRY_S
    try:
        for i in range(50):
            journal.record("calendar", T0 + i * S, None, True, calendar="rota")
        assert journal.flush(30)  # held back counts as done
        assert not journal.healthy and isinstance(journal.problem, str) and journal.problem
        assert told and told[-1] == journal.problem
        assert journal.last_confirmed("606309") is None  # nothing known, and no exception
        journal.record("readback", T0 + 60 * S, "606309", True, fields={"forwardto": "A"})
        repair()
        wait_for(lambda: journal.healthy)
        assert told[-1] is None
        wait_for(lambda: len(journal.entries()) == 51)
        assert journal.last_confirmed("606309") == {"forwardto": "A"}
        assert journal.dropped == 0
    finally:
        journal.close()


# ---------------------------------------------------------------------------------------- overrides


def test_an_override_comes_back_as_it_was_added(store: OverrideStore) -> None:
    start = dt.datetime(2026, 12, 1, 18, 30, 0, 500, tzinfo=PARIS)
    made = store.add("606309", "07700900003", "carol", start, start + 2 * H, "cover — Zoë's «shift»", "ann", T0)
    assert made.id >= 1 and made.voipnumber == "606309" and made.target == "07700900003" and made.person == "carol"
    assert (made.start, made.end, made.made_at) == (start, start + 2 * H, T0)
    assert made.start.utcoffset() == dt.timedelta(0)
    assert (made.note, made.made_by, made.cancelled_by, made.cancelled_at) == ("cover — Zoë's «shift»", "ann", None,
                                                                                None)
    assert store.get(made.id) == made
    off = store.add("606310", None, None, T0, T0 + H, "", "bob", T0)
    assert off.target is None and off.person is None and off.id != made.id
    assert store.get(off.id) == off and store.get(made.id + off.id + 1000) is None


def test_override_and_notice_text_is_kept_as_the_journal_keeps_it(store: OverrideStore) -> None:
    """Text from a command line may carry bytes that were not UTF-8 (a lone surrogate, once decoded) and
    a config may carry a NUL: both stores keep such text as the journal does, and never fail on it."""
    made = store.add("606309", "07700900001", "zoë\x00", T0, T0 + H, "cover \udcff «night» 夜勤", "ann\x00", T0)
    assert (made.person, made.note, made.made_by) == ("zoë", "cover \ufffd «night» 夜勤", "ann")
    gone = store.cancel(made.id, "bob\udcff", T0)
    assert gone is not None and gone.cancelled_by == "bob\ufffd"
    key = "notice:zoë\x00:\udcff"
    assert store.record_notice(key, "zoë\x00", "606309", "start", T0, T0 + H, False, T0) is True
    assert store.notice_made(key) and store.record_notice(key, "zoë", "606309", "start", T0, T0 + H, False, T0) is False
    store.notice_outcome(key, "delivered\x00")
    assert [t.person for t in store.told(T0)] == ["zoë"]


@pytest.mark.parametrize("override_id", [0, -1, 2**63, 2**70])
def test_an_id_no_override_has_is_none_whatever_its_size(store: OverrideStore, override_id: int) -> None:
    made = store.add("606309", "07700900001", None, T0, T0 + H, "", "ann", T0)
    assert store.get(override_id) is None and store.cancel(override_id, "bob", T0) is None
    assert store.get(made.id) == made


def test_listed_gives_live_overrides_by_start_or_everything(store: OverrideStore) -> None:
    late = store.add("606309", "07700900001", None, T0 + 3 * H, T0 + 4 * H, "late", "ann", T0)
    early = store.add("606309", "07700900002", None, T0 + H, T0 + 2 * H, "early", "ann", T0)
    tie = store.add("606310", "07700900003", None, T0 + H, T0 + 5 * H, "same start", "ann", T0)
    gone = store.add("606310", None, None, T0, T0 + 5 * H, "cancelled", "ann", T0)
    store.cancel(gone.id, "bob", T0)
    ids = lambda overrides: [o.id for o in overrides]  # noqa: E731
    assert ids(store.listed(T0)) == [early.id, tie.id, late.id]
    assert ids(store.listed(T0 + 2 * H)) == [tie.id, late.id]  # an override ending now is over
    assert ids(store.listed(T0 + 6 * H)) == []
    assert ids(store.listed(T0 + 6 * H, everything=True)) == [gone.id, early.id, tie.id, late.id]


def test_cancel_is_kept_once_and_a_second_cancel_shows_the_first(backend: Backend, store: OverrideStore) -> None:
    made = store.add("606309", "07700900001", None, T0, T0 + H, "", "ann", T0)
    gone = store.cancel(made.id, "bob", T0 + S)
    assert gone is not None and (gone.id, gone.cancelled_by, gone.cancelled_at) == (made.id, "bob", T0 + S)
    assert not gone.live(T0 + S) and store.get(made.id) == gone
    other = backend.overrides()  # another process, or host
    try:
        again = other.cancel(made.id, "carol", T0 + 2 * S)
        assert again == gone  # the first cancellation, as it was: nothing changed
        assert store.get(made.id) == gone
    finally:
        other.close()
    assert store.cancel(made.id + 1000, "bob", T0) is None


def test_version_moves_with_every_add_and_cancel_and_nothing_else(backend: Backend, store: OverrideStore) -> None:
    other = backend.overrides()
    try:
        assert store.version() == other.version() == 0
        made = store.add("606309", "07700900001", None, T0, T0 + H, "", "ann", T0)
        one = store.version()
        assert one != 0 and other.version() == one  # seen through another store object
        store.listed(T0)
        store.get(made.id)
        store.record_notice("k", "alice", "606309", "start", T0, T0 + H, False, T0)
        assert store.version() == one
        other.cancel(made.id, "bob", T0)
        two = store.version()
        assert two != one
        other.cancel(made.id, "bob", T0)  # cancelled before: nothing changed
        store.cancel(made.id + 1000, "bob", T0)  # no such override
        assert store.version() == two
        store.add("606310", None, None, T0, T0 + H, "", "ann", T0)
        assert store.version() not in (one, two)
    finally:
        other.close()


def test_a_cancel_that_fails_leaves_nothing_half_done(backend: Backend, store: OverrideStore) -> None:
    """A cancel is one transaction: when counting it fails, the override is not cancelled either (and
    so the daemon, watching the version, never misses a cancellation)."""
    made = store.add("606309", "07700900001", None, T0, T0 + H, "", "ann", T0)
    version = store.version()
    _break_the_counter(backend)
    with pytest.raises(ForwarddError):
        store.cancel(made.id, "bob", T0)
    fresh = backend.overrides()
    try:
        assert fresh.get(made.id) == made and fresh.version() == version
    finally:
        fresh.close()


def _break_the_counter(backend: Backend) -> None:
    """Make the next bump of the change counter fail (as a full disk or a lost connection would), after
    the override's own row was changed."""
    if backend.name == "sqlite":
        backend.execute("CREATE TRIGGER no_bump BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    else:
        backend.execute("CREATE FUNCTION no_bump() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ "
                        "LANGUAGE plpgsql; CREATE TRIGGER no_bump BEFORE UPDATE ON forwardd_meta "
                        "FOR EACH ROW EXECUTE FUNCTION no_bump()")


def test_a_notice_is_claimed_once_across_store_objects(backend: Backend, store: OverrideStore) -> None:
    other = backend.overrides()
    try:
        assert not store.notice_made("n1")
        assert store.record_notice("n1", "alice", "606309", "start", T0, T0 + H, False, T0) is True
        assert other.notice_made("n1") and store.notice_made("n1")
        assert other.record_notice("n1", "alice", "606309", "start", T0, T0 + H, False, T0 + S) is False
        assert store.record_notice("n1", "bob", "606310", "before", T0, T0 + 2 * H, True, T0 + S) is False
        (told,) = other.told(T0)
        assert (told.person, told.voipnumber, told.start, told.end, told.open_end, told.made_at) == (
            "alice", "606309", T0, T0 + H, False, T0)  # the first claim, as it was
    finally:
        other.close()


def test_two_stores_claiming_the_same_notices_at_once_win_each_once(backend: Backend, store: OverrideStore) -> None:
    stores = [store, backend.overrides()]
    stores[1].version()  # tables made
    wins: list[bool] = []
    go = threading.Barrier(2)

    def claim(s: OverrideStore) -> None:
        go.wait(30)
        for k in range(20):
            wins.append(s.record_notice(f"notice-{k}", "alice", "606309", "start", T0, T0 + H, False, T0))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(wins) == 40 and sum(wins) == 20
        assert len(store.told(T0)) == 20
    finally:
        stores[1].close()


def test_told_lists_shifts_not_ended_by_then_oldest_notice_first(store: OverrideStore) -> None:
    store.record_notice("b-late", "bob", "606310", "start", T0 + H, T0 + 3 * H, True, T0 + S)
    store.record_notice("a-same-time", "alice", "606309", "before", T0, T0 + 2 * H, False, T0 + S)
    store.record_notice("c-first", "carol", "606309", "before", T0, T0 + H, False, T0)
    store.record_notice("d-cancelled", "dave", "606309", "cancelled", T0, T0 + 5 * H, False, T0)
    store.notice_outcome("a-same-time", "delivered")
    store.notice_outcome("no-such-key", "delivered")
    told = store.told(T0)
    assert [(t.person, t.made_at) for t in told] == [("carol", T0), ("alice", T0 + S), ("bob", T0 + S)]
    assert told[2].open_end is True and told[2].start == T0 + H and told[2].end == T0 + 3 * H
    assert [t.person for t in store.told(T0 + H)] == ["alice", "bob"]  # carol's shift is over
    assert store.told(T0 + 3 * H) == []
