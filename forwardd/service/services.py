"""Wiring shared by the commands: the aql client (real or simulated), sources, and planning from now."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..aql.account import Account
from ..aql.client import AqlClient, SimulatedTransport
from ..calendars.sources import Sources
from ..config import SIMULATED, Config
from ..core.plan import Plan, Planner
from ..logs import register_secret

SIMULATED_STATE = "simulated-account.json"


def now_utc() -> dt.datetime:
    """The one place the wall clock is read; the core gets instants passed in."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def horizon_start(now: dt.datetime) -> dt.datetime:
    """Plans start on the hour: re-plans within the hour reuse everything nothing changed, and the daemon,
    `apply` and `status` agree on the program for now (the last change with apply_from <= now)."""
    return now.replace(minute=0, second=0, microsecond=0)


def state_dir(cfg: Config, create: bool = True) -> Path:
    path = cfg.resolve_state_dir()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def make_client(cfg: Config, state: Path | None) -> tuple[AqlClient, Account | None]:
    """The configured account's client. For ``url = "simulated"``, an in-process account kept in
    ``<state>/simulated-account.json`` so that successive commands see the same account."""
    timeout = cfg.aql.timeout.total_seconds()
    if cfg.aql.url != SIMULATED:
        password = cfg.resolved_password
        register_secret(password.get_secret_value())
        return AqlClient(cfg.aql.url, cfg.aql.username, password, timeout=timeout,
                         concurrency=cfg.aql.concurrency), None
    account = Account.with_numbers("simulated", "simulated", [n.voipnumber for n in cfg.numbers],
                                   wraps=cfg.aql.window_wraps_midnight)
    if state is not None:
        path = state / SIMULATED_STATE
        account.load(path)
        account.on_change = lambda: account.save(path)
    client = AqlClient("http://simulated.invalid/reseller/voipapi.php", "simulated", "simulated",
                       timeout=timeout, concurrency=cfg.aql.concurrency, transport=SimulatedTransport(account))
    return client, account


def plan_from(
    cfg: Config, sources: Sources, start: dt.datetime, days: float | None = None, planner: Planner | None = None
) -> Plan:
    """Plan from ``start`` for ``days`` (default: the configured horizon) with the sources' last good copies."""
    end = start + (dt.timedelta(days=days) if days is not None else cfg.daemon.horizon)
    return (planner or Planner(cfg)).plan({n: st.calendar for n, st in sources.states.items()}, start, end)
