"""Prometheus metrics, through prometheus-client (exposition format, label escaping and the standard
process metrics are its job). One registry per daemon, kept across reloads. Figures that move with time
(a calendar's age) or live in the current services (each line's credit) are computed when scraped, not
when last refreshed."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping
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
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from ..clock import Clock, SystemClock

if TYPE_CHECKING:
    from ..calendars.sources import SourceState
    from ..core.credit import CreditState

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class _CalendarAges(Collector):
    """``forwardd_calendar_age_seconds``, each calendar's last good copy's age at the moment of the scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily("forwardd_calendar_age_seconds", "Age of the calendar's last good copy, now",
                                   labels=["calendar"])
        sources = self.metrics.sources
        if sources is not None:
            now = self.metrics.clock.now()
            for name, st in sources().items():
                age = st.age(now)
                if age is not None:
                    family.add_metric([name], age.total_seconds())
        yield family

    def describe(self) -> Iterator[Any]:
        return iter(())


class _Credit(Collector):
    """``forwardd_credit``, each line's credit at its last read, and ``forwardd_credit_days_left``, how long
    it lasts at the last 7 days' rate (where the readings say), from the credit watch at the scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        credit = GaugeMetricFamily("forwardd_credit", "The line's credit at its last read", labels=["voipnumber"])
        days = GaugeMetricFamily("forwardd_credit_days_left", "Days the line's credit lasts at the last 7 days' rate",
                                 labels=["voipnumber"])
        states = self.metrics.credit() if self.metrics.credit is not None else {}
        for number, st in sorted(states.items()):
            if st.amount is not None:
                credit.add_metric([number], float(st.amount))
            if st.days_left is not None:
                days.add_metric([number], st.days_left)
        yield credit
        yield days

    def describe(self) -> Iterator[Any]:
        return iter(())


class Metrics:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.sources: Callable[[], Mapping[str, SourceState]] | None = None  # the current calendars (engine)
        self.credit: Callable[[], Mapping[str, CreditState]] | None = None  # each line's credit (engine)
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
        r.register(_CalendarAges(self))
        r.register(_Credit(self))
        self.requests = Counter("forwardd_aql_requests", "Requests sent to aql", ["action", "account"], registry=r)
        self.throttled = Counter("forwardd_aql_throttled", "aql answers of HTTP 429 or 503", ["account"], registry=r)
        self.drift_interval = Gauge("forwardd_drift_check_interval_seconds",
                                    "How often each line of the account is read for hand-made changes (the "
                                    "configured interval, or longer when the request cap needs it)", ["account"],
                                    registry=r)
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
