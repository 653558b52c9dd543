"""The page's server and its HTTP: snapshots read on the request's thread (never the daemon's event
loop), the bytes of a page rendered once per snapshot and kept in a small bounded cache, gzip when the
client takes it. Everything over 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gzip
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from forwardd.config import WebSettings
from forwardd.web.app import App, Unavailable
from forwardd.web.cache import PageCache
from forwardd.web.server import WebServer
from forwardd.web.snapshot import Snapshot

from .test_web import _snapshot, free_port


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def busy_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The daemon's event loop, running on its own thread and busy for as long as the test lasts (as in
    a large start-up): a callback scheduled on it does not run until the test ends."""
    loop = asyncio.new_event_loop()
    release = threading.Event()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    loop.call_soon_threadsafe(release.wait)
    yield loop
    release.set()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_requests_read_the_snapshot_on_their_own_thread_while_the_loop_is_busy(
        tmp_path: Path, busy_loop: asyncio.AbstractEventLoop) -> None:
    snap = _snapshot(tmp_path)
    threads: list[str] = []

    def source() -> Snapshot:
        threads.append(threading.current_thread().name)
        return snap

    server = WebServer(WebSettings(port=free_port()), source).start()  # (no loop to ask: the busy one is not its)
    try:
        status, _, body = get(server.url + "healthz")
        assert status == 200 and b'"status": "ok"' in body
        assert get(server.url + "status")[0] == 200 and get(server.url)[0] == 200
    finally:
        server.close()
    assert threads and all(name != "MainThread" and "forwardd-web" not in name for name in threads), threads


def test_no_snapshot_yet_is_503_and_healthz_says_so_in_json(tmp_path: Path) -> None:
    def nothing() -> Snapshot | None:
        return None

    def refused() -> Snapshot:
        raise Unavailable("no snapshot yet")

    for source in (nothing, refused):
        server = WebServer(WebSettings(port=free_port()), source).start()
        try:
            status, headers, body = get(server.url + "healthz")
            assert status == 503 and headers["Content-Type"] == "application/json"
            assert b'"status": "starting"' in body and b"no snapshot yet" in body
            assert get(server.url)[0] == 503
        finally:
            server.close()


def _call(app: App, path: str, query: str = "", headers: dict[str, str] | None = None, method: str = "GET"
          ) -> tuple[int, dict[str, str], bytes]:
    got: dict[str, Any] = {}

    def start_response(status: str, hs: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = int(status.split()[0]), dict(hs)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "HTTP_HOST": "127.0.0.1:8080",
               **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or {}).items()}}
    body = b"".join(app(environ, start_response))
    return got["status"], got["headers"], body


def test_a_page_is_rendered_once_per_snapshot_and_kept_until_the_next(tmp_path: Path) -> None:
    snap = dataclasses.replace(_snapshot(tmp_path), version=3)
    current = [snap]
    app = App(lambda: current[0])
    first = _call(app, "/")[2]
    assert _call(app, "/")[2] == first and _call(app, "/", "week=0")[2] == first
    assert app.cache.renders == 1
    _call(app, "/status"), _call(app, "/status"), _call(app, "/healthz"), _call(app, "/healthz")
    assert app.cache.renders == 3
    current[0] = dataclasses.replace(snap, version=4, now=snap.now + dt.timedelta(minutes=1))
    assert _call(app, "/")[2] != first and app.cache.renders == 4 and len(app.cache) == 1
    # the journal is read at each request: /history is never kept
    _call(app, "/history"), _call(app, "/history")
    assert app.cache.renders == 4


def test_requests_at_the_same_moment_wait_for_one_rendering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = dataclasses.replace(_snapshot(tmp_path), version=1)
    app = App(lambda: snap)
    slow = app.route

    def route(*args: Any) -> Any:
        time.sleep(0.3)  # long enough for every request below to arrive while the first renders
        return slow(*args)

    monkeypatch.setattr(app, "route", route)
    bodies: list[bytes] = []
    threads = [threading.Thread(target=lambda: bodies.append(_call(app, "/status")[2])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(bodies) == 8 and len(set(bodies)) == 1 and app.cache.renders == 1


def test_the_cache_stays_small_whatever_the_queries(tmp_path: Path) -> None:
    snap = dataclasses.replace(_snapshot(tmp_path), version=1)
    app = App(lambda: snap, cache=PageCache(max_entries=10, max_bytes=400_000))
    for i in range(60):
        assert _call(app, "/", f"q=line{i}", {"Accept-Encoding": "gzip"})[0] == 200
        assert len(app.cache) <= 10 and app.cache.size <= 400_000
    assert app.cache.renders == 60 and len(app.cache) == 10
    _call(app, "/", "q=line59")
    assert app.cache.renders == 60  # the newest are the ones kept


def test_pages_are_gzipped_for_a_client_that_takes_gzip(tmp_path: Path) -> None:
    app = App(lambda: _snapshot(tmp_path))
    plain_status, plain_headers, plain = _call(app, "/")
    assert plain_status == 200 and "Content-Encoding" not in plain_headers
    assert plain_headers["Vary"] == "Accept-Encoding"
    status, headers, body = _call(app, "/", headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert (status, headers["Content-Encoding"], headers["Vary"]) == (200, "gzip", "Accept-Encoding")
    assert gzip.decompress(body) == plain and len(body) < len(plain) / 4
    assert int(headers["Content-Length"]) == len(body)
    for refused in ("gzip;q=0", "br", "identity"):
        assert "Content-Encoding" not in _call(app, "/", headers={"Accept-Encoding": refused})[1]
    _, headers, body = _call(app, "/status", headers={"Accept-Encoding": "gzip"}, method="HEAD")
    assert body == b"" and headers["Content-Encoding"] == "gzip" and int(headers["Content-Length"]) > 0
    _, headers, body = _call(app, "/healthz", headers={"Accept-Encoding": "gzip"})
    assert json.loads(gzip.decompress(body) if headers.get("Content-Encoding") else body)["status"] == "ok"


def test_the_server_sends_gzip_over_http(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path)
    server = WebServer(WebSettings(port=free_port()), lambda: snap).start()
    try:
        status, headers, body = get(server.url, {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert b"Support line" in gzip.decompress(body)
    finally:
        server.close()
