"""The daemon: APScheduler jobs around the reconciler, signals, safe reloads, sd_notify, metrics.

Jobs:
- *changes*: one job per planned ``apply_from`` in the coming hours; an exact hand-over is sent at its
  boundary without a read first. A change keeps trying through its send window; a number a pass could
  not confirm goes to a retry queue (10 s, doubling, at most 5 min) until one does.
- *drift checks*: every number is read once per ``drift_check_every``, in its own slot spread over the
  interval, skipped when it was read for a change meanwhile; these background reads, and the one read
  of every number at start-up, share the ``aql.max_requests_per_minute`` budget (``budget``).
- *calendars*: each source on its own interval; a change re-plans and reconciles the numbers whose
  program for now moved, without waiting for them (calendar work never waits behind aql work). A
  changed config file is reloaded as on SIGHUP.
- *overrides*: a command-line override is noticed within a second (a change counter in the store).
- *notices*: every two seconds, the notices to people that have come due are sent.
- a re-plan at least every ``replan_every``.

At start-up, numbers whose program for now differs from what the journal last confirmed are
reconciled at once; every other number gets its start-up read, paced by the budget.

In a cluster (``[cluster]``), only the instance whose lease fence is open sends anything to aql: a
standby refreshes its calendars, re-plans and schedules its changes like the leader, and keeps what
the leader confirmed (from the shared journal, every few seconds) for its page, but reads and sends
nothing, and sends no notices. The *lease* job watches the fence: when it opens (this instance took
the lease, after its first fence), every number with a change due is reconciled at once and the others
get their start-up reads, as at start-up; when it closes, the passes in flight stop before their next
request, and the change of leadership is journalled and alerted (by the services' lease callbacks).

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

from ..aio import off_loop
from ..clock import Clock, SystemClock
from ..config import Config, load_config
from ..core.plan import program_at
from ..core.timeline import FindingKind, Kind
from ..errors import ConfigError, ForwarddError
from ..notify.keys import AlertKey, AlertKind
from ..web.snapshot import Snapshot
from .budget import DriftSchedule, RetryQueue, planned_reads
from .metrics import Metrics
from .reconcile import Outcome, differing
from .services import Services

log = structlog.get_logger("forwardd.daemon")
UTC = dt.timezone.utc
CHANGE_PERSISTENCE = dt.timedelta(seconds=60)  # a due change keeps trying at least this long before the queue
STANDBY_REFRESH = dt.timedelta(seconds=5)  # a standby loads what the leader confirmed this often (its page)
LEASE_WATCH_S = 0.2  # how often the daemon looks at the lease's fence


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
        self.retries = RetryQueue()
        self.drift = DriftSchedule([n.voipnumber for n in cfg.numbers], cfg.daemon.drift_check_every,
                                   self.clock.now())
        self.checking: set[str] = set()  # numbers with a background or retry pass under way
        self.overrides_version: int | None = None
        self._reloading = False
        self._reload_again = False
        self._background: set[asyncio.Task[Any]] = set()
        self.sending = False  # in a cluster: the fence was open at the last look (the lease job)
        self.confirmed_known = True  # in a cluster: the last load of what was confirmed (shared journal) worked
        self._term: dt.datetime | None = None  # ... since when this instance leads (a new term resets the reads)
        self._standby_refresh: dt.datetime | None = None  # when a standby last loaded what the leader confirmed

    # ------------------------------------------------------------------------------------- planning

    async def replan(self) -> None:
        sv = self._sv()
        now = self.clock.now()
        sv.plan = await sv.make_plan()
        if not sv.fenced:  # in a cluster, the leader alerts these
            self._alert_findings(sv, now)
        self._schedule_changes(now)
        log.info("replanned", numbers=len(sv.plan.numbers), changes=sum(len(n.changes) for n in sv.plan.numbers),
                 overrides=sum(len(v) for v in sv.manual.values()))
        self._spawn(self._notices_job())

    def _alert_findings(self, sv: Services, now: dt.datetime) -> None:
        """Alert what people must look at, once each (the alert state outlives restarts): an event that
        routes calls nowhere (it names nobody, two people, or a number nobody allowed), and a coverage
        gap starting within ``alerts.gap_ahead``, one alert per gap whatever the numbers it leaves
        uncovered. Past ones never; one that is no longer planned is cleared."""
        assert sv.plan is not None
        ahead = now + self.cfg.alerts.gap_ahead
        seen: set[AlertKey] = set()
        for v, f in sv.plan.warnings:
            if f.kind.routes_nowhere and f.end is not None and f.end > now:
                key = AlertKey(AlertKind.EVENT, number=v, detail=f.key)
                seen.add(key)
                sv.alerts.raise_(key, f"{v + ': ' if v else ''}{f.message}", now)
            elif f.kind is not FindingKind.GAP:
                log.info("plan_warning", voipnumber=v, kind=f.kind, message=f.message)
        gaps: dict[tuple[dt.datetime, dt.datetime], list[str]] = {}
        for n in sv.plan.numbers:
            for s in n.segments:
                if s.kind is Kind.GAP and s.end > now and s.start < ahead:
                    gaps.setdefault((s.start, s.end), []).append(self.cfg.number(n.voipnumber).label)
        tz = self.cfg.tz
        for (a, b), labels in gaps.items():
            key = AlertKey(AlertKind.GAP, detail=f"{int(a.timestamp())}-{int(b.timestamp())}")
            seen.add(key)
            sv.alerts.raise_(key, f"nobody on call and no fallback {a.astimezone(tz):%a %d %b %H:%M} to "
                                  f"{b.astimezone(tz):%a %d %b %H:%M %Z} for {', '.join(labels)}", now)
        for key in [k for k in sv.alerts.active if k.kind in (AlertKind.GAP, AlertKind.EVENT) and k not in seen]:
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
                        self._change_job, "date", run_date=c.apply_from,
                        args=[n.voipnumber, c.apply_from, c.exact, c.apply_by],
                        id=f"change:{n.voipnumber}:{c.apply_from.isoformat()}", replace_existing=True,
                        misfire_grace_time=None,
                    )

    def _never_confirmed(self, sv: Services, voipnumber: str) -> bool:
        """True for a number nothing was ever confirmed for (its first change goes without a read first). In
        a cluster, only when the shared journal could be read: an unreadable one proves nothing."""
        rec = sv.reconciler
        return rec is not None and rec.confirmed.get(voipnumber) is None and rec.last_confirmed(voipnumber) is None \
            and (sv.lease is None or self.confirmed_known)

    def _needs_change(self, sv: Services) -> list[str]:
        """Numbers with a change due: their program for now differs from what was last confirmed (in
        memory, else in the journal), or they were never confirmed at all (a new number needs
        programming). The others only need their start-up read."""
        if sv.plan is None or sv.reconciler is None:
            return []
        now = self.clock.now()
        out = []
        for n in sv.plan.numbers:
            found = program_at(n.changes, now)
            confirmed = sv.reconciler.confirmed.get(n.voipnumber) or sv.reconciler.last_confirmed(n.voipnumber)
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
                        alerts=dict(sv.alerts.active), alert_log=list(sv.alerts.sent),
                        sources=dict(sv.sources.states), journal=sv.journal, metrics=self.metrics.text,
                        cluster=sv.lease.status() if sv.lease is not None else None)

    # ----------------------------------------------------------------------------------- reconciling

    def _sv(self) -> Services:
        assert self.services is not None
        return self.services

    async def _change_job(self, voipnumber: str, at: dt.datetime, exact: bool, apply_by: dt.datetime) -> None:
        wait = (at - self.clock.now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        # a planned change keeps trying through its send window (a minute at least); the queue goes on
        out = await self.reconcile_number(voipnumber, exact_at=at if exact else None,
                                          keep_trying_until=max(apply_by, self.clock.now() + CHANGE_PERSISTENCE))
        if exact and out is not None and out.lateness_s is not None:
            self.metrics.lateness.labels(voipnumber).set(out.lateness_s)
            log.info("exact_handover", voipnumber=voipnumber, boundary=at.isoformat(), lateness_s=out.lateness_s)

    async def reconcile_number(
        self, voipnumber: str, exact_at: dt.datetime | None = None, keep_trying_until: dt.datetime | None = None,
        background: bool = False,
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
                                                    keep_trying_until=keep_trying_until, background=background,
                                                    unread=not background and self._never_confirmed(sv, voipnumber))
            finally:
                if task is not None:
                    running.discard(task)
        now = self.clock.now()
        if out.ok:
            self.retries.confirmed(voipnumber)
            self.metrics.last_success.labels(voipnumber).set(now.timestamp())
        elif out.skipped:
            if not self.stopping.is_set() and sv.reconciler.auth_failed_at is not None:
                self.retries.failed(voipnumber, now, at_least_s=60)
        else:
            self.retries.failed(voipnumber, now)
            self.metrics.failures.labels(voipnumber).inc()
        return out

    async def reconcile_all(self, numbers: list[str] | None = None) -> list[Outcome]:
        sv = self.services
        if sv is None or sv.plan is None:
            return []
        wanted = numbers if numbers is not None else [n.voipnumber for n in sv.plan.numbers]
        if not wanted or sv.fenced:
            return []  # (a standby: the leader does this)
        # a pool as wide as the requests aql may have in flight, not a task per number: a thousand numbers
        # must not mean a thousand coroutines (and their memory) at once
        queue = iter(wanted)
        done: list[Outcome] = []

        async def worker() -> None:
            for v in queue:
                out = await self.reconcile_number(v)
                if out is not None:
                    done.append(out)

        await asyncio.gather(*(worker() for _ in range(min(len(wanted), self.cfg.aql.concurrency))))
        self._status_line(sv)
        log.info("reconcile_pass", numbers=len(done), ok=sum(o.ok for o in done),
                 changed=sum(o.changed for o in done))
        return done

    def _status_line(self, sv: Services) -> None:
        if sv.reconciler is None:
            return
        if sv.lease is not None and not self.sending:
            st = sv.lease.status()
            sd_notify(f"STATUS=standby ({st.leader + ' leads' if st.leader else 'no leader known'}) at "
                      f"{self.clock.now().isoformat(timespec='seconds')}")
            return
        confirmed = sum(1 for n in self.cfg.numbers if n.voipnumber in sv.reconciler.confirmed
                        and n.voipnumber not in self.retries.due_at)
        sd_notify(f"STATUS={confirmed}/{len(self.cfg.numbers)} numbers confirmed at "
                  f"{self.clock.now().isoformat(timespec='seconds')}")

    async def _check(self, voipnumber: str, background: bool) -> None:
        try:
            out = await self.reconcile_number(voipnumber, background=background)
            if out is not None and (out.changed or out.drift or not out.ok):
                log.info("reconcile_pass", numbers=1, ok=int(out.ok), changed=int(out.changed), drift=out.drift,
                         kind="drift check" if background else "retry")
        finally:
            self.checking.discard(voipnumber)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------------------------------ jobs

    async def _drift_job(self) -> None:
        """Start the passes that are due: retries (changes still to confirm) at once, then drift checks and
        start-up reads, which wait for the budget's tokens; never more of those in flight than the budget
        would let through in a few seconds."""
        sv = self.services
        if sv is None or sv.reconciler is None or sv.plan is None or sv.fenced:
            return  # (a standby reads nothing: no drift checks, no retries)
        now = self.clock.now()
        for v in self.retries.due(now):
            if v not in self.checking:
                self.checking.add(v)
                self._spawn(self._check(v, background=False))
        budget = sv.budget
        room = int(budget.capacity) if budget is not None else 20
        waiting = sum(1 for v in self.checking if v not in self.retries.due_at)
        upcoming = planned_reads({n.voipnumber: n.changes for n in sv.plan.numbers}, now)
        for v in self.drift.due(now, sv.reconciler.read_at, sv.reconciler.read_for_change_at, upcoming):
            if waiting >= room:
                break
            if v not in self.checking:
                self.checking.add(v)
                waiting += 1
                self._spawn(self._check(v, background=True))
        self._status_line(sv)

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
            await self._replan_and_apply(sv)

    async def _replan_and_apply(self, sv: Services) -> None:
        await self.replan()
        self._spawn(self.reconcile_all(self._needs_change(sv)))  # never wait for aql here

    async def _overrides_job(self) -> None:
        sv = self.services
        if sv is None or sv.overrides is None:
            return
        try:
            version = await off_loop(sv.overrides.version, timeout=5)
        except (ForwarddError, TimeoutError):
            return  # replan's own read alerts when the store stays unreadable
        if self.overrides_version is None:
            self.overrides_version = version
        elif version != self.overrides_version:
            self.overrides_version = version
            log.info("overrides_changed", version=version)
            await self._replan_and_apply(sv)

    async def _notices_job(self) -> None:
        sv = self.services
        if sv is None or sv.notices is None or sv.plan is None or sv.fenced:
            return  # (in a cluster, the leader sends the notices)
        now = self.clock.now()
        try:
            due = await off_loop(sv.notices.pending, sv.plan, now, timeout=10)
        except (ForwarddError, TimeoutError) as err:
            log.warning("notices_failed", error=str(err))
            return
        for notice in due:
            sv.notices.send(notice, now)

    def _calendar_metrics(self, sv: Services) -> None:
        now = self.clock.now()
        for name, st in sv.sources.states.items():
            age = st.age(now)
            if age is not None:
                self.metrics.calendar_age.labels(name).set(age.total_seconds())

    async def _replan_job(self) -> None:
        await self.replan()

    # --------------------------------------------------------------------------------------- cluster

    async def _lease_job(self) -> None:
        """Watch the lease's fence (no I/O: the lease's thread does that): take over when it opens, stop
        when it closes; while a standby, load what the leader confirmed every few seconds."""
        sv = self.services
        if sv is None or sv.lease is None:
            return
        now = self.clock.now()
        open_now = sv.lease.may_send()
        self.metrics.leader.set(1.0 if open_now else 0.0)
        if open_now and not self.sending:
            self.sending = True
            sv.alerts.clear(AlertKey(AlertKind.FENCE), now)
            self._spawn(self._take_over(sv))
        elif not open_now and self.sending:
            self.sending = False
            st = sv.lease.status()
            log.warning("stopped_sending", instance=st.instance, leading=st.leading, problem=st.problem)
            if st.leading:  # still holds the lock, but could not confirm it in time: sends again once it can
                sv.alerts.raise_(AlertKey(AlertKind.FENCE), f"forwardd {st.instance} leads but could not confirm its lease within "
                                          f"{self.cfg.cluster.fence.total_seconds() if self.cfg.cluster else 0:g} s; "
                                          "it stopped sending until it can", now)
            self._status_line(sv)
        elif not open_now and (self._standby_refresh is None or now - self._standby_refresh >= STANDBY_REFRESH):
            self._standby_refresh = now
            self._spawn(self._load_confirmed(sv, standby=True))
            self._status_line(sv)  # systemd's status line: "standby (host-a leads)"

    async def _load_confirmed(self, sv: Services, standby: bool = False) -> bool:
        """Take what every number was last confirmed to hold from the shared journal (one query, off the
        loop). A standby keeps it only while it is still a standby. True when loaded."""
        try:
            confirmed = await sv.refresh_confirmed()
        except (ForwarddError, TimeoutError) as err:  # (the journal's and the lease's own alerts say why)
            (log.info if standby else log.warning)("confirmed_unreadable", error=str(err))
            if not standby:
                self.confirmed_known = False
            return False
        rec = sv.reconciler
        if rec is None or (standby and self.sending):
            return False
        self.confirmed_known = True
        rec.confirmed.clear()
        rec.confirmed.update(confirmed)
        return True

    async def _take_over(self, sv: Services) -> None:
        """This instance may send now. In a new term (it took the lease): what was confirmed comes from the
        shared journal, reads start afresh (spread over the drift interval, as at start-up), and every
        number with a change due is reconciled at once. After a fence that closed and reopened within one
        term, only the numbers with a change due."""
        assert sv.lease is not None
        st = sv.lease.status()
        new_term = st.since != self._term
        self._term = st.since
        log.info("leading", instance=st.instance, since=st.since.isoformat() if st.since else None, new_term=new_term)
        if new_term:
            self.confirmed_known = False
            for _ in range(3):  # what the old leader confirmed decides what is sent again: try hard
                if await self._load_confirmed(sv):
                    break
                await asyncio.sleep(1.0)
            if sv is not self.services or not self.sending:
                return
            if sv.reconciler is not None:
                sv.reconciler.read_at.clear()
                sv.reconciler.read_for_change_at.clear()
            self.retries = RetryQueue()
            self.drift = DriftSchedule([n.voipnumber for n in self.cfg.numbers], self.cfg.daemon.drift_check_every,
                                       self.clock.now())
            await self.replan()
        await self.reconcile_all(self._needs_change(sv))

    # ---------------------------------------------------------------------------------------- reload

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
                                      web=self.snapshot, web_server=old.web, lease=old.lease)
        except (ConfigError, ForwarddError) as err:
            log.error("reload_rejected", error=str(err))
            old.alerts.raise_(AlertKey(AlertKind.CONFIG), f"new config rejected, still running on the old one: {err}", now)
            return
        self._wire(new)
        new.sources.adopt(old.sources)
        if old.reconciler is not None and new.reconciler is not None:
            new.reconciler.confirmed.update(old.reconciler.confirmed)
            new.reconciler.read_at.update(old.reconciler.read_at)
            new.reconciler.read_for_change_at.update(old.reconciler.read_for_change_at)
        missing = [n for n, st in new.sources.states.items() if not st.loaded]
        if missing:
            await new.refresh_calendars(missing)
        new.plan = await new.make_plan()
        new.start_lease()  # (a lease handed over runs on as it was)
        # the old set stops at its next safe point; wait (bounded) for what is in flight on it
        if old.reconciler is not None:
            old.reconciler.retiring = True
        running = self.tasks.pop(id(old), set())
        if running:
            await asyncio.wait(running, timeout=self.cfg.aql.timeout.total_seconds() + 5)
        self.cfg, self.services = cfg, new
        self.drift = DriftSchedule([n.voipnumber for n in cfg.numbers], cfg.daemon.drift_check_every,
                                   self.drift.anchor)
        self._add_jobs()
        await self.replan()
        await old.close(keep_state=same_dir, keep_web=new.web is not None and new.web is old.web,
                        keep_lease=new.lease is not None and new.lease is old.lease)
        new.alerts.clear(AlertKey(AlertKind.CONFIG), self.clock.now())
        log.info("reloaded", config=str(self.config_path))
        await self.reconcile_all(self._needs_change(new))

    def _wire(self, sv: Services) -> None:
        """Point a new set of services' hooks at the daemon's metrics."""
        if sv.client is not None:
            sv.client.on_request = lambda action: self.metrics.requests.labels(action).inc()
        if sv.reconciler is not None:
            sv.reconciler.on_throttled = self.metrics.throttled.inc
        if sv.journal is not None:
            journal = sv.journal
            self.metrics.journal_ok.set_function(lambda: 1.0 if journal.healthy else 0.0)

    def _add_jobs(self) -> None:
        d = self.cfg.daemon
        # how often to look for due calendars (and a changed config file): as often as the most eager
        # calendar wants refreshing, between 1 and 30 seconds
        refresh = min((c.refresh.total_seconds() for c in self.cfg.calendars.values()), default=30.0)
        every = [("sources", self._sources_job, min(max(refresh, 1.0), 30.0)),
                 ("drift", self._drift_job, 1.0),
                 ("overrides", self._overrides_job, 1.0),
                 ("notices", self._notices_job, 2.0),
                 ("replan", self._replan_job, d.replan_every.total_seconds())]
        if self.services is not None and self.services.lease is not None:
            every.append(("lease", self._lease_job, LEASE_WATCH_S))
        elif self.scheduler.get_job("lease") is not None:
            self.scheduler.remove_job("lease")
        for job_id, fn, seconds in every:
            self.scheduler.add_job(fn, "interval", seconds=seconds, id=job_id, replace_existing=True,
                                   max_instances=1, coalesce=True)

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
        self._wire(sv)
        self.scheduler = AsyncIOScheduler(timezone=UTC, event_loop=asyncio.get_running_loop())
        log.info("starting", config=str(self.config_path), numbers=len(self.cfg.numbers),
                 account="simulated" if sv.account is not None else self.cfg.aql.url,
                 state_dir=str(sv.state.path) if sv.state else None)
        assert sv.journal is not None
        sv.journal.record("start", self.clock.now(), None, None, config=str(self.config_path), pid=os.getpid())
        self.metrics.leader.set(1.0 if sv.lease is None else 0.0)
        if sv.lease is not None:  # what every number was last confirmed to hold, on any instance
            await self._load_confirmed(sv)
        await sv.refresh_calendars()
        self._calendar_metrics(sv)
        self.scheduler.start()
        await self.replan()
        sv.start_lease()  # in a cluster: a plan is ready, so this instance may lead
        if sv.overrides is not None:
            try:
                self.overrides_version = await off_loop(sv.overrides.version, timeout=5)
            except (ForwarddError, TimeoutError):
                pass
        self._add_jobs()
        # numbers with a change due (their program for now is not what the journal last confirmed) go
        # first, at once; the others get their start-up read from the drift job, paced by the budget.
        # Neither is waited for here: calendars and reloads must not wait behind a stalled aql.
        self._spawn(self.reconcile_all(self._needs_change(sv)))
        watchdog = os.environ.get("WATCHDOG_USEC")
        if watchdog:
            self.scheduler.add_job(sd_notify, "interval", seconds=int(watchdog) / 2e6, args=["WATCHDOG=1"],
                                   id="watchdog", replace_existing=True)
        if self.cfg.daemon.metrics_port is not None:
            self.metrics.serve(self.cfg.daemon.metrics_port)
        sd_notify("READY=1\nSTATUS=running")
        self.ready = True
        await self._drift_job()
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
