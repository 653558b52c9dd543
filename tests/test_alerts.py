"""Alerts to a real webhook and a real (minimal) SMTP server on 127.0.0.1; rate limits; recoveries;
and the reconciler raising them for auth errors, rejections and lateness."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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

from .conftest import PASSWORD, UTC, make_reconciler

T0 = dt.datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
def webhook():
    received: list[dict] = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", received
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def smtp():
    """Just enough SMTP to take one message per connection."""
    messages: list[str] = []

    class H(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"220 localhost ESMTP\r\n")
            data_mode, body = False, []
            for raw in self.rfile:
                line = raw.decode().rstrip("\r\n")
                if data_mode:
                    if line == ".":
                        data_mode = False
                        messages.append("\n".join(body))
                        self.wfile.write(b"250 OK\r\n")
                    else:
                        body.append(line)
                    continue
                cmd = line[:4].upper()
                if cmd == "EHLO" or cmd == "HELO":
                    self.wfile.write(b"250 localhost\r\n")
                elif cmd == "DATA":
                    data_mode = True
                    self.wfile.write(b"354 go ahead\r\n")
                elif cmd == "QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"250 OK\r\n")

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], messages
    srv.shutdown()
    srv.server_close()


def settings(**kw: object) -> AlertSettings:
    return AlertSettings.model_validate(kw)


def test_webhook_gets_json_and_repeats_are_rate_limited_and_recovery_announced_once(webhook) -> None:
    url, received = webhook

    async def go() -> None:
        alerts = Alerts(settings(webhook=url, repeat_after="1h"), None)
        alerts.raise_("late:606309", "606309: not confirmed", T0, "606309")
        alerts.raise_("late:606309", "606309: not confirmed", T0 + dt.timedelta(minutes=5), "606309")
        alerts.raise_("late:606309", "606309: not confirmed", T0 + dt.timedelta(minutes=61), "606309")
        alerts.clear("late:606309", T0 + dt.timedelta(minutes=62))
        alerts.clear("late:606309", T0 + dt.timedelta(minutes=63))
        await alerts.drain()

    asyncio.run(go())
    kinds = [r["kind"] for r in received]
    assert kinds == ["alert", "alert", "recovery"]
    assert received[0]["key"] == "late:606309" and received[0]["voipnumber"] == "606309"
    assert received[0]["source"] == "forwardd"


def test_email_alert_is_sent_over_smtp(smtp) -> None:
    port, messages = smtp

    async def go() -> None:
        alerts = Alerts(settings(email={"host": "127.0.0.1", "port": port, "from": "forwardd@example.com",
                                        "to": ["ops@example.com"]}), None)
        alerts.raise_("auth", "aql refused the credentials", T0)
        await alerts.drain()

    asyncio.run(go())
    assert len(messages) == 1
    assert "Subject: forwardd alert: auth" in messages[0] and "aql refused the credentials" in messages[0]


def _reconcile(fake: FakeAqlServer, alerts: Alerts, now: dt.datetime, password: str = PASSWORD):
    program = Program("07700900001", True)
    plan = NumberPlan("606309", [], [Change(T0, T0, program, False)])

    async def go():  # noqa: ANN202
        async with AqlClient(fake.url, "acme", password) as c:
            rec = make_reconciler(c, alerts, clock=VirtualClock(now), attempts_per_pass=2)
            return await rec.reconcile(plan)

    return asyncio.run(go())


def test_auth_error_alerts_and_recovers(account: Account) -> None:
    alerts = Alerts(settings(), None)
    with FakeAqlServer(account) as fake:
        out = _reconcile(fake, alerts, T0, password="not-it")
        assert not out.ok and "credentials" in (out.error or "")
        assert alerts.sent[-1]["key"] == "auth"
        assert _reconcile(fake, alerts, T0 + dt.timedelta(hours=2)).ok
    assert [a["kind"] for a in alerts.sent] == ["alert", "recovery"]


def test_change_not_confirmed_by_apply_by_alerts(account: Account) -> None:
    alerts = Alerts(settings(), None)
    with FakeAqlServer(account) as fake:
        fake.add_fault("http5xx", count=10)
        out = _reconcile(fake, alerts, T0 + dt.timedelta(seconds=1))  # apply_by was T0
    assert not out.ok and "HTTP 503" in (out.error or "")
    assert alerts.sent[-1]["key"] == "late:606309" and "not confirmed by" in alerts.sent[-1]["message"]


def test_rejection_is_surfaced_with_aqls_message(account: Account) -> None:
    alerts = Alerts(settings(), None)
    with FakeAqlServer(account) as fake:
        fake.add_fault("err", message="Number suspended", action="getuser")
        out = _reconcile(fake, alerts, T0)
    assert not out.ok and "Number suspended" in (out.error or "")
    assert "Number suspended" in alerts.sent[-1]["message"]

