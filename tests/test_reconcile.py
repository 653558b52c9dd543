"""Reconciling one number: what is sent, and what is not."""

from __future__ import annotations

import asyncio
import datetime as dt

from forwardd.account import Account
from forwardd.aql import AqlClient
from forwardd.compiler import Change
from forwardd.fake_aql import FakeAqlServer
from forwardd.plan import NumberPlan
from forwardd.provider import Program
from forwardd.reconcile import Reconciler

from .conftest import PASSWORD, UTC

T0 = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_forwardcli_is_kept_and_unmanaged_fields_are_never_sent(account: Account) -> None:
    program = Program("07700900001", True, 17 * 3600 + 1800, 86399)
    plan = NumberPlan("606309", [], [Change(T0, T0, program, False)])
    account.users["606309"]["voicemaildest"] = "someone@example.com"

    async def go():  # noqa: ANN202
        async with AqlClient(fake.url, "acme", PASSWORD) as c:
            rec = Reconciler(c, None, None, clock=lambda: T0, sleep=lambda s: asyncio.sleep(0))
            return await rec.reconcile(plan, forwardcli=False)

    with FakeAqlServer(account) as fake:
        out = asyncio.run(go())
    assert out.ok
    user = account.users["606309"]
    assert user["forwardcli"] == "0" and user["forwardstart"] == "17:30:00"
    assert user["voicemaildest"] == "someone@example.com"
    sent = {k for h in account.history for k in h.changed}
    assert sent <= {"forwardto", "forwardactive", "forwardstart", "forwardend", "forwardcli"}
