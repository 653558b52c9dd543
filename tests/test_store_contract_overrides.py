"""One contract for the overrides and notice claims (``store.ports.OverrideStore``), run against both
backends: SQLite (one host, in ``tmp_path``) and PostgreSQL (a cluster, on the throwaway server of
``tests/pgserver.py``). Every test says what the port promises, whichever store keeps them; the
journal has its own in ``test_store_contract.py``."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Iterator

import pytest

from forwardd.errors import ForwarddError
from forwardd.store.ports import OverrideStore

from .store_backends import BACKENDS, PARIS, T0, Backend, H, S, make_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return make_backend(request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> Iterator[OverrideStore]:
    s: OverrideStore = backend.overrides()
    yield s
    s.close()


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
