"""The daemon as a process: the engine (``engine.Engine``, every rule of when forwardd reads and
writes) on the wall clock, plus what only a process has: signals, systemd's notify socket, watchdog and
status line, the metrics' hooks, the page's source, and reloads (``reload.Reloader``).

SIGTERM (or Ctrl-C) at any moment, start-up included: the passes in flight get a few seconds to finish,
the journal is flushed, and the process exits 0 within 5 s. SIGHUP, or the config file changing,
reloads. The page and /healthz read the engine's last published snapshot from their own threads, so
they answer at once however busy the engine is.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

import structlog

from ..clock import Clock, SystemClock
from ..config import Config
from ..store.ports import EntryKind
from ..web.snapshot import Snapshot, Starting
from .engine import Engine
from .metrics import Metrics
from .reload import Reloader
from .services import Services

log = structlog.get_logger("forwardd.daemon")
STOP_GRACE_S = 2.5  # passes in flight may finish within this at SIGTERM
CLOSE_S = 2.0  # ... and closing the edges (the journal's last entries among them) within this
STATUS_EVERY_S = 5.0


def sd_notify(message: str) -> bool:
    """Send ``message`` to systemd's NOTIFY_SOCKET if there is one; True when sent."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
        return True
    except OSError as err:
        log.warning("sd_notify_failed", error=str(err))
        return False


class Daemon:
    def __init__(self, cfg: Config, config_path: str | Path, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.config_path = Path(config_path)
        self.clock = clock or SystemClock()
        self.stopping = asyncio.Event()
        self.metrics = Metrics(self.clock)
        self.engine: Engine | None = None
        self.services: Services | None = None  # the first set, until the engine has it
        self.reloader: Reloader | None = None

    def snapshot(self) -> Snapshot:
        """What the page shows (called from its threads): the engine's last published snapshot."""
        engine = self.engine
        if engine is None:
            return Snapshot(self.cfg, self.clock.now(), metrics=self.metrics.text,
                            starting=Starting(0, len(self.cfg.numbers)))
        return engine.snapshot()

    def wire(self, sv: Services) -> None:
        """Point a set of services' hooks at the daemon's metrics."""
        for name, edges in sv.accounts.items():
            edges.carrier.on_request = lambda action, n=name: self.metrics.requests.labels(action, n).inc()
            edges.reconciler.on_throttled = lambda n=name: self.metrics.throttled.labels(n).inc()
        if sv.journal is not None:
            journal = sv.journal
            self.metrics.journal_ok.set_function(lambda: 1.0 if journal.healthy else 0.0)

    # ------------------------------------------------------------------------------------------ life

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # Signals first: a SIGHUP or SIGTERM during start-up must not kill the process mid-change.
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        main = loop.create_task(self._main())
        stop = loop.create_task(self.stopping.wait())
        await asyncio.wait({main, stop}, return_when=asyncio.FIRST_COMPLETED)
        if main.done() and not main.cancelled() and main.exception() is not None:
            stop.cancel()
            raise main.exception()  # type: ignore[misc]
        self.stopping.set()
        return await self._shutdown(main)

    def request_reload(self) -> None:
        if self.reloader is not None:
            self.reloader.request()

    async def _main(self) -> None:
        sv = self.services = await Services.open(self.cfg, aql=True, exclusive=True, journal="write", clock=self.clock,
                                                 web=self.snapshot)
        self.wire(sv)
        engine = self.engine = Engine(sv, self.clock, metrics=self.metrics)
        self.reloader = Reloader(engine, self.config_path, self.snapshot, self.wire)
        log.info("starting", config=str(self.config_path), numbers=len(self.cfg.numbers),
                 accounts={name: ("simulated" if e.simulated is not None else e.settings.url)
                           for name, e in sv.accounts.items()},
                 state_dir=str(sv.state.path) if sv.state else None)
        assert sv.journal is not None
        sv.journal.record(EntryKind.START.value, self.clock.now(), None, None, config=str(self.config_path),
                          pid=os.getpid())
        self.metrics.leader.set(1.0 if sv.lease is None else 0.0)
        await engine.start()
        refresh = min((c.refresh.total_seconds() for c in self.cfg.calendars.values()), default=30.0)
        engine.timers.every(min(max(refresh, 1.0), 30.0), self.reloader.watch)
        engine.timers.every(STATUS_EVERY_S, self._status_line)
        watchdog = os.environ.get("WATCHDOG_USEC")
        if watchdog:
            engine.timers.every(int(watchdog) / 2e6, lambda: sd_notify("WATCHDOG=1"))
        if self.cfg.daemon.metrics_port is not None:
            self.metrics.serve(self.cfg.daemon.metrics_port)
        sd_notify("READY=1\nSTATUS=running")
        self._status_line()
        self.reloader.pending()
        await self.stopping.wait()

    def _status_line(self) -> None:
        """systemd's status line: how many lines are confirmed, or who leads (a standby)."""
        engine = self.engine
        if engine is None:
            return
        sv = engine.sv
        now = self.clock.now().isoformat(timespec="seconds")
        if sv.lease is not None and not engine.sending:
            st = sv.lease.status()
            sd_notify(f"STATUS=standby ({st.leader + ' leads' if st.leader else 'no leader known'}) at {now}")
            return
        snap = engine.published
        total = len(engine.cfg.numbers)
        confirmed = total - len(snap.unconfirmed) if snap is not None else 0
        word = "starting: " if engine.starting is not None or not engine.ready else ""
        sd_notify(f"STATUS={word}{confirmed}/{total} numbers confirmed at {now}")

    async def _shutdown(self, main: asyncio.Task[Any]) -> int:
        sd_notify("STOPPING=1")
        engine = self.engine
        in_flight = sum(len(lane.running) for lane in engine.lanes.values()) if engine is not None else 0
        log.info("stopping", in_flight=in_flight)
        if engine is not None:
            try:
                await asyncio.wait_for(engine.stop(STOP_GRACE_S), STOP_GRACE_S + 0.5)
            except TimeoutError:
                engine.crash()
        main.cancel()
        self.metrics.stop()
        sv = engine.sv if engine is not None else self.services
        if sv is not None:
            if sv.journal is not None:
                sv.journal.record(EntryKind.STOP.value, self.clock.now(), None, None)
            try:
                await asyncio.wait_for(sv.close(), CLOSE_S)
            except TimeoutError:
                log.warning("close_timeout")
        return 0


def run_daemon(cfg: Config, config_path: str | Path) -> int:
    async def main() -> int:
        return await Daemon(cfg, config_path).run()

    return asyncio.run(main())
