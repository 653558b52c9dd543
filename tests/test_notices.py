"""Notices to people going on call (issue 12): the rules, and a running daemon delivering them (and its
alerts) to a JSON webhook and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from forwardd.core import notices as rules
from forwardd.core.plan import NumberPlan
from forwardd.core.timeline import Kind, Segment

from .conftest import LONDON, UTC, london
from .e2e import A, B, FakeProc, ics, start_daemon, stop, wait_for, write_config

PEOPLE = {"alice": A, "bob": B}
LABELS = {"606309": "Support line (606309)"}


def seg(a: dt.datetime, b: dt.datetime, to: str | None, kind: Kind = Kind.ROTA) -> Segment:
    return Segment(a.astimezone(UTC), b.astimezone(UTC), to, "r", kind)


def test_a_shift_runs_across_office_hours_and_ends_where_someone_else_takes_over() -> None:
    fri, mon = london(2026, 12, 4, 18), london(2026, 12, 7, 8, 30)
    plan = NumberPlan("606309", [
        seg(london(2026, 12, 4, 9), fri, None, Kind.OFFICE_HOURS),
        seg(fri, mon, A),  # Fri 18:00 - Mon 08:30
        seg(mon, london(2026, 12, 7, 17, 30), None, Kind.OFFICE_HOURS),
        seg(london(2026, 12, 7, 17, 30), london(2026, 12, 8, 9), A),  # the same person after office hours
        seg(london(2026, 12, 8, 9), london(2026, 12, 8, 18), B),
    ], [])
    horizon = (london(2026, 12, 4, 9).astimezone(UTC), london(2026, 12, 8, 18).astimezone(UTC))
    got = rules.shifts([plan], PEOPLE, horizon)
    assert [(s.person, s.start, s.end, s.open_end) for s in got] == [
        ("alice", fri.astimezone(UTC), london(2026, 12, 8, 9).astimezone(UTC), False),
        ("bob", london(2026, 12, 8, 9).astimezone(UTC), london(2026, 12, 8, 18).astimezone(UTC), True),
    ]
    text = rules.describe(rules.Shift("606309", "alice", fri, mon), "Support line (606309)", LONDON)
    assert text == "You're on call for Support line (606309) from Fri 4 Dec 18:00 until Mon 7 Dec 08:30 (GMT)"


def test_notices_come_due_before_and_at_the_start_once_each_time() -> None:
    start = london(2026, 12, 4, 18).astimezone(UTC)
    shift = rules.Shift("606309", "alice", start, start + dt.timedelta(days=2))
    before = dt.timedelta(hours=1)
    kinds = lambda t: [n.kind for n in rules.due([shift], t, before, LABELS, LONDON)]  # noqa: E731
    assert kinds(start - dt.timedelta(hours=2)) == []
    assert kinds(start - dt.timedelta(minutes=59)) == ["before"]
    assert kinds(start) == ["start"]
    assert kinds(start + dt.timedelta(hours=2)) == []  # a start long past is not announced late
    began = rules.Shift("606309", "alice", start, start + dt.timedelta(days=2), open_start=True)
    assert rules.due([began], start, before, LABELS, LONDON) == []  # began before the plan did: unknown start


def test_a_shift_someone_was_told_about_that_moves_or_goes_gets_one_more_notice() -> None:
    start = london(2026, 12, 4, 18).astimezone(UTC)
    end = start + dt.timedelta(days=2)
    told = [rules.Told("alice", "606309", start, end, False, start - dt.timedelta(hours=1))]
    now = start - dt.timedelta(minutes=30)
    same = [rules.Shift("606309", "alice", start, end)]
    assert rules.changes(told, same, now, LABELS, LONDON) == []
    moved = [rules.Shift("606309", "alice", start + dt.timedelta(hours=2), end)]
    (n,) = rules.changes(told, moved, now, LABELS, LONDON)
    assert n.kind == "changed" and "Fri 4 Dec 20:00" in n.body and "Fri 4 Dec 18:00" in n.body
    (n,) = rules.changes(told, [], now, LABELS, LONDON)
    assert n.kind == "cancelled" and "no longer on call" in n.body
    # the horizon moving on lengthens a shift whose end was not known yet: not a change
    open_told = [rules.Told("alice", "606309", start, end, True, now)]
    longer = [rules.Shift("606309", "alice", start, end + dt.timedelta(hours=5))]
    assert rules.changes(open_told, longer, now, LABELS, LONDON) == []
    # after a change notice, the changed shift is what she knows
    told2 = told + [rules.Told("alice", "606309", moved[0].start, end, False, now)]
    assert rules.changes(told2, moved, now, LABELS, LONDON) == []


# ----------------------------------------------------------------------------------- a running daemon


def _notices_config(tmp_path: Path, url: str, events: list, hook: str, smtp_port: int, alert_hook: str) -> Path:
    cfg = write_config(tmp_path, url, events, extra='\n[notices]\nbefore = "10s"\n'
                       f'[alerts]\nnotify = ["{alert_hook}"]\n')
    mail = f"mailto://127.0.0.1:{smtp_port}?from=forwardd@example.com&to=alice@example.com&mode=insecure"
    cfg.write_text(cfg.read_text().replace(f'alice = "{A}"', f'alice = {{ phone = "{A}", notify = ["{hook}", "{mail}"] }}')
                   .replace('voipnumber = "606309"', 'voipnumber = "606309"\nname = "Support line"'))
    return cfg


def test_a_running_daemon_tells_people_on_time_once_and_of_changes(tmp_path: Path, fake_proc: FakeProc, webhook,
                                                                   smtp) -> None:  # noqa: ANN001
    hook, received = webhook
    smtp_port, mails = smtp
    alerts_hook = hook.replace("/hook", "/alerts")
    t0 = (dt.datetime.now(UTC) + dt.timedelta(seconds=22)).replace(microsecond=0)
    events = [(t0, t0 + dt.timedelta(hours=3), "Alice"), (t0 + dt.timedelta(hours=5), t0 + dt.timedelta(hours=6),
                                                          "Alice / Bob")]
    cfg = _notices_config(tmp_path, fake_proc.url, events, hook, smtp_port, alerts_hook)
    proc = start_daemon(cfg, tmp_path)

    def titled(title: str) -> list[dict]:
        return [r for r in received if r.get("title") == title]

    try:
        wait_for(lambda: titled("On call soon"), timeout=30)  # due at t0 - 10 s
        soon_at = time.time()
        assert soon_at - (t0 - dt.timedelta(seconds=10)).timestamp() < 8
        wait_for(lambda: titled("On call now"), timeout=30)  # due at t0
        assert time.time() - t0.timestamp() < 8
        body = titled("On call now")[0]["message"]
        assert body.startswith("You're on call for Support line (606309) from ") and " until " in body
        wait_for(lambda: len(mails) >= 2, timeout=20)
        assert all("To: alice@example.com" in m for m in mails) and any("Subject: On call now" in m for m in mails)
        # the two-name event is alerted to the administrator (not the person)
        wait_for(lambda: any("names more than one person" in r.get("message", "") for r in received), timeout=10)
    finally:
        assert stop(proc) == 0
    # a restart does not send them again; a changed shift gets one more notice
    (tmp_path / "rota.ics").write_text(ics([(t0, t0 + dt.timedelta(hours=2), "Alice")]))
    proc = start_daemon(cfg, tmp_path, name="daemon2")
    try:
        wait_for(lambda: titled("On-call shift changed"), timeout=30)
        assert "is now" in titled("On-call shift changed")[0]["message"]
    finally:
        assert stop(proc) == 0
    assert len(titled("On call soon")) == 1 and len(titled("On call now")) == 1


def test_a_notice_outcome_is_stored_off_the_event_loop(webhook) -> None:  # noqa: ANN001
    # the claims store is a database in a cluster: a store that hangs (a database gone away) must not
    # freeze the daemon's event loop, where exact hand-overs and the lease's watch run
    import asyncio
    import threading

    from forwardd.config import config_from_dict
    from forwardd.notify.notices import Notices
    from forwardd.notify.notifier import Notifier

    hook, received = webhook
    release, stored = threading.Event(), []

    class HangingStore:
        def notice_outcome(self, key: str, outcome: str) -> None:
            release.wait(10)
            stored.append((key, outcome))

    cfg = config_from_dict({"people": {"Alice": {"phone": A, "notify": [hook]}},
                            "numbers": [{"voipnumber": "606309", "fallback": "07700 900999"}]}, env={})
    t0 = dt.datetime(2026, 12, 1, 9, tzinfo=UTC)
    notice = rules.Notice("k1", "Alice", "606309", "start", rules.Shift("606309", "Alice", t0, t0), "On call now", "b")

    async def go() -> float:
        notices = Notices(cfg, HangingStore(), Notifier(), None)  # type: ignore[arg-type]
        notices.send(notice, t0)
        longest, last, delivered = 0.0, time.monotonic(), None
        while delivered is None or last - delivered < 0.5:  # until delivered, and half a second more
            await asyncio.sleep(0.02)
            longest, last = max(longest, time.monotonic() - last), time.monotonic()
            if delivered is None and notices.on_outcome:
                delivered = last
        release.set()
        return longest

    assert asyncio.run(go()) < 2  # the loop kept turning (blocked in the store, it would stop for 10 s)
    assert received and received[0]["title"] == "On call now"
    wait_for(lambda: stored == [("k1", "sent")], timeout=5)
