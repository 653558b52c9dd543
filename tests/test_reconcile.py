"""Reconciling one number: what is sent, and what is not."""

from __future__ import annotations

import asyncio
import datetime as dt

from forwardd.aql.account import Account
from forwardd.aql.client import AqlClient
from forwardd.aql.fake import FakeAqlServer
from forwardd.clock import VirtualClock
from forwardd.config import config_from_dict
from forwardd.core.compiler import Change
from forwardd.core.plan import NumberPlan
from forwardd.core.provider import Program

from .conftest import PASSWORD, UTC, make_reconciler

T0 = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_forwardcli_is_kept_and_unmanaged_fields_are_never_sent(account: Account) -> None:
    program = Program("07700900001", True, 17 * 3600 + 1800, 86399)
    plan = NumberPlan("606309", [], [Change(T0, T0, program, False)])
    account.users["606309"]["voicemaildest"] = "someone@example.com"

    async def go():  # noqa: ANN202
        async with AqlClient(fake.url, "acme", PASSWORD) as c:
            cfg = config_from_dict({"numbers": [{"voipnumber": "606309", "fallback": "07700 900999",
                                                 "forwardcli": False}]}, env={})
            rec = make_reconciler(c, cfg=cfg, clock=VirtualClock(T0))
            return await rec.reconcile(plan)

    with FakeAqlServer(account) as fake:
        out = asyncio.run(go())
    assert out.ok
    user = account.users["606309"]
    assert user["forwardcli"] == "0" and user["forwardstart"] == "17:30:00"
    assert user["voicemaildest"] == "someone@example.com"
    sent = {k for h in account.history for k in h.changed}
    assert sent <= {"forwardto", "forwardactive", "forwardstart", "forwardend", "forwardcli"}


def _outage_of(failures: int, keep_trying: dt.timedelta | None, account: Account):  # noqa: ANN202
    program = Program("07700900001", True)
    plan = NumberPlan("606309", [], [Change(T0, T0, program, True)])
    clock = VirtualClock(T0)

    async def go():  # noqa: ANN202
        async with AqlClient(fake.url, "acme", PASSWORD) as c:
            rec = make_reconciler(c, clock=clock)
            until = T0 + keep_trying if keep_trying else None
            return await rec.reconcile(plan, keep_trying_until=until)

    with FakeAqlServer(account) as fake:
        fake.add_fault("http5xx", count=failures)
        return asyncio.run(go()), clock.now() - T0


def test_a_pass_gives_up_after_its_attempts_but_a_due_change_keeps_trying(account: Account) -> None:
    out, _ = _outage_of(8, None, account)
    assert not out.ok and out.attempts == 5
    out, took = _outage_of(8, dt.timedelta(minutes=5), account)
    assert out.ok and out.attempts == 9
    assert took < dt.timedelta(minutes=2)  # backoff is capped: it does not wait out the whole window


class _Entries:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str | None, bool | None, dict]] = []

    def record(self, kind: str, at: dt.datetime, voipnumber: str | None = None, ok: bool | None = None,
               **detail: object) -> None:
        self.rows.append((kind, voipnumber, ok, detail))

    def last_confirmed(self, voipnumber: str) -> None:
        return None


def test_a_change_waiting_for_a_slot_is_not_sent_once_the_fence_has_closed(account: Account) -> None:
    # a cluster's leader checks its fence before a changeuser; if the change then waits for a free request
    # slot (here: the only one, held by a slow read of another number) and the fence closes meanwhile, the
    # request must not go out when the slot frees: a standby may be leading by then
    program = Program("07700900001", True)
    plan = NumberPlan("606309", [], [Change(T0, T0, program, True)])
    fence_open = [True]
    journal = _Entries()

    async def go():  # noqa: ANN202
        async with AqlClient(fake.url, "acme", PASSWORD, concurrency=1) as c:
            rec = make_reconciler(c, journal=journal, may_send=lambda: fence_open[0])
            c.gate = rec.gate
            slow = asyncio.create_task(c.getuser("606310"))  # takes the slot for 1.5 s
            await asyncio.sleep(0.2)
            change = asyncio.create_task(rec.reconcile(plan, unread=True))  # a new number: programmed, no read first
            await asyncio.sleep(0.5)
            assert not change.done()  # waiting for the slot, past its own fence check
            fence_open[0] = False
            await slow
            return await change

    with FakeAqlServer(account) as fake:
        fake.add_fault("delay", seconds=1.5, action="getuser")
        out = asyncio.run(go())
    assert out.skipped and not out.ok and "does not hold the cluster lease" in (out.error or "")
    assert [h for h in account.history if h.voipnumber == "606309"] == []
    assert account.users["606309"]["forwardto"] != "07700900001"
    kinds = [(k, n) for k, n, _, _ in journal.rows]
    assert ("change", "606309") in kinds and kinds[-1] == ("error", "606309")
    assert "change not sent" in journal.rows[-1][3]["error"]
