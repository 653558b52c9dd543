"""Calendar sources against a real HTTP feed on 127.0.0.1: conditional requests, failures, last good copy,
and the bounds on what a feed may cost (one deadline per download, max_bytes, redirects)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from forwardd.calendars.sources import Sources
from forwardd.calendars.worker import InProcessExpander
from forwardd.config import config_from_dict

from .conftest import UTC

ICS = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n"
       b"DTSTART;TZID=Europe/London:20261201T173000\r\nDTEND;TZID=Europe/London:20261202T090000\r\n"
       b"SUMMARY:On call: Alice\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
ICS2 = ICS.replace(b"Alice", b"Bob")


class Feed:
    """What the feed serves next: ('ok', body) / ('html',) / ('status', code) / ('stall', seconds) /
    ('trickle', body, seconds per byte) / ('endless',) / ('redirect', location)."""

    def __init__(self) -> None:
        self.mode: tuple = ("ok", ICS)
        self.requests: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.etag = '"v1"'


def serve(feed: Feed) -> ThreadingHTTPServer:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            feed.requests.append(dict(self.headers))
            feed.paths.append(self.path)
            kind = feed.mode[0]
            if self.path.startswith("/final"):
                kind = "ok"
            if kind == "redirect" and not self.path.startswith("/final"):
                self.send_response(302)
                self.send_header("Location", feed.mode[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if kind == "stall":
                time.sleep(feed.mode[1])
            if kind == "status":
                self.send_response(feed.mode[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            try:
                if kind == "trickle":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(feed.mode[1])))
                    self.end_headers()
                    for b in feed.mode[1]:
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        time.sleep(feed.mode[2])
                    return
                if kind == "endless":
                    self.send_response(200)
                    self.end_headers()  # no length: the body goes on until the client stops reading
                    chunk = b"BEGIN:VCALENDAR\r\n" + b"X-FILLER:" + b"x" * 65000 + b"\r\n"
                    while True:
                        self.wfile.write(chunk)
                if (feed.mode[0] == "ok" or self.path.startswith("/final")) and self.headers.get("If-None-Match") == feed.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                body = feed.mode[1] if kind == "ok" and feed.mode[0] == "ok" else (
                    ICS if kind == "ok" else b"<html><body><form>Sign in to Outlook</form></body></html>")
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar" if kind == "ok" else "text/html")
                self.send_header("ETag", feed.etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def feed():
    f = Feed()
    srv = serve(f)
    f.url = f"http://127.0.0.1:{srv.server_address[1]}/rota.ics"
    f.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield f
    srv.shutdown()
    srv.server_close()


def make(tmp_path: Path, url: str, **settings: Any) -> Sources:
    cfg = config_from_dict(
        {"people": {"alice": "07700 900001", "bob": "07700 900002"},
         "calendars": {"rota": {"source": url, "timeout": "1s", "max_age": "1h", **settings}},
         "numbers": [{"voipnumber": "606309", "rota": "rota"}]},
        base_dir=tmp_path, env={},
    )
    return Sources(cfg, tmp_path / "state", InProcessExpander())


def run(body: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(body())


async def summaries(src: Sources) -> list[str]:
    start = dt.datetime(2026, 12, 1, tzinfo=UTC)
    cal = (await src.snapshot(start, start + dt.timedelta(days=2)))["rota"]
    assert cal is not None
    return [e.summary for e in cal.between(start, start + dt.timedelta(days=2))]


T0 = dt.datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_200_then_304_on_a_conditional_request(tmp_path: Path, feed: Feed) -> None:
    async def go() -> None:
        src = make(tmp_path, feed.url)
        assert await src.refresh("rota", T0) is True
        assert await summaries(src) == ["On call: Alice"]
        assert await src.refresh("rota", T0 + dt.timedelta(minutes=15)) is False
        assert feed.requests[-1].get("If-None-Match") == '"v1"'
        assert src["rota"].error is None and src["rota"].good_at == T0 + dt.timedelta(minutes=15)
        assert (tmp_path / "state" / "calendars" / "rota.ics").read_bytes() == ICS

    run(go)


@pytest.mark.parametrize(
    ("mode", "message"),
    [(("status", 500), "HTTP 500"), (("status", 404), "HTTP 404"), (("html",), "HTML page"),
     (("stall", 3), "did not finish within 1 s"), (("ok", b""), "empty"), (("ok", ICS[:60]), "truncated")],
)
def test_failures_keep_the_last_good_copy_and_are_reported(tmp_path: Path, feed: Feed, mode: tuple, message: str) -> None:
    async def go() -> None:
        src = make(tmp_path, feed.url)
        await src.refresh("rota", T0)
        feed.mode, feed.etag = mode, '"v2"'
        assert await src.refresh("rota", T0 + dt.timedelta(hours=2)) is False
        assert message in (src["rota"].error or "")
        assert await summaries(src) == ["On call: Alice"]  # the last good copy keeps serving
        assert src["rota"].stale(T0 + dt.timedelta(hours=2))  # and is known to be older than max_age

    run(go)


def test_a_restart_with_the_feed_down_plans_from_the_cached_copy(tmp_path: Path, feed: Feed) -> None:
    async def go() -> None:
        await make(tmp_path, feed.url).refresh("rota", T0)
        feed.mode = ("status", 503)
        fresh = make(tmp_path, feed.url)
        assert await fresh.refresh("rota", T0 + dt.timedelta(hours=1)) is True
        assert "HTTP 503" in (fresh["rota"].error or "")
        assert await summaries(fresh) == ["On call: Alice"]
        assert fresh["rota"].good_at == T0

    run(go)


def test_a_changed_feed_replaces_the_copy(tmp_path: Path, feed: Feed) -> None:
    async def go() -> None:
        src = make(tmp_path, feed.url)
        await src.refresh("rota", T0)
        feed.mode, feed.etag = ("ok", ICS2), '"v2"'
        assert await src.refresh("rota", T0 + dt.timedelta(minutes=15)) is True
        assert await summaries(src) == ["On call: Bob"]

    run(go)


def test_a_broken_local_file_keeps_the_last_good_copy(tmp_path: Path) -> None:
    async def go() -> None:
        path = tmp_path / "rota.ics"
        path.write_bytes(ICS)
        src = make(tmp_path, "rota.ics")
        assert await src.refresh("rota", T0)
        path.write_bytes(b"\x00\x01garbage")
        assert not await src.refresh("rota", T0 + dt.timedelta(minutes=1))
        assert "not iCalendar" in (src["rota"].error or "")
        assert await summaries(src) == ["On call: Alice"]

    run(go)


def test_builtin_bank_holidays_need_no_feed(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {"calendars": {"bh": {"builtin": "GB-SCT"}}, "numbers": [{"voipnumber": "606309", "holidays": ["bh"],
                                                                   "fallback": "07700 900001"}]},
        base_dir=tmp_path, env={})

    async def go() -> None:
        src = Sources(cfg, None, InProcessExpander())
        await src.refresh("bh", T0)
        start, end = dt.datetime(2026, 11, 28, tzinfo=UTC), dt.datetime(2026, 12, 3, tzinfo=UTC)
        cal = (await src.snapshot(start, end))["bh"]
        assert cal is not None
        events = cal.between(start, end)
        assert len(events) == 1 and "Andrew" in events[0].summary  # Scotland's, not England's
        assert events[0].start == dt.datetime(2026, 11, 30, tzinfo=UTC)

    run(go)


class CountingExpander(InProcessExpander):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    async def expand(self, name, *args):  # noqa: ANN001, ANN201
        self.names.append(name)
        return await super().expand(name, *args)


def test_a_restart_with_unchanged_bytes_does_not_expand_again(tmp_path: Path) -> None:
    async def go() -> None:
        (tmp_path / "rota.ics").write_bytes(ICS)
        first = make(tmp_path, "rota.ics")
        await first.refresh("rota", T0)
        want = await summaries(first)
        again = make(tmp_path, "rota.ics")
        again.expander = counting = CountingExpander()
        assert await again.refresh("rota", T0 + dt.timedelta(hours=1))
        assert counting.names == [] and await summaries(again) == want
        # different bytes: expanded, and the new events served
        (tmp_path / "rota.ics").write_bytes(ICS2)
        third = make(tmp_path, "rota.ics")
        third.expander = counting
        await third.refresh("rota", T0 + dt.timedelta(hours=2))
        assert counting.names == ["rota"] and await summaries(third) == ["On call: Bob"]

    run(go)


def test_the_planner_gets_events_beyond_the_first_window_by_a_new_expansion(tmp_path: Path) -> None:
    weekly = ICS.replace(b"SUMMARY", b"RRULE:FREQ=WEEKLY\r\nSUMMARY")

    async def go() -> None:
        (tmp_path / "rota.ics").write_bytes(weekly)
        src = make(tmp_path, "rota.ics")
        src.expander = counting = CountingExpander()
        await src.refresh("rota", T0)
        later = dt.datetime(2027, 6, 1, tzinfo=UTC)
        cal = (await src.snapshot(later, later + dt.timedelta(days=14)))["rota"]
        assert cal is not None and len(cal.between(later, later + dt.timedelta(days=14))) == 2
        assert counting.names == ["rota", "rota"]  # the copy's window did not reach June: expanded again

    run(go)


# ---------------------------------------------------------------------------- what a feed may cost


def test_a_trickling_feed_hits_one_deadline_for_the_whole_download(tmp_path: Path, feed: Feed) -> None:
    feed.mode = ("trickle", ICS, 0.2)  # each byte well within any per-read timeout

    async def go() -> None:
        src = make(tmp_path, feed.url, timeout="2s")
        t = time.monotonic()
        assert await src.refresh("rota", T0) is False
        took = time.monotonic() - t
        assert "did not finish within 2 s" in (src["rota"].error or "")
        assert took < 10, took  # bounded by the deadline, not by the body's length (~60 s)

    run(go)


def test_an_endless_body_stops_at_max_bytes(tmp_path: Path, feed: Feed) -> None:
    feed.mode = ("endless",)

    async def go() -> None:
        src = make(tmp_path, feed.url, timeout="20s", max_bytes="1MB")
        assert await src.refresh("rota", T0) is False
        assert "more than max_bytes (1 MB)" in (src["rota"].error or "")

    run(go)


def test_a_local_file_over_max_bytes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rota.ics").write_bytes(ICS + b"X-FILLER:" + b"x" * 300_000 + b"\r\n")

    async def go() -> None:
        src = make(tmp_path, "rota.ics", max_bytes="200KB")
        assert await src.refresh("rota", T0) is False
        assert "larger than max_bytes (200 KB)" in (src["rota"].error or "")

    run(go)


@pytest.mark.parametrize(
    ("location", "allowed"),
    [("/final.ics", True),  # same host, plain http on loopback: allowed as the source itself was
     ("http://calendar.example.invalid/rota.ics", False),  # plain http to another host: refused
     ("ftp://127.0.0.1/rota.ics", False)],
)
def test_redirects_keep_the_feeds_scheme_rules(tmp_path: Path, feed: Feed, location: str, allowed: bool) -> None:
    feed.mode = ("redirect", location)

    async def go() -> None:
        src = make(tmp_path, feed.url)
        changed = await src.refresh("rota", T0)
        if allowed:
            assert changed and await summaries(src) == ["On call: Alice"]
        else:
            assert not changed and "which its settings do not allow" in (src["rota"].error or "")
            assert not src["rota"].loaded

    run(go)


def test_redirect_loops_are_capped(tmp_path: Path, feed: Feed) -> None:
    feed.mode = ("redirect", "/again.ics")

    async def go() -> None:
        src = make(tmp_path, feed.url)
        assert await src.refresh("rota", T0) is False
        assert "redirected more than 5 times" in (src["rota"].error or "")
        assert len(feed.paths) == 6

    run(go)


def test_the_remembered_copy_belongs_to_its_source(tmp_path: Path, feed: Feed) -> None:
    """Changing a calendar's URL never serves the old URL's copy, even when the new one is down."""

    async def go() -> None:
        await make(tmp_path, feed.url).refresh("rota", T0)
        moved = make(tmp_path, feed.base + "/elsewhere.ics")
        feed.mode = ("status", 404)
        assert await moved.refresh("rota", T0 + dt.timedelta(minutes=5)) is False
        assert not moved["rota"].loaded and "HTTP 404" in (moved["rota"].error or "")

    run(go)


def test_a_cache_file_with_impossible_contents_is_a_miss(tmp_path: Path) -> None:
    async def go() -> None:
        (tmp_path / "rota.ics").write_bytes(ICS)
        await make(tmp_path, "rota.ics").refresh("rota", T0)
        meta_path = tmp_path / "state" / "calendars" / "rota.json"
        meta = json.loads(meta_path.read_text())
        meta["expansion"]["events"][0][0] = 10**20  # a start no clock can show
        meta["good_at"] = "not a time"
        meta_path.write_text(json.dumps(meta))
        again = make(tmp_path, "rota.ics")
        again.expander = counting = CountingExpander()
        assert await again.refresh("rota", T0 + dt.timedelta(hours=1))
        assert counting.names == ["rota"] and await summaries(again) == ["On call: Alice"]
        # and with the feed itself broken, the cached bytes still serve
        (tmp_path / "rota.ics").write_bytes(b"<html>gone</html>")
        meta_path.write_text(json.dumps(meta))
        down = make(tmp_path, "rota.ics")
        assert await down.refresh("rota", T0 + dt.timedelta(hours=2)) is True
        assert await summaries(down) == ["On call: Alice"] and down["rota"].good_at is None

    run(go)


def test_a_feed_that_suddenly_has_no_events_keeps_its_copy_until_max_age(tmp_path: Path, feed: Feed) -> None:
    empty = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nEND:VCALENDAR\r\n"

    async def go() -> None:
        src = make(tmp_path, feed.url)
        await src.refresh("rota", T0)
        feed.mode, feed.etag = ("ok", empty), '"v2"'
        assert await src.refresh("rota", T0 + dt.timedelta(minutes=10)) is False
        assert "suddenly has no events" in (src["rota"].error or "")
        assert await summaries(src) == ["On call: Alice"]
        # max_age (1 h) later the copy is stale: the empty feed is taken
        assert await src.refresh("rota", T0 + dt.timedelta(hours=2)) is True
        assert await summaries(src) == [] and src["rota"].error is None

    run(go)
