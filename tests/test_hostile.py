"""Hostile inputs and failing parts, in process: each test here failed on the code before issue 15.
(The trials against a running daemon are in test_trials.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import os
import time
from pathlib import Path

import pytest
import structlog

from forwardd.aql.account import Account
from forwardd.aql.client import AqlClient
from forwardd.aql.fake import FakeAqlServer
from forwardd.calendars.expand import expand
from forwardd.calendars.limits import Limits
from forwardd.calendars.worker import WorkerExpander
from forwardd.clock import VirtualClock
from forwardd.core.compiler import Change
from forwardd.core.plan import NumberPlan
from forwardd.core.provider import Program
from forwardd.core.timeline import Event, Kind, Policy, build_timeline
from forwardd.errors import AqlProtocolError, AqlThrottled, CalendarError
from forwardd.logs import configure, register_secret, secret_forms
from forwardd.notify.alerts import Alerts
from forwardd.notify.notifier import Notifier
from forwardd.store.journal import Journal, open_journal

from .conftest import LONDON, UTC, make_reconciler, small_config

T0 = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)
A, B = "07700900001", "07700900002"


def vevents(lines: list[str]) -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n" + "".join(lines) + "END:VCALENDAR\r\n").encode()


def event(uid: str, start: str, end: str, summary: str, extra: str = "") -> str:
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\n{extra}"
            f"SUMMARY:{summary}\r\nEND:VEVENT\r\n")


# ------------------------------------------------------------------------------ calendar work bounded


@pytest.mark.parametrize(("rule", "why"), [
    ("FREQ=SECONDLY", "repeats secondly"),
    ("FREQ=MINUTELY;INTERVAL=1", "repeats minutely"),
    ("FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;"
     "BYMINUTE=0,5,10,15,20,25,30,35,40,45,50,55;BYSECOND=0,10,20,30,40,50", "repeats daily"),
])
def test_rules_more_frequent_than_the_horizon_can_hold_are_refused_at_once(rule: str, why: str) -> None:
    data = vevents([event("storm", "20200101T000000Z", "20200101T000001Z", "On call: Alice", f"RRULE:{rule}\r\n")])
    t = time.monotonic()
    with pytest.raises(CalendarError) as info:
        expand("hostile", data, LONDON, T0, T0 + dt.timedelta(days=14), Limits())
    assert time.monotonic() - t < 5
    assert "hostile" in str(info.value) and "'storm'" in str(info.value) and why in str(info.value)


def test_a_rule_that_fits_the_horizon_but_starts_long_ago_is_refused_for_its_steps() -> None:
    data = vevents([event("old", "19700101T000000Z", "19700101T000030Z", "On call: Alice",
                          "RRULE:FREQ=MINUTELY;INTERVAL=2\r\n")])
    with pytest.raises(CalendarError, match="repetitions to expand"):
        expand("old-feed", data, LONDON, T0, T0 + dt.timedelta(days=14), Limits(max_occurrences=20_000))


def test_occurrences_per_feed_are_capped() -> None:
    lines = [event(f"e{i}", f"202612{1 + i // 100:02d}T{i % 24:02d}0000Z", f"202612{1 + i // 100:02d}T{i % 24:02d}3000Z",
                   "On call: Alice") for i in range(1000)]
    with pytest.raises(CalendarError, match="1,000 occurrences in the horizon, more than the 500"):
        expand("busy", vevents(lines), LONDON, T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=14),
               Limits(max_occurrences=500))


def test_the_worker_is_killed_at_its_deadline_and_the_next_feed_gets_a_fresh_one() -> None:
    slow = vevents([event(f"e{i}", "20261201T100000Z", "20261201T110000Z", f"On call: person {i}")
                    for i in range(40_000)])
    good = vevents([event("ok", "20261201T100000Z", "20261201T110000Z", "On call: Alice")])

    async def go() -> None:
        worker = WorkerExpander(deadline_s=1.0, processes=1)
        try:
            t = time.monotonic()
            with pytest.raises(CalendarError, match="took longer than 1 s; abandoned"):
                await worker.expand("slow", slow, LONDON, T0, T0 + dt.timedelta(days=14), Limits())
            assert time.monotonic() - t < 6  # cut at the deadline: reading it whole takes ~10 s here
            worker.deadline_s = 30
            got = await worker.expand("good", good, LONDON, T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1),
                                      Limits())
            assert [e.summary for e in got.events] == ["On call: Alice"] and worker.restarts == 2
        finally:
            await worker.aclose()

    asyncio.run(go())


def test_workers_read_feeds_side_by_side_and_go_when_idle() -> None:
    good = vevents([event("ok", "20261201T100000Z", "20261201T110000Z", "On call: Alice")])

    async def go() -> None:
        worker = WorkerExpander(processes=2, idle_s=0.5)
        try:
            got = await asyncio.gather(*(worker.expand(f"feed{i}", good, LONDON, T0 - dt.timedelta(days=1),
                                                       T0 + dt.timedelta(days=1), Limits()) for i in range(4)))
            assert all(len(g.events) == 1 for g in got)
            running = [w.proc.pid for w in worker._workers if w.running and w.proc is not None]
            assert len(running) == 2  # both were used
            deadline = time.monotonic() + 10
            gone = lambda: not any(Path(f"/proc/{pid}").exists() for pid in running)  # noqa: E731
            while not gone() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert gone() and not any(w.running for w in worker._workers)  # idle: let go
            again = await worker.expand("later", good, LONDON, T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1),
                                        Limits())
            assert len(again.events) == 1  # started again when needed
        finally:
            await worker.aclose()

    asyncio.run(go())


def test_calendar_text_reaches_logs_and_terminals_clean_and_short() -> None:
    data = vevents([event("x", "20261201T100000Z", "20261201T110000Z",
                          "On call: \x1b[31mAlice\x1b[0m [/] [bold]x\x07",
                          f"DESCRIPTION:{'y' * 1_000_000}\r\nLOCATION:\x1b]0;pwned\x07room\r\n")])
    got = expand("text", data, LONDON, T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1), Limits())
    (ev,) = got.events
    assert ev.summary == "On call: [31mAlice[0m [/] [bold]x" and "\x1b" not in ev.location + ev.summary
    assert len(ev.description) <= 2000


# -------------------------------------------------------------------------- routes nobody allowed


@pytest.mark.parametrize(("text", "allowed"), [
    ("Locum: 0906 123 4567", False),  # premium rate
    ("Locum: +33 1 45 67 89 10", False),  # international
    ("Locum: 0700 123 4567", False),  # 070 personal numbers
    ("Locum: 0113 496 0123", True),  # UK geographic
    ("Locum: 07700 900123", True),  # UK mobile
])
def test_a_number_typed_into_an_event_is_used_only_when_allowed(text: str, allowed: bool) -> None:
    ev = Event(T0, T0 + dt.timedelta(hours=1), text, uid="locum", calendar="rota")
    segs, findings = build_timeline(T0, T0 + dt.timedelta(hours=2), LONDON, Policy({"alice": A}), rota=[ev])
    if allowed:
        assert segs[0].target is not None and segs[0].kind is Kind.ROTA
    else:
        assert segs[0].target is None and segs[0].kind is Kind.GAP
        assert any(f.kind == "disallowed" and "allowed_numbers" in f.message for f in findings)


def test_allowed_numbers_can_be_widened_and_people_are_always_allowed() -> None:
    ev = Event(T0, T0 + dt.timedelta(hours=1), "Locum: +33 1 45 67 89 10", uid="x", calendar="rota")
    segs, _ = build_timeline(T0, T0 + dt.timedelta(hours=1), LONDON,
                             Policy({"alice": A}, allowed=("07", "0033")), rota=[ev])
    assert segs[0].target == "0033145678910"
    abroad = {"pierre": "0033145678910"}
    ev = Event(T0, T0 + dt.timedelta(hours=1), "On call: Pierre", uid="y", calendar="rota")
    segs, _ = build_timeline(T0, T0 + dt.timedelta(hours=1), LONDON, Policy(abroad), rota=[ev])
    assert segs[0].target == "0033145678910"


# ---------------------------------------------------------------------------- credentials stay put

ODD_PASSWORD = "p@ss w0rd&=x\"ü"


def test_a_password_with_characters_that_get_encoded_never_leaks(tmp_path: Path) -> None:
    account = Account.with_numbers("acme", ODD_PASSWORD, ["606309"])
    stream = io.StringIO()
    configure("debug", json_lines=True, stream=stream)
    register_secret(ODD_PASSWORD)
    forms = secret_forms(ODD_PASSWORD)
    assert "p%40ss+w0rd%26%3Dx%22%C3%BC" in forms  # what httpx puts on the wire
    with FakeAqlServer(account) as fake:
        fake.add_fault("echo", count=20)

        async def go():  # noqa: ANN202
            journal = Journal(tmp_path / "journal.sqlite")
            alerts = Alerts(small_config().alerts, journal, Notifier())
            async with AqlClient(fake.url, "acme", ODD_PASSWORD) as c:
                rec = make_reconciler(c, alerts=alerts, journal=journal, attempts_per_pass=2)
                out = await rec.reconcile(NumberPlan("606309", [], [Change(T0, T0, Program(A, True), False)]))
            journal.flush()
            rows = journal.entries()
            journal.close()
            return out, rows, [{**a, "key": a["key"].text()} for a in alerts.sent]

        out, rows, sent = asyncio.run(go())
    assert not out.ok and "Bad request" in (out.error or "")
    everything = json.dumps(rows) + json.dumps(sent) + stream.getvalue() + (out.error or "")
    assert "Bad request" in json.dumps(rows)  # the echo was recorded...
    leaked = [f for f in forms if f in everything]
    assert leaked == []  # ...without the password in any encoding


def test_the_aql_client_follows_no_redirect() -> None:
    account = Account.with_numbers("acme", "pw", ["606309"])
    with FakeAqlServer(account) as fake:
        fake.add_fault("status", status=302, location="https://evil.example.invalid/collect")

        async def go() -> None:
            async with AqlClient(fake.url, "acme", "pw") as c:
                await c.getuser("606309")

        with pytest.raises(AqlProtocolError, match="redirect.*does not follow"):
            asyncio.run(go())
        assert len(fake.log) == 1


@pytest.mark.parametrize(("status", "header", "wait"), [(429, "7", 7.0), (503, None, None), (429, "soon", None)])
def test_throttling_answers_are_typed_with_their_retry_after(status: int, header: str | None, wait: float | None) -> None:
    account = Account.with_numbers("acme", "pw", ["606309"])
    with FakeAqlServer(account) as fake:
        fake.add_fault("status", status=status, retry_after=header, body="slow down")

        async def go() -> None:
            async with AqlClient(fake.url, "acme", "pw") as c:
                await c.getuser("606309")

        with pytest.raises(AqlThrottled) as info:
            asyncio.run(go())
    assert info.value.retry_after == wait and f"HTTP {status}" in str(info.value)


def test_state_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    from forwardd.files import atomic_write, private_dir

    old = os.umask(0)
    try:
        folder = private_dir(tmp_path / "state" / "calendars")
        atomic_write(folder / "x.json", "{}")
        journal = Journal(tmp_path / "state" / "journal.sqlite")
        journal.record("start", T0)
        journal.flush()
        journal.close()
    finally:
        os.umask(old)
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "x.json").stat().st_mode & 0o777 == 0o600
    for f in (tmp_path / "state").glob("journal.sqlite*"):
        assert f.stat().st_mode & 0o777 == 0o600, f


# ------------------------------------------------------------------------------ the journal may fail


def test_a_journal_that_cannot_be_written_never_raises_and_catches_up(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.mkdir()  # something in the way: SQLite cannot open it
    told: list[str | None] = []
    journal = Journal(path, on_trouble=told.append)
    for i in range(5):
        journal.record("change", T0, "606309", None, n=i)  # never raises, never blocks
    assert journal.flush(5)
    assert journal.problem is not None and told and told[0] is not None
    path.rmdir()
    journal.record("change", T0, "606309", None, n=5)
    assert journal.flush(5)
    deadline = time.monotonic() + 15
    while journal.problem is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert journal.problem is None and told[-1] is None  # recovered, and said so
    assert journal.flush(5)
    assert [e["n"] for e in journal.entries()] == [0, 1, 2, 3, 4, 5]  # nothing lost
    journal.close()


@pytest.mark.parametrize("damage", ["garbage", "malformed pages"])
def test_a_corrupt_journal_is_moved_aside_at_start_up(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "journal.sqlite"
    if damage == "garbage":
        path.write_bytes(os.urandom(8192))
    else:
        j = Journal(path)
        for i in range(300):
            j.record("change", T0, "606309", None, pad="x" * 200, n=i)
        j.close()
        raw = bytearray(path.read_bytes())
        raw[4096 * 2: 4096 * 2 + 3000] = os.urandom(3000)  # scribble over a page of the table
        path.write_bytes(bytes(raw))
    journal, note = open_journal(path, T0)
    journal.record("start", T0)
    assert journal.flush(5)
    assert note is not None and "moved aside to journal.sqlite.corrupt-20261201T120000Z" in note
    assert (tmp_path / "journal.sqlite.corrupt-20261201T120000Z").exists()
    assert [e["kind"] for e in journal.entries()] == ["start"]
    journal.close()


# ---------------------------------------------------------------------------------- honest signals


def test_a_transient_err_on_a_due_hand_over_is_retried_with_the_newest_program() -> None:
    """aql answers ERR: while a hand-over is due; meanwhile a re-plan changes what should be in force.
    The pass keeps trying, and the first program that reaches the account is the newest one."""
    account = Account.with_numbers("acme", "pw", ["606309"])
    first = NumberPlan("606309", [], [Change(T0, T0, Program(A, True), True)])
    second = NumberPlan("606309", [], [Change(T0, T0, Program(B, True), True)])
    asked = []

    def newest() -> NumberPlan:
        asked.append(1)
        return first if len(asked) < 3 else second

    with FakeAqlServer(account) as fake:
        fake.add_fault("err", message="Service busy, try again", count=3)

        async def go():  # noqa: ANN202
            clock = VirtualClock(T0)
            async with AqlClient(fake.url, "acme", "pw") as c:
                rec = make_reconciler(c, clock=clock)
                return await rec.reconcile(newest, exact_at=T0, keep_trying_until=T0 + dt.timedelta(minutes=5))

        out = asyncio.run(go())
    assert out.ok and out.attempts == 4
    assert [h.fields["forwardto"] for h in account.history] == [B]  # never the stale program


def test_after_an_authentication_refusal_the_pass_stops_trying_other_numbers() -> None:
    numbers = ("606309", "606310", "606311", "606312", "606313")
    account = Account.with_numbers("acme", "right", list(numbers))
    plans = [NumberPlan(n, [], [Change(T0, T0, Program(A, True), False)]) for n in numbers]
    clock = VirtualClock(T0)
    with FakeAqlServer(account) as fake:

        async def go():  # noqa: ANN202
            async with AqlClient(fake.url, "acme", "wrong", concurrency=1) as c:
                rec = make_reconciler(c, clock=clock, cfg=small_config(numbers))
                c.gate = rec.gate
                first = await asyncio.gather(*(rec.reconcile(p) for p in plans))
                clock.advance(61)
                again = await asyncio.gather(*(rec.reconcile(p) for p in plans))
                return first, again

        first, again = asyncio.run(go())
        requests = len(fake.log)
    assert sum(not o.skipped for o in first) == 1 and sum(o.skipped for o in first) == 4
    assert sum(not o.skipped for o in again) == 1  # one probe a minute later, not five refusals
    assert requests == 2


def test_stdlib_records_apschedulers_among_them_are_json_lines(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure("info", json_lines=True, stream=stream)
    logging.getLogger("apscheduler.scheduler").warning("Run time of job %r was missed by %s", "change:606309", "0:00:05")
    structlog.get_logger("forwardd.test").info("ours")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["logger"] == "apscheduler.scheduler" and lines[0]["level"] == "warning"
    assert "change:606309" in lines[0]["event"] and lines[1]["event"] == "ours"
