"""The page's HTTP server: stdlib wsgiref, one thread per request, beside the daemon's event loop. An edge:
built and closed by the composition root (``Services``), handed over whole on a reload (the port stays
bound, and the same ``source`` keeps answering with whichever set of services is current).

``source`` returns the snapshot the engine published last (``snapshot.Snapshot``, immutable) and is
called on the request's own thread: a request never waits for the daemon's event loop, so ``/healthz``,
``/`` and ``/status`` answer while the daemon is busy (a large start-up, a hand-over storm). It raises
``Unavailable`` (or returns None) while nothing has been published yet.
"""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import threading
from typing import Any, Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import structlog

from ..config import WebSettings
from ..errors import ForwarddError
from .app import App
from .snapshot import Snapshot

log = structlog.get_logger("forwardd.web")


class _Handler(WSGIRequestHandler):
    timeout = 30  # a client that opens a connection and says nothing does not hold a thread for ever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("web_request", client=self.client_address[0], request=format % args)


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def is_loopback(listen: str) -> bool:
    if listen.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(listen.strip("[]")).is_loopback
    except ValueError:
        return False


class WebServer:
    """Serves the page on ``settings.listen``:``settings.port`` from a thread. ``start()`` binds (raises
    ForwarddError naming the address when it cannot); ``close()`` stops it. ``source`` may be replaced
    while serving (a reload hands the server to the new set of services). The page never asks the
    daemon's event loop for anything: ``source`` gives the last published snapshot from any thread."""

    def __init__(self, settings: WebSettings, source: Callable[[], Snapshot | None]) -> None:
        if settings.port is None:
            raise ValueError("the page has no port configured")
        self.settings = settings
        self.source = source
        self.app = App(self._snapshot, loopback_only=is_loopback(settings.listen))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self.settings.port is not None
        return self.settings.listen, self.settings.port

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def serves(self, settings: WebSettings) -> bool:
        """Whether this server already listens where ``settings`` asks (a reload keeps it then)."""
        return self._server is not None and (settings.listen, settings.port) == self.address

    def start(self) -> WebServer:
        host, port = self.address
        cls = _Server6 if ":" in host else _Server
        try:
            server = cls((host, port), _Handler)
        except OSError as err:
            raise ForwarddError(f"cannot serve the page on {self.url}: {err.strerror or err}") from None
        server.set_app(self.app)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="forwardd-web", daemon=True)
        self._thread.start()
        log.info("web_serving", url=self.url, remote=not is_loopback(host))
        return self

    def _snapshot(self) -> Snapshot | None:
        """The snapshot published last, taken on this (the request's) thread; None while there is none.
        ``source`` is read at each request: a reload may have replaced it."""
        return self.source()

    def close(self) -> None:
        """Stop serving and release the port (safe to call twice)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        log.info("web_stopped", url=self.url)
