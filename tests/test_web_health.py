"""Health that tells the truth: a failing calendar or a standing alert is "degraded" (HTTP 200, the
reason first, in the warning colour), a calendar past its max_age is "unhealthy" (503), start-up is
"starting" (503) with how far it has got, and each account's drift checks say when the request cap
slows them. Through the WSGI app, as a request sees it."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from forwardd.notify.keys import AlertKey, AlertKind, Standing
from forwardd.web.app import App
from forwardd.web.snapshot import AccountState, Starting
from forwardd.web.views import health

from .test_web import _snapshot, _sources, call, config, london

NOW = london(2026, 12, 1, 20)
FEED_IS_HTML = "the feed answered text/html (a login page?), not a calendar"


def _failing(tmp_path: Path, good_for: dt.timedelta) -> dict[str, object]:
    """The rota's feed fails (its HTML replaced the calendar); its last good copy is ``good_for`` old."""
    return {"sources": _sources(config(tmp_path), NOW, rota={"error": FEED_IS_HTML, "good_at": NOW - good_for})}


def _headline(body: bytes) -> tuple[str, str]:
    """The /status headline's state and its words."""
    html = body.decode()
    state = re.search(r'<section class="health (\w+)"', html)
    words = re.search(r"<h2>(.*?)</h2>", html[html.index('class="health'):], re.S)
    assert state and words
    return state.group(1), words.group(1)


def test_a_failing_calendar_within_its_max_age_is_degraded_with_the_reason_first(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path, **_failing(tmp_path, dt.timedelta(minutes=20)))
    h = health(snap)
    assert h.status == "degraded" and h.ok  # the calls still go where they should: 200
    assert h.reasons == (f"calendar rota: failing ({FEED_IS_HTML}); its last good copy, 20m00s old, is used until "
                         "it is older than its max_age 2d0h",)
    app = App(lambda: snap)
    status, _, body = call(app, "/healthz")
    doc = json.loads(body)
    assert (status, doc["status"], doc["ok"], doc["reasons"]) == (200, "degraded", True, list(h.reasons))
    state, words = _headline(call(app, "/status")[2])
    assert state == "degraded" and words.startswith("Degraded: calendar rota: failing (")
    assert "Healthy" not in words and "calendars fresh" not in call(app, "/status")[2].decode()
    # the failing calendar is not shown in green
    row = re.search(r'<tr data-calendar="rota"[^>]*data-level="(\w+)">.*?<span class="state (\w+)">([^<]*)<',
                    call(app, "/status")[2].decode(), re.S)
    assert row and row.groups() == ("warn", "warn", "failing, last good copy in use")


def test_a_calendar_failing_past_its_max_age_is_unhealthy_and_503(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path, **_failing(tmp_path, dt.timedelta(days=3)))
    status, _, body = call(App(lambda: snap), "/healthz")
    doc = json.loads(body)
    assert (status, doc["status"], doc["ok"]) == (503, "unhealthy", False)
    assert doc["reasons"] == [f"calendar rota: the last good copy is 3d0h old, older than its max_age 2d0h "
                              f"({FEED_IS_HTML})"]
    assert _headline(call(App(lambda: snap), "/status")[2])[0] == "unhealthy"


def test_a_standing_alert_is_degraded(tmp_path: Path) -> None:
    key = AlertKey(AlertKind.GAP, detail="Fri 04 Dec")
    snap = _snapshot(tmp_path, alerts={key: Standing(key, "nobody is on call Fri 04 Dec 00:00-24:00", NOW, NOW)})
    status, _, body = call(App(lambda: snap), "/healthz")
    doc = json.loads(body)
    assert (status, doc["status"], doc["reasons"]) == (200, "degraded",
                                                       ["alert: nobody is on call Fri 04 Dec 00:00-24:00"])
    state, words = _headline(call(App(lambda: snap), "/status")[2])
    assert (state, words) == ("degraded", "Degraded: alert: nobody is on call Fri 04 Dec 00:00-24:00")
    assert json.loads(call(App(lambda: _snapshot(tmp_path)), "/healthz")[2])["status"] == "ok"


def test_start_up_is_a_state_healthz_reports_with_how_far_it_has_got(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path, starting=Starting(3200, 10000), unconfirmed=frozenset({"606310"}))
    status, _, body = call(App(lambda: snap), "/healthz")
    doc = json.loads(body)
    assert (status, doc["status"], doc["ok"]) == (503, "starting", False)
    assert doc["reasons"] == ["starting: 3,200 of 10,000 numbers confirmed"]  # lines not yet confirmed: counted
    assert doc["starting"] == {"confirmed": 3200, "total": 10000}
    state, words = _headline(call(App(lambda: snap), "/status")[2])
    assert (state, words) == ("starting", "Starting: starting: 3,200 of 10,000 numbers confirmed")


def test_many_lines_with_one_problem_are_counted_not_listed(tmp_path: Path) -> None:
    from forwardd.config import config_from_dict
    from forwardd.web.snapshot import Snapshot

    from .test_web import plan_of, week_rota

    (tmp_path / "rota.ics").write_text("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n")
    cfg = config_from_dict({"people": {"alice": "07700900001", "bob": "07700900002", "carol": "07700900003"},
                            "calendars": {"rota": {"source": str(tmp_path / "rota.ics")}},
                            "numbers": [{"voipnumber": str(700000 + i), "rota": "rota", "fallback": "none"}
                                        for i in range(40)]}, base_dir=tmp_path)
    plan = plan_of(cfg, london(2026, 11, 30), 7, week_rota())
    h = health(Snapshot(cfg, NOW, plan))  # nothing confirmed
    assert h.status == "unhealthy" and len(h.reasons) == 6
    assert h.reasons[0] == "700000: not confirmed: the account has not been read back holding the program for now"
    assert h.reasons[-1] == "35 more lines: not confirmed: the account has not been read back holding the program " \
                            "for now"


def test_each_accounts_effective_drift_check_is_shown_where_the_cap_slows_it(tmp_path: Path) -> None:
    accounts = (AccountState("north", 8000, dt.timedelta(hours=1), dt.timedelta(hours=3, minutes=20)),
                AccountState("south", 2000, dt.timedelta(hours=1), dt.timedelta(hours=1), problem="password refused"))
    snap = _snapshot(tmp_path, accounts=accounts)
    html = call(App(lambda: snap), "/status")[2].decode()
    north = re.search(r'<tr data-account="north" data-slowed="true">(.*?)</tr>', html, re.S)
    assert north and "every 3h20m (configured: every 1h; the request cap allows no more)" in north.group(1)
    assert "8,000 lines" in north.group(1)
    south = re.search(r'<tr data-account="south">(.*?)</tr>', html, re.S)
    assert south and "every 1h<" in south.group(1) and "password refused" in south.group(1)
    doc = json.loads(call(App(lambda: snap), "/healthz")[2])
    assert doc["accounts"][0] == {"name": "north", "numbers": 8000, "drift_check_every_s": 3600,
                                  "drift_check_effective_s": 12000, "problem": None,
                                  "drift_check": "every 3h20m (configured: every 1h; the request cap allows no more)"}
    assert doc["status"] == "degraded" and doc["reasons"] == ["account south: password refused"]
