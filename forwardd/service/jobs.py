"""The engine's periodic jobs: calendars, overrides, notices, re-plans; and loading what every line was
last confirmed to hold from the journal (start-up, a cluster's take-over, a standby's page)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ..aio import off_loop
from ..errors import ForwarddError

if TYPE_CHECKING:
    from .engine import Engine
    from .services import Services

log = structlog.get_logger("forwardd.engine")


async def sources_job(engine: Engine) -> None:
    sv = engine.sv
    due = sv.sources.due(engine.clock.now())
    if not due:
        return
    changed = await sv.refresh_calendars(due)
    calendar_metrics(engine)
    if changed and sv is engine.sv:
        await engine.replan_and_apply(sv)


async def overrides_job(engine: Engine) -> None:
    sv = engine.sv
    if sv.overrides is None:
        return
    try:
        version = await off_loop(sv.overrides.version, timeout=5)
    except (ForwarddError, TimeoutError):
        return  # replan's own read alerts when the store stays unreadable
    if engine.overrides_version is None:
        engine.overrides_version = version
    elif version != engine.overrides_version:
        engine.overrides_version = version
        log.info("overrides_changed", version=version)
        await engine.replan_and_apply(sv)


async def notices_job(engine: Engine) -> None:
    sv = engine.sv
    if sv.notices is None or sv.plan is None or sv.fenced:
        return  # (in a cluster, the leader sends the notices)
    now = engine.clock.now()
    try:
        due = await off_loop(sv.notices.pending, sv.plan, now, timeout=10)
    except (ForwarddError, TimeoutError) as err:
        log.warning("notices_failed", error=str(err))
        return
    for notice in due:
        sv.notices.send(notice, now)


def calendar_metrics(engine: Engine) -> None:
    """What the metrics measure when scraped (calendar ages, each line's credit) they ask of the engine's
    current services: its sources and its credit watch."""
    if engine.metrics is not None:
        engine.metrics.sources = lambda: engine.sv.sources.states
        engine.metrics.credit = lambda: engine.sv.credit.states() if engine.sv.credit is not None else {}


async def load_confirmed(engine: Engine, sv: Services, standby: bool = False) -> bool:
    """Take what every line was last confirmed to hold from the journal (one query, off the loop).
    A standby keeps it only while it is still a standby. True when loaded."""
    try:
        confirmed = await sv.refresh_confirmed()
    except (ForwarddError, TimeoutError) as err:  # (the journal's and the lease's own alerts say why)
        (log.info if standby else log.warning)("confirmed_unreadable", error=str(err))
        if not standby:
            engine.confirmed_known = False
        return False
    if standby and engine.sending:
        return False
    engine.confirmed_known = True
    for edges in sv.accounts.values():
        edges.reconciler.confirmed.clear()
        edges.reconciler.journal_lookups = False  # every confirmation is in memory now: no query per line
    for v, record in confirmed.items():
        try:
            sv.edges_of(v).reconciler.remember(v, record)
        except KeyError:
            continue  # a line no longer configured
    return True
