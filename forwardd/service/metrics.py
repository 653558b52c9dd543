"""Prometheus metrics, through prometheus-client (exposition format, label escaping and the standard
process metrics are its job). One registry per daemon, kept across reloads."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.last_success = Gauge("forwardd_last_success_timestamp_seconds",
                                  "When the number was last confirmed to hold its program", ["voipnumber"], registry=r)
        self.failures = Counter("forwardd_reconcile_failures", "Reconcile passes that did not confirm the number",
                                ["voipnumber"], registry=r)
        self.lateness = Gauge("forwardd_handover_lateness_seconds",
                              "How late the last exact hand-over was confirmed", ["voipnumber"], registry=r)
        self.calendar_age = Gauge("forwardd_calendar_age_seconds", "Age of the calendar's last good copy",
                                  ["calendar"], registry=r)
        self.requests = Counter("forwardd_aql_requests", "Requests sent to aql", ["action"], registry=r)
        self.throttled = Counter("forwardd_aql_throttled", "aql answers of HTTP 429 or 503", registry=r)
        self.journal_ok = Gauge("forwardd_journal_healthy", "1 while the journal can be written", registry=r)
        self.leader = Gauge("forwardd_leader", "1 while this instance may send changes to aql", registry=r)
        self.notices = Counter("forwardd_notices", "Notices to people, by outcome", ["outcome"], registry=r)
        self.journal_ok.set(1)
        self.leader.set(1)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, port: int) -> None:
        """Serve ``/metrics`` on 127.0.0.1:``port`` (the old metrics port; the page serves it too)."""
        self._server, self._thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
