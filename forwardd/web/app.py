"""The page as a WSGI application: ``/`` (the week), ``/status``, ``/history``, ``/metrics``, ``/healthz``.

Read-only (GET and HEAD), no login: it is meant for 127.0.0.1, where requests naming another host are
refused, so that a web site cannot read it through DNS rebinding. Each request takes the snapshot the
daemon published last through ``source`` and answers from that alone, so a page never mixes two sets of
services. ``/``, ``/status`` and ``/healthz`` are rendered once per snapshot and kept (``cache``); every
page is sent gzipped to a client that says it takes gzip.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any, Callable, Iterable

import structlog
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..config.types import is_voipnumber
from .cache import GZIP_MIN, Entry, PageCache, Response, accepts_gzip, gzipped
from .health import health, starting_words
from .history import history_view
from .lines import PageOutOfRange
from .render import error_page, history_page, status_page, week_page
from .snapshot import Snapshot
from .status import status_view
from .week import plan_warnings, week_count, week_view

log = structlog.get_logger("forwardd.web")

StartResponse = Callable[..., Any]

HTML = "text/html; charset=utf-8"
JSON = "application/json"
SECURITY_HEADERS = {
    # no script may run, nothing may be fetched: the page is inline CSS and text
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
PAGES = ("/", "/status", "/history", "/metrics", "/healthz")
KEPT = ("/", "/status", "/healthz")  # made from the snapshot alone: kept until the next one
QUERY = ("number", "week", "q", "page", "only")  # the query parameters a page reads (others do not make a page)
DEFAULTS = {"week": "0", "page": "1"}  # /?week=0 is /
_LOOPBACK_HOST = re.compile(r"^(127(?:\.\d{1,3}){3}|localhost|\[::1\])(:\d+)?$", re.IGNORECASE)


class Unavailable(Exception):
    """No snapshot can be had: nothing has been published yet, or the daemon is stopping."""


class App:
    """``source`` gives the snapshot published last (None, or Unavailable, while there is none);
    ``loopback_only`` refuses requests for other host names."""

    def __init__(self, source: Callable[[], Snapshot | None], loopback_only: bool = True,
                 cache: PageCache | None = None) -> None:
        self.source = source
        self.loopback_only = loopback_only
        self.cache = cache if cache is not None else PageCache()  # (an empty cache is falsy)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO") or "/"
        entry: Entry | None = None
        try:
            if method not in ("GET", "HEAD"):
                response = _error("405 Method Not Allowed", "this page is read-only")
                response = (*response[:3], {**response[3], "Allow": "GET, HEAD"})
            elif self.loopback_only and not _LOOPBACK_HOST.match(environ.get("HTTP_HOST") or "127.0.0.1"):
                response = _error("421 Misdirected Request", "this page answers only to 127.0.0.1 and localhost")
            elif path not in PAGES:
                response = _error("404 Not Found", f"there is no page {path}; try the week, status or history") \
                    if path != "/favicon.ico" else ("204 No Content", "text/plain", b"", {})
            else:
                query = urllib.parse.parse_qs(environ.get("QUERY_STRING") or "")
                snap = self._snapshot()
                if path in KEPT:
                    key = (path, tuple((k, _one(query, k) or DEFAULTS.get(k)) for k in QUERY))
                    entry = self.cache.get(snap, key, lambda: self.route(snap, path, query))
                    response = entry.response
                else:
                    response = self.route(snap, path, query)
        except Unavailable as err:
            response = _unavailable(path, str(err))
        except Exception:  # noqa: BLE001 - one bad page must not take the server down; the log has why
            log.exception("web_error", path=path)
            response = _error("500 Internal Server Error", "this page failed; the log says why")
        status, ctype, body, extra = response
        headers = {"Content-Type": ctype, **SECURITY_HEADERS, **extra}
        if path in PAGES and status[:3] not in ("204", "304"):
            headers["Vary"] = "Accept-Encoding"
            if len(body) >= GZIP_MIN and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING")):
                body = self.cache.body(entry, True) if entry is not None else gzipped(body)
                headers["Content-Encoding"] = "gzip"
        headers["Content-Length"] = str(len(body))
        start_response(status, list(headers.items()))
        return [b""] if method == "HEAD" else [body]

    def _snapshot(self) -> Snapshot:
        """The snapshot published last. Raises Unavailable while there is none."""
        try:
            snap = self.source()
        except Unavailable:
            raise
        except Exception as err:  # the daemon could not be asked (stopping)
            raise Unavailable(str(err) or type(err).__name__) from err
        if snap is None:
            raise Unavailable("no snapshot yet: forwardd is starting")
        return snap

    def route(self, snap: Snapshot, path: str, query: dict[str, list[str]]) -> Response:
        """The response to ``path`` (one of PAGES) with ``query``, made from ``snap``."""
        if path == "/healthz":
            h = health(snap)
            return ("200 OK" if h.ok else "503 Service Unavailable"), JSON, \
                json.dumps(h.json(snap.now), indent=2).encode(), {}
        if path == "/metrics":
            if snap.metrics is None:
                return _error("404 Not Found", "no metrics here")
            return "200 OK", CONTENT_TYPE_LATEST, snap.metrics(), {}
        number, page = _one(query, "number"), _one(query, "page")
        if path == "/history":
            if number is not None and not is_voipnumber(number):
                return _error("400 Bad Request", "number= takes an aql VoIP number (6 digits)")
            view = history_view(snap.cfg, snap.journal, number)
            return ("200 OK" if view.error is None else "503 Service Unavailable"), HTML, \
                history_page(snap.cfg, view).encode(), {}
        if page is not None and not (page.isdigit() and int(page) >= 1):
            return _error("404 Not Found", "page= takes a page number: 1, 2, ...")
        k = int(page) - 1 if page else 0
        try:
            if path == "/status":
                status = status_view(snap, _one(query, "q"), k, attention=_one(query, "only") == "attention")
                return "200 OK", HTML, status_page(status).encode(), {}
            return self.week(snap, number, _one(query, "week"), _one(query, "q"), k)
        except PageOutOfRange as err:
            return _error("404 Not Found", str(err))

    def week(self, snap: Snapshot, number: str | None, week: str | None, q: str | None, page: int) -> Response:
        """``/``: the week ``week`` (0 = the plan's first), of the one line ``number`` or of page ``page``
        (0 = the first) of the lines that match ``q``. Raises PageOutOfRange."""
        cfg, plan = snap.cfg, snap.plan
        if number is not None and number not in {n.voipnumber for n in cfg.numbers}:
            return _error("404 Not Found", f"{number} is not one of the numbers forwardd manages")
        if plan is None:
            return _error("503 Service Unavailable", "no plan yet: forwardd is starting and reading the calendars",
                          refresh=5)
        weeks = week_count(plan, cfg.tz)
        if week is None:
            k = 0
        elif week.isdigit() and int(week) < weeks:
            k = int(week)
        else:
            return _error("404 Not Found", f"week= takes 0 to {weeks - 1}: the plan covers {weeks} week(s)")
        view = week_view(cfg, plan, k, now=snap.now, number=number, q=q, page=page)
        warnings = plan_warnings(plan, cfg, number)
        starting = starting_words(snap.starting).capitalize() if snap.starting is not None else None
        return "200 OK", HTML, week_page(cfg, [view], plan, served=True, warnings=warnings,
                                         starting=starting).encode(), {}


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = [v for v in query.get(key, []) if v.strip()]
    return values[-1].strip() if values else None


def _error(status: str, message: str, refresh: int | None = None) -> Response:
    body = error_page(status, message).encode()
    return status, HTML, body, ({"Refresh": str(refresh)} if refresh else {})


def _unavailable(path: str, why: str) -> Response:
    """503 while no snapshot can be had: in JSON on /healthz (state "starting"), else a page."""
    if path == "/healthz":
        doc = {"ok": False, "status": "starting", "reasons": [f"forwardd cannot answer yet: {why}"]}
        return "503 Service Unavailable", JSON, json.dumps(doc, indent=2).encode(), {}
    return _error("503 Service Unavailable", f"forwardd cannot answer now: {why}", refresh=5)
