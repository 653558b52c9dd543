"""The composition root: the one place where forwardd's edges are built, from a config.

``Services`` owns the clock, the state directory (and its lock), the journal, one set of edges per
provider account (``AccountEdges``: its carrier, request budget and reconciler; the simulated account
where the config asks for it), the calendar sources and their expansion worker, the planner, the
alerts, and closes them all with one ``close()``. Every command gets one: ``run`` (through the
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
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import structlog

from ..aql.carrier import AqlCarrier
from ..aql.client import AqlClient
from ..calendars.sources import Sources
from ..calendars.worker import Expander, WorkerExpander
from ..clock import Clock, SystemClock
from ..config import SIMULATED, AqlSettings, Config, account_password, db_password
from ..core.compiler import compile_timeline
from ..core.plan import Compile, Plan, Planner
from ..core.timeline import Manual
from ..errors import ForwarddError
from ..logs import register_secret
from ..notify.alerts import Alerts
from ..notify.keys import AlertKey, AlertKind
from ..notify.notices import Notices
from ..notify.notifier import Notifier, register_url_secrets
from ..store.journal import Journal, open_journal
from ..store.overrides import SqliteOverrides
from ..store.ports import JournalStore, OverrideStore
from ..store.statedir import StateDir, StateDirError, check_state_dir
from .budget import RequestBudget
from .cluster import ClusterPart
from .credit import STATE_FILE, CreditWatch
from .lines import line_specs
from .planning import PlanningPart
from .reconcile import Reconciler

if TYPE_CHECKING:  # loaded only where used: the page (Jinja2) where it is served, PostgreSQL in a cluster
    from ..store.postgres import Database
    from ..web.server import WebServer
    from ..web.snapshot import Snapshot
    from .lease import Lease

log = structlog.get_logger("forwardd.services")

SIMULATED_STATE = "simulated-account.json"
JOURNAL = "journal.sqlite"


@dataclass
class AccountEdges:
    """One provider account's edges: its carrier (and client), request budget and reconciler (so a refused
    password or an outage on one account never holds up another's changes)."""

    name: str
    settings: AqlSettings
    carrier: AqlCarrier
    budget: RequestBudget
    reconciler: Reconciler
    simulated: Any = None  # the simulated account, when url = "simulated" (for trials and tests)

    @property
    def client(self) -> AqlClient:
        return self.carrier.client


@dataclass
class Services(ClusterPart, PlanningPart):
    cfg: Config
    clock: Clock
    state: StateDir | None
    journal: JournalStore | None
    sources: Sources
    planner: Planner
    alerts: Alerts
    expander: Expander
    notifier: Notifier
    accounts: dict[str, AccountEdges] = field(default_factory=dict)  # with aql=True: every account the numbers use
    overrides: OverrideStore | None = None  # command-line overrides and sent notices
    notices: Notices | None = None
    notes: list[str] = field(default_factory=list)  # what opening found worth an alert
    plan: Plan | None = None
    manual: dict[str, list[Manual]] = field(default_factory=dict)  # the overrides the last plan used
    web: WebServer | None = None  # the page, when asked for and [web] port is set
    db: Database | None = None  # the cluster's database, with [cluster]
    lease: Lease | None = None  # the cluster lease, for a set that may send (run, apply) with [cluster]
    credit: CreditWatch | None = None  # each line's credit, from the reads the reconcilers make anyway
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
        simulated_accounts: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        compile: Compile = compile_timeline,
        overrides: bool = True,
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
        ``simulated_accounts``: per account name, a simulated account to use (a reload's, the simulator's);
        ``simulated_account``: the same for the one [aql] account. ``compile``: the planner's compiler.
        ``overrides``: read the command-line overrides (the simulator plans without them).

        Raises StateDirError (naming the path and the reason), AlreadyRunning, ConfigError (a password)."""
        clock = clock or SystemClock()
        env = dict(os.environ) if env is None else env
        # writing needs a usable directory (an error naming it otherwise); reading makes do with what is there
        simulated = dict(simulated_accounts or {})
        if simulated_account is not None:
            simulated.setdefault(cfg.account_names[0], simulated_account)
        writes = exclusive or journal == "write" or (aql and any(
            cfg.account(a).url == SIMULATED and a not in simulated for a in cfg.account_names))
        path = cfg.resolve_state_dir()
        handed_over = state is not None and state.path == path
        if handed_over:
            pass  # handed over by a reload, lock and all
        elif writes:
            check_state_dir(path)
            state = StateDir(path)
            if exclusive:
                state.lock(config=cfg.path)
        else:  # the calendar cache and the journal are welcome here, not needed
            try:
                check_state_dir(path)
                state = StateDir(path)
            except StateDirError:
                state = StateDir(path) if path.is_dir() else None
        notes: list[str] = []
        alerts_ref: list[Alerts] = []
        db = None
        if cfg.cluster is not None:  # psycopg and its libpq (10 MB) only in a cluster
            from ..store.pg_journal import PgJournal
            from ..store.pg_overrides import PgOverrides
            from ..store.postgres import Database
            from .lease import Lease
        if cfg.cluster is not None and (journal != "none" or (aql and exclusive)):  # (simulate, plan: no database)
            db_secret = db_password(cfg, env)
            if db_secret is not None:
                register_secret(db_secret.get_secret_value())
            db = Database(cfg.cluster.database, db_secret, cfg.cluster.instance_name())

        def journal_trouble(message: str | None) -> None:
            if alerts_ref:
                alerts_ref[0].from_thread(AlertKey(AlertKind.JOURNAL), message, clock.now())

        the_journal: JournalStore | None = None
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
        accounts: dict[str, AccountEdges] = {}
        if aql:
            for name in cfg.account_names:
                accounts[name] = _account(cfg, name, state, clock, simulated.get(name), env, the_journal, alerts,
                                          db.instance if db else None)
        credit = CreditWatch(cfg, the_journal if journal == "write" else None, alerts,
                             (state / STATE_FILE) if state is not None else None, write=journal == "write")
        for edges in accounts.values():
            edges.reconciler.on_reading = credit.observe
        expander = expander or WorkerExpander(cfg.daemon.calendar_deadline.total_seconds())
        sources = Sources(cfg, state.path if state is not None else None, expander, env=env)
        the_overrides: OverrideStore | None = None
        if not overrides:
            pass
        elif db is not None and journal != "none":
            the_overrides = PgOverrides(db, readonly=journal != "write")
        elif state is not None and (journal == "write" or (state / JOURNAL).exists()):
            the_overrides = SqliteOverrides(state / JOURNAL, readonly=journal != "write")
        notices = Notices(cfg, the_overrides, notifier, the_journal, claims_required=db is not None) \
            if journal == "write" else None
        for note in notes:
            alerts.raise_(AlertKey(AlertKind.JOURNAL_MOVED), note, clock.now())
        sv = cls(cfg, clock, state, the_journal, sources, Planner(line_specs(cfg), cfg.tz, compile), alerts, expander,
                 notifier, accounts, the_overrides, notices, notes, db=db, credit=credit)
        if db is not None:
            for edges in accounts.values():
                # what was confirmed comes from the shared journal in one query (the daemon's refresh_confirmed),
                # never a query per number on the event loop
                edges.reconciler.journal_lookups = False
        # the sets that may send (run, apply, and a reload's, whose state directory is handed over) hold the lease
        if db is not None and cfg.cluster is not None and aql and (exclusive or handed_over):
            # the same [cluster] table (its database URL among them) and the same name (a default one may change)
            if lease is not None and lease.settings == cfg.cluster and lease.instance == db.instance:
                sv.lease = lease  # handed over by a reload: still leading (or not), as before
            else:  # (a lease handed over and not kept is given up when the old set closes)
                sv.lease = Lease(db, cfg.cluster, clock)
            sv.lease.on_event, sv.lease.on_trouble = sv._lease_event, sv._lease_trouble
            for edges in accounts.values():
                edges.reconciler.may_send = sv.lease.may_send
        elif cfg.cluster is not None:
            for edges in accounts.values():
                if edges.simulated is None or edges.name not in simulated:
                    edges.reconciler.may_send = _never  # in a cluster, only the holder of the lease ever sends
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
        self.web = WebServer(self.cfg.web, source).start()

    @property
    def fenced(self) -> bool:
        """True when this set may not send to aql now (a standby, or a leader that may have lost its lease)."""
        return any(a.reconciler.fenced() for a in self.accounts.values())

    def edges_of(self, voipnumber: str) -> AccountEdges:
        """The account edges of a number. Raises KeyError (a number of no configured account)."""
        return self.accounts[self.cfg.account_of(voipnumber)]

    @property
    def reconcilers(self) -> list[Reconciler]:
        return [a.reconciler for a in self.accounts.values()]

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
        for edges in self.accounts.values():
            await edges.carrier.aclose()
            saver = getattr(edges.simulated, "saver", None)
            if saver is not None:
                saver.flush()
        if self.lease is not None and not keep_lease:  # given up only once nothing more can be sent
            await asyncio.get_running_loop().run_in_executor(None, self.lease.close)
        await self.expander.aclose()
        if self.overrides is not None:
            self.overrides.close()
        if self.credit is not None:
            self.credit.save(self.clock.now())
        if self.journal is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.journal.close)
        if self.state is not None and not keep_state:
            self.state.unlock()


def _never() -> bool:
    return False


def _account(
    cfg: Config, name: str, state: StateDir | None, clock: Clock, simulated: Any, env: dict[str, str],
    journal: JournalStore | None, alerts: Alerts, instance: str | None = None,
) -> AccountEdges:
    """One account's edges: its client (naming ``instance`` in every request, in a cluster), carrier,
    budget and reconciler. For ``url = "simulated"``, the simulated account (kept in the state directory so
    that successive commands see the same account, unless one is handed in)."""
    settings = cfg.account(name)
    timeout = settings.timeout.total_seconds()
    numbers = [n.voipnumber for n in cfg.numbers_of(name)]
    if settings.url != SIMULATED and simulated is None:
        password = account_password(cfg, name, env)
        register_secret(password.get_secret_value())
        client = AqlClient(settings.url, settings.username, password, timeout=timeout,
                           concurrency=settings.concurrency, instance=instance, clock=clock)
    else:
        from ..aql.simulated import SIMULATED_CREDENTIAL, SIMULATED_URL, SimulatedTransport, simulated_account

        if simulated is None:
            file = SIMULATED_STATE if name == cfg.account_names[0] and len(cfg.account_names) == 1 \
                else f"simulated-account-{name}.json"
            simulated = simulated_account(numbers, wraps=settings.window_wraps_midnight, clock=clock.now,
                                          path=(state / file) if state is not None else None)
        else:
            simulated.add_numbers(numbers)
        client = AqlClient(SIMULATED_URL, SIMULATED_CREDENTIAL, SIMULATED_CREDENTIAL, timeout=timeout,
                           concurrency=settings.concurrency, transport=SimulatedTransport(simulated),
                           instance=instance, clock=clock)
    carrier = AqlCarrier(name, client)
    budget = RequestBudget(settings.max_requests_per_minute, clock.now())
    reconciler = Reconciler(cfg, carrier, journal, alerts, clock, budget=budget)
    client.gate = reconciler.gate
    return AccountEdges(name, settings, carrier, budget, reconciler, simulated)
