"""The daemon: APScheduler jobs around the reconciler, signals, sd_notify, metrics.

Jobs: calendar refresh (each source on its own interval; a change re-plans; a changed config file is
reloaded as on SIGHUP), a re-plan at least every
``replan_every``, a reconcile pass over every number every ``reconcile_every`` and at start-up, and one
job per planned ``apply_from`` in the coming day (exact hand-overs are sent at the boundary and their
lateness is logged). SIGHUP reloads config and calendars (a bad config is rejected, the old one kept);
SIGTERM lets the passes in flight finish, then exits 0.
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

from ..calendars.sources import Sources
from ..config import Config, load_config
from ..core.plan import NumberPlan, Plan, Planner
from ..errors import ConfigError
from ..notify.alerts import Alerts
from ..store.journal import Journal
from .reconcile import Outcome, Reconciler
from .services import horizon_start, make_client, now_utc, plan_from, state_dir

log = structlog.get_logger("forwardd.daemon")
UTC = dt.timezone.utc


def precise_now() -> dt.datetime:
    return dt.datetime.now(UTC)


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
    def __init__(self, cfg: Config, config_path: str | Path) -> None:
        self.config_path = Path(config_path)
        self.config_mtime = self._config_mtime()
        self.stopping = asyncio.Event()
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.metrics: dict[str, dict[str, float]] = {
            "last_success": {}, "failures": {}, "lateness": {}, "calendar_age": {}}
        self._setup(cfg)

    def _setup(self, cfg: Config) -> None:
        self.cfg = cfg
        self.state = state_dir(cfg)
        self.journal = Journal(self.state / "journal.sqlite")
        self.client, self.account = make_client(cfg, self.state)
        old = getattr(self, "sources", None)
        self.sources = Sources(cfg, self.state)
        if old is not None:  # keep last good copies of calendars whose settings did not change
            for name, st in old.states.items():
                if name in self.sources.states and st.settings == self.sources.states[name].settings:
                    self.sources.states[name] = st
        self.alerts = Alerts(cfg.alerts, self.journal, dict(os.environ))
        self.reconciler = Reconciler(self.client, self.journal, self.alerts, clock=precise_now)
        self.limit = asyncio.Semaphore(cfg.aql.concurrency)
        self.locks: dict[str, asyncio.Lock] = {}
        self.plan: Plan | None = None
        self.planner = Planner(cfg)

    # ------------------------------------------------------------------------------------- planning

    def refresh_sources(self, names: list[str] | None = None) -> bool:
        now = now_utc()
        changed = False
        for name in names if names is not None else list(self.sources.states):
            st = self.sources[name]
            was_error = st.error
            changed |= self.sources.refresh(name, now)
            self.journal.record("calendar", now, None, st.error is None, calendar=name, error=st.error,
                                events_loaded=st.calendar is not None)
            if st.error:
                what = "keeping the last good copy" if st.calendar is not None else "no good copy yet"
                self.alerts.raise_(f"calendar:{name}", f"calendar {name}: {st.error} ({what})", now)
            elif st.stale(now):
                self.alerts.raise_(f"calendar:{name}", f"calendar {name} is older than its max_age", now)
            else:
                self.alerts.clear(f"calendar:{name}", now)
            if was_error != st.error:
                log.info("calendar_refresh", calendar=name, ok=st.error is None, error=st.error)
            age = st.age(now)
            if age is not None:
                self.metrics["calendar_age"][name] = age.total_seconds()
        return changed

    def replan(self) -> None:
        now = now_utc()
        self.plan = plan_from(self.cfg, self.sources, horizon_start(now), planner=self.planner)
        for v, msg in self.plan.warnings:
            log.info("plan_warning", voipnumber=v, message=msg)
        soon = now + dt.timedelta(hours=24)
        for n in self.plan.numbers:
            gaps = [s for s in n.segments if s.forwardto is None and "no fallback" in s.reason and s.start < soon]
            if gaps:
                self.alerts.raise_(f"gap:{n.voipnumber}", f"{n.voipnumber}: nobody on call and no fallback from "
                                   f"{gaps[0].start.isoformat()} to {gaps[0].end.isoformat()}", now, n.voipnumber)
            else:
                self.alerts.clear(f"gap:{n.voipnumber}", now)
        self._schedule_changes(now)
        log.info("replanned", numbers=len(self.plan.numbers),
                 changes=sum(len(n.changes) for n in self.plan.numbers))

    def _schedule_changes(self, now: dt.datetime) -> None:
        assert self.plan is not None
        for job in self.scheduler.get_jobs():
            if job.id.startswith("change:"):
                job.remove()
        until = now + max(self.cfg.daemon.replan_every, dt.timedelta(hours=1)) + dt.timedelta(hours=1)
        for n in self.plan.numbers:
            for c in n.changes[1:]:
                if now < c.apply_from <= until:
                    self.scheduler.add_job(
                        self._change_job, "date", run_date=c.apply_from, args=[n.voipnumber, c.apply_from, c.exact],
                        id=f"change:{n.voipnumber}:{c.apply_from.isoformat()}", replace_existing=True,
                        misfire_grace_time=None,
                    )

    # ----------------------------------------------------------------------------------- reconciling

    async def _change_job(self, voipnumber: str, at: dt.datetime, exact: bool) -> None:
        wait = (at - precise_now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        # a planned change keeps retrying until the next periodic pass would take over
        out = await self.reconcile_number(voipnumber, exact_at=at if exact else None,
                                          keep_trying_until=precise_now() + self.cfg.daemon.reconcile_every)
        if exact and out is not None and out.lateness_s is not None:
            self.metrics["lateness"][voipnumber] = out.lateness_s
            log.info("exact_handover", voipnumber=voipnumber, boundary=at.isoformat(), lateness_s=out.lateness_s)

    async def reconcile_number(
        self, voipnumber: str, exact_at: dt.datetime | None = None, keep_trying_until: dt.datetime | None = None
    ) -> Outcome | None:
        if self.plan is None or self.stopping.is_set():
            return None
        try:
            plan: NumberPlan = self.plan.for_number(voipnumber)
        except KeyError:
            return None
        number = self.cfg.number(voipnumber)
        lock = self.locks.setdefault(voipnumber, asyncio.Lock())
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
        try:
            async with lock, self.limit:
                out = await self.reconciler.reconcile(plan, number.forwardcli, number.on_drift or self.cfg.on_drift,
                                                      exact_at=exact_at, keep_trying_until=keep_trying_until)
        finally:
            if task is not None:
                self.in_flight.discard(task)
        if out.ok:
            self.metrics["last_success"][voipnumber] = precise_now().timestamp()
        else:
            self.metrics["failures"][voipnumber] = self.metrics["failures"].get(voipnumber, 0) + 1
        return out

    async def reconcile_all(self) -> list[Outcome]:
        if self.plan is None:
            return []
        outs = await asyncio.gather(*(self.reconcile_number(n.voipnumber) for n in self.plan.numbers))
        done = [o for o in outs if o is not None]
        ok = sum(o.ok for o in done)
        log.info("reconcile_pass", numbers=len(done), ok=ok, changed=sum(o.changed for o in done))
        sd_notify(f"STATUS={ok}/{len(done)} numbers confirmed at {now_utc().isoformat()}")
        return done

    # ------------------------------------------------------------------------------------------ jobs

    def _config_mtime(self) -> float | None:
        try:
            return self.config_path.stat().st_mtime
        except OSError:
            return None

    async def _sources_job(self) -> None:
        if self._config_mtime() != self.config_mtime:  # the config file changed: reload it as SIGHUP would
            await self.reload()  # (which notes the new mtime)
            return
        due = self.sources.due(now_utc())
        if not due:
            return
        changed = await asyncio.get_running_loop().run_in_executor(None, self.refresh_sources, due)
        if changed:
            self.replan()
            await self.reconcile_all()

    async def _replan_job(self) -> None:
        self.replan()

    async def reload(self) -> None:
        self.config_mtime = self._config_mtime()
        try:
            cfg = load_config(self.config_path)
        except ConfigError as err:
            log.error("reload_rejected", error=str(err))
            self.alerts.raise_("config", f"new config rejected, still running on the old one: {err}", now_utc())
            return
        await self.client.aclose()
        self.journal.close()
        self._setup(cfg)
        self.alerts.clear("config", now_utc())
        self._add_jobs()
        await asyncio.get_running_loop().run_in_executor(None, self.refresh_sources, None)
        self.replan()
        log.info("reloaded", config=str(self.config_path))
        await self.reconcile_all()

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

    def _on_sighup(self) -> None:
        if self.ready:
            asyncio.get_running_loop().create_task(self.reload())
        else:  # still starting: reload once start-up is done
            self.reload_pending = True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # Signals first: a SIGHUP or SIGTERM during start-up must not kill the process mid-change.
        self.ready, self.reload_pending = False, False
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self.scheduler = AsyncIOScheduler(timezone=UTC, event_loop=loop)
        simulated = self.account is not None
        log.info("starting", config=str(self.config_path), numbers=len(self.cfg.numbers),
                 account="simulated" if simulated else self.cfg.aql.url, state_dir=str(self.state))
        self.journal.record("start", now_utc(), None, None, config=str(self.config_path))
        await loop.run_in_executor(None, self.refresh_sources, None)
        self.scheduler.start()
        self._add_jobs()
        self.replan()
        await self.reconcile_all()
        watchdog = os.environ.get("WATCHDOG_USEC")
        if watchdog:
            self.scheduler.add_job(sd_notify, "interval", seconds=int(watchdog) / 2e6, args=["WATCHDOG=1"],
                                   id="watchdog", replace_existing=True)
        sd_notify("READY=1\nSTATUS=running")
        self.ready = True
        if self.reload_pending:
            loop.create_task(self.reload())
        metrics = await self._start_metrics()
        await self.stopping.wait()
        sd_notify("STOPPING=1")
        log.info("stopping", in_flight=len(self.in_flight))
        self.scheduler.shutdown(wait=False)
        if self.in_flight:
            await asyncio.wait(list(self.in_flight), timeout=4)
        if metrics is not None:
            metrics.close()
        await self.alerts.drain()
        await self.client.aclose()
        self.journal.record("stop", now_utc(), None, None)
        self.journal.close()
        return 0

    # --------------------------------------------------------------------------------------- metrics

    async def _start_metrics(self) -> asyncio.AbstractServer | None:
        port = self.cfg.daemon.metrics_port
        if port is None:
            return None

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            body = self.metrics_text().encode()
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
            writer.close()

        return await asyncio.start_server(handle, "127.0.0.1", port)

    def metrics_text(self) -> str:
        lines = []
        spec = [("last_success", "forwardd_last_success_timestamp_seconds", "voipnumber", "gauge"),
                ("failures", "forwardd_reconcile_failures_total", "voipnumber", "counter"),
                ("lateness", "forwardd_handover_lateness_seconds", "voipnumber", "gauge"),
                ("calendar_age", "forwardd_calendar_age_seconds", "calendar", "gauge")]
        for key, name, label, kind in spec:
            lines.append(f"# TYPE {name} {kind}")
            lines += [f'{name}{{{label}="{k}"}} {v}' for k, v in sorted(self.metrics[key].items())]
        return "\n".join(lines) + "\n"


def run_daemon(cfg: Config, config_path: str | Path) -> int:
    async def main() -> int:
        return await Daemon(cfg, config_path).run()

    return asyncio.run(main())


async def one_pass(cfg: Config) -> list[Outcome]:
    """``forwardd apply``: refresh calendars, plan from now, reconcile every number once."""
    state = state_dir(cfg)
    journal = Journal(state / "journal.sqlite")
    client, _ = make_client(cfg, state)
    sources = Sources(cfg, state)
    now = now_utc()
    sources.refresh_all(now)
    plan = plan_from(cfg, sources, horizon_start(now))
    alerts = Alerts(cfg.alerts, journal, dict(os.environ))
    rec = Reconciler(client, journal, alerts, clock=precise_now)
    limit = asyncio.Semaphore(cfg.aql.concurrency)

    async def one(n: NumberPlan) -> Outcome:
        number = cfg.number(n.voipnumber)
        async with limit:
            return await rec.reconcile(n, number.forwardcli, number.on_drift or cfg.on_drift)

    async with client:
        outs = list(await asyncio.gather(*(one(n) for n in plan.numbers)))
    await alerts.drain()
    journal.close()
    return outs
