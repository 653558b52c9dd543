"""The week as people see it, in a real browser at a phone's width (390 px) and a desk's (1280 px): who
has each line's calls now is said first, in words; every label is whole inside its block or not shown
at all (its block's title says it on hover); hand-over times never overlap; a 6-minute shift is seen;
on a phone the week is a list, day by day. The page is the example config's, served by the page's own
server in this process, at a fixed instant.

``FORWARDD_DOCS_SCREENSHOT=1`` writes the README's pictures, docs/week.png and docs/week-phone.png.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from forwardd.config import WebSettings, load_config
from forwardd.web.server import WebServer
from forwardd.web.snapshot import Snapshot

from .conftest import LONDON, ROOT
from .test_web import Browser, _need_browser, free_port

NOW = dt.datetime(2026, 12, 29, 20, 0, tzinfo=LONDON)  # Tue 29 Dec, out of hours: Alice's week on the rota
SHORT = "Erin takes six minutes"

EXTRA_LINES = """
[[numbers]]
voipnumber = "606310"
name = "Emergency line"
rota = "rota"
overrides = ["overrides", "short"]
fallback = "none"

[[numbers]]
voipnumber = "606311"
rota = "rota"
overrides = ["overrides"]
holidays = ["bank-holidays", "closures"]
office_hours = ["Mon-Fri 09:00-17:30"]
fallback = "07700 900999"
forwardcli = true
"""


def _short_shift(folder: Path) -> None:
    """A 6-minute override on the Emergency line: Erin, Wed 30 Dec 14:00-14:06."""
    (folder / "short.ics").write_text("\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//forwardd layout test//EN", "BEGIN:VEVENT", "UID:short@test",
        "DTSTAMP:20260101T000000Z", "DTSTART;TZID=Europe/London:20261230T140000",
        "DTEND;TZID=Europe/London:20261230T140600", f"SUMMARY:{SHORT}", "END:VEVENT", "END:VCALENDAR", ""]))


class Served:
    """The example config with its line named, an Emergency line (with a 6-minute shift) and a third line
    of no name sharing the first's week, planned for the week of New Year and served at ``NOW``."""

    def __init__(self, folder: Path) -> None:
        shutil.copytree(ROOT / "config", folder / "config")
        path = folder / "config" / "example.toml"
        _short_shift(folder / "config" / "calendars")
        text = path.read_text().replace('state_dir = "../state"', f'state_dir = "{folder / "state"}"')
        text = text.replace('voipnumber = "606309"', 'voipnumber = "606309"\nname = "Support line"')
        text = text.replace('dave = "07700 900004"', 'dave = "07700 900004"\nerin = "07700 900005"')
        text = text.replace('closures = { source = "calendars/closures.ics" }',
                            'closures = { source = "calendars/closures.ics" }\nshort = { source = "calendars/short.ics" }')
        path.write_text(text.replace("\n[daemon]", EXTRA_LINES + "\n[daemon]"))
        self.snapshot = asyncio.run(self._plan(path))
        self.server = WebServer(WebSettings(port=free_port()), lambda: self.snapshot).start()
        self.url = self.server.url.rstrip("/")

    @staticmethod
    async def _plan(path: Path) -> Snapshot:
        from forwardd.calendars.worker import InProcessExpander
        from forwardd.clock import VirtualClock
        from forwardd.service.services import Services

        cfg = load_config(path, env={})
        sv = await Services.open(cfg, clock=VirtualClock(NOW.astimezone(dt.timezone.utc)),
                                 expander=InProcessExpander())
        try:
            await sv.refresh_calendars()
            plan = await sv.make_plan(dt.datetime(2026, 12, 28, tzinfo=LONDON), days=7)
            return Snapshot(cfg, NOW, plan, sources=dict(sv.sources.states), version=1)
        finally:
            await sv.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    _need_browser()
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("layout"))
    yield s
    s.close()


OVERFLOWS = """() => {
  // every label shown (a line of it visible inside its .lb box) must lie inside its block
  const bad = [];
  for (const blk of document.querySelectorAll('.wtrack .blk')) {
    if (!blk.offsetParent) continue;
    const box = blk.getBoundingClientRect();
    for (const lb of blk.querySelectorAll(':scope > span')) {
      if (getComputedStyle(lb).display === 'none' || !lb.textContent) continue;
      const r = document.createRange(); r.selectNodeContents(lb);
      const text = r.getBoundingClientRect(), own = lb.getBoundingClientRect();
      if (text.top >= own.bottom - 0.5) continue;  // wrapped onto the hidden line: not shown
      if (text.left < box.left - 0.5 || text.right > box.right + 0.5 || text.bottom > box.bottom + 0.5)
        bad.push([lb.textContent, blk.title, Math.round(text.right - box.right)]);
    }
  }
  return bad;
}"""

OVERLAPS = """() => {
  // hand-over time labels shown in one lane never overlap
  const bad = [];
  for (const lane of document.querySelectorAll('.wtrack')) {
    const boxes = [...lane.querySelectorAll('.ho span')].filter(s => s.offsetParent && getComputedStyle(s).display !== 'none')
      .map(s => [s.textContent, s.getBoundingClientRect()]);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, p] = boxes[i], [b, q] = boxes[j];
      if (p.left < q.right - 0.5 && q.left < p.right - 0.5 && p.top < q.bottom - 0.5 && q.top < p.bottom - 0.5)
        bad.push([a, b]);
    }
  }
  return bad;
}"""


def _open(chromium: Browser, url: str, width: int) -> Any:
    page = chromium.page(width, 900)
    page.goto(url)
    return page


@pytest.mark.parametrize("width", [390, 1280])
def test_the_week_says_who_has_the_calls_now_first(served: Served, chromium: Browser, width: int) -> None:
    page = _open(chromium, served.url + "/", width)
    now = page.locator(".nowlist")
    assert now.is_visible() and now.locator("h2").inner_text() == "Now, Tue 29 Dec 20:00"
    # above the grid (or the list), in words: the person, their number, until when and who comes next
    assert now.bounding_box()["y"] < page.locator(".week").bounding_box()["y"]
    support = now.locator("li[data-number='606309']").inner_text()
    assert support == "Support line (606309) and 1 more line: Alice (07700900001) until Wed 09:00, then office hours"
    emergency = now.locator("li[data-number='606310']").inner_text()
    assert emergency == "Emergency line (606310): Alice (07700900001) until Wed 14:00, then Erin (07700900005)"


@pytest.mark.parametrize("width", [390, 800, 1000, 1280])
def test_every_label_is_whole_inside_its_block_or_not_shown_and_times_never_overlap(served: Served, chromium: Browser,
                                                                                    width: int) -> None:
    page = _open(chromium, served.url + "/", width)
    assert page.locator(".wtrack .blk").count() > 20
    assert page.evaluate(OVERFLOWS) == []
    assert page.evaluate(OVERLAPS) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_on_a_phone_the_week_is_a_list_day_by_day(served: Served, chromium: Browser) -> None:
    page = _open(chromium, served.url + "/", 390)
    assert page.locator(".head").is_hidden() and page.locator(".ho").first.is_hidden()
    lane = page.locator(".lane[data-number='606310'] .wtrack")
    assert lane.locator(".dl").all_inner_texts() == ["Mon 28 Dec", "Tue 29 Dec · today", "Wed 30 Dec", "Thu 31 Dec",
                                                     "Fri 01 Jan", "Sat 02 Jan", "Sun 03 Jan"]
    rows = lane.locator(".blk")
    assert all(box["width"] > 330 for box in (rows.nth(i).bounding_box() for i in range(rows.count())))
    # times are apart from names, names whole, each row its own line
    wednesday = [t.replace("\n", " ") for t in lane.locator(".blk").all_inner_texts()
                 if t.startswith(("00:00–14:00", "14:00–14:06", "14:06–"))]
    assert wednesday == ["00:00–14:00 Alice 07700900001", "14:00–14:06 Erin 07700900005 override EXACT hand-over",
                         "14:06–24:00 Alice 07700900001 EXACT hand-over"]
    assert lane.locator(".blk.cur").inner_text().split("\n") == ["00:00–24:00", "Alice", "07700900001", "now"]
    if os.environ.get("FORWARDD_DOCS_SCREENSHOT") == "1":  # the README's: one line, found by its name
        page.goto(served.url + "/?q=emergency")
        page.screenshot(path=str(ROOT / "docs" / "week-phone.png"), full_page=True)


def test_a_six_minute_shift_is_seen_on_a_desk(served: Served, chromium: Browser) -> None:
    page = _open(chromium, served.url + "/", 1280)
    short = page.locator(".lane[data-number='606310'] .blk.short")
    assert short.count() == 1 and "Erin (07700900005)" in short.get_attribute("title")
    box = short.bounding_box()
    assert box["width"] >= 5 and box["height"] > 20  # drawn wider than its 0.6 px, and above its neighbours
    at = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('.blk').title",
                       [box["x"] + box["width"] / 2, box["y"] + box["height"] - 3])
    assert at.startswith("Erin (07700900005)")
    if os.environ.get("FORWARDD_DOCS_SCREENSHOT") == "1":
        page.set_viewport_size({"width": 1280, "height": 600})
        page.screenshot(path=str(ROOT / "docs" / "week.png"), full_page=True)


def test_a_line_without_a_name_is_headed_by_its_number_once(served: Served, chromium: Browser) -> None:
    page = _open(chromium, served.url + "/?number=606311", 1280)
    assert page.locator(".agenda").is_visible()
    heading = page.locator("h3").first.inner_text()
    assert heading == "Day by day: 606311" and "606311 (606311)" not in page.content()
    assert page.title().startswith("606311, ")
