"""The services' calendars and plans: refreshing the calendars (each outcome journalled, a failing or stale
one alerted in words), the command-line overrides as the planner takes them, and a plan over a horizon."""

from __future__ import annotations

import datetime as dt

from ..aio import off_loop
from ..calendars.sources import Sources
from ..clock import Clock
from ..config import Config
from ..core.plan import NumberPlan, Plan, Planner
from ..core.timeline import Manual, display_name
from ..core.words import duration, when
from ..errors import ForwarddError
from ..notify.alerts import Alerts
from ..notify.keys import AlertKey, AlertKind
from ..store.ports import EntryKind, JournalStore, OverrideStore


def horizon_start(now: dt.datetime) -> dt.datetime:
    """Plans start on the hour: re-plans within the hour reuse everything nothing changed, and the daemon,
    `apply` and `status` agree on the program for now (the last change with apply_from <= now)."""
    return now.replace(minute=0, second=0, microsecond=0)


class PlanningPart:
    """Mixed into ``Services``: what it needs of them is declared here."""

    cfg: Config
    clock: Clock
    journal: JournalStore | None
    sources: Sources
    planner: Planner
    alerts: Alerts
    overrides: OverrideStore | None
    plan: Plan | None
    manual: dict[str, list[Manual]]

    async def refresh_calendars(self, names: list[str] | None = None) -> list[str]:
        """Refresh sources (default: all), journal each outcome and alert on failures and staleness;
        returns the names whose events changed."""
        now = self.clock.now()
        names = list(self.sources.states) if names is None else names
        changed = await self.sources.refresh_all(now, names)
        for name in names:
            st = self.sources[name]
            if self.journal is not None:
                self.journal.record(EntryKind.CALENDAR.value, now, None, st.error is None, calendar=name, error=st.error,
                                    events_loaded=st.loaded)
            key = AlertKey(AlertKind.CALENDAR, calendar=name)
            if st.error:
                kept = (f"keeping the last good copy, from {when(st.good_at, self.cfg.tz)}" if st.loaded and st.good_at
                        else "keeping the last good copy" if st.loaded else "there is no good copy yet")
                self.alerts.raise_(key, f"Calendar '{name}' is failing: {st.error}; {kept}", now)
            elif st.stale(now):
                age = st.age(now)
                self.alerts.raise_(key, f"Calendar '{name}' has not been read for {duration(age.total_seconds()) if age else '?'}"
                                        f", longer than its max_age ({duration(st.settings.max_age.total_seconds())})",
                                   now)
            else:
                self.alerts.clear(key, now)
        return changed

    # -------------------------------------------------------------------------------------- planning

    async def make_plan(self, start: dt.datetime | None = None, days: float | None = None) -> Plan:
        """Plan from ``start`` (default: this hour) for ``days`` (default: the horizon), with the sources'
        last good copies. Planning runs off the event loop."""
        start = start or horizon_start(self.clock.now())
        end = start + (dt.timedelta(days=days) if days is not None else self.cfg.daemon.horizon)
        calendars = await self.sources.snapshot(start, end)
        self.manual = await self.manual_overrides(start)
        return await off_loop(self.planner.plan, calendars, start, end, self.manual, name="forwardd-plan")

    async def manual_overrides(self, since: dt.datetime) -> dict[str, list[Manual]]:
        """The command-line overrides still to end after ``since``, per number. When the store cannot be
        read, the last ones read are kept (and alerted), never silently dropped."""
        if self.overrides is None:
            return {}
        try:
            live = await off_loop(self.overrides.listed, since, timeout=10)
        except (ForwarddError, TimeoutError) as err:
            self.alerts.raise_(AlertKey(AlertKind.OVERRIDES), f"cannot read the command-line overrides ({err}); using the last "
                                            "ones read", self.clock.now())
            return self.manual
        self.alerts.clear(AlertKey(AlertKind.OVERRIDES), self.clock.now())
        out: dict[str, list[Manual]] = {}
        for o in live:
            person = display_name(o.person) if o.person else None
            out.setdefault(o.voipnumber, []).append(Manual(o.start, o.end, o.target, person, o.reason, o.id))
        return out

    def number_plan(self, voipnumber: str) -> NumberPlan | None:
        if self.plan is None:
            return None
        try:
            return self.plan.for_number(voipnumber)
        except KeyError:
            return None
