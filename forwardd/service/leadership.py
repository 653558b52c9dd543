"""The engine in a cluster: only the instance whose lease fence is open sends anything to aql. A standby
refreshes its calendars, re-plans and schedules its changes like the leader, and keeps what the leader
confirmed (from the shared journal, every few seconds) for its page, but reads and sends nothing, and
sends no notices. The lease job watches the fence (no I/O: the lease's own thread does that): when it
opens (this instance took the lease, after its first fence), every line with a change due gets a pass at
once and the others their start-up reads, as at start-up; when it closes, the passes in flight stop
before their next request, and the change of leadership is journalled and alerted (by the services'
lease callbacks)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import structlog

from ..notify.keys import AlertKey, AlertKind
from .jobs import load_confirmed

if TYPE_CHECKING:
    from .engine import Engine
    from .services import Services

log = structlog.get_logger("forwardd.leadership")
STANDBY_REFRESH = dt.timedelta(seconds=5)  # a standby loads what the leader confirmed this often (its page)


def lease_job(engine: Engine) -> None:
    """Take over when the fence opens, stop when it closes; while a standby, load what the leader
    confirmed every few seconds."""
    sv = engine.sv
    if sv.lease is None or engine.stopping:
        return
    now = engine.clock.now()
    open_now = sv.lease.may_send()
    if engine.metrics is not None:
        engine.metrics.leader.set(1.0 if open_now else 0.0)
    if open_now and not engine.sending:
        engine.sending = True
        sv.alerts.clear(AlertKey(AlertKind.FENCE), now)
        engine.spawn(take_over(engine, sv))
    elif not open_now and engine.sending:
        engine.sending = False
        st = sv.lease.status()
        log.warning("stopped_sending", instance=st.instance, leading=st.leading, problem=st.problem)
        if st.leading:  # still holds the lock, but could not confirm it in time: sends again once it can
            fence = engine.cfg.cluster.fence.total_seconds() if engine.cfg.cluster else 0
            sv.alerts.raise_(AlertKey(AlertKind.FENCE), f"forwardd {st.instance} leads but could not confirm its lease "
                                                        f"within {fence:g} s; it stopped sending until it can", now)
        engine.dirty = True
    elif not open_now and (engine.standby_refreshed is None or now - engine.standby_refreshed >= STANDBY_REFRESH):
        engine.standby_refreshed = now
        engine.spawn(load_confirmed(engine, sv, standby=True))
        engine.dirty = True


async def take_over(engine: Engine, sv: Services) -> None:
    """This instance may send now. In a new term (it took the lease): what was confirmed comes from the
    shared journal, reads start afresh (spread over the drift interval, as at start-up), and every line
    with a change due gets a pass at once. After a fence that closed and reopened within one term, only
    the lines with a change due."""
    assert sv.lease is not None
    st = sv.lease.status()
    new_term = st.since != engine.term
    engine.term = st.since
    log.info("leading", instance=st.instance, since=st.since.isoformat() if st.since else None, new_term=new_term)
    if new_term:
        engine.confirmed_known = False
        for _ in range(3):  # what the old leader confirmed decides what is sent again: try hard
            if await load_confirmed(engine, sv):
                break
            await engine.clock.sleep(1.0)
        if sv is not engine.sv or not engine.sending:
            return
        for edges in sv.accounts.values():
            edges.reconciler.read_at.clear()
        for lane in engine.lanes.values():
            lane.close()
            lane.cancel()
        engine.lanes.clear()
        engine.open_lanes(engine.clock.now())
        await engine.replan()
        engine.start_up(sv)
    else:
        engine.reconcile_due(sv)
