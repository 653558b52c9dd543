"""Calendar sources against a real HTTP feed on 127.0.0.1: conditional requests, failures, last good copy."""

from __future__ import annotations

import datetime as dt
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from forwardd.calendars.sources import Sources
from forwardd.config import config_from_dict

from .conftest import UTC

ICS = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n"
       b"DTSTART;TZID=Europe/London:20261201T173000\r\nDTEND;TZID=Europe/London:20261202T090000\r\n"
       b"SUMMARY:On call: Alice\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
ICS2 = ICS.replace(b"Alice", b"Bob")


class Feed:
    """What the feed serves next: ('ok', body) / ('html',) / ('status', code) / ('stall', seconds)."""

    def __init__(self) -> None:
        self.mode: tuple = ("ok", ICS)
        self.requests: list[dict[str, str]] = []
        self.etag = '"v1"'


def serve(feed: Feed) -> ThreadingHTTPServer:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            feed.requests.append(dict(self.headers))
            kind = feed.mode[0]
            if kind == "stall":
                time.sleep(feed.mode[1])
            if kind == "status":
                self.send_response(feed.mode[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if kind == "ok" and self.headers.get("If-None-Match") == feed.etag:
                self.send_response(304)
                self.end_headers()
                return
            body = feed.mode[1] if kind == "ok" else b"<html><body><form>Sign in to Outlook</form></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar" if kind == "ok" else "text/html")
            self.send_header("ETag", feed.etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except BrokenPipeError:
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
    yield f
    srv.shutdown()
    srv.server_close()


def make(tmp_path: Path, url: str) -> Sources:
    cfg = config_from_dict(
        {"people": {"alice": "07700 900001", "bob": "07700 900002"},
         "calendars": {"rota": {"source": url, "timeout": "1s", "max_age": "1h"}},
         "numbers": [{"voipnumber": "606309", "rota": "rota"}]},
        base_dir=tmp_path, env={},
    )
    return Sources(cfg, tmp_path / "state")


def summaries(src: Sources) -> list[str]:
    cal = src["rota"].calendar
    assert cal is not None
    start = dt.datetime(2026, 12, 1, tzinfo=UTC)
    events, _ = cal.events_between(start, start + dt.timedelta(days=2))
    return [e.summary for e in events]


T0 = dt.datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_200_then_304_on_a_conditional_request(tmp_path: Path, feed: Feed) -> None:
    src = make(tmp_path, feed.url)
    assert src.refresh("rota", T0) is True
    assert summaries(src) == ["On call: Alice"]
    assert src.refresh("rota", T0 + dt.timedelta(minutes=15)) is False
    assert feed.requests[-1].get("If-None-Match") == '"v1"'
    assert src["rota"].error is None and src["rota"].good_at == T0 + dt.timedelta(minutes=15)
    assert (tmp_path / "state" / "calendars" / "rota.ics").read_bytes() == ICS


@pytest.mark.parametrize(
    ("mode", "message"),
    [(("status", 500), "HTTP 500"), (("status", 404), "HTTP 404"), (("html",), "HTML page"),
     (("stall", 3), "did not answer within 1 s"), (("ok", b""), "empty"), (("ok", ICS[:60]), "truncated")],
)
def test_failures_keep_the_last_good_copy_and_are_reported(tmp_path: Path, feed: Feed, mode: tuple, message: str) -> None:
    src = make(tmp_path, feed.url)
    src.refresh("rota", T0)
    feed.mode, feed.etag = mode, '"v2"'
    assert src.refresh("rota", T0 + dt.timedelta(hours=2)) is False
    assert message in (src["rota"].error or "")
    assert summaries(src) == ["On call: Alice"]  # the last good copy keeps serving
    assert src["rota"].stale(T0 + dt.timedelta(hours=2))  # and is known to be older than max_age


def test_a_restart_with_the_feed_down_plans_from_the_cached_copy(tmp_path: Path, feed: Feed) -> None:
    make(tmp_path, feed.url).refresh("rota", T0)
    feed.mode = ("status", 503)
    fresh = make(tmp_path, feed.url)
    assert fresh.refresh("rota", T0 + dt.timedelta(hours=1)) is True
    assert "HTTP 503" in (fresh["rota"].error or "")
    assert summaries(fresh) == ["On call: Alice"]
    assert fresh["rota"].good_at == T0


def test_a_changed_feed_replaces_the_copy(tmp_path: Path, feed: Feed) -> None:
    src = make(tmp_path, feed.url)
    src.refresh("rota", T0)
    feed.mode, feed.etag = ("ok", ICS2), '"v2"'
    assert src.refresh("rota", T0 + dt.timedelta(minutes=15)) is True
    assert summaries(src) == ["On call: Bob"]


def test_a_broken_local_file_keeps_the_last_good_copy(tmp_path: Path) -> None:
    path = tmp_path / "rota.ics"
    path.write_bytes(ICS)
    src = make(tmp_path, "rota.ics")
    assert src.refresh("rota", T0)
    path.write_bytes(b"\x00\x01garbage")
    assert not src.refresh("rota", T0 + dt.timedelta(minutes=1))
    assert "not iCalendar" in (src["rota"].error or "")
    assert summaries(src) == ["On call: Alice"]


def test_builtin_bank_holidays_need_no_feed(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {"calendars": {"bh": {"builtin": "GB-SCT"}}, "numbers": [{"voipnumber": "606309", "holidays": ["bh"],
                                                                   "fallback": "07700 900001"}]},
        base_dir=tmp_path, env={})
    src = Sources(cfg, None)
    src.refresh("bh", T0)
    cal = src["bh"].calendar
    events, _ = cal.events_between(dt.datetime(2026, 11, 28, tzinfo=UTC), dt.datetime(2026, 12, 3, tzinfo=UTC))
    assert len(events) == 1 and "Andrew" in events[0].summary  # Scotland's, not England's
    assert events[0].start == dt.datetime(2026, 11, 30, tzinfo=UTC)


def test_a_restart_with_unchanged_bytes_does_not_parse_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forwardd.calendars import sources as sources_mod
    from forwardd.calendars.parse import RememberedCalendar

    (tmp_path / "rota.ics").write_bytes(ICS)
    first = make(tmp_path, "rota.ics")
    first.refresh("rota", T0)
    want = summaries(first)

    parses = []
    real = sources_mod.parse_calendar
    monkeypatch.setattr(sources_mod, "parse_calendar", lambda *a: parses.append(a[0]) or real(*a))
    again = make(tmp_path, "rota.ics")
    assert again.refresh("rota", T0 + dt.timedelta(hours=1))
    assert isinstance(again["rota"].calendar, RememberedCalendar) and parses == []
    assert summaries(again) == want
    # different bytes: parsed, and the new events served
    (tmp_path / "rota.ics").write_bytes(ICS2)
    third = make(tmp_path, "rota.ics")
    third.refresh("rota", T0 + dt.timedelta(hours=2))
    assert parses == ["rota"] and summaries(third) == ["On call: Bob"]
