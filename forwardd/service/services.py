"""The composition root: the one place where forwardd's edges are built, from a config.

``Services`` owns the clock, the state directory (and its lock), the journal, the aql client (real, or
the simulated account), the calendar sources and their expansion worker, the planner, the alerts and
the reconciler, and closes them all with one ``close()``. Every command gets one: ``run`` (through the
daemon, which builds a new one on reload), ``apply``, ``status``, ``history``, ``plan``, ``check`` and
``simulate``. Nothing else constructs an edge. What a command needs is said by the flags of ``open``,
so that commands which never talk to aql never need the password, and read-only ones never take the
lock. The daemon's set also runs the page's server (``web``), handed over on a reload like the lock.

With ``[cluster]``, the journal, the overrides and the notice claims are the PostgreSQL ones (the same
interfaces), the aql client names this instance in every request, and a set that may send (``run``,
``apply``) holds the cluster lease (``lease``): the reconciler asks its fence before each changeuser. A
reload hands the lease over too, so that leadership does not move because the config was re-read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import structlog

from ..aio import off_loop
from ..aql.client import AqlClient
from ..calendars.sources import Sources
from ..calendars.worker import Expander, WorkerExpander
from ..clock import Clock, SystemClock
from ..config import SIMULATED, Config, aql_password, db_password
from ..core.plan import NumberPlan, Plan, Planner
from ..core.timeline import Manual, display_name
from ..errors import ForwarddError
from ..logs import register_secret
from ..notify.alerts import Alerts
from ..notify.keys import AlertKey, AlertKind
from ..notify.notices import Notices
from ..notify.notifier import Notifier, register_url_secrets
from ..store.journal import Journal, open_journal
from ..store.overrides import SqliteOverrides
from ..store.postgres import Database, Leadership, PgJournal, PgOverrides, read_leader
from ..store.statedir import StateDir, StateDirError, check_state_dir
from .budget import RequestBudget
from .lease import Lease, LeaseEvent
from .reconcile import Reconciler

if TYPE_CHECKING:  # the page's modules (and Jinja2) load only where the page is served
    from ..web.server import WebServer
    from ..web.snapshot import Snapshot

log = structlog.get_logger("forwardd.services")

SIMULATED_STATE = "simulated-account.json"
JOURNAL = "journal.sqlite"


def horizon_start(now: dt.datetime) -> dt.datetime:
    """Plans start on the hour: re-plans within the hour reuse everything nothing changed, and the daemon,
    `apply` and `status` agree on the program for now (the last change with apply_from <= now)."""
    return now.replace(minute=0, second=0, microsecond=0)


@dataclass
class Services:
    cfg: Config
    clock: Clock
    state: StateDir | None
    journal: Journal | PgJournal | None
    client: AqlClient | None
    sources: Sources
    planner: Planner
    alerts: Alerts
    reconciler: Reconciler | None
    expander: Expander
    notifier: Notifier
    overrides: SqliteOverrides | PgOverrides | None = None  # command-line overrides and sent notices
    notices: Notices | None = None
    budget: RequestBudget | None = None
    account: Any = None  # the simulated account, when url = "simulated" (for trials and tests)
    notes: list[str] = field(default_factory=list)  # what opening found worth an alert
    plan: Plan | None = None
    manual: dict[str, list[Manual]] = field(default_factory=dict)  # the overrides the last plan used
    web: WebServer | None = None  # the page, when asked for and [web] port is set
    db: Database | None = None  # the cluster's database, with [cluster]
    lease: Lease | None = None  # the cluster lease, for a set that may send (run, apply) with [cluster]
    _closed: bool = False

    @classmethod
    async def open(
        cls,
        cfg: Config,
        *,
        aql: bool = False,
        exclusive: bool = False,
        journal: str = "none",  # "none", "read" or "write"
        clock: Clock | None = None,
        expander: Expander | None = None,
        simulated_account: Any = None,
        env: dict[str, str] | None = None,
        state: StateDir | None = None,
        web: Callable[[], Snapshot] | None = None,
        web_server: WebServer | None = None,
        lease: Lease | None = None,
    ) -> Services:
        """Build what a command needs. ``aql``: a client (resolving the password); ``exclusive``: take the
        state directory's lock (``run``, ``apply``); ``journal``: open it to read or to write.

        ``state``: a state directory already open (and locked) by the set this one replaces.
        ``web``: serve the page (when ``[web] port`` is set) with the snapshots this gives (the daemon's);
        ``web_server``: the page's server of the set this one replaces, kept if it listens where asked.
        ``lease``: the cluster lease of the set this one replaces, kept if the cluster settings are the same.

        Raises StateDirError (naming the path and the reason), AlreadyRunning, ConfigError (a password)."""
        clock = clock or SystemClock()
        env = dict(os.environ) if env is None else env
        # writing needs a usable directory (an error naming it otherwise); reading makes do with what is there
        writes = exclusive or journal == "write" or (aql and cfg.aql.url == SIMULATED and simulated_account is None)
        path = cfg.resolve_state_dir()
        handed_over = state is not None and state.path == path
        if handed_over:
            pass  # handed over by a reload, lock and all
        elif writes:
            check_state_dir(path)
            state = StateDir(path)
            if exclusive:
                state.lock()
        else:  # the calendar cache and the journal are welcome here, not needed
            try:
                check_state_dir(path)
                state = StateDir(path)
            except StateDirError:
                state = StateDir(path) if path.is_dir() else None
        notes: list[str] = []
        alerts_ref: list[Alerts] = []
        db = None
        if cfg.cluster is not None and (journal != "none" or (aql and exclusive)):  # (simulate, plan: no database)
            db_secret = db_password(cfg, env)
            if db_secret is not None:
                register_secret(db_secret.get_secret_value())
            db = Database(cfg.cluster.database, db_secret, cfg.cluster.instance_name())

        def journal_trouble(message: str | None) -> None:
            if alerts_ref:
                alerts_ref[0].from_thread(AlertKey(AlertKind.JOURNAL), message, clock.now())

        the_journal: Journal | PgJournal | None = None
        if db is not None and journal != "none":  # the cluster's journal, shared by every instance
            the_journal = PgJournal(db, journal_trouble, write=journal == "write")
        elif journal == "write" and state is not None:
            the_journal, note = open_journal(state / JOURNAL, clock.now(), journal_trouble)
            if note:
                notes.append(note)
        elif journal == "read" and state is not None:
            the_journal = Journal(state / JOURNAL, write=False)
        register_url_secrets(cfg.alerts.notify + [u for p in cfg.people.values() for u in p.notify])
        notifier = Notifier()
        alerts = Alerts(cfg.alerts, the_journal if journal == "write" else None, notifier,
                        state_path=(state / "alerts.json") if state is not None and journal == "write" else None,
                        loop=asyncio.get_running_loop())
        alerts_ref.append(alerts)
        client, account = None, simulated_account
        if aql:
            client, account = _client(cfg, state, clock, simulated_account, env, db.instance if db else None)
        expander = expander or WorkerExpander(cfg.daemon.calendar_deadline.total_seconds())
        sources = Sources(cfg, state.path if state is not None else None, expander)
        budget = RequestBudget(cfg.aql.max_requests_per_minute, clock.now())
        reconciler = Reconciler(cfg, client, the_journal, alerts, clock, budget=budget) if client is not None else None
        if client is not None and reconciler is not None:
            client.gate = reconciler.gate
        overrides: SqliteOverrides | PgOverrides | None = None
        if db is not None and journal != "none":
            overrides = PgOverrides(db, readonly=journal != "write")
        elif state is not None and (journal == "write" or (state / JOURNAL).exists()):
            overrides = SqliteOverrides(state / JOURNAL, readonly=journal != "write")
        notices = Notices(cfg, overrides, notifier, the_journal, claims_required=db is not None) \
            if journal == "write" else None
        for note in notes:
            alerts.raise_(AlertKey(AlertKind.JOURNAL_MOVED), note, clock.now())
        sv = cls(cfg, clock, state, the_journal, client, sources, Planner(cfg), alerts, reconciler, expander,
                 notifier, overrides, notices, budget, account, notes, db=db)
        if db is not None and reconciler is not None:
            # what was confirmed comes from the shared journal in one query (the daemon's refresh_confirmed),
            # never a query per number on the event loop
            reconciler.journal_lookups = False
        # the sets that may send (run, apply, and a reload's, whose state directory is handed over) hold the lease
        if db is not None and cfg.cluster is not None and aql and (exclusive or handed_over):
            # the same [cluster] table (its database URL among them) and the same name (a default one may change)
            if lease is not None and lease.settings == cfg.cluster and lease.instance == db.instance:
                sv.lease = lease  # handed over by a reload: still leading (or not), as before
            else:  # (a lease handed over and not kept is given up when the old set closes)
                sv.lease = Lease(db, cfg.cluster, clock)
            sv.lease.on_event, sv.lease.on_trouble = sv._lease_event, sv._lease_trouble
            if reconciler is not None:
                reconciler.may_send = sv.lease.may_send
        elif cfg.cluster is not None and reconciler is not None and simulated_account is None:
            reconciler.may_send = _never  # in a cluster, only the holder of the lease ever sends
        if web is not None and cfg.web.port is not None:
            try:
                await sv._serve_web(web, web_server)
            except ForwarddError:  # what was handed over stays with the set that keeps running
                await sv.close(keep_state=handed_over, keep_lease=lease is not None and sv.lease is lease)
                raise
        return sv

    async def _serve_web(self, source: Callable[[], Snapshot], running: WebServer | None) -> None:
        """Serve the page: keep the server handed over when it listens where the config says (a reload
        does not rebind the port), else start one. Raises ForwarddError (the port is taken)."""
        from ..web.server import WebServer

        if running is not None and running.serves(self.cfg.web):
            running.source = source
            self.web = running
            return
        self.web = WebServer(self.cfg.web, source, asyncio.get_running_loop()).start()

    @property
    def fenced(self) -> bool:
        """True when this set may not send to aql now (a standby, or a leader that may have lost its lease)."""
        return self.reconciler is not None and self.reconciler.fenced()

    # ------------------------------------------------------------------------------------- cluster

    def _lease_event(self, event: LeaseEvent) -> None:
        """A leadership change (called from the lease's thread): journalled (kind ``leader``) and alerted."""
        now = self.clock.now()
        if event.kind == "acquired":
            message = (f"forwardd {event.instance} now leads the cluster (took over from {event.previous})"
                       if event.previous and event.previous != event.instance
                       else f"forwardd {event.instance} now leads the cluster")
            detail = {"since": event.since.isoformat() if event.since else None, "previous": event.previous,
                      "sending_from": event.sending_from.isoformat() if event.sending_from else None}
        else:
            message = (f"forwardd {event.instance} lost the cluster lease and stopped sending to aql "
                       f"({event.reason}); a standby takes over")
            detail = {"reason": event.reason, "since": event.since.isoformat() if event.since else None}
        if self.journal is not None:
            self.journal.record("leader", now, None, event.kind == "acquired", event=event.kind,
                                instance=event.instance, **detail)
        self.alerts.tell_from_thread(AlertKey(AlertKind.LEADER), message, now)

    def _lease_trouble(self, message: str | None) -> None:
        """The cluster database became unreachable for the lease (a message) or reachable again (None)."""
        text = None if message is None else f"{message}: this instance cannot lead (if it led, it stopped sending)"
        self.alerts.from_thread(AlertKey(AlertKind.CLUSTER), text, self.clock.now())

    def start_lease(self) -> None:
        """Start competing for the cluster lease (the daemon does once it has a plan, so that an instance
        still reading its calendars never holds the lease while a standby is ready)."""
        if self.lease is not None:
            self.lease.start()

    async def wait_for_lease(self, timeout: float = 30.0) -> None:
        """For ``apply`` in a cluster: take the lease and wait until this instance may send. Raises
        ForwarddError when another instance leads (its daemon applies the plan) or the database is away."""
        lease = self.lease
        if lease is None:
            return
        lease.start()
        await off_loop(lease.first_look.wait, timeout, timeout=timeout + 1, name="forwardd-lease-wait")
        status = lease.status()
        if not status.leading:
            if status.leader is not None:
                since = f" since {status.since.isoformat(timespec='seconds')}" if status.since else ""
                raise ForwarddError(f"forwardd {status.leader} leads the cluster{since}: its daemon applies the plan; "
                                    "apply sends nothing while another instance leads")
            raise ForwarddError(f"cannot take the cluster lease: {status.problem or 'no answer from the database'}")
        ready = lease.ready_in() or 0.0
        await asyncio.sleep(ready + 0.05)
        if not lease.may_send():
            raise ForwarddError(f"lost the cluster lease while waiting to send: {lease.status().problem}")

    async def leadership(self) -> Leadership | None:
        """Who leads the cluster now, read from the database (None without [cluster]). Raises ForwarddError."""
        if self.db is None:
            return None
        return await off_loop(read_leader, self.db, timeout=15, name="forwardd-leader")

    async def refresh_confirmed(self) -> dict[str, dict[str, str]]:
        """What every number was last confirmed to hold, on any instance (the shared journal). Raises
        ForwarddError (the journal cannot be read), TimeoutError."""
        if self.journal is None:
            return {}
        return await off_loop(self.journal.confirmed_all, timeout=15, name="forwardd-confirmed")

    # ----------------------------------------------------------------------------------- calendars

    async def refresh_calendars(self, names: list[str] | None = None) -> list[str]:
        """Refresh sources (default: all), journal each outcome and alert on failures and staleness;
        returns the names whose events changed."""
        now = self.clock.now()
        names = list(self.sources.states) if names is None else names
        changed = await self.sources.refresh_all(now, names)
        for name in names:
            st = self.sources[name]
            if self.journal is not None:
                self.journal.record("calendar", now, None, st.error is None, calendar=name, error=st.error,
                                    events_loaded=st.loaded)
            if st.error:
                what = "keeping the last good copy" if st.loaded else "no good copy yet"
                self.alerts.raise_(AlertKey(AlertKind.CALENDAR, calendar=name), f"calendar {name}: {st.error} ({what})",
                                   now)
            elif st.stale(now):
                self.alerts.raise_(AlertKey(AlertKind.CALENDAR, calendar=name),
                                   f"calendar {name} is older than its max_age", now)
            else:
                self.alerts.clear(AlertKey(AlertKind.CALENDAR, calendar=name), now)
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
            out.setdefault(o.voipnumber, []).append(Manual(o.start, o.end, o.forwardto, person, o.reason, o.id))
        return out

    def number_plan(self, voipnumber: str) -> NumberPlan | None:
        if self.plan is None:
            return None
        try:
            return self.plan.for_number(voipnumber)
        except KeyError:
            return None

    # ------------------------------------------------------------------------------------- closing

    async def close(self, keep_state: bool = False, keep_web: bool = False, keep_lease: bool = False) -> None:
        """Close every edge this object opened, in the reverse order of need. Safe to call twice.
        ``keep_state``: leave the state directory locked (it was handed to the set replacing this one);
        ``keep_web``: leave the page's server running; ``keep_lease``: keep the cluster lease (likewise)."""
        if self._closed:
            return
        self._closed = True
        if self.web is not None and not keep_web:
            await asyncio.get_running_loop().run_in_executor(None, self.web.close)
        await self.alerts.drain()
        if self.client is not None:
            await self.client.aclose()
        if self.lease is not None and not keep_lease:  # given up only once nothing more can be sent
            await asyncio.get_running_loop().run_in_executor(None, self.lease.close)
        await self.expander.aclose()
        if self.overrides is not None:
            self.overrides.close()
        if self.journal is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.journal.close)
        if self.state is not None and not keep_state:
            self.state.unlock()


def _never() -> bool:
    return False


def _client(
    cfg: Config, state: StateDir | None, clock: Clock, account: Any, env: dict[str, str], instance: str | None = None
) -> tuple[AqlClient, Any]:
    """The configured account's client (naming ``instance`` in every request, in a cluster). For ``url =
    "simulated"``, the simulated account (kept in the state directory so that successive commands see the
    same account, unless one is handed in)."""
    timeout = cfg.aql.timeout.total_seconds()
    if cfg.aql.url != SIMULATED and account is None:
        password = aql_password(cfg, env)
        register_secret(password.get_secret_value())
        return AqlClient(cfg.aql.url, cfg.aql.username, password, timeout=timeout,
                         concurrency=cfg.aql.concurrency, instance=instance), None
    from ..aql.simulated import SIMULATED_CREDENTIAL, SIMULATED_URL, SimulatedTransport, simulated_account

    if account is None:
        path = (state / SIMULATED_STATE) if state is not None else None
        account = simulated_account([n.voipnumber for n in cfg.numbers], wraps=cfg.aql.window_wraps_midnight,
                                    clock=clock.now, path=path)
    else:
        account.add_numbers([n.voipnumber for n in cfg.numbers])
    client = AqlClient(SIMULATED_URL, SIMULATED_CREDENTIAL, SIMULATED_CREDENTIAL, timeout=timeout,
                       concurrency=cfg.aql.concurrency, transport=SimulatedTransport(account), instance=instance)
    return client, account

