"""A planned change that waits for its line's drift slot (``service/due.py``): the check's read is the
change's, so a day costs fewer requests, while the line routes calls right all along and its hand-made
changes are still seen. On the engine and simulated accounts, virtual time."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from forwardd.aql.account import Account
from forwardd.cli import status
from forwardd.clock import VirtualClock
from forwardd.core.timeline import Segment
from forwardd.notify.keys import AlertKey, AlertKind
from forwardd.service.engine import Engine
from forwardd.service.lanes import PassKind, PassRequest
from forwardd.service.reconcile import Outcome
from forwardd.service.simulate import misrouted_seconds
from forwardd.web.health import DEGRADED, health
from forwardd.web.presentation import Names
from forwardd.web.render import status_page
from forwardd.web.status import status_view

from .e2e import A, B, ics
from .test_engine import T0, config, held_by, run

V = "606309"
MON = T0.replace(hour=0)  # Monday 7 December 2026, GMT
TUE = MON + dt.timedelta(days=1)


def at(day: dt.datetime, hh: int, mm: int = 0) -> dt.datetime:
    return day + dt.timedelta(hours=hh, minutes=mm)


# Alice Monday evening, Bob Tuesday evening: at 22:40 on Monday Bob's evening program becomes right, and
# Alice's stays right until 17:30 on Tuesday: a window of 18 h 50 min for the change to Bob.
EVENINGS = [(at(MON, 17, 30), at(MON, 22, 40), "Alice"), (at(TUE, 17, 30), at(TUE, 22, 40), "Bob")]


def logged(account: Account) -> list[tuple[dt.datetime, str]]:
    """Every request the account answers, with its virtual instant (appended to as they come)."""
    seen: list[tuple[dt.datetime, str]] = []
    handle = account.handle

    def spy(form: Any) -> str:
        seen.append((account.clock(), form.get("action", "")))
        return handle(form)

    account.handle = spy  # type: ignore[method-assign]
    return seen


def to(target: str, history: list[tuple[dt.datetime, Any]]) -> list[dt.datetime]:
    return [t for t, p in history if p.active and p.target == target]


def test_a_change_waits_for_its_lines_drift_slot_and_one_read_serves_both(tmp_path: Path) -> None:
    """The line's slots are on the hour (from start-up at 09:00): the change due at 22:40 goes at 23:00,
    read once before and once after, and the slots go on at 00:00 unmoved."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h", "replan_every": "11m"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        requests = logged(accounts["aql"])
        await clock.run_until(at(MON, 22, 50))
        snap = engine.publish()  # between the change's apply_from and the slot: pending, and right
        pending = (dict(snap.right_until), health(snap), snap.unconfirmed, status_page(status_view(snap)))
        await clock.run_until(at(TUE, 1, 30))
        return requests, pending, held_by(accounts["aql"], V)

    requests, (right_until, healthy, unconfirmed, page), history = run(cfg, body)
    # Alice's evening program sends calls right until Bob's evening begins
    assert right_until == {V: at(TUE, 17, 30)} and V not in unconfirmed
    assert "holds the program before the change due, still right until Tue 08 Dec 17:30" in page
    # (degraded only by the gap alert: nobody is on call between the evenings, and there is no fallback)
    assert healthy.status == DEGRADED and all("gap" in r or "Nobody is on call" in r for r in healthy.reasons)
    assert [t for t, a in requests if a == "changeuser" and t < at(MON, 22, 40)] == [at(MON, 9)]  # re-plans: none
    assert to(B, history) == [at(MON, 23)]  # in the slot, not at 22:40 (re-plans every 11 min kept it waiting)
    around = [(t, a) for t, a in requests if at(MON, 22, 30) <= t <= at(TUE, 0, 30)]
    assert around == [(at(MON, 23), "getuser"), (at(MON, 23), "changeuser"), (at(MON, 23), "getuser"),
                      (at(TUE, 0), "getuser")]
    timeline = [Segment(at(MON, 9), at(MON, 17, 30), None, ""), Segment(at(MON, 17, 30), at(MON, 22, 40), A, ""),
                Segment(at(MON, 22, 40), at(TUE, 1, 30), None, "")]
    assert misrouted_seconds(history, timeline, cfg.tz, False) == 0


def test_a_change_whose_slot_comes_late_in_its_window_goes_at_its_apply_from(tmp_path: Path) -> None:
    """Bob from 23:10 on Monday: the change to him is due from 22:40 and must be in by 23:10; the slot at
    23:00 is past the first half of that window, so the change goes at 22:40 with a read of its own."""
    events = [EVENINGS[0], (at(MON, 23, 10), at(MON, 23, 50), "Bob")]
    cfg = config(tmp_path, events, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        requests = logged(accounts["aql"])
        await clock.run_until(at(MON, 23, 10))
        return requests, held_by(accounts["aql"], V)

    requests, history = run(cfg, body)
    assert to(B, history) == [at(MON, 22, 40)]
    assert [(t, a) for t, a in requests if t >= at(MON, 22, 30)] == [
        (at(MON, 22, 40), "getuser"), (at(MON, 22, 40), "changeuser"), (at(MON, 22, 40), "getuser")]


def test_a_hand_made_change_while_the_change_waits_is_seen_by_its_read(tmp_path: Path) -> None:
    """Someone changes the line by hand at 22:45: the change's read in the 23:00 slot sees it, journals
    and alerts it, and the planned change replaces it."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 22, 45))
        accounts["aql"].set_fields(V, {"forwardto": "07700900666"})
        snap = engine.publish()
        await clock.run_until(at(MON, 23, 5))
        drifts = [e for e in engine.sv.journal.entries(kind="drift")] if engine.sv.journal else []
        return snap.right_until, drifts, engine.sv.alerts.sent, held_by(accounts["aql"], V)

    right_until, drifts, sent, history = run(cfg, body)
    assert V in right_until  # as far as forwardd knew at 22:45 (it had not read the line since 22:00)
    assert [e["voipnumber"] for e in drifts] == [V]
    assert any(AlertKey(AlertKind.DRIFT, V).kind.value in str(a) and "a planned change replaces it" in str(a)
               for a in sent)
    assert to(B, history) == [at(MON, 23)]


def test_a_line_not_confirmed_to_hold_the_program_before_does_not_wait(tmp_path: Path) -> None:
    """After a restart the journal's last confirmation is all forwardd knows; a line whose last
    confirmation is not the program before the due change is sent its change at once, not in a slot."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 22, 30))
        rec = engine.sv.edges_of(V).reconciler
        rec.confirmed.pop(V)  # as if nothing were known of the line
        rec.journal_lookups = False
        await clock.run_until(at(MON, 22, 41))
        return held_by(accounts["aql"], V)

    assert to(B, run(cfg, body)) == [at(MON, 22, 40)]


def test_past_its_apply_by_an_unconfirmed_line_is_not_pending_but_wrong(tmp_path: Path) -> None:
    """The account refuses the password from 22:30 on: the line is pending (right) until 17:30 on Tuesday,
    when Alice's program would send Bob's calls to her, and not confirmed from then on."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 22, 30))
        accounts["aql"].password = "changed-in-the-portal"
        seen = []
        for t in (at(MON, 23, 30), at(TUE, 17, 29), at(TUE, 17, 31)):
            await clock.run_until(t)
            snap = engine.publish()
            seen.append((V in snap.right_until, V in snap.unconfirmed))
        return seen

    assert run(cfg, body) == [(True, False), (True, False), (False, True)]


def test_status_calls_a_waiting_line_pending_and_still_right_not_a_mismatch(tmp_path: Path) -> None:
    """``forwardd status`` between the change's apply_from and the slot: the account holds Alice's evening,
    still right until 17:30 on Tuesday: pending, not a mismatch."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 22, 50))
        seen = await status._look(engine.sv)
        return seen, status._row(cfg, seen, V, Names(cfg))

    seen, row = run(cfg, body)
    assert row["match"] is False and row["pending_until"] == at(TUE, 17, 30).isoformat()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status._print(cfg, seen, [row], Names(cfg))
    assert "606309: PENDING: the account holds" in out.getvalue()
    assert "still right until Tue 8 Dec 17:30 GMT" in out.getvalue() and "MISMATCH" not in out.getvalue()


def test_a_status_that_finds_a_hand_made_setting_says_mismatch_even_when_it_is_right_for_now(tmp_path: Path) -> None:
    """At 22:50 someone sets Alice's window to 18:00-22:39 by hand: calls still go right for now, but
    forwardd did not confirm it (it would restore it, or only alert): MISMATCH, not PENDING."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 22, 50))
        accounts["aql"].set_fields(V, {"forwardstart": "18:00:00"})
        seen = await status._look(engine.sv)
        return status._row(cfg, seen, V, Names(cfg))

    row = run(cfg, body)
    assert row["match"] is False and "pending_until" not in row


def test_a_re_plan_that_shortens_the_window_of_a_waiting_change_sends_it_at_once(tmp_path: Path) -> None:
    """The change to Bob's evening waits for the 23:00 slot; at 22:45 the rota gains Bob from 22:50 to
    23:20. The change now due must be in by 22:50: it goes at once (the calendar is read within its
    minute's refresh), not at 23:00."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 22, 45))
        (tmp_path / "rota.ics").write_text(ics([*EVENINGS, (at(MON, 22, 50), at(MON, 23, 20), "Bob")]))
        await clock.run_until(at(MON, 23, 30))
        return held_by(accounts["aql"], V)

    sent = to(B, run(cfg, body))
    assert sent and at(MON, 22, 45) < sent[0] < at(MON, 22, 50)


def test_a_pass_that_read_the_line_just_before_its_change_fell_due_is_followed_by_the_change(tmp_path: Path) -> None:
    """A race on a real network: a retry reads the line at 22:39:59 (Alice's program: confirmed) and
    ends at 22:40:00, after the change to Bob was set to wait for the 23:00 slot. Its read moves the
    line's slot to about 23:39, past the change's apply_by (23:30): the change must go now, not then."""
    events = [EVENINGS[0], (at(MON, 23, 30), at(MON, 23, 50), "Bob")]
    cfg = config(tmp_path, events, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 22, 40))
        assert not to(B, held_by(accounts["aql"], V))  # waiting for the 23:00 slot
        lane = engine.lane_of(V)
        rec = lane.reconciler
        rec.read_at[V] = at(MON, 22, 40) - dt.timedelta(seconds=1)
        engine._after(lane, V, PassRequest(PassKind.RETRY), Outcome(V, ok=True, program=rec.confirmed[V].state.program))
        assert lane.check_at(V) is not None and lane.check_at(V) > at(MON, 23, 30)
        await clock.run_until(at(MON, 23, 45))
        return held_by(accounts["aql"], V)

    assert to(B, run(cfg, body)) == [at(MON, 22, 40)]


@pytest.mark.timeout(60)
def test_a_leader_that_may_not_send_puts_its_drift_checks_off_without_hanging(tmp_path: Path) -> None:
    """A leader whose lease is in doubt (fenced) when a drift slot comes puts the check off a second at a
    time; it once rescheduled it at the very slot that had just come, and the timer loop spun forever."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 9, 30))
        rec = engine.lane_of(V).reconciler
        rec.may_send = lambda: False
        await clock.run_until(at(MON, 10) + dt.timedelta(seconds=5))
        put_off = engine.lane_of(V).check_at(V)
        rec.may_send = None
        await clock.run_until(at(MON, 10, 0) + dt.timedelta(seconds=10))
        return put_off, engine.lane_of(V).reconciler.read_at[V]

    put_off, read = run(cfg, body)
    assert put_off is not None and at(MON, 10) + dt.timedelta(seconds=5) < put_off <= at(MON, 10) + dt.timedelta(seconds=6)
    assert at(MON, 10) + dt.timedelta(seconds=5) < read <= at(MON, 10) + dt.timedelta(seconds=7)  # read once the fence opened


def test_a_re_plan_in_a_new_hour_keeps_a_waiting_change_waiting(tmp_path: Path) -> None:
    """Started at 09:30, the line's slots are at half past: the change due at 22:40 waits for 23:30. A
    re-plan at 23:04 plans from 23:00, where its first change (the program for the plan's start) has
    no window of its own; the line still sends calls right until Tuesday 17:30, so the change waits on."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h", "replan_every": "11m"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(TUE, 0, 30))
        return held_by(accounts["aql"], V)

    assert to(B, run(cfg, body, start=at(MON, 9, 30))) == [at(MON, 23, 30)]


def test_with_wait_for_drift_slot_off_every_change_goes_at_its_apply_from(tmp_path: Path) -> None:
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h", "wait_for_drift_slot": False})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 23, 30))
        return held_by(accounts["aql"], V)

    assert to(B, run(cfg, body)) == [at(MON, 22, 40)]


def test_status_finds_the_last_confirmation_when_the_reconcilers_leave_the_journal_to_the_daemon(tmp_path: Path) -> None:
    """In a cluster the reconcilers never look a line up in the shared journal (the daemon loads them
    all at once); status reads the journal itself, so a waiting line is PENDING there too."""
    cfg = config(tmp_path, EVENINGS, daemon={"drift_check_every": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(at(MON, 22, 50))
        if engine.sv.journal is not None:
            engine.sv.journal.flush()
        rec = engine.lane_of(V).reconciler
        rec.confirmed.clear()
        rec.journal_lookups = False
        seen = await status._look(engine.sv)
        return status._row(cfg, seen, V, Names(cfg))

    row = run(cfg, body)
    assert row["match"] is False and row["pending_until"] == at(TUE, 17, 30).isoformat()
