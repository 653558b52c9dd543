"""Safe reloads (SIGHUP, or the config file changing): a whole new set of services is built from the
config file, the engine takes it over (the old set's passes stop at their next safe point and are
waited for, bounded), then the old set is closed. A broken config is refused and the old one kept
(alerted). Reloads asked for while one runs are folded into one more, and a burst of them (fifty SIGHUPs,
an editor writing the file twice) settles for a moment first and makes one. The state directory's lock, the
page's server and the cluster lease are handed over, so none of them lets go because the config was
read again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import structlog

from ..config import load_config
from ..errors import ConfigError, ForwarddError
from ..notify.keys import AlertKey, AlertKind
from .jobs import calendar_metrics
from .services import Services

if TYPE_CHECKING:
    from ..web.snapshot import Snapshot
    from .engine import Engine

log = structlog.get_logger("forwardd.reload")
SETTLE_S = 0.25  # a reload waits until no new request came for this long...
SETTLE_ROUNDS = 8  # ...but never more than this many times


class Reloader:
    def __init__(self, engine: Engine, config_path: Path, web: Callable[[], Snapshot],
                 wire: Callable[[Services], None]) -> None:
        self.engine = engine
        self.config_path = config_path
        self.web = web
        self.wire = wire
        self.mtime = self._mtime()
        self.reloading = False
        self.again = False
        self._task: asyncio.Task[Any] | None = None

    def _mtime(self) -> float | None:
        try:
            return self.config_path.stat().st_mtime
        except OSError:
            return None

    def watch(self) -> None:
        """A periodic look at the config file: a change reloads it, as SIGHUP would."""
        if self._mtime() != self.mtime:
            self.request()

    def request(self) -> None:
        if not self.engine.ready or self.reloading:
            self.again = True  # still starting, or reloading: once more when done
            return
        self.reloading = True  # (now: signals that come before the task starts are folded into it too)
        self._task = self.engine.spawn(self._loop())

    def pending(self) -> None:
        """Start-up is done: a reload asked for meanwhile runs now."""
        if self.again:
            self.again = False
            self.request()

    async def _loop(self) -> None:
        try:
            while True:
                for _ in range(SETTLE_ROUNDS):  # a burst of signals (an editor saving twice) is one reload
                    self.again = False
                    await self.engine.clock.sleep(SETTLE_S)
                    if not self.again:
                        break
                self.again = False
                await self.reload()
                if not self.again or self.engine.stopping:
                    break
        finally:
            self.reloading = False

    async def reload(self) -> None:
        """Build a new set of services from the config file, hand it to the engine, close the old set."""
        engine = self.engine
        old = engine.sv
        now = engine.clock.now()
        self.mtime = self._mtime()
        try:
            cfg = load_config(self.config_path)
            same_dir = old.state is not None and cfg.resolve_state_dir() == old.state.path
            simulated = {name: edges.simulated for name, edges in old.accounts.items()
                         if edges.simulated is not None and name in cfg.account_names
                         and cfg.account(name).url == edges.settings.url}
            new = await Services.open(cfg, aql=True, journal="write", clock=engine.clock, exclusive=not same_dir,
                                      state=old.state if same_dir else None, simulated_accounts=simulated,
                                      web=self.web, web_server=old.web, lease=old.lease)
        except (ConfigError, ForwarddError) as err:
            log.error("reload_rejected", error=str(err))
            old.alerts.raise_(AlertKey(AlertKind.CONFIG), f"The new config was refused; forwardd still runs on the "
                                                          f"old one: {err}", now)
            return
        self.wire(new)
        await adopt(engine, new)
        await old.close(keep_state=same_dir, keep_web=new.web is not None and new.web is old.web,
                        keep_lease=new.lease is not None and new.lease is old.lease)
        new.alerts.clear(AlertKey(AlertKind.CONFIG), engine.clock.now())
        log.info("reloaded", config=str(self.config_path))


async def adopt(engine: Engine, new: Services) -> None:
    """Make ``new`` the engine's services: what each account last confirmed and read carries over, the
    calendars' copies too; the old set's passes are told to stop and waited for (bounded); then new lanes,
    jobs and a plan, and a pass for every line with a change due."""
    old = engine.sv
    new.sources.adopt(old.sources)
    if new.credit is not None and old.credit is not None:
        new.credit.adopt(old.credit)
    for name, edges in new.accounts.items():
        before = old.accounts.get(name)
        if before is not None:
            edges.reconciler.confirmed.update(before.reconciler.confirmed)
            edges.reconciler.read_at.update(before.reconciler.read_at)
            edges.reconciler.journal_lookups = before.reconciler.journal_lookups
    missing = [n for n, st in new.sources.states.items() if not st.loaded]
    if missing:
        await new.refresh_calendars(missing)
    new.plan = await new.make_plan()
    new.start_lease()  # (a lease handed over runs on as it was)
    for edges in old.accounts.values():
        edges.reconciler.retiring = True
    in_flight = [t for lane in engine.lanes.values() for t in lane.close()]
    if in_flight:
        await asyncio.wait(in_flight, timeout=max(e.settings.timeout.total_seconds() for e in old.accounts.values())
                           + 5 if old.accounts else 5)
    for lane in engine.lanes.values():
        lane.cancel()
    engine.lanes.clear()
    engine.sv = new
    engine.open_lanes(engine.anchor)
    engine.add_jobs()
    calendar_metrics(engine)
    await engine.replan()
    now = engine.clock.now()
    for lane in engine.lanes.values():
        for v in lane.numbers:
            lane.schedule_check(v, now, engine.check_due)
    engine.reconcile_due(new)
