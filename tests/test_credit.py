"""The credit watch: each line's credit from the reads forwardd makes anyway, the days it lasts at this
week's rate, one alert when it runs low and one recovery when topped up, the gauge, the page, and a
restart that remembers. The daemon's own engine runs on virtual time against the simulated account
(the fake server's model), whose credit the test lowers hour by hour as calls would."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from forwardd.aql.account import Account
from forwardd.aql.simulated import SIMULATED_CREDENTIAL
from forwardd.clock import VirtualClock
from forwardd.config import config_from_dict
from forwardd.core.carrier import LineState, Reading
from forwardd.core.credit import CreditPoint, add_point, credit_words, estimate, parse_credit
from forwardd.core.provider import OFF
from forwardd.errors import ConfigError
from forwardd.notify.alerts import Alerts
from forwardd.notify.notifier import Notifier
from forwardd.service.credit import CreditWatch
from forwardd.service.engine import Engine
from forwardd.service.metrics import Metrics
from forwardd.service.services import Services
from forwardd.web.app import App
from forwardd.web.status import status_view

from .conftest import UTC

T0 = dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
H = dt.timedelta(hours=1)


def hours(n: float) -> dt.datetime:
    return T0 + n * H


# ------------------------------------------------------------------------------------------ pure


def test_credit_text_is_read_as_an_amount_or_refused() -> None:
    assert parse_credit("3.42") == Decimal("3.42") and parse_credit(" 10 ") == Decimal(10)
    assert parse_credit("-0.50") == Decimal("-0.50") and parse_credit("£1.5") == Decimal("1.5")
    for bad in ("", "n/a", "NaN", "Infinity", "1e3", "3.42 GBP", "1,000.00"):
        with pytest.raises(ValueError):
            parse_credit(bad)


def test_days_left_is_the_weeks_spend_rate_and_a_top_up_spends_nothing() -> None:
    points: tuple[CreditPoint, ...] = ()
    for h in range(49):  # 0.10 an hour for two days: 2.40 a day
        points = add_point(points, CreditPoint(hours(h), Decimal("10.00") - Decimal("0.10") * h))
    est = estimate(points, hours(48))
    assert est is not None and est.per_day == Decimal("2.4") and est.days_left == pytest.approx(5.2 / 2.4)
    topped = add_point(points, CreditPoint(hours(49), Decimal("50.00")))
    est = estimate(topped, hours(49))
    assert est is not None and est.per_day == pytest.approx(Decimal("2.4") * 48 / 49, abs=Decimal("0.001"))
    assert est.days_left == pytest.approx(50 / float(est.per_day))
    # less than a day of readings says nothing yet; nothing spent says so
    assert estimate(points[:3], hours(20)) is None
    quiet = add_point(add_point((), CreditPoint(T0, Decimal(5))), CreditPoint(hours(30), Decimal(5)))
    est = estimate(quiet, hours(30))
    assert est is not None and est.days_left is None and est.per_day == 0
    with pytest.raises(ValueError):
        estimate(points, dt.datetime(2026, 12, 3))


def test_readings_are_kept_compactly_and_only_for_the_week() -> None:
    """A line read every 10 minutes for 30 days, spending all the while, keeps a few dozen points, and
    its estimate is the one all the readings give."""
    points: tuple[CreditPoint, ...] = ()
    amount = Decimal("500.00")
    for i in range(30 * 144):
        if i % 3 == 0:
            amount -= Decimal("0.05")
        points = add_point(points, CreditPoint(T0 + i * dt.timedelta(minutes=10), amount))
    now = points[-1].at
    assert len(points) <= 7 * 4 + 2 and points[0].at <= now - dt.timedelta(days=7) < points[1].at
    est = estimate(points, now)
    assert est is not None and float(est.per_day) == pytest.approx(0.05 * 48, rel=0.01)


def test_credit_in_words() -> None:
    watch = _watch({"alerts": {"credit_below": "2.00"}})
    assert credit_words(None) == "credit not read yet"
    for h in range(30):
        watch.observe("606309", _reading(f"{Decimal('4.00') - Decimal('0.05') * h:.2f}"), hours(h))
    assert watch.in_words("606309", hours(29)) == "credit 2.55, about 2 days left at this week's rate"
    assert watch.in_words("606309", hours(30), live="1.50") == \
        "credit 1.50, below 2.00, less than a day left at this week's rate"
    assert watch.in_words("606309", hours(30), live="n/a") == "credit unreadable ('n/a')"
    doc = watch.as_json("606309", hours(29))
    assert doc is not None and (doc["credit"], doc["days_left"], doc["per_day"], doc["low"]) == ("2.55", 2.1, "1.20",
                                                                                                   False)


# ---------------------------------------------------------------------------------- the watch alone


def _cfg(extra: dict[str, Any] | None = None, tmp_path: Path | None = None):  # noqa: ANN202
    data: dict[str, Any] = {"numbers": [{"voipnumber": "606309", "name": "Support line", "fallback": "07700900001"},
                                        {"voipnumber": "606310", "fallback": "07700900001"}],
                            "daemon": {"drift_check_every": "1h"}, **(extra or {})}
    if tmp_path is not None:
        data["state_dir"] = str(tmp_path / "state")
    return config_from_dict(data, env={})


def _watch(extra: dict[str, Any] | None = None) -> CreditWatch:
    cfg = _cfg(extra)
    return CreditWatch(cfg, None, Alerts(cfg.alerts, None, Notifier()), None)


def _reading(credit: str | None) -> Reading:
    return Reading(LineState(OFF), {}, credit)


def test_running_out_soon_alerts_once_and_recovers_only_with_room_to_spare() -> None:
    watch = _watch({"alerts": {"credit_below": "0", "credit_days": 3, "repeat_after": "30d"}})
    assert watch.alerts is not None
    credit = Decimal("20.00")
    for h in range(100):  # 0.20 an hour, 4.80 a day: under 3 days left from 14.40 (hour 28)
        credit -= Decimal("0.20")
        watch.observe("606309", _reading(f"{credit:.2f}"), hours(h))
    kinds = [(a["kind"], a["key"].text()) for a in watch.alerts.sent]
    assert kinds == [("alert", "credit:606309")]
    assert watch.alerts.sent[0]["message"] == (
        "Support line (606309): its credit of 14.20 lasts 2.9 days at this week's rate of 4.80 a day. Calls stop "
        "being forwarded when it runs out: top it up in aql's portal")
    # a top-up that buys only a little more than credit_days keeps it standing; a real one clears it
    watch.observe("606309", _reading("15.00"), hours(100))  # about 3.1 days at 4.8 a day
    assert [a["kind"] for a in watch.alerts.sent] == ["alert"]
    watch.observe("606309", _reading("40.00"), hours(101))
    assert [a["kind"] for a in watch.alerts.sent] == ["alert", "recovery"]


def test_a_credit_that_cannot_be_read_is_reported_never_a_crash() -> None:
    watch = _watch()
    assert watch.alerts is not None
    watch.observe("606309", _reading("<b>n/a</b>\x1b[2J"), T0)
    watch.observe("606310", _reading(None), T0)  # a carrier that says nothing of credit: nothing to watch
    st = watch.state("606309")
    assert st is not None and st.amount is None and st.attention and watch.state("606310") is None
    (sent,) = watch.alerts.sent
    assert sent["key"].detail == "unreadable" and "\x1b" not in sent["message"]
    assert "Support line (606309): aql gave its credit as '<b>n/a</b>?[2J'" in sent["message"]
    watch.observe("606309", _reading("5.00"), T0 + H)
    assert [a["kind"] for a in watch.alerts.sent] == ["alert", "recovery"]


def test_config_keys_are_checked_at_their_path() -> None:
    cfg = _cfg()
    assert cfg.alerts.credit_below == Decimal("2.00") and cfg.alerts.credit_days == 3
    assert _cfg({"alerts": {"credit_below": 5, "credit_days": 0}}).alerts.credit_below == Decimal(5)
    with pytest.raises(ConfigError) as err:
        _cfg({"alerts": {"credit_below": "two pounds", "credit_days": -1}})
    text = str(err.value)
    assert "At 'alerts.credit_below': 'two pounds' is not an amount such as '2.00'" in text
    assert "At 'alerts.credit_days'" in text


# ------------------------------------------------------------------- the daemon's engine, virtual time


def test_the_daemon_watches_credit_falling_alerts_once_below_and_recovers_when_topped_up(tmp_path: Path) -> None:
    """The simulated account's credit falls 0.10 an hour from 5.00; it is topped up to 20.00 at hour 34.
    Reads are the hourly drift checks only. One alert when it falls below 2.00, one recovery after the
    top-up; the days-left estimate on the page and the gauge on /metrics; a restart remembers."""
    cfg = _cfg({"alerts": {"credit_below": "2.00", "credit_days": 0, "repeat_after": "30d"}}, tmp_path)

    async def go() -> dict[str, Any]:
        clock = VirtualClock(T0, driven=True)
        account = Account.with_numbers(SIMULATED_CREDENTIAL, SIMULATED_CREDENTIAL, ["606309", "606310"], clock=clock.now)
        account.set_credit("606309", "5.00")
        account.set_credit("606310", "9.99")
        sv = await Services.open(cfg, aql=True, exclusive=True, journal="write", clock=clock,
                                 simulated_account=account)
        metrics = Metrics(clock)
        engine = Engine(sv, clock, metrics=metrics)
        seen: dict[str, Any] = {}
        try:
            await engine.start()
            for h in range(1, 41):
                await clock.run_until(hours(h))
                credit = Decimal("20.00") if h == 34 else Decimal(account.users["606309"]["credit"]) - Decimal("0.10")
                account.set_credit("606309", f"{credit:.2f}")
                if h == 30:
                    seen["snap"] = engine.publish()
                    seen["metrics"] = metrics.text().decode()
            await clock.run_until(hours(41))
            seen["after"] = engine.publish()
            await engine.stop()
        finally:
            await sv.close()
        again = await Services.open(cfg, journal="read", clock=VirtualClock(hours(42)))
        try:
            assert again.credit is not None and again.journal is not None
            seen["restarted"] = again.credit.state("606309")
            seen["entries"] = again.journal.entries()
        finally:
            await again.close()
        return seen

    seen = asyncio.run(go())
    entries = seen["entries"]
    credit_alerts = [(e["kind"], e["at"]) for e in entries if e.get("alert") == "credit"]
    assert [k for k, _ in credit_alerts] == ["alert", "recovery"], credit_alerts
    readings = {e["at"]: e["credit"] for e in entries if e["kind"] == "credit" and e["voipnumber"] == "606309"}
    # the journal keeps changes, not reads: one entry per new value (about one an hour here), none for 606310's
    assert len(readings) <= 42 and [e for e in entries if e["kind"] == "credit" and e["voipnumber"] == "606310"] \
        and len([e for e in entries if e["kind"] == "credit" and e["voipnumber"] == "606310"]) == 1
    alert_at = dt.datetime.fromisoformat(credit_alerts[0][1])
    recovery_at = dt.datetime.fromisoformat(credit_alerts[1][1])
    assert hours(30) < alert_at <= hours(32)  # the first read after the credit fell below 2.00 (at hour 31)
    assert hours(34) < recovery_at <= hours(35)
    alert = next(e for e in entries if e.get("alert") == "credit" and e["kind"] == "alert")
    assert alert["message"].startswith("Support line (606309): its credit is 1.9") and "below 2.00" in alert["message"]
    # the week's rate, 2.40 a day, and the days it leaves, on the page beside the line and as a gauge
    snap = seen["snap"]
    state = snap.credit["606309"]
    assert state.estimate is not None and float(state.estimate.per_day) == pytest.approx(2.4, abs=0.15)
    assert state.days_left == pytest.approx(float(state.amount) / 2.4, abs=0.15)
    row = next(r for r in status_view(snap).rows if r.voipnumber == "606309")
    assert state.amount == Decimal("2.10") and state.days_left is not None and 0.8 < state.days_left < 1
    assert row.credit == "credit 2.10, less than a day left at this week's rate" and not row.credit_low
    metrics = seen["metrics"]
    assert f'forwardd_credit{{voipnumber="606309"}} {float(state.amount)}' in metrics
    assert 'forwardd_credit{voipnumber="606310"} 9.99' in metrics and "forwardd_credit_days_left{" in metrics
    body = _page(seen["after"], "/status")
    assert b'data-credit-low="false">credit 19.4' in body or b"credit 19.4" in body
    # a restart remembers each line's credit and its week
    restarted = seen["restarted"]
    assert restarted is not None and restarted.amount == Decimal("19.40") and restarted.estimate is not None


def _page(snap: Any, path: str) -> bytes:
    app = App(lambda: snap)
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"] = status

    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "HTTP_HOST": "127.0.0.1",
                         "wsgi.input": io.BytesIO()}, start_response))
    assert got["status"].startswith("200"), got
    return body


def test_the_fake_server_sets_a_numbers_credit(tmp_path: Path) -> None:
    import urllib.request

    from forwardd.aql.fake import FakeAqlServer

    account = Account.with_numbers("acme", "pw", ["606309"])
    with FakeAqlServer(account) as srv:
        base = srv.url.rsplit("/", 2)[0]
        req = urllib.request.Request(f"{base}/_fake/credit", data=json.dumps({"voipnumber": "606309", "credit": "0.42"})
                                     .encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).close()
        form = "username=acme&password=pw&action=getuser&voipnumber=606309"
        with urllib.request.urlopen(urllib.request.Request(srv.url, data=form.encode()), timeout=5) as r:
            assert "credit:0.42" in r.read().decode()
    assert account.history == []  # not a change of the number's settings
