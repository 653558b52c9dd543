"""The page as a WSGI application: ``/`` (the week), ``/status``, ``/history``, ``/metrics``, ``/healthz``.

Read-only (GET and HEAD), no login: it is meant for 127.0.0.1, where requests naming another host are
refused, so that a web site cannot read it through DNS rebinding. Each request takes one snapshot of
the daemon's state through ``source`` and renders from that, so a page never mixes two sets of services.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any, Callable, Iterable

import structlog
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..aql.numbers import is_voipnumber
from .health import health, starting_words
from .history import history_view
from .lines import PageOutOfRange
from .render import error_page, history_page, status_page, week_page
from .snapshot import Snapshot
from .status import status_view
from .week import plan_warnings, week_count, week_view

log = structlog.get_logger("forwardd.web")

StartResponse = Callable[..., Any]
Response = tuple[str, str, bytes, dict[str, str]]  # status, content type, body, extra headers

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
_LOOPBACK_HOST = re.compile(r"^(127(?:\.\d{1,3}){3}|localhost|\[::1\])(:\d+)?$", re.IGNORECASE)


class Unavailable(Exception):
    """No snapshot could be had (the daemon is stopping, or too busy to answer in time)."""


class App:
    """``source`` gives the current snapshot; ``loopback_only`` refuses requests for other host names."""

    def __init__(self, source: Callable[[], Snapshot], loopback_only: bool = True) -> None:
        self.source = source
        self.loopback_only = loopback_only

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if method not in ("GET", "HEAD"):
                status, ctype, body, extra = _error("405 Method Not Allowed", "this page is read-only")
                extra = {**extra, "Allow": "GET, HEAD"}
            elif self.loopback_only and not _LOOPBACK_HOST.match(environ.get("HTTP_HOST") or "127.0.0.1"):
                status, ctype, body, extra = _error("421 Misdirected Request",
                                                    "this page answers only to 127.0.0.1 and localhost")
            else:
                status, ctype, body, extra = self.route(environ.get("PATH_INFO") or "/",
                                                        urllib.parse.parse_qs(environ.get("QUERY_STRING") or ""))
        except Unavailable as err:
            if environ.get("PATH_INFO") == "/healthz":
                doc = {"ok": False, "status": "starting", "reasons": [f"forwardd cannot answer yet: {err}"]}
                status, ctype, body, extra = "503 Service Unavailable", JSON, json.dumps(doc, indent=2).encode(), {}
            else:
                status, ctype, body, extra = _error("503 Service Unavailable", f"forwardd cannot answer now: {err}")
        except Exception:  # noqa: BLE001 - one bad page must not take the server down; the log has why
            log.exception("web_error", path=environ.get("PATH_INFO"))
            status, ctype, body, extra = _error("500 Internal Server Error", "this page failed; the log says why")
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), *SECURITY_HEADERS.items(),
                   *extra.items()]
        start_response(status, headers)
        return [b""] if method == "HEAD" else [body]

    def route(self, path: str, query: dict[str, list[str]]) -> Response:
        if path == "/favicon.ico":
            return "204 No Content", "text/plain", b"", {}
        if path not in ("/", "/status", "/history", "/metrics", "/healthz"):
            return _error("404 Not Found", f"there is no page {path}; try the week, status or history")
        try:
            snap = self.source()
        except Unavailable:
            raise
        except Exception as err:  # the daemon could not be asked (stopping, its loop closed)
            raise Unavailable(str(err) or type(err).__name__) from err
        if path == "/healthz":
            h = health(snap)
            return ("200 OK" if h.ok else "503 Service Unavailable"), JSON, \
                json.dumps(h.json(snap.now), indent=2).encode(), {}
        if path == "/metrics":
            if snap.metrics is None:
                return _error("404 Not Found", "no metrics here")
            return "200 OK", CONTENT_TYPE_LATEST, snap.metrics(), {}
        number = _one(query, "number")
        if path == "/history":
            if number is not None and not is_voipnumber(number):
                return _error("400 Bad Request", "number= takes an aql VoIP number (6 digits)")
            view = history_view(snap.cfg, snap.journal, number)
            return ("200 OK" if view.error is None else "503 Service Unavailable"), HTML, \
                history_page(snap.cfg, view).encode(), {}
        if path == "/status":
            page = _one(query, "page")
            if page is not None and not (page.isdigit() and int(page) >= 1):
                return _error("404 Not Found", "page= takes a page number: 1, 2, ...")
            try:
                status = status_view(snap, _one(query, "q"), int(page) - 1 if page else 0,
                                     attention=_one(query, "only") == "attention")
            except PageOutOfRange as err:
                return _error("404 Not Found", str(err))
            return "200 OK", HTML, status_page(status).encode(), {}
        return self.week(snap, number, _one(query, "week"), _one(query, "q"), _one(query, "page"))

    def week(self, snap: Snapshot, number: str | None, week: str | None, q: str | None, page: str | None
             ) -> Response:
        """``/``: the week ``week`` (0 = the plan's first), of the one line ``number`` or of page ``page``
        (1 = the first) of the lines that match ``q``."""
        cfg, plan = snap.cfg, snap.plan
        if number is not None and number not in {n.voipnumber for n in cfg.numbers}:
            return _error("404 Not Found", f"{number} is not one of the numbers forwardd manages")
        if page is not None and not (page.isdigit() and int(page) >= 1):
            return _error("404 Not Found", "page= takes a page number: 1, 2, ...")
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
        try:
            view = week_view(cfg, plan, k, now=snap.now, number=number, q=q, page=int(page) - 1 if page else 0)
        except PageOutOfRange as err:
            return _error("404 Not Found", str(err))
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
