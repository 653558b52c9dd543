"""Alerts to a real webhook and a real (minimal) SMTP server on 127.0.0.1; rate limits; recoveries;
and the reconciler raising them for auth errors, rejections and lateness."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from forwardd.aql.account import Account
from forwardd.aql.client import AqlClient
from forwardd.aql.fake import FakeAqlServer
from forwardd.clock import VirtualClock
from forwardd.config import AlertSettings
from forwardd.core.compiler import Change
from forwardd.core.plan import NumberPlan
from forwardd.core.provider import Program
from forwardd.notify.alerts import Alerts
from forwardd.notify.keys import AlertKey, AlertKind
from forwardd.notify.notifier import Notifier

from .conftest import PASSWORD, UTC, make_reconciler

T0 = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)


def settings(**kw: object) -> AlertSettings:
    return AlertSettings.model_validate(kw)


def test_json_webhook_gets_each_alert_once_per_repeat_and_one_recovery(webhook) -> None:
    url, received = webhook

    async def go() -> None:
        alerts = Alerts(settings(notify=[url], repeat_after="1h"), None, Notifier())
        late = AlertKey(AlertKind.LATE, "606309")
        alerts.raise_(late, "Line 606309 is not confirmed", T0)
        alerts.raise_(late, "Line 606309 is not confirmed", T0 + dt.timedelta(minutes=5))
        alerts.raise_(late, "Line 606309 is not confirmed", T0 + dt.timedelta(minutes=61))
        alerts.clear(late, T0 + dt.timedelta(minutes=62))
        alerts.clear(late, T0 + dt.timedelta(minutes=63))
        await alerts.drain()

    asyncio.run(go())
    titles = [r["title"] for r in received]
    # titles are sentences, never keys; the recovery says what recovered and after how long
    assert titles == ["forwardd: Line 606309 is not confirmed"] * 2 + ["forwardd: Line 606309 recovered after 1h02m"]
    assert received[0]["message"] == "Line 606309 is not confirmed" and received[0]["type"] == "failure"
    assert received[2]["type"] == "success" and "it was: Line 606309 is not confirmed" in received[2]["message"]


def test_keys_are_structure_and_survive_a_restart_in_the_state_directory(tmp_path) -> None:
    """A calendar named like a line is never filed under that line, and standing alerts (older versions'
    plain keys too) are read back from the state directory."""
    state = tmp_path / "alerts.json"
    state.write_text('{"drift:606309": "2026-12-01T11:00:00+00:00"}')  # as an older version wrote it

    async def go() -> None:
        alerts = Alerts(settings(), None, Notifier(), state_path=state)
        assert AlertKey(AlertKind.DRIFT, number="606309") in alerts.active
        alerts.raise_(AlertKey(AlertKind.CALENDAR, calendar="606309"), "Calendar '606309' is failing", T0)
        alerts.raise_(AlertKey(AlertKind.EVENT, detail="unnamed:rota:a:1@x:17"), "An event names nobody", T0)
        again = Alerts(settings(), None, Notifier(), state_path=state)
        assert set(again.active) == set(alerts.active)
        assert [k.number for k in again.active if k.kind is AlertKind.CALENDAR] == [None]
        assert again.active[AlertKey(AlertKind.CALENDAR, calendar="606309")].since == T0

    asyncio.run(go())


def test_email_alert_is_sent_over_smtp(smtp) -> None:
    port, messages = smtp

    async def go() -> None:
        alerts = Alerts(settings(notify=[f"mailto://127.0.0.1:{port}?from=forwardd@example.com&to=ops@example.com"
                                         "&mode=insecure"]), None, Notifier())
        alerts.raise_(AlertKey(AlertKind.AUTH), "aql refused the credentials", T0)
        await alerts.drain()

    asyncio.run(go())
    assert len(messages) == 1
    assert "Subject: forwardd: aql refused the credentials" in messages[0] and "aql refused the credentials" in messages[0]
    assert "To: ops@example.com" in messages[0]


def test_a_failed_delivery_is_retried_with_backoff(webhook) -> None:
    url, received = webhook
    dead = "json://127.0.0.1:9/nobody-listens"

    async def go() -> None:
        notifier = Notifier(attempts=3, backoff_s=0.05)
        alerts = Alerts(settings(notify=[dead, url]), None, notifier)
        alerts.raise_(AlertKey(AlertKind.AUTH), "refused", T0)
        await alerts.drain()
        assert notifier.failed == 1 and notifier.delivered == 1

    asyncio.run(go())
    assert len(received) == 1  # the reachable hook got it once; only the dead one was retried


def test_old_webhook_and_email_keys_say_what_replaced_them() -> None:
    from forwardd.config import config_from_dict
    from forwardd.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        config_from_dict({"alerts": {"webhook": "http://x", "email": {"host": "x"}},
                          "numbers": [{"voipnumber": "606309", "fallback": "07700 900001"}]}, env={})
    found = dict(info.value.problems)
    assert "json://" in found["alerts.webhook"] and "mailto://" in found["alerts.email"]
    with pytest.raises(ConfigError, match="not a notification URL"):
        config_from_dict({"alerts": {"notify": ["nonsense://x"]},
                          "numbers": [{"voipnumber": "606309", "fallback": "07700 900001"}]}, env={})


def _reconcile(fake: FakeAqlServer, alerts: Alerts, now: dt.datetime, password: str = PASSWORD):
    program = Program("07700900001", True)
    plan = NumberPlan("606309", [], [Change(T0, T0, program, False)])

    async def go():  # noqa: ANN202
        async with AqlClient(fake.url, "acme", password) as c:
            rec = make_reconciler(c, alerts, clock=VirtualClock(now), attempts_per_pass=2)
            return await rec.reconcile(plan)

    return asyncio.run(go())


def test_auth_error_alerts_and_recovers(account: Account) -> None:
    alerts = Alerts(settings(), None, Notifier())
    with FakeAqlServer(account) as fake:
        out = _reconcile(fake, alerts, T0, password="not-it")
        assert not out.ok and "credentials" in (out.error or "")
        assert alerts.sent[-1]["key"] == AlertKey(AlertKind.AUTH)
        assert _reconcile(fake, alerts, T0 + dt.timedelta(hours=2)).ok
    assert [a["kind"] for a in alerts.sent] == ["alert", "recovery"]


def test_change_not_confirmed_by_apply_by_alerts(account: Account) -> None:
    alerts = Alerts(settings(), None, Notifier())
    with FakeAqlServer(account) as fake:
        fake.add_fault("http5xx", count=10)
        out = _reconcile(fake, alerts, T0 + dt.timedelta(seconds=1))  # apply_by was T0
    assert not out.ok and "HTTP 503" in (out.error or "")
    assert alerts.sent[-1]["key"] == AlertKey(AlertKind.LATE, "606309") and "not confirmed by" in alerts.sent[-1]["message"]


def test_rejection_is_surfaced_with_aqls_message(account: Account) -> None:
    alerts = Alerts(settings(), None, Notifier())
    with FakeAqlServer(account) as fake:
        fake.add_fault("err", message="Number suspended", action="getuser")
        out = _reconcile(fake, alerts, T0)
    assert not out.ok and "Number suspended" in (out.error or "")
    assert "Number suspended" in alerts.sent[-1]["message"]

