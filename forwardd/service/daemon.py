"""The daemon: APScheduler jobs around the reconciler, signals, safe reloads, sd_notify, metrics.

Jobs: calendar refresh (each source on its own interval; a change re-plans; a changed config file is
reloaded as on SIGHUP), a re-plan at least every ``replan_every``, a reconcile pass over every number
every ``reconcile_every`` and at start-up, and one job per planned ``apply_from`` in the coming hours
(exact hand-overs are sent at the boundary and their lateness is logged). Calendar work never waits
behind aql work: a refresh that changes a plan starts the passes it needs and returns.

A reload (SIGHUP, or the config file changing) builds a whole new set of services, tells the old
reconciler to stop at its next safe point, waits (bounded) for the passes in flight on the old set,
swaps, then closes the old set; reloads asked for while one runs are folded into one more. Passes on
one number never overlap: each number has one lock for the daemon's life. SIGTERM lets the passes in
flight finish (bounded), then exits 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
from pathlib import Path
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ..clock import Clock, SystemClock
from ..config import Config, load_config
from ..core.plan import program_at
from ..core.timeline import Kind
from ..errors import ConfigError, ForwarddError
from ..web.views import Snapshot
from .metrics import Metrics
from .reconcile import Outcome, differing
from .services import Services

log = structlog.get_logger("forwardd.daemon")
UTC = dt.timezone.utc


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
        self.config_mtime = self._config_mtime()
        self.clock = clock or SystemClock()
        self.stopping = asyncio.Event()
        self.metrics = Metrics()
        self.locks: dict[str, asyncio.Lock] = {}
        self.tasks: dict[int, set[asyncio.Task[Any]]] = {}  # id(services) -> passes running on them
        self.services: Services | None = None
        self.ready = False
        self._reloading = False
        self._reload_again = False
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------------------------- planning

    async def replan(self) -> None:
        sv = self._sv()
        now = self.clock.now()
        sv.plan = await sv.make_plan()
        self._alert_findings(sv, now)
        self._schedule_changes(now)
        log.info("replanned", numbers=len(sv.plan.numbers), changes=sum(len(n.changes) for n in sv.plan.numbers))

    def _alert_findings(self, sv: Services, now: dt.datetime) -> None:
        """Alert what people must look at, once each (the alert state outlives restarts): an event that
        routes calls nowhere (it names nobody, two people, or a number nobody allowed), and a coverage
        gap starting within ``alerts.gap_ahead``, one alert per gap whatever the numbers it leaves
        uncovered. Past ones never; a gap that is no longer planned is cleared."""
        assert sv.plan is not None
        ahead = now + self.cfg.alerts.gap_ahead
        seen: set[str] = set()
        for v, f in sv.plan.warnings:
            if f.kind in ("unnamed", "two_names", "disallowed") and f.end is not None and f.end > now:
                key = f"event:{f.key}"
                seen.add(key)
                sv.alerts.raise_(key, f"{v + ': ' if v else ''}{f.message}", now, v)
            elif f.kind not in ("gap",):
                log.info("plan_warning", voipnumber=v, kind=f.kind, message=f.message)
        gaps: dict[tuple[dt.datetime, dt.datetime], list[str]] = {}
        for n in sv.plan.numbers:
            for s in n.segments:
                if s.kind is Kind.GAP and s.end > now and s.start < ahead:
                    gaps.setdefault((s.start, s.end), []).append(self.cfg.number(n.voipnumber).label)
        for (a, b), labels in gaps.items():
            key = f"gap:{int(a.timestamp())}:{int(b.timestamp())}"
            seen.add(key)
            tz = self.cfg.tz
            sv.alerts.raise_(key, f"nobody on call and no fallback {a.astimezone(tz):%a %d %b %H:%M} to "
                                  f"{b.astimezone(tz):%a %d %b %H:%M %Z} for {', '.join(labels)}", now)
        for key in [k for k in sv.alerts.active if k.startswith(("gap:", "event:")) and k not in seen]:
            sv.alerts.clear(key, now)

    def _schedule_changes(self, now: dt.datetime) -> None:
        sv = self._sv()
        assert sv.plan is not None
        for job in self.scheduler.get_jobs():
            if job.id.startswith("change:"):
                job.remove()
        until = now + max(self.cfg.daemon.replan_every, dt.timedelta(hours=1)) + dt.timedelta(hours=1)
        for n in sv.plan.numbers:
            for c in n.changes[1:]:
                if now < c.apply_from <= until:
                    self.scheduler.add_job(
                        self._change_job, "date", run_date=c.apply_from, args=[n.voipnumber, c.apply_from, c.exact],
                        id=f"change:{n.voipnumber}:{c.apply_from.isoformat()}", replace_existing=True,
                        misfire_grace_time=None,
                    )

    def _needs_change(self, sv: Services) -> list[str]:
        """Numbers whose program for now differs from what was last confirmed (or was never confirmed)."""
        if sv.plan is None or sv.reconciler is None:
            return []
        now = self.clock.now()
        out = []
        for n in sv.plan.numbers:
            found = program_at(n.changes, now)
            confirmed = sv.reconciler.confirmed.get(n.voipnumber)
            number = self.cfg.number(n.voipnumber)
            if found is not None and (confirmed is None or differing(confirmed, found[1].program, number.forwardcli)):
                out.append(n.voipnumber)
        return out

    def snapshot(self) -> Snapshot:
        """What the page shows: the current set of services' plan and state, now. Called on the event loop
        (the page's server asks for it from its threads), so the copies of the maps are consistent."""
        now = self.clock.now()
        sv = self.services
        if sv is None:
            return Snapshot(self.cfg, now, metrics=self.metrics.text)
        rec = sv.reconciler
        return Snapshot(sv.cfg, now, sv.plan, confirmed=dict(rec.confirmed) if rec else {},
                        read_at=dict(rec.read_at) if rec else {}, unconfirmed=frozenset(self._needs_change(sv)),
                        alerts=dict(sv.alerts.active), alert_log=sv.alerts.sent[-200:],
                        sources=dict(sv.sources.states), journal=sv.journal, metrics=self.metrics.text)

    # ----------------------------------------------------------------------------------- reconciling

    def _sv(self) -> Services:
        assert self.services is not None
        return self.services

    async def _change_job(self, voipnumber: str, at: dt.datetime, exact: bool) -> None:
        wait = (at - self.clock.now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        # a planned change keeps retrying until the next periodic pass would take over
        out = await self.reconcile_number(voipnumber, exact_at=at if exact else None,
                                          keep_trying_until=self.clock.now() + self.cfg.daemon.reconcile_every)
        if exact and out is not None and out.lateness_s is not None:
            self.metrics.lateness.labels(voipnumber).set(out.lateness_s)
            log.info("exact_handover", voipnumber=voipnumber, boundary=at.isoformat(), lateness_s=out.lateness_s)

    async def reconcile_number(
        self, voipnumber: str, exact_at: dt.datetime | None = None, keep_trying_until: dt.datetime | None = None,
    ) -> Outcome | None:
        if self.stopping.is_set() or self.services is None:
            return None
        lock = self.locks.setdefault(voipnumber, asyncio.Lock())
        task = asyncio.current_task()
        async with lock:
            sv = self.services  # the newest set, even if a reload swapped it while this pass waited
            if sv is None or sv.reconciler is None or sv.number_plan(voipnumber) is None or self.stopping.is_set():
                return None
            running = self.tasks.setdefault(id(sv), set())
            if task is not None:
                running.add(task)
            try:
                out = await sv.reconciler.reconcile(lambda: sv.number_plan(voipnumber), exact_at=exact_at,
                                                    keep_trying_until=keep_trying_until)
            finally:
                if task is not None:
                    running.discard(task)
        if out.ok:
            self.metrics.last_success.labels(voipnumber).set(self.clock.now().timestamp())
        elif not out.skipped:
            self.metrics.failures.labels(voipnumber).inc()
        return out

    async def reconcile_all(self, numbers: list[str] | None = None) -> list[Outcome]:
        sv = self.services
        if sv is None or sv.plan is None:
            return []
        wanted = numbers if numbers is not None else [n.voipnumber for n in sv.plan.numbers]
        outs = await asyncio.gather(*(self.reconcile_number(v) for v in wanted))
        done = [o for o in outs if o is not None]
        ok = sum(o.ok for o in done)
        log.info("reconcile_pass", numbers=len(done), ok=ok, changed=sum(o.changed for o in done))
        sd_notify(f"STATUS={ok}/{len(done)} numbers confirmed at {self.clock.now().isoformat(timespec='seconds')}")
        return done

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------------------------------ jobs

    def _config_mtime(self) -> float | None:
        try:
            return self.config_path.stat().st_mtime
        except OSError:
            return None

    async def _sources_job(self) -> None:
        if self._config_mtime() != self.config_mtime:  # the config file changed: reload it as SIGHUP would
            self.request_reload()
            return
        sv = self._sv()
        due = sv.sources.due(self.clock.now())
        if not due:
            return
        changed = await sv.refresh_calendars(due)
        self._calendar_metrics(sv)
        if changed and sv is self.services:
            await self.replan()
            self._spawn(self.reconcile_all(self._needs_change(sv)))  # never wait for aql here

    def _calendar_metrics(self, sv: Services) -> None:
        now = self.clock.now()
        for name, st in sv.sources.states.items():
            age = st.age(now)
            if age is not None:
                self.metrics.calendar_age.labels(name).set(age.total_seconds())

    async def _replan_job(self) -> None:
        await self.replan()

    def request_reload(self) -> None:
        if not self.ready:
            self._reload_again = True  # still starting: reload once start-up is done
            return
        if self._reloading:
            self._reload_again = True
            return
        self._spawn(self._reload_loop())

    async def _reload_loop(self) -> None:
        self._reloading = True
        try:
            while True:
                self._reload_again = False
                await self.reload()
                if not self._reload_again or self.stopping.is_set():
                    break
        finally:
            self._reloading = False

    async def reload(self) -> None:
        """Build a new set of services from the config file, drain the old set, swap, close it."""
        old = self._sv()
        now = self.clock.now()
        self.config_mtime = self._config_mtime()
        try:
            cfg = load_config(self.config_path)
            same_dir = old.state is not None and cfg.resolve_state_dir() == old.state.path
            new = await Services.open(cfg, aql=True, journal="write", clock=self.clock, exclusive=not same_dir,
                                      state=old.state if same_dir else None,
                                      simulated_account=old.account if cfg.aql.url == old.cfg.aql.url else None,
                                      web=self.snapshot, web_server=old.web)
        except (ConfigError, ForwarddError) as err:
            log.error("reload_rejected", error=str(err))
            old.alerts.raise_("config", f"new config rejected, still running on the old one: {err}", now)
            return
        new.sources.adopt(old.sources)
        if old.reconciler is not None and new.reconciler is not None:
            new.reconciler.confirmed.update(old.reconciler.confirmed)
            new.reconciler.read_at.update(old.reconciler.read_at)
        missing = [n for n, st in new.sources.states.items() if not st.loaded]
        if missing:
            await new.refresh_calendars(missing)
        new.plan = await new.make_plan()
        # the old set stops at its next safe point; wait (bounded) for what is in flight on it
        if old.reconciler is not None:
            old.reconciler.retiring = True
        running = self.tasks.pop(id(old), set())
        if running:
            await asyncio.wait(running, timeout=self.cfg.aql.timeout.total_seconds() + 5)
        self.cfg, self.services = cfg, new
        self._add_jobs()
        await self.replan()
        await old.close(keep_state=same_dir, keep_web=new.web is not None and new.web is old.web)
        new.alerts.clear("config", self.clock.now())
        log.info("reloaded", config=str(self.config_path))
        await self.reconcile_all(self._needs_change(new))

    def _add_jobs(self) -> None:
        d = self.cfg.daemon
        # how often to look for due calendars (and a changed config file): as often as the most eager
        # calendar wants refreshing, between 1 and 30 seconds
        refresh = min((c.refresh.total_seconds() for c in self.cfg.calendars.values()), default=30.0)
        self.scheduler.add_job(self._sources_job, "interval", seconds=min(max(refresh, 1.0), 30.0), id="sources",
                               replace_existing=True, max_instances=1, coalesce=True)
        self.scheduler.add_job(self.reconcile_all, "interval", seconds=d.reconcile_every.total_seconds(),
                               id="reconcile", replace_existing=True, max_instances=1, coalesce=True)
        self.scheduler.add_job(self._replan_job, "interval", seconds=d.replan_every.total_seconds(),
                               id="replan", replace_existing=True, max_instances=1, coalesce=True)

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
        if main.done() and main.exception() is not None:
            stop.cancel()
            raise main.exception()  # type: ignore[misc]
        self.stopping.set()
        return await self._shutdown(main)

    async def _main(self) -> None:
        self.services = sv = await Services.open(self.cfg, aql=True, exclusive=True, journal="write", clock=self.clock,
                                                 web=self.snapshot)
        self.scheduler = AsyncIOScheduler(timezone=UTC, event_loop=asyncio.get_running_loop())
        log.info("starting", config=str(self.config_path), numbers=len(self.cfg.numbers),
                 account="simulated" if sv.account is not None else self.cfg.aql.url, state_dir=str(sv.state.path)
                 if sv.state else None)
        assert sv.journal is not None
        sv.journal.record("start", self.clock.now(), None, None, config=str(self.config_path), pid=os.getpid())
        await sv.refresh_calendars()
        self._calendar_metrics(sv)
        self.scheduler.start()
        self._add_jobs()
        await self.replan()
        await self.reconcile_all()
        watchdog = os.environ.get("WATCHDOG_USEC")
        if watchdog:
            self.scheduler.add_job(sd_notify, "interval", seconds=int(watchdog) / 2e6, args=["WATCHDOG=1"],
                                   id="watchdog", replace_existing=True)
        if self.cfg.daemon.metrics_port is not None:
            self.metrics.serve(self.cfg.daemon.metrics_port)
        sd_notify("READY=1\nSTATUS=running")
        self.ready = True
        if self._reload_again:
            self.request_reload()
        await self.stopping.wait()

    async def _shutdown(self, main: asyncio.Task[Any]) -> int:
        sd_notify("STOPPING=1")
        in_flight = [t for ts in self.tasks.values() for t in ts if not t.done()]
        log.info("stopping", in_flight=len(in_flight))
        if getattr(self, "scheduler", None) is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if in_flight:
            await asyncio.wait(in_flight, timeout=3)
        for task in [main, *self._background, *in_flight]:
            task.cancel()
        self.metrics.stop()
        sv = self.services
        if sv is not None:
            if sv.journal is not None:
                sv.journal.record("stop", self.clock.now(), None, None)
            try:
                await asyncio.wait_for(sv.close(), 3)
            except TimeoutError:
                log.warning("close_timeout")
        return 0


def run_daemon(cfg: Config, config_path: str | Path) -> int:
    async def main() -> int:
        return await Daemon(cfg, config_path).run()

    return asyncio.run(main())
