"""One contract for the journal (``store.ports.JournalStore``), run against both backends: SQLite (one
host, in ``tmp_path``) and PostgreSQL (a cluster, on the throwaway server of ``tests/pgserver.py``).
Every test says what the port promises, whichever store keeps the journal; the overrides and notices
have theirs in ``test_store_contract_overrides.py``, and what only one backend does (the cluster's
instance names, its lease) is tested in its own module (``test_postgres.py``)."""

from __future__ import annotations

import datetime as dt
import math
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from forwardd.store.ports import EntryKind, JournalStore

from .store_backends import BACKENDS, PARIS, RETRY_S, T0, Backend, S, make_backend, wait_for


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return make_backend(request, tmp_path)


@pytest.fixture
def journal(backend: Backend) -> Iterator[JournalStore]:
    j: JournalStore = backend.journal()
    yield j
    j.close()


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
