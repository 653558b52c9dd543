"""What the page shows, taken from the engine at one instant: copies of its maps (never the live ones),
so that the page's threads read it while the engine goes on."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..web.snapshot import AccountState, Snapshot, Starting

if TYPE_CHECKING:
    from .engine import Engine


def snapshot_of(engine: Engine) -> Snapshot:
    """The engine's current services' plan and state, now."""
    sv, cfg, now = engine.sv, engine.cfg, engine.clock.now()
    confirmed: dict[str, Any] = {}
    read_at: dict[str, dt.datetime] = {}
    accounts = []
    for name, edges in sv.accounts.items():
        rec = edges.reconciler
        confirmed.update((v, r.record) for v, r in rec.confirmed.items())
        read_at.update(rec.read_at)
        lane = engine.lanes.get(name)
        every = cfg.daemon.drift_check_every
        problem = "the account refused the credentials" if rec.auth_failed_at is not None else None
        accounts.append(AccountState(name, len(cfg.numbers_of(name)), every, lane.grid.interval if lane else every,
                                     problem))
    wrong, right_until = engine.pending(sv) if engine.ready else ([], {})
    unconfirmed = frozenset(wrong)
    total = len(cfg.numbers)
    starting = None
    if not engine.ready or engine.starting is not None:
        starting = Starting(total - len(unconfirmed) if engine.ready else 0, total)
    return Snapshot(cfg, now, sv.plan, confirmed=confirmed, read_at=read_at, unconfirmed=unconfirmed,
                    right_until=right_until,
                    alerts=dict(sv.alerts.active), alert_log=list(sv.alerts.sent), sources=dict(sv.sources.states),
                    journal=sv.journal, metrics=engine.metrics.text if engine.metrics is not None else None,
                    cluster=sv.lease.status() if sv.lease is not None else None, starting=starting,
                    accounts=tuple(accounts), credit=sv.credit.states() if sv.credit is not None else {},
                    version=engine.version)
