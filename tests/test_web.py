"""The page: its view models (pure), the WSGI app, and the page in a real browser.

The browser tests open what a running ``forwardd run`` serves (against the fake aql server, both as
processes) and the file ``forwardd plan --html`` writes, in Debian's chromium driven by Playwright
(``executable_path``: nothing downloads a browser). Without chromium or Playwright they skip, except
under CI=true, where they fail. Each view leaves a screenshot in the test's temporary folder.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from forwardd.calendars.sources import SourceState
from forwardd.config import Config, config_from_dict
from forwardd.core.plan import CalendarEvents, Plan, Planner
from forwardd.core.timeline import Event
from forwardd.notify.keys import AlertKey, AlertKind, Standing
from forwardd.service.lines import line_specs
from forwardd.web.app import App
from forwardd.web.render import plan_page
from forwardd.web.views import (
    Names,
    Snapshot,
    health,
    history_view,
    status_view,
    week_count,
    week_view,
)

from .conftest import LONDON, ROOT, UTC, run_cli
from .e2e import PASSWORD, FakeProc, start_daemon, stop, wait_for

A, B, C = "07700900001", "07700900002", "07700900003"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"

# ------------------------------------------------------------------------------------ helpers


def london(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


def ev(a: dt.datetime, b: dt.datetime, summary: str, calendar: str = "rota", uid: str = "") -> Event:
    return Event(a.astimezone(UTC), b.astimezone(UTC), summary, uid=uid or f"{summary}-{a.isoformat()}",
                 calendar=calendar)


def config(tmp_path: Path, **numbers_extra: Any) -> Config:
    """Two lines on one rota: Support (round the clock, no fallback) and Sales (office hours, holidays)."""
    for name in ("rota.ics", "closures.ics"):
        (tmp_path / name).write_text("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n")
    return config_from_dict({
        "people": {"alice": A, "bob": B, "carol": C},
        "calendars": {"rota": {"source": "rota.ics"}, "closures": {"source": "closures.ics"}},
        "numbers": [
            {"voipnumber": "606309", "name": "Support line", "rota": "rota", "fallback": "none"},
            {"voipnumber": "606310", "name": "Sales line", "rota": "rota", "holidays": ["closures"],
             "office_hours": ["Mon-Fri 09:00-17:30"], "fallback": "none", **numbers_extra},
        ],
    }, base_dir=tmp_path)


def plan_of(cfg: Config, start: dt.datetime, days: int, rota: list[Event], closures: list[Event] = ()) -> Plan:
    cals = {"rota": CalendarEvents("rota", "1", tuple(sorted(rota, key=lambda e: e.start))),
            "closures": CalendarEvents("closures", "1", tuple(closures))}
    return Planner(line_specs(cfg), cfg.tz).plan(cals, start.astimezone(UTC), (start + dt.timedelta(days=days)).astimezone(UTC))


MON = london(2026, 11, 30)  # a Monday, GMT all week


def week_rota() -> list[Event]:
    """Alice until Wed 12:00, then Bob until Fri 00:00 (an exact hand-over where nothing else takes the
    calls), nobody Fri (a gap), Carol from Sat; and an event naming nobody, titled with a script."""
    return [ev(MON - dt.timedelta(days=3), london(2026, 12, 2, 12), "On call: Alice"),
            ev(london(2026, 12, 2, 12), london(2026, 12, 4), "On call: Bob"),
            ev(london(2026, 12, 5), london(2026, 12, 14), "On call: Carol"),
            ev(london(2026, 12, 6, 10), london(2026, 12, 6, 11), SCRIPT)]


# ------------------------------------------------------------------------------- view models


def test_week_view_has_a_lane_per_number_with_people_by_name_gaps_and_exact_handovers(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    plan = plan_of(cfg, MON, 14, week_rota())
    v = week_view(cfg, plan, 0)
    assert [(la.voipnumber, la.name) for la in v.lanes] == [("606309", "Support line"), ("606310", "Sales line")]
    assert [d.label for d in v.days] == ["Mon 30 Nov", "Tue 01 Dec", "Wed 02 Dec", "Thu 03 Dec", "Fri 04 Dec",
                                         "Sat 05 Dec", "Sun 06 Dec"]
    support = v.lanes[0]
    # a block per person per day: each day's column carries its own label
    assert [(b.day, b.name, b.number, b.kind) for b in support.blocks] == [
        (0, "Alice", A, "rota"), (1, "Alice", A, "rota"), (2, "Alice", A, "rota"), (2, "Bob", B, "rota"),
        (3, "Bob", B, "rota"), (4, "GAP", None, "gap"), (5, "Carol", C, "rota"), (6, "Carol", C, "rota")]
    mon, _, wed_alice, wed_bob, _, gap, _, sun = support.blocks
    # placed by the share of the week: Wed 12:00 is two and a half days in
    assert (mon.left, mon.width) == (0.0, pytest.approx(100 / 7, abs=1e-3))
    assert (wed_alice.left, wed_alice.width) == (pytest.approx(200 / 7, abs=1e-3), pytest.approx(50 / 7, abs=1e-3))
    assert wed_bob.left == pytest.approx(250 / 7, abs=1e-3) and wed_bob.exact and wed_bob.times == "12:00–24:00"
    assert (mon.cont_before, mon.cont_after, wed_alice.cont_before, wed_alice.cont_after) == (False, True, True, False)
    assert sun.cont_after and mon.span == "Mon 30 Nov 00:00 - Wed 02 Dec 12:00"  # Carol goes on next week
    assert gap.tag == "nobody on call" and gap.css == "gap"
    assert [(h.time, h.exact, h.before, h.after) for h in support.handovers] == [
        ("12:00", True, f"Alice ({A})", f"Bob ({B})"), ("00:00", False, f"Bob ({B})", "nobody (gap)"),
        ("00:00", False, "nobody (gap)", f"Carol ({C})")]
    assert (support.exact, support.gaps) == (1, 1)
    # behind office hours, the Sales line's change of person never needs an exact hand-over
    sales = v.lanes[1]
    assert sales.exact == 0 and {b.name for b in sales.blocks} >= {"office hours", "Alice", "Bob", "GAP", "Carol"}
    assert all(b.name == "office hours" and b.css == "office" for b in sales.blocks if b.kind == "office_hours")
    assert (v.exact, v.gaps) == (1, 3)  # the Sales line's gap on Friday is cut in two by office hours
    assert [p.name for p in v.people] == ["Alice", "Bob", "Carol"]
    # each person keeps one colour on every lane
    colours = {(b.name, b.css) for la in v.lanes for b in la.blocks if b.number}
    assert len({n for n, _ in colours}) == len(colours)


def test_one_number_view_cuts_the_week_into_days_and_words(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    plan = plan_of(cfg, MON, 7, week_rota())
    v = week_view(cfg, plan, 0, now=london(2026, 12, 2, 15), number="606309")
    (lane,) = v.lanes
    assert lane.one and v.days[2].today
    wed = [b for b in lane.blocks if b.day == 2]
    assert [(b.times, b.name, b.number, b.exact, b.now) for b in wed] == [
        ("00:00–12:00", "Alice", A, False, False), ("12:00–24:00", "Bob", B, True, True)]
    assert [(h.time, h.exact, h.left) for h in lane.handovers][0] == ("12:00", True, pytest.approx(250 / 7, abs=1e-3))
    fri = [b for b in lane.blocks if b.day == 4]
    assert [(b.times, b.kind, b.tag) for b in fri] == [("00:00–24:00", "gap", "nobody on call")]
    assert lane.now == pytest.approx(100 * (2 + 15 / 24) / 7, abs=1e-3)
    with pytest.raises(KeyError):
        week_view(cfg, plan, 0, number="699999")


def test_week_view_places_daylight_saving_days_by_their_own_length(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    start = london(2026, 10, 19)  # Mon; clocks go back on Sun 25 Oct: a 25-hour day
    rota = [ev(start, london(2026, 10, 25, 12), "On call: Alice"),
            ev(london(2026, 10, 25, 12), start + dt.timedelta(days=8), "On call: Bob")]
    v = week_view(cfg, plan_of(cfg, start, 7, rota), 0, number="606309")
    assert v.days[6].hours == 25
    sunday = [b for b in v.lanes[0].blocks if b.day == 6]
    # 00:00-12:00 BST..GMT is 13 real hours of 25
    assert [(b.name, b.times, b.width) for b in sunday] == [("Alice", "00:00–12:00", pytest.approx(100 * 13 / 25 / 7, abs=1e-3)),
                                                            ("Bob", "12:00–24:00", pytest.approx(100 * 12 / 25 / 7, abs=1e-3))]
    assert v.lanes[0].handovers[0].time == "12:00"
    assert v.lanes[0].handovers[0].left == pytest.approx(100 * (6 + 13 / 25) / 7, abs=1e-3)
    assert v.zone == "Europe/London (BST, then GMT)"


def test_weeks_page_the_horizon_and_unplanned_hours_are_marked(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    plan = plan_of(cfg, MON + dt.timedelta(hours=10), 14, week_rota())
    assert week_count(plan, cfg.tz) == 3  # the 14 days from Mon 10:00 end on the third Monday
    first = week_view(cfg, plan, 0).lanes[0].blocks[0]
    assert (first.kind, first.left, first.width) == ("unplanned", 0.0, pytest.approx(100 * 10 / 24 / 7, abs=1e-3))
    last = week_view(cfg, plan, 2).lanes[0].blocks
    after = [b for b in last if b.kind == "unplanned"]
    assert [b.day for b in after] == [0, 1, 2, 3, 4, 5, 6] and after[0].times == "10:00–24:00"
    assert after[0].left == pytest.approx(100 * (10 / 24) / 7, abs=1e-3)
    with pytest.raises(ValueError, match="week 3 is outside the plan"):
        week_view(cfg, plan, 3)


def test_holidays_and_office_hours_carry_their_reason(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    closure = ev(london(2026, 12, 1, 13), london(2026, 12, 1, 17, 30), IMG, calendar="closures")
    plan = plan_of(cfg, MON, 7, week_rota(), [closure])
    tue = [b for b in week_view(cfg, plan, 0, number="606310").lanes[0].blocks if b.day == 1]
    office, hol = [b for b in tue if b.kind == "office_hours"], [b for b in tue if b.holiday]
    assert [b.name for b in office] == ["office hours"]
    (h,) = hol
    assert (h.name, h.number, h.tag) == ("Alice", A, f"holiday: {IMG}")


def test_names_put_people_beside_their_numbers(tmp_path: Path) -> None:
    names = Names(config(tmp_path))
    assert names.who(A) == f"Alice ({A})" and names.who("447700900002") == "Bob (447700900002)"
    assert names.who("07700900777") == "07700900777" and names.who(None) == "not forwarded"
    assert names.fields({"forwardto": A, "forwardactive": "1", "forwardstart": "17:30:00",
                         "forwardend": "23:59:59"}) == f"Alice ({A}) 17:30:00-23:59:59"
    assert names.fields({"forwardactive": "0", "forwardstart": "00:00:00", "forwardend": "23:59:59"}) == \
        "no forwarding"
    assert names.fields({"forwardto": C}) == f"forwardto=Carol ({C})"
    assert names.text(f"{B} all day") == f"Bob ({B}) all day"


class FakeJournal:
    def __init__(self, entries: list[dict[str, Any]], problem: str | None = None) -> None:
        self._entries = entries
        self.problem = problem
        self.asked: list[dict[str, Any]] = []

    def entries(self, voipnumber: str | None = None, since: dt.datetime | None = None, kind: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        self.asked.append({"voipnumber": voipnumber, "limit": limit})
        rows = [e for e in self._entries if voipnumber is None or e.get("voipnumber") == voipnumber]
        return rows[-limit:] if limit else rows


def _sources(cfg: Config, now: dt.datetime, **override: dict[str, Any]) -> dict[str, SourceState]:
    out = {}
    for name, settings in cfg.calendars.items():
        st = SourceState(name, settings, copy=object(), good_at=now - dt.timedelta(minutes=5))  # type: ignore[arg-type]
        for k, v in override.get(name, {}).items():
            setattr(st, k, v)
        out[name] = st
    return out


ALICE_ALL_DAY = {"forwardto": A, "forwardactive": "1", "forwardstart": "00:00:00", "forwardend": "23:59:59",
                 "forwardcli": "1"}


def _snapshot(tmp_path: Path, **kw: Any) -> Snapshot:
    cfg = config(tmp_path)
    now = london(2026, 12, 1, 20)
    plan = plan_of(cfg, MON, 7, week_rota())
    base: dict[str, Any] = dict(confirmed={"606309": ALICE_ALL_DAY, "606310": ALICE_ALL_DAY},
                                read_at={"606309": now, "606310": now}, sources=_sources(cfg, now),
                                journal=FakeJournal([]))
    base.update(kw)
    return Snapshot(cfg, now, plan, **base)


def test_health_is_ok_only_when_every_number_is_confirmed_and_every_calendar_fresh(tmp_path: Path) -> None:
    good = health(_snapshot(tmp_path))
    assert (good.ok, good.reasons, good.numbers, good.confirmed) == (True, (), 2, 2)
    cfg = config(tmp_path)
    now = london(2026, 12, 1, 20)
    bad = health(_snapshot(
        tmp_path, unconfirmed=frozenset({"606310"}),
        alerts={AlertKey(AlertKind.DRIFT, "606309"): Standing(AlertKey(AlertKind.DRIFT, "606309"), "changed", now, now)},
        sources=_sources(cfg, now, rota={"copy": None, "error": "HTTP 404"},
                         closures={"good_at": now - dt.timedelta(days=3), "error": "timed out"}),
        journal=FakeJournal([], problem="cannot write the journal /x/journal.sqlite: disk full")))
    assert not bad.ok and bad.confirmed == 0
    assert bad.reasons == (
        "Support line (606309): the account was changed by hand (drift)",
        "Sales line (606310): not confirmed: the account has not been read back holding the program for now",
        "calendar rota: no good copy (HTTP 404)",
        "calendar closures: the last good copy is 3d0h old, older than its max_age 2d0h (timed out)",
        "journal: cannot write the journal /x/journal.sqlite: disk full")
    doc = bad.json(now)
    assert doc["ok"] is False and doc["status"] == "unhealthy" and doc["reasons"] == list(bad.reasons)
    starting = health(Snapshot(cfg, now))
    assert not starting.ok and starting.reasons == ("not planned yet (starting up)",)


def test_status_rows_say_who_has_the_calls_what_the_account_held_and_what_comes_next(tmp_path: Path) -> None:
    now = london(2026, 12, 1, 20)
    drifted = {**ALICE_ALL_DAY, "forwardto": "07700900777"}
    journal = FakeJournal([
        {"kind": "readback", "voipnumber": "606310", "ok": True, "at": now.isoformat(), "fields": ALICE_ALL_DAY},
        {"kind": "drift", "voipnumber": "606310", "ok": False, "at": now.isoformat(), "found": drifted,
         "wanted": {"forwardto": A}}])
    drift = AlertKey(AlertKind.DRIFT, number="606310")
    snap = _snapshot(tmp_path, alerts={drift: Standing(drift, "606310: changed by hand", now, now)}, journal=journal)
    view = status_view(snap)
    support, sales = view.rows
    group = view.groups[0]  # who has the calls and what comes next, once for the lines of one plan
    assert (support.state, support.ok, group.now_who, group.now_until, group.now_reason) == \
        ("confirmed", True, f"Alice ({A})", f" until Wed 12:00, then Bob ({B})", "rota: Alice")
    assert support.held == f"Alice ({A}) all day" and support.last_read == "Tue 01 Dec 20:00:00"
    assert group.next is not None and group.next.exact and group.next.slack == "exact"
    assert group.next.program.startswith(f"Bob ({B})") and group.next.send_from == "Wed 02 Dec 12:00:00"
    assert (sales.state, sales.ok, sales.held) == ("drift", False, "07700900777 all day")
    assert sales.problems == ("606310: changed by hand",)
    assert view.confirmed == 1 and not view.health.ok
    # the journal is asked for the one number that is not confirmed, a few entries only
    assert journal.asked == [{"voipnumber": "606310", "limit": 20}]


def test_status_shows_the_send_window_and_slack_of_the_next_change(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path)
    snap = Snapshot(**{**snap.__dict__, "now": london(2026, 12, 3, 20)})  # Bob, until the gap at midnight
    support = status_view(snap).groups[0]
    assert support.now_who == f"Bob ({B})" and support.next is not None and not support.next.exact
    nxt = support.next
    assert nxt.slack not in ("exact", "0m00s") and nxt.send_from != nxt.send_by
    # Bob's window ends at midnight by itself; switching forwarding off may wait until noon
    assert (nxt.program, nxt.send_from, nxt.send_by, nxt.slack) == \
        ("no forwarding", "Fri 04 Dec 00:00:00", "Fri 04 Dec 12:00:00", "12h00m")


def test_history_is_newest_first_with_names_and_filters_by_number(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    t = london(2026, 12, 1, 17, 30).astimezone(UTC)
    entries = [
        {"id": 1, "kind": "start", "voipnumber": None, "ok": None, "at": t.isoformat(), "pid": 7, "config": "x"},
        {"id": 2, "kind": "change", "voipnumber": "606309", "ok": None, "at": (t + dt.timedelta(seconds=1)).isoformat(),
         "fields": {"forwardto": B}, "program": f"{B} all day"},
        {"id": 3, "kind": "readback", "voipnumber": "606309", "ok": True,
         "at": (t + dt.timedelta(seconds=2)).isoformat(), "fields": {**ALICE_ALL_DAY, "forwardto": B}},
        {"id": 4, "kind": "alert", "voipnumber": None, "ok": False, "at": (t + dt.timedelta(seconds=3)).isoformat(),
         "key": "gap:1", "message": f"{IMG} nobody on call"},
    ]
    journal = FakeJournal(entries)
    v = history_view(cfg, journal)
    assert [r.kind for r in v.rows] == ["alert", "readback", "change", "start"]
    assert v.rows[0].at == "Tue 01 Dec 17:30:03" and v.rows[0].text == f"{IMG} nobody on call"
    assert v.rows[1].text == f"read back: Bob ({B}) all day" and v.rows[1].label == "Support line (606309)"
    assert v.rows[2].text == f"sent: Bob ({B}) all day"  # once, not the program and then its fields
    only = history_view(cfg, journal, "606309")
    assert [r.voipnumber for r in only.rows] == ["606309", "606309"] and journal.asked[-1] == \
        {"voipnumber": "606309", "limit": 200}
    assert history_view(cfg, None).error == "there is no journal yet"


# ---------------------------------------------------------------------------------- the app


def call(app: App, path: str, query: str = "", method: str = "GET", host: str = "127.0.0.1:8080"
         ) -> tuple[int, dict[str, str], bytes]:
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = int(status.split()[0]), dict(headers)

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "HTTP_HOST": host,
                         "wsgi.input": io.BytesIO()}, start_response))
    return got["status"], got["headers"], body


def test_app_routes_validates_queries_and_forbids_scripts(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path, metrics=lambda: b"forwardd_up 1\n")
    app = App(lambda: snap)
    status, headers, body = call(app, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src" not in headers["Content-Security-Policy"] and "default-src 'none'" in \
        headers["Content-Security-Policy"]
    assert b"Support line" in body and b"<script" not in body.lower().replace(b"&lt;script", b"")
    assert call(app, "/", "number=606310&week=0")[0] == 200
    assert call(app, "/", "number=699999")[0] == 404
    assert call(app, "/", "week=1")[0] == 404 and call(app, "/", "week=-1")[0] == 404
    assert call(app, "/history", "number=<b>")[0] == 400
    assert call(app, "/status")[0] == 200
    status, headers, body = call(app, "/healthz")
    assert status == 200 and json.loads(body)["ok"] is True and headers["Content-Type"] == "application/json"
    assert call(app, "/metrics")[2] == b"forwardd_up 1\n"
    assert call(app, "/nope")[0] == 404
    assert call(app, "/", method="POST")[0] == 405
    status, headers, body = call(app, "/status", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    # a page asked for under another host name (DNS rebinding) is refused on loopback
    assert call(app, "/status", host="evil.example:8080")[0] == 421
    assert call(App(lambda: snap, loopback_only=False), "/status", host="evil.example")[0] == 200
    unhealthy = App(lambda: _snapshot(tmp_path, unconfirmed=frozenset({"606309"})))
    status, _, body = call(unhealthy, "/healthz")
    assert status == 503 and json.loads(body)["reasons"][0].startswith("Support line (606309): not confirmed")

    def broken() -> Snapshot:
        raise RuntimeError("event loop is closed")

    status, _, body = call(App(broken), "/")
    assert status == 503 and b"event loop is closed" in body
    starting = App(lambda: Snapshot(snap.cfg, snap.now))
    assert call(starting, "/")[0] == 503 and call(starting, "/healthz")[0] == 503


def test_plan_page_escapes_calendar_text(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    closure = ev(london(2026, 12, 1, 13), london(2026, 12, 1, 17, 30), IMG, calendar="closures")
    html = plan_page(cfg, plan_of(cfg, MON, 14, week_rota(), [closure]))
    assert IMG not in html and SCRIPT not in html
    assert "holiday: &lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert html.count('class="weekview"') == 2 and "<link" not in html and "http://" not in html


# ------------------------------------------------------------------------- in a real browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync"]


def _need_browser() -> None:
    """Skip without chromium or Playwright; under CI=true, fail instead (CI must run these)."""
    why = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        why = "playwright is not installed (pip install -e '.[test]')"
    if why is None and not Path(CHROMIUM).exists():
        why = f"chromium is not installed ({CHROMIUM}; tests/run installs Debian's package as root)"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI: {why}")
        pytest.skip(why)


class Browser:
    """Chromium through Playwright; records every dialog and console message a page causes."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.requests: list[str] = []

    def page(self, width: int = 1280, height: int = 900) -> Any:
        page = self.browser.new_page(viewport={"width": width, "height": height})

        def on_dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda m: self.console.append(m.text))
        page.on("request", lambda r: self.requests.append(r.url))
        return page

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _need_browser()
    b = Browser()
    yield b
    b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ics(events: list[tuple[dt.datetime, dt.datetime, str]]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//forwardd web tests//EN"]
    for i, (a, b, summary) in enumerate(events):
        lines += ["BEGIN:VEVENT", f"UID:web-{i}", "DTSTAMP:20260101T000000Z",
                  f"DTSTART:{a.astimezone(UTC):%Y%m%dT%H%M%SZ}", f"DTEND:{b.astimezone(UTC):%Y%m%dT%H%M%SZ}",
                  f"SUMMARY:{summary}", "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


class Site:
    """A running daemon with [web] port, against the fake aql server, both processes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.today = dt.datetime.now(LONDON).date()
        d = lambda days, h=0: dt.datetime.combine(self.today + dt.timedelta(days=days), dt.time(h), LONDON)  # noqa: E731
        self.handover = d(1, 12)  # Alice -> Bob tomorrow at noon: exact on the round-the-clock line
        (folder / "rota.ics").write_text(ics([
            (d(-1), self.handover, "On call: Alice"), (self.handover, d(2, 12), "On call: Bob"),
            (d(3), d(6), "On call: Carol"), (d(4, 10), d(4, 11), SCRIPT)]))
        (folder / "closures.ics").write_text(ics([(d(1, 10), d(1, 12), IMG)]))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fake = FakeProc(folder)
        self.config = folder / "forwardd.toml"
        self.write_config("Sales line")
        self.proc = start_daemon(self.config, folder)

    def write_config(self, sales: str) -> None:
        self.config.write_text(f"""
timezone = "Europe/London"
state_dir = "{self.folder / 'state'}"
on_drift = "alert"
[aql]
url = "{self.fake.url}"
username = "acme"
password_env = "AQL_PW"
min_slack = "1s"
[people]
alice = "{A}"
bob = "{B}"
carol = "{C}"
[calendars]
rota = {{ source = "rota.ics", refresh = "1s" }}
closures = {{ source = "closures.ics", refresh = "1s" }}
[[numbers]]
voipnumber = "606309"
name = "Support line"
rota = "rota"
fallback = "none"
[[numbers]]
voipnumber = "606310"
name = "{sales}"
rota = "rota"
holidays = ["closures"]
office_hours = ["Daily 09:00-17:30"]
fallback = "none"
[daemon]
drift_check_every = "1m"
[alerts]
gap_ahead = "1h"  # the week's gap is a day or two off: which alerts stand must not depend on the hour the test runs
[web]
port = {self.port}
""")

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def healthy(self) -> bool:
        return self.get("/healthz")[0] == 200

    def log(self) -> str:
        return (self.folder / "daemon.log").read_text()

    def close(self) -> None:
        try:
            assert stop(self.proc) == 0
        finally:
            self.fake.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = Site(tmp_path_factory.mktemp("web"))
    try:
        wait_for(s.healthy, timeout=45)
        yield s
    finally:
        s.close()


def stretches(track: Any) -> list[str]:
    """Who has the calls in each stretch of a lane, in order (a stretch over midnight is a block a day;
    its blocks share one title, which names who first)."""
    titles = track.locator(".blk:not(.unplanned)").evaluate_all("bs => bs.map(b => b.title)")
    return [t.split(" · ")[0].split(" (")[0] for i, t in enumerate(titles) if i == 0 or t != titles[i - 1]]


def no_injected_markup(page: Any, browser: Browser) -> None:
    """The hostile calendar titles are text: no element came of them, and nothing ran."""
    assert page.evaluate("document.querySelectorAll('img, script, iframe, object, embed').length") == 0
    assert browser.dialogs == []
    assert not [m for m in browser.console if "alert" in m or "Content Security Policy" in m]


def test_the_daemon_serves_the_week_with_rows_names_times_and_flags(site: Site, browser: Browser) -> None:
    page = browser.page()
    page.goto(site.url + "/")
    lanes = page.locator(".lane")
    assert lanes.count() == 2
    assert page.locator(".lane .lane-head .name").all_inner_texts() == ["Support line", "Sales line"]
    assert page.locator(".lane .lane-head .num").all_inner_texts() == ["606309", "606310"]
    support = page.locator(".lane[data-number='606309'] .wtrack")
    assert stretches(support) == ["Alice", "Bob", "GAP", "Carol", "GAP"]
    assert support.locator(".blk.gap").first.inner_text().split("\n") == ["GAP", "nobody on call"]
    assert A in support.locator(".blk:not(.unplanned)").first.inner_text()
    # the exact hand-over, flagged in words at its time, and only that one
    exact = page.locator(".ho.exact")
    assert exact.count() == 1 and exact.inner_text() == "EXACT 12:00"
    assert dt.datetime.fromisoformat(exact.get_attribute("data-at")) == site.handover
    assert page.locator("[data-count='exact']").inner_text() == "1 exact hand-over"
    times = support.locator(".ho span").all_inner_texts()
    assert times == ["EXACT 12:00", "12:00", "00:00", "00:00"]
    sales = page.locator(".lane[data-number='606310'] .wtrack")
    assert "office\nhours" in sales.locator(".blk.office").all_inner_texts()  # a word a line, never cut
    # the hostile titles are shown, as text: the holiday's name on its block, the bad event in the warnings
    assert sales.locator(".blk.hol .tag").inner_text() == f"holiday: {IMG}"
    assert SCRIPT in page.locator(".warnings").inner_text()
    assert page.locator(".head .today").count() == 1 and page.locator(".now").count() == 2
    no_injected_markup(page, browser)
    page.screenshot(path=str(site.folder / "week.png"), full_page=True)
    # the next week is one click away, without JavaScript
    page.click("a[rel=next]")
    assert page.url.endswith("?week=1") and page.locator(".weekview").get_attribute("data-week") == "1"
    page.screenshot(path=str(site.folder / "week-next.png"), full_page=True)


def test_one_number_reads_on_a_phone(site: Site, browser: Browser) -> None:
    page = browser.page()
    page.goto(site.url + "/")
    page.select_option("select#number", "606309")
    page.click("form.pick:has(select) button")
    assert "number=606309" in page.url and page.locator(".lane").count() == 1
    agenda = page.locator(".agenda[data-number='606309']")
    assert agenda.locator(".badge.exact").all_inner_texts() == ["EXACT HAND-OVER at 12:00"]
    assert "GAP: nobody on call" in agenda.inner_text() and f"Bob {B}" in agenda.inner_text()
    page.screenshot(path=str(site.folder / "one-number.png"), full_page=True)
    phone = browser.page(390, 844)
    phone.goto(site.url + "/?number=606309")
    width = phone.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
    assert width[0] <= 390 and width[1] <= 390 and width[2] == 390, width
    # on a phone the grid gives way to the days in words, each the width of the screen
    assert phone.locator(".wtrack").is_hidden() and phone.locator(".agenda").is_visible()
    days = phone.locator(".agenda .aday")
    assert days.count() == 7 and days.first.bounding_box()["width"] > 300
    assert phone.locator(".agenda .badge.exact").inner_text() == "EXACT HAND-OVER at 12:00"
    no_injected_markup(phone, browser)
    phone.screenshot(path=str(site.folder / "one-number-phone.png"), full_page=True)


def test_status_shows_each_number_by_name_and_its_state(site: Site, browser: Browser) -> None:
    page = browser.page()
    page.goto(site.url + "/status")
    # the event that names nobody stands as an alert: the calls go where they should, with something to look at
    assert page.locator(".health").get_attribute("data-status") == "degraded"
    assert page.locator(".health h2").inner_text().startswith("Degraded: alert: Support line (606309): Rota event '<script>")
    rows = page.locator("table.status tbody tr")
    assert rows.count() == 2
    support = page.locator("tr[data-number='606309']")
    assert support.get_attribute("data-state") == "confirmed"
    group = page.locator(".sgroup:has(tr[data-number='606309'])")
    assert group.locator(".now-who").inner_text() == f"Alice ({A})"
    assert support.locator(".held").inner_text() == f"Alice ({A}) all day"
    assert "last read: " in support.inner_text() and "send at " in group.inner_text()
    assert "EXACT: no slack" in group.inner_text()  # Alice -> Bob tomorrow at noon is next
    assert page.locator("table.calendars tr[data-ok='true']").count() == 2
    no_injected_markup(page, browser)
    page.screenshot(path=str(site.folder / "status.png"), full_page=True)


def test_history_is_newest_first_with_names_and_a_filter(site: Site, browser: Browser) -> None:
    page = browser.page()
    page.goto(site.url + "/history")
    kinds = page.locator("table.history tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds[-1] == "start" and "readback" in kinds and "change" in kinds  # newest first: the start is last
    assert f"Alice ({A})" in page.locator("tr[data-kind='readback'] .detail").first.inner_text()
    page.select_option("select#number", "606310")
    page.click("form.pick button")
    assert page.url.endswith("/history?number=606310")
    numbers = page.locator("table.history tbody tr").evaluate_all("rows => rows.map(r => r.dataset.number)")
    assert numbers and set(numbers) == {"606310"}
    no_injected_markup(page, browser)
    page.screenshot(path=str(site.folder / "history.png"), full_page=True)


def test_healthz_and_metrics_over_plain_http(site: Site) -> None:
    status, headers, body = site.get("/healthz")
    doc = json.loads(body)
    assert (status, doc["ok"], doc["status"], doc["numbers"], doc["confirmed"]) == (200, True, "degraded", 2, 2)
    assert [r.split(" Rota event ")[0] for r in doc["reasons"]] == ["alert: Support line (606309):", "alert: Sales line (606310):"]
    assert headers["Content-Type"] == "application/json"
    status, headers, body = site.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'forwardd_last_success_timestamp_seconds{voipnumber="606309"}' in body.decode()


def test_a_reload_keeps_the_server_and_shows_the_new_config(site: Site) -> None:
    site.write_config("Sales desk")
    site.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: b"Sales desk" in site.get("/")[2], timeout=30)
    assert site.log().count('"event": "web_serving"') == 1  # handed over, never bound again
    assert b"Sales line" not in site.get("/status")[2]
    wait_for(site.healthy, timeout=30)


def test_healthz_says_503_with_the_reason_when_the_account_is_changed_by_hand(site: Site) -> None:
    # last in this module: the daemon runs with on_drift = "alert", so the drift stays. A hand-made change
    # while the daemon is down is found by its start-up read (606309's comes first, at once), without
    # waiting up to a minute for the next drift check.
    assert stop(site.proc) == 0
    site.fake.post("set", {"voipnumber": "606309", "fields": {"forwardto": "07700900777"}})
    site.proc = start_daemon(site.config, site.folder, name="daemon-again")
    reason = "Support line (606309): the account was changed by hand (drift)"
    # while starting up, /healthz is already 503 for "not planned yet": wait for the drift itself
    wait_for(lambda: reason in json.loads(site.get("/healthz")[2])["reasons"], timeout=30)
    status, _, raw = site.get("/healthz")
    assert status == 503 and json.loads(raw)["ok"] is False
    body = site.get("/status")[2].decode()
    assert 'data-state="drift"' in body and "07700900777" in body


def test_a_calendar_without_a_good_copy_makes_healthz_503(tmp_path: Path, fake_proc: FakeProc) -> None:
    (tmp_path / "rota.ics").write_text("<html>not a calendar</html>")
    port = free_port()
    cfg = tmp_path / "forwardd.toml"
    cfg.write_text(f"""
state_dir = "{tmp_path / 'state'}"
[aql]
url = "{fake_proc.url}"
username = "acme"
password_env = "AQL_PW"
[people]
alice = "{A}"
[calendars]
rota = {{ source = "rota.ics" }}
[[numbers]]
voipnumber = "606309"
rota = "rota"
fallback = "none"
[web]
port = {port}
""")
    proc = start_daemon(cfg, tmp_path)
    try:
        def answer() -> tuple[int, dict[str, Any]]:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())
            return 200, {}

        wait_for(lambda: any(r.startswith("606309: no plan") for r in answer()[1].get("reasons", [])), timeout=30)
        status, doc = answer()
        assert status == 503 and doc["ok"] is False
        (why,) = [r for r in doc["reasons"] if r.startswith("calendar rota: no good copy (")]
        assert "not read yet" not in why  # the reason the feed was refused
    finally:
        assert stop(proc) == 0


def test_a_port_in_use_is_a_clear_error_at_start(tmp_path: Path, fake_proc: FakeProc) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "forwardd.toml"
        cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[aql]\nurl = "{fake_proc.url}"\nusername = "acme"\n'
                       f'password_env = "AQL_PW"\n[[numbers]]\nvoipnumber = "606309"\nfallback = "07700 900999"\n'
                       f"[web]\nport = {port}\n")
        r = subprocess.run([sys.executable, "-m", "forwardd", "run", "--config", str(cfg)], capture_output=True,
                           text=True, timeout=60, cwd=ROOT, env={**os.environ, "AQL_PW": PASSWORD})
    assert r.returncode == 1
    assert f"cannot serve the page on http://127.0.0.1:{port}/" in r.stderr + r.stdout


def test_plan_html_writes_one_page_that_fetches_nothing(tmp_path: Path, browser: Browser, example: Path) -> None:
    hostile = tmp_path / "config" / "calendars" / "hostile.ics"
    hostile.write_text(ics([(london(2026, 12, 2, 12), london(2026, 12, 2, 15), IMG),
                            (london(2026, 12, 3, 18), london(2026, 12, 3, 19), SCRIPT)]))
    text = example.read_text().replace('closures = { source = "calendars/closures.ics" }',
                                       'closures = { source = "calendars/closures.ics" }\n'
                                       'hostile = { source = "calendars/hostile.ics" }')
    text = text.replace('holidays = ["bank-holidays", "closures"]', 'holidays = ["bank-holidays", "closures", "hostile"]')
    text = text.replace('overrides = ["overrides"]', 'overrides = ["overrides", "hostile"]')
    example.write_text(text)
    out = tmp_path / "plan.html"
    r = run_cli("plan", "--config", str(example), "--start", "2026-11-30", "--days", "14", "--html", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and f"wrote {out}" in r.stderr
    page = browser.page()
    mine: list[str] = []  # this page's requests (others still open may be refreshing themselves)
    page.on("request", lambda r: mine.append(r.url))
    page.goto(out.as_uri())
    assert mine == [out.as_uri()]  # one file, nothing fetched
    assert page.locator(".weekview").count() == 2
    assert page.locator(".weekview h2").all_inner_texts() == ["Mon 30 Nov - Sun 06 Dec 2026",
                                                              "Mon 07 Dec - Sun 13 Dec 2026"]
    first = page.locator(".weekview[data-week='0'] .lane[data-number='606309'] .wtrack")
    assert stretches(first)[:4] == ["Bob", "office hours", "Carol", "office hours"]
    # Carol's evening goes on past midnight: a block on each day, each with her name
    assert first.locator(".blk .who").all_inner_texts()[:5] == ["Bob", "office", "hours", "Carol", "Carol"]
    assert first.locator(".ho span").all_inner_texts()[:3] == ["09:00", "17:30", "09:00"]
    assert page.locator("header.top nav").count() == 0  # no links to a server the file does not have
    assert f"holiday: {IMG}" in first.locator(".blk.hol .tag").all_inner_texts()
    assert SCRIPT in page.locator(".warnings").inner_text()
    no_injected_markup(page, browser)
    page.screenshot(path=str(tmp_path / "plan.png"), full_page=True)


DOCS_CONFIG_EXTRA = """
[[numbers]]
voipnumber = "606310"
name = "Emergency line"
rota = "rota"
overrides = ["overrides"]
fallback = "none"
"""


def test_the_week_of_the_example_in_a_wide_window(tmp_path: Path, browser: Browser, example: Path) -> None:
    """The file ``plan --html`` writes for config/example.toml with its line named, and a second line that
    follows the rota round the clock, over New Year (the README's pictures are the served page's:
    test_web_layout.py)."""
    text = example.read_text().replace('voipnumber = "606309"', 'voipnumber = "606309"\nname = "Support line"')
    example.write_text(text.replace("\n[daemon]", DOCS_CONFIG_EXTRA + "\n[daemon]"))
    out = tmp_path / "week.html"
    r = run_cli("plan", "--config", str(example), "--start", "2026-12-28", "--days", "7", "--html", str(out))
    assert r.returncode == 0, r.stderr
    page = browser.page(1280, 560)
    page.goto(out.as_uri())
    assert page.locator(".lane .name").all_inner_texts() == ["Support line", "Emergency line"]
    # the bank holidays (28 Dec, 1 Jan) open the office to the rota; Dave swaps in over New Year
    support = page.locator(".lane[data-number='606309'] .wtrack")
    assert support.locator(".blk.hol .tag").first.inner_text().startswith("holiday: ")
    assert "Dave" in support.locator(".blk .who").all_inner_texts()
    assert page.locator(".lane[data-number='606310'] .ho.exact span").all_inner_texts() == ["EXACT 09:00",
                                                                                          "EXACT 17:30"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.screenshot(path=str(tmp_path / "week.png"), full_page=True)


def test_fallbacks_numbers_nobody_named_and_manual_overrides_get_sensible_labels(tmp_path: Path) -> None:
    from forwardd.core.plan import NumberPlan
    from forwardd.core.timeline import Kind, Segment

    cfg = config(tmp_path)
    t = lambda h: MON.astimezone(UTC) + dt.timedelta(hours=h)  # noqa: E731
    segs = [Segment(t(0), t(1), "07700900999", "fallback", Kind.FALLBACK),
            Segment(t(1), t(2), "07700900888", "rota: 07700900888", Kind.ROTA, "07700900888"),
            Segment(t(2), t(3), None, "override by ops: off", Kind.MANUAL),
            Segment(t(3), t(24), B, "holiday: Christmas Day (override: Bob)", Kind.OVERRIDE, "Bob", "Christmas Day")]
    plan = Plan(t(0), t(24), [NumberPlan("606309", segs, [])], [])
    blocks = week_view(cfg, plan, 0).lanes[0].blocks
    got = [(b.name, b.number, b.tag, b.css) for b in blocks if b.kind != "unplanned"]
    assert got == [("fallback", "07700900999", None, "fallback"),
                   ("07700900888", "07700900888", None, got[1][3]),
                   ("not forwarded", None, "manual override", "office"),
                   ("Bob", B, "holiday: Christmas Day (override)", "p1")]
    assert got[1][3].startswith("p") and Names(cfg).who("07700900888", "07700900888") == "07700900888"


def test_history_says_an_override_in_words_with_its_span_and_zone(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    t = london(2026, 12, 3, 7, 28).astimezone(UTC)
    journal = FakeJournal([
        {"id": 1, "kind": "override", "voipnumber": "606309", "ok": None, "at": t.isoformat(), "id_": 7,
         "to": B, "person": "bob", "start": t.isoformat(), "end": (t + dt.timedelta(minutes=10)).isoformat(),
         "reason": "override by ann: covering", **{"id": 7}},
        {"id": 2, "kind": "override", "voipnumber": "606309", "ok": None, "at": t.isoformat(), "cancelled": True,
         "by": "ann", **{"id": 7}}])
    rows = history_view(cfg, journal).rows
    assert rows[1].text == f"Bob ({B}) from Thu 3 Dec 07:28 until 07:38 (GMT) (override by ann: covering, ID 7)"
    assert rows[0].text == "ID 7 cancelled by ann"
