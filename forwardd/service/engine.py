"""The engine: every rule of when forwardd reads and writes, on one injected clock.

The daemon runs it on the wall clock; ``forwardd simulate`` and the tests run the very same engine on a
virtual clock, a day of it in seconds, so what the simulator promises is what the daemon does.

Jobs (``timers.Timers``; each line's passes go through its account's lane, ``lanes.Lane``):
- *start-up*: the calendars are read and a plan made; lines whose program for now is not what the
  journal last confirmed get a pass at once (a line never confirmed is programmed without a read
  first); every other line gets its start-up read in its first drift slot.
- *changes*: each planned change in the coming hours at its ``apply_from``, or, when the line's drift
  slot comes in the first half of the time until the line's confirmed program stops sending calls
  right (the change's ``apply_by``, as a rule), in that slot (``due.Holds``): the check's read is then
  the change's, and half that time at least stays for retries. An exact hand-over goes at its boundary
  without a read first. A change keeps trying through its send window (a minute at least); a
  line a pass could not confirm is tried again (10 s, doubling, at most 5 min) until one does.
- *drift checks*: every line is read once per drift interval in its own slot (``budget.DriftGrid``),
  under its account's cap on background reads.
- *calendars*, *overrides* (a command-line override is noticed within a second), *re-plans* (at least
  every ``replan_every``): a change re-plans and gives a pass to the lines whose program for now moved.
- *notices* every two seconds; *publishing* what the page shows, about once a second; in a cluster,
  the *lease* (``leadership``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Callable

import structlog

from ..aio import off_loop
from ..clock import Clock
from ..config import Config
from ..core.compiler import Change
from ..errors import ForwarddError
from ..web.snapshot import Snapshot, Starting
from .due import Holds, Rightness, all_due, due, pending
from .findings import alert_findings
from .jobs import calendar_metrics, load_confirmed, notices_job, overrides_job, sources_job
from .lanes import Lane, PassKind, PassRequest
from .metrics import Metrics
from .passlog import PassLog
from .reconcile import Failure, Outcome
from .services import Services
from .snapshots import snapshot_of
from .timers import Handle, Timers

log = structlog.get_logger("forwardd.engine")
CHANGE_PERSISTENCE = dt.timedelta(seconds=60)  # a due change keeps trying at least this long before the queue
PUBLISH_S = 1.0
REPUBLISH = dt.timedelta(seconds=5)
LEASE_WATCH_S = 0.2  # how often the engine looks at the lease's fence
OutcomeHook = Callable[[str, PassRequest, Outcome, dt.datetime], None]


class Engine:
    def __init__(self, services: Services, clock: Clock, *, metrics: Metrics | None = None,
                 publish: bool = True, on_outcome: OutcomeHook | None = None) -> None:
        self.sv = services
        self.clock = clock
        self.metrics = metrics
        self.publishing = publish
        self.on_outcome = on_outcome
        self.timers = Timers(clock)
        self.lanes: dict[str, Lane] = {}
        self.locks: dict[str, asyncio.Lock] = {}  # one per line for the engine's life (reloads too)
        self.holds = Holds(Rightness())  # planned changes waiting for their line's drift slot
        self.anchor = clock.now()
        self.plan_gen = 0
        self.stopping = False
        self.ready = False
        self.starting: set[str] | None = None  # lines whose start-up pass is still to come
        self.published: Snapshot | None = None
        self.version = 0
        self.dirty = True
        self.overrides_version: int | None = None
        self._jobs: list[Handle] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer_task: asyncio.Task[None] | None = None
        self.passlog = PassLog(self)
        # in a cluster (``leadership``): whether the fence was open at the last look, and this term's facts
        self.sending = False
        self.confirmed_known = True
        self.term: dt.datetime | None = None
        self.standby_refreshed: dt.datetime | None = None

    @property
    def cfg(self) -> Config:
        return self.sv.cfg

    # ------------------------------------------------------------------------------------ life

    async def start(self) -> None:
        """Read the calendars, plan, and start every job; returns once the start-up passes are queued."""
        self._timer_task = asyncio.get_running_loop().create_task(self.timers.run(), name="timers")
        self.publish()
        sv = self.sv
        if sv.journal is not None:
            await load_confirmed(self, sv)
        await sv.refresh_calendars()
        calendar_metrics(self)
        await self.replan()
        sv.start_lease()  # in a cluster: a plan is ready, so this instance may lead
        if sv.overrides is not None:
            try:
                self.overrides_version = await off_loop(sv.overrides.version, timeout=5)
            except (ForwarddError, TimeoutError):
                pass
        self.add_jobs()
        self.anchor = self.clock.now()  # the start-up reads are spread over the interval from here
        self.open_lanes(self.anchor)
        self.start_up(sv)
        self.ready = True
        self.publish()

    def start_up(self, sv: Services) -> None:
        """Lines with a change due go first, at once; the others get their start-up read in their slot."""
        if sv.fenced:
            return  # (a standby: the leader does this; ``leadership`` starts it on taking over)
        due = set(self.needs_change(sv))
        self.starting = set(due)
        now = self.clock.now()
        for number in self.cfg.numbers:
            v = number.voipnumber
            lane = self.lane_of(v)
            if v in due:
                lane.submit(v, PassRequest(PassKind.CHANGE, unread=self.never_confirmed(sv, v), start_up=True))
            else:
                lane.schedule_check(v, now, self.check_due)
        self.dirty = True

    async def stop(self, grace: float = 3.0) -> None:
        """Take no more work, let the passes in flight finish (within ``grace``), stop every job."""
        self.stopping = True
        in_flight = [t for lane in self.lanes.values() for t in lane.close()]
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace)
        self.crash()

    def crash(self) -> None:
        """Stop at once, as a killed process would (the simulator's outages)."""
        self.stopping = True
        for lane in self.lanes.values():
            lane.close()
            lane.cancel()
        for task in [*self._tasks, *([self._timer_task] if self._timer_task else [])]:
            task.cancel()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------------------------ lanes

    def open_lanes(self, anchor: dt.datetime) -> None:
        """One lane per account of the current services (drift slots anchored at ``anchor``)."""
        every = self.cfg.daemon.drift_check_every
        self.holds.clear()  # (their slots were the old lanes')
        for name, edges in self.sv.accounts.items():
            numbers = [n.voipnumber for n in self.cfg.numbers_of(name)]
            lane = self.lanes[name] = Lane(edges, numbers, anchor, every, self.timers, self.run_pass)
            lane.start(edges.settings.concurrency)
            if self.metrics is not None:
                self.metrics.drift_interval.labels(name).set(lane.grid.interval.total_seconds())
            note = _drift_note(lane)
            if note:
                log.warning("drift_interval", account=name, message=note)

    def lane_of(self, voipnumber: str) -> Lane:
        return self.lanes[self.cfg.account_of(voipnumber)]

    def never_confirmed(self, sv: Services, voipnumber: str) -> bool:
        """True for a line nothing was ever confirmed for (its first change goes without a read first). In
        a cluster, only when the shared journal could be read: an unreadable one proves nothing."""
        rec = sv.edges_of(voipnumber).reconciler
        return rec.last_confirmed(voipnumber) is None and (sv.lease is None or self.confirmed_known)

    @property
    def right(self) -> Rightness:
        """Until when each line's program sends calls right (remembered; the holds ask it too)."""
        return self.holds.right

    def needs_change(self, sv: Services) -> list[str]:
        """Lines with a change due: their program for now differs from what was last confirmed, or they
        were never confirmed at all (a new line needs programming)."""
        return [d.voipnumber for d in all_due(sv, self.clock.now(), self.right)]

    def pending(self, sv: Services) -> tuple[list[str], dict[str, dt.datetime]]:
        """Lines with a change due: those not confirmed to route calls right now, and those still right
        until the instant given (``due.pending``)."""
        return pending(sv, self.clock.now(), self.right)

    def reconcile_due(self, sv: Services) -> None:
        """Give a pass to every line whose program for now is not the one last confirmed."""
        if sv is self.sv and not sv.fenced and not self.stopping:
            now = self.clock.now()
            for v in self.needs_change(sv):
                if not self.holds.waiting(sv, v, self.lane_of(v).check_at(v), now):
                    self.lane_of(v).submit(v, PassRequest(PassKind.CHANGE))

    # ------------------------------------------------------------------------------------ passes

    async def run_pass(self, lane: Lane, v: str, req: PassRequest) -> Outcome | None:
        """One pass on line ``v`` (its lane's worker calls this), then what follows from its outcome."""
        sv = self.sv
        if self.stopping or sv.number_plan(v) is None or lane.closed:
            return None
        lock = self.locks.setdefault(v, asyncio.Lock())
        gen = self.plan_gen
        async with lock:
            try:
                out = await lane.reconciler.reconcile(
                    lambda: self.sv.number_plan(v), exact_at=req.exact_at, keep_trying_until=req.keep_trying_until,
                    background=req.kind is PassKind.CHECK, paced=False, unread=req.unread)
            except Exception:  # noqa: BLE001 - a pass never raises by design; log it and retry the line
                log.exception("pass_failed", voipnumber=v)
                out = Outcome(v, ok=False, error="internal error", failure=Failure.TRANSPORT)
        self._after(lane, v, req, out, gen)
        return out

    def _after(self, lane: Lane, v: str, req: PassRequest, out: Outcome, gen: int | None = None) -> None:
        now = self.clock.now()
        self.holds.drop(v)  # a pass made the line hold what was due when it ran (or its retry will)
        if out.ok:
            lane.confirmed(v)
            if self.metrics is not None:
                self.metrics.last_success.labels(v).set(now.timestamp())
        elif out.failure is Failure.AUTH_BLOCKED and not self.stopping:
            lane.retry_later(v, now, self._retry_due, at_least_s=60)
        elif not out.skipped:
            lane.retry_later(v, now, self._retry_due)
            if self.metrics is not None:
                self.metrics.failures.labels(v).inc()
        if req.exact_at is not None and out.lateness_s is not None:
            if self.metrics is not None:
                self.metrics.lateness.labels(v).set(out.lateness_s)
            log.info("exact_handover", voipnumber=v, boundary=req.exact_at.isoformat(), lateness_s=out.lateness_s)
        if not lane.closed and not self.stopping and not out.skipped:
            read = lane.reconciler.read_at.get(v)
            if read is not None:
                lane.grid.read(v, read)  # any read counts as a check
            lane.schedule_check(v, now, self.check_due)
        if self.starting is not None:
            self.starting.discard(v)
            if not self.starting:
                self.starting = None
                log.info("started", numbers=len(self.cfg.numbers))
        if out.ok and not lane.closed and not self.stopping:
            self._follow_up(lane, v, out, now, replanned=gen != self.plan_gen)
        self.passlog.said(v, req, out, now)
        self.dirty = True
        if self.on_outcome is not None:
            self.on_outcome(v, req, out, now)

    def _follow_up(self, lane: Lane, v: str, out: Outcome, now: dt.datetime, replanned: bool = False) -> None:
        """A change that fell due while the pass ran (it read the line before), or that a re-plan during
        the pass made due: send it, or let it wait for the line's slot, as at its ``apply_from``."""
        plan = self.sv.number_plan(v)
        d = due(self.sv, plan, now, self.right) if plan is not None else None
        if d is None or (d.change.program == out.program and not replanned) or self.sv.fenced:
            return
        if not self.holds.hold(self.sv, v, lane.check_at(v), now):
            _send_change(lane, v, d.change.apply_by, now)

    def check_due(self, lane: Lane, v: str) -> None:
        """A drift slot came: read the line when the budget allows (it may be paused by a throttle)."""
        if lane.closed or self.stopping:
            return
        now = self.clock.now()
        held = self.holds.take(v, now)
        if held is not None and not self.sv.fenced:  # a change waited for this slot: its read is the check's
            lane.check_taken(v)
            _send_change(lane, v, held.until, now)
            return
        if self.sv.fenced:
            lane.check_taken(v)
            lane.schedule_check(v, now, self.check_due, not_before=now + dt.timedelta(seconds=1))
            return
        go = lane.budget.reserve(now)
        if go > now:
            lane.defer_check(v, go, self.check_due)
            return
        lane.check_taken(v)
        lane.submit(v, PassRequest(PassKind.CHECK))

    def _retry_due(self, lane: Lane, v: str) -> None:
        if not lane.closed and not self.stopping:
            lane.submit(v, PassRequest(PassKind.RETRY))

    def _change_due(self, v: str, c: Change, gen: int) -> None:
        if gen != self.plan_gen or self.stopping or self.sv.fenced:
            return  # a newer plan scheduled its own; a standby sends nothing
        lane, now = self.lane_of(v), self.clock.now()
        if not c.exact and self.holds.hold(self.sv, v, lane.check_at(v), now):
            return  # sent in the line's drift slot, soon
        _send_change(lane, v, c.apply_by, now, exact_at=c.apply_from if c.exact else None)

    # ---------------------------------------------------------------------------------- planning

    async def replan(self) -> None:
        sv = self.sv
        now = self.clock.now()
        sv.plan = await sv.make_plan()
        if sv is not self.sv:
            return  # a reload swapped the services meanwhile
        if not sv.fenced:  # in a cluster, the leader alerts these
            alert_findings(self.cfg, sv.plan, sv.alerts, now)
        self.schedule_changes(now)
        log.info("replanned", numbers=len(sv.plan.numbers), changes=sum(len(n.changes) for n in sv.plan.numbers),
                 overrides=sum(len(v) for v in sv.manual.values()))
        self.dirty = True
        self.spawn(notices_job(self))

    def schedule_changes(self, now: dt.datetime) -> None:
        """A timed call at each planned change of the coming hours (the next re-plan schedules the rest)."""
        plan = self.sv.plan
        assert plan is not None
        self.plan_gen += 1
        until = now + max(self.cfg.daemon.replan_every, dt.timedelta(hours=1)) + dt.timedelta(hours=1)
        for n in plan.numbers:
            for c in n.changes[1:]:
                if now <= c.apply_from <= until:  # (one due this very instant too: a re-plan on the hour)
                    self.timers.at(c.apply_from, self._change_due, n.voipnumber, c, self.plan_gen)

    async def replan_and_apply(self, sv: Services) -> None:
        await self.replan()
        self.reconcile_due(sv)  # queued, never waited for: calendars never wait behind aql

    # -------------------------------------------------------------------------------------- jobs

    def add_jobs(self) -> None:
        """The periodic jobs of the current services (again after a reload)."""
        for handle in self._jobs:
            self.timers.cancel(handle)
        self._jobs.clear()
        cfg, sv = self.cfg, self.sv
        refresh = min((c.refresh.total_seconds() for c in cfg.calendars.values()), default=30.0)
        self.every(min(max(refresh, 1.0), 30.0), lambda: sources_job(self))
        self.every(cfg.daemon.replan_every.total_seconds(), lambda: self.replan_and_apply(self.sv))
        if sv.overrides is not None:
            self.every(1.0, lambda: overrides_job(self))
        if sv.notices is not None:
            self.every(2.0, lambda: notices_job(self))
        if self.publishing:
            self.every(PUBLISH_S, self.publish_job)
        if sv.lease is not None:
            from .leadership import lease_job

            self.every(LEASE_WATCH_S, lambda: lease_job(self))

    def every(self, seconds: float, job: Callable[[], Any]) -> None:
        """Run ``job`` every ``seconds`` (a coroutine function's calls run as tasks, never two at once)."""
        def tick() -> Any:
            result = job()
            return self.spawn(result) if asyncio.iscoroutine(result) else None

        self._jobs.append(self.timers.every(seconds, tick))

    # -------------------------------------------------------------------------------- publishing

    def publish_job(self) -> None:
        """A new snapshot when something changed, and every few seconds anyway: the page's "now" moves."""
        last = self.published
        if self.dirty or last is None or self.clock.now() - last.now >= REPUBLISH:
            self.publish()

    def publish(self) -> Snapshot:
        """What the page shows now, as one immutable snapshot (the page reads it from its own threads)."""
        self.dirty = False
        self.version += 1
        self.published = snapshot_of(self)
        return self.published

    def snapshot(self) -> Snapshot:
        """The last published snapshot (safe from any thread: one attribute read)."""
        snap = self.published
        if snap is None:
            return Snapshot(self.cfg, self.clock.now(), starting=Starting(0, len(self.cfg.numbers)))
        return snap


def _send_change(lane: Lane, v: str, due_by: dt.datetime, now: dt.datetime,
                 exact_at: dt.datetime | None = None) -> None:
    """A pass for a change due on ``v``, trying until ``due_by`` (a minute at least); an exact hand-over's
    at its boundary ``exact_at``."""
    lane.submit(v, PassRequest(PassKind.EXACT if exact_at is not None else PassKind.CHANGE, exact_at=exact_at,
                               keep_trying_until=max(due_by, now + CHANGE_PERSISTENCE)))


def _drift_note(lane: Lane) -> str | None:
    from .budget import drift_note

    return drift_note(len(lane.numbers), lane.grid.every, lane.grid.per_minute)
