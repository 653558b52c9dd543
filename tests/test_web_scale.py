"""A page for many lines: lines with the same plan share one lane (and one block of /status), shown once
with their numbers; ``?q=`` finds lines by number, name or account; pages hold at most 200 lines; with
more than one account, each line says its own. Through the WSGI app, as a request sees it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from forwardd.config import Config, config_from_dict
from forwardd.web.app import App
from forwardd.web.snapshot import Snapshot
from forwardd.web.views import status_view, week_view

from .test_web import ALICE_ALL_DAY, MON, A, call, london, plan_of, week_rota

HOURS = [["Mon-Fri 09:00-17:30"], [], ["Mon-Fri 08:00-18:00"]]


def many(tmp_path: Path, n: int, accounts: bool = False) -> Config:
    """``n`` lines on one rota, in three kinds of office hours (line i has kind i % 3): three different
    weeks. Every tenth line has a name (``Desk 10``, ``Desk 20``...)."""
    (tmp_path / "rota.ics").write_text("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n")
    numbers: list[dict[str, Any]] = []
    for i in range(n):
        line: dict[str, Any] = {"voipnumber": str(700000 + i), "rota": "rota", "fallback": "none",
                                "office_hours": HOURS[i % 3]}
        if i % 10 == 0:
            line["name"] = f"Desk {i}"
        if accounts:
            line["account"] = "north" if i % 2 else "south"
        numbers.append(line)
    doc: dict[str, Any] = {"people": {"alice": A, "bob": "07700900002", "carol": "07700900003"},
                           "calendars": {"rota": {"source": "rota.ics"}}, "numbers": numbers}
    if accounts:
        doc["accounts"] = {"north": {"url": "simulated"}, "south": {"url": "simulated"}}
    return config_from_dict(doc, base_dir=tmp_path, env={})


def snapshot(cfg: Config, **kw: Any) -> Snapshot:
    now = london(2026, 12, 1, 20)
    return Snapshot(cfg, now, plan_of(cfg, MON, 7, week_rota()), **kw)


def lanes(body: bytes) -> list[tuple[str, int]]:
    """Each lane of the week page: its first line and how many lines it shows."""
    return [(m.group(1).decode(), int(m.group(2))) for m in
            re.finditer(rb'<section class="lane[^"]*" role="row" data-number="(\d+)" data-lines="(\d+)">', body)]


def test_lines_with_the_same_plan_share_one_lane_listing_their_numbers(tmp_path: Path) -> None:
    cfg = many(tmp_path, 9)
    v = week_view(cfg, snapshot(cfg).plan, 0)  # type: ignore[arg-type]
    assert [[m.voipnumber for m in lane.members] for lane in v.lanes] == [
        ["700000", "700003", "700006"], ["700001", "700004", "700007"], ["700002", "700005", "700008"]]
    body = call(App(lambda: snapshot(cfg)), "/")[2]
    assert lanes(body) == [("700000", 3), ("700001", 3), ("700002", 3)]
    head = body[body.index(b'data-number="700000" data-lines="3"'):body.index(b'data-number="700001" data-lines')]
    assert b"and 2 more lines, same week" in head and b'<li data-number="700003">' in head
    # who has the calls now: once for each group
    now = re.findall(rb'<li data-number="(\d+)"><span class="sw [^"]*"></span><span><b class="line">([^<]*)</b>', body)
    assert now == [(b"700000", b"Desk 0 (700000) and 2 more lines"), (b"700001", b"700001 and 2 more lines"),
                   (b"700002", b"700002 and 2 more lines")]


def test_a_search_finds_lines_by_number_or_name(tmp_path: Path) -> None:
    cfg = many(tmp_path, 30)
    app = App(lambda: snapshot(cfg))
    assert lanes(call(app, "/", "q=desk+2")[2]) == [("700020", 1)]  # "Desk 20"
    assert lanes(call(app, "/", "q=70001")[2]) == [("700010", 4), ("700011", 3), ("700012", 3)]
    status, _, body = call(app, "/", "q=nobody")
    assert status == 200 and lanes(body) == [] and "No line matches &ldquo;nobody&rdquo;" in body.decode()
    rows = re.findall(rb'<tr data-number="(\d+)" data-state', call(app, "/status", "q=desk")[2])
    assert sorted(rows) == [b"700000", b"700010", b"700020"]
    # the search form is a plain GET form: no script
    assert b'<form class="pick" method="get" action="/" role="search">' in call(app, "/")[2]


def test_pages_hold_at_most_200_lines(tmp_path: Path) -> None:
    cfg = many(tmp_path, 450)
    app = App(lambda: snapshot(cfg))
    shown = []
    for page in ("", "page=2", "page=3"):
        status, _, body = call(app, "/", page)
        assert status == 200
        shown.append(sum(n for _, n in lanes(body)))
        assert len(body) < 300_000  # 150 lines a group: three lanes, whatever the number of lines
        assert body.count(b"<option") == 0  # no drop-down of 450 lines: the search finds them
    assert shown == [200, 200, 50]
    assert b"lines 201&ndash;400 of 450" in call(app, "/", "page=2")[2]
    assert call(app, "/", "page=4")[0] == 404 and call(app, "/", "page=0")[0] == 404
    statuses = [len(re.findall(rb'<tr data-number="\d+"', call(app, "/status", p)[2])) for p in ("", "page=3")]
    assert statuses == [200, 50]
    assert call(app, "/status", "page=4")[0] == 404


def test_status_can_show_only_the_lines_needing_attention(tmp_path: Path) -> None:
    cfg = many(tmp_path, 40)
    confirmed = {n.voipnumber: ALICE_ALL_DAY for n in cfg.numbers}
    snap = snapshot(cfg, confirmed=confirmed, unconfirmed=frozenset({"700007", "700031"}))
    v = status_view(snap, attention=True)
    assert [r.voipnumber for r in v.rows] == ["700007", "700031"] and not any(r.ok for r in v.rows)
    body = call(App(lambda: snap), "/status", "only=attention")[2].decode()
    assert re.findall(r'<tr data-number="(\d+)" data-state="([^"]+)"', body) == [("700007", "not confirmed"),
                                                                                ("700031", "not confirmed")]


def test_with_more_than_one_account_each_line_says_its_own(tmp_path: Path) -> None:
    cfg = many(tmp_path, 4, accounts=True)
    app = App(lambda: snapshot(cfg))
    week = call(app, "/")[2].decode()
    assert re.search(r'<b class="name">Desk 0</b> <span class="num">700000</span></a>\s*<span class="acct">account south',
                     week)
    assert '<li data-number="700003"><a href="/?number=700003&amp;week=0">700003</a> <span class="acct">north</span>' \
        in week
    status = call(app, "/status")[2].decode()
    assert re.findall(r'<tr data-number="(\d+)".*?<span class="acct">account (\w+)</span>', status, re.S) == [
        ("700000", "south"), ("700003", "north"), ("700001", "north"), ("700002", "south")]
    (tmp_path / "one").mkdir()
    one = many(tmp_path / "one", 4)
    assert 'class="acct"' not in call(App(lambda: snapshot(one)), "/status")[2].decode()


def test_a_page_holds_at_most_50_different_weeks(tmp_path: Path) -> None:
    (tmp_path / "rota.ics").write_text("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n")
    cfg = config_from_dict({  # 120 lines, each with its own office hours: 120 different weeks
        "people": {"alice": A, "bob": "07700900002", "carol": "07700900003"},
        "calendars": {"rota": {"source": "rota.ics"}},
        "numbers": [{"voipnumber": str(700000 + i), "rota": "rota", "fallback": "none",
                     "office_hours": [f"Mon-Fri 09:00-{17 + i // 60}:{i % 60:02d}"]} for i in range(120)]},
        base_dir=tmp_path, env={})
    app = App(lambda: snapshot(cfg))
    pages = [lanes(call(app, "/", f"page={k}")[2]) for k in (1, 2, 3)]
    assert [len(p) for p in pages] == [50, 50, 20] and all(n == 1 for p in pages for _, n in p)
    body = call(app, "/")[2]
    assert len(body) < 1_000_000 and b"lines 1&ndash;50 of 120" in body
    assert call(app, "/", "page=4")[0] == 404


def test_history_offers_a_box_for_the_number_not_a_list_of_every_line(tmp_path: Path) -> None:
    from .test_web import FakeJournal

    cfg = many(tmp_path, 120)
    app = App(lambda: snapshot(cfg, journal=FakeJournal([])))
    body = call(app, "/history")[2]
    assert body.count(b"<option") == 0 and b'<input type="search" id="number" name="number"' in body
    assert b"<h2>History: Desk 10 (700010)</h2>" in call(app, "/history", "number=700010")[2]
    (tmp_path / "few").mkdir()
    few = many(tmp_path / "few", 3)
    assert call(App(lambda: snapshot(few, journal=FakeJournal([]))), "/history")[2].count(b"<option") == 4
