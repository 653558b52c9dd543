"""The page's server and its HTTP: snapshots read on the request's thread (never the daemon's event
loop), the bytes of a page rendered once per snapshot and kept in a small bounded cache, gzip when the
client takes it. Everything over 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from forwardd.config import WebSettings
from forwardd.web.app import Unavailable
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

    server = WebServer(WebSettings(port=free_port()), source, busy_loop).start()
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
