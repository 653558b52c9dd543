"""What the page shows: a snapshot of the daemon's state, published by the engine (on its event loop,
so that it is consistent) and read by the page's request threads without ever waiting for the loop.
A snapshot is never changed once published; the engine publishes a new one after what changes it (at
most about once a second), so a page is at most that old, whatever the daemon is busy with.

The page's "now" (who has the calls now, the now line, the ages of calendars) is the snapshot's ``now``:
the engine publishes at least every 30 seconds even when nothing else changes, so that it moves. The
page keeps what it rendered from a snapshot until a snapshot of another ``version`` comes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

from ..config import Config
from ..core.credit import CreditState
from ..core.plan import Plan
from ..notify.keys import AlertKey, Standing
from ..store.ports import JournalStore

if TYPE_CHECKING:
    from ..calendars.sources import SourceState


JournalReader = JournalStore  # what the page reads: the journal's port


class LeaseState(Protocol):
    """What an instance of a cluster knows of its lease (``service.lease.LeaseStatus``)."""

    @property
    def instance(self) -> str: ...
    @property
    def leading(self) -> bool: ...
    @property
    def sending(self) -> bool: ...
    @property
    def leader(self) -> str | None: ...
    @property
    def since(self) -> dt.datetime | None: ...
    @property
    def problem(self) -> str | None: ...


@dataclass(frozen=True)
class Starting:
    """The daemon is starting: how many of its lines are confirmed to hold their program for now."""

    confirmed: int
    total: int


@dataclass(frozen=True)
class AccountState:
    """One provider account as the daemon sees it: its lines, how often each is read for hand-made
    changes (``drift_every`` as configured, ``drift_effective`` as the request cap allows), and what
    stops it (a refused password, an outage), if anything."""

    name: str
    numbers: int
    drift_every: dt.timedelta
    drift_effective: dt.timedelta
    problem: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """The current set of services' plan and state at ``now``. Copies of the maps, never the live ones;
    the journal and the metrics are read when a page needs them."""

    cfg: Config
    now: dt.datetime
    plan: Plan | None = None
    confirmed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # fields last confirmed per number
    read_at: Mapping[str, dt.datetime] = field(default_factory=dict)  # last read of the account per number
    # numbers not confirmed to route calls right now (a change is due, and they do not hold the one before)
    unconfirmed: frozenset[str] = frozenset()
    # numbers with a change due that hold the program before it, still right until the instant given
    right_until: Mapping[str, dt.datetime] = field(default_factory=dict)
    alerts: Mapping[AlertKey, Standing] = field(default_factory=dict)  # alerts standing now
    alert_log: Sequence[Mapping[str, Any]] = ()  # alerts and recoveries raised lately, oldest first
    sources: Mapping[str, SourceState] = field(default_factory=dict)
    journal: JournalReader | None = None
    metrics: Callable[[], bytes] | None = None
    cluster: LeaseState | None = None  # with [cluster]: who leads, as this instance knows it
    starting: Starting | None = None  # while the daemon starts: how far it has got
    accounts: tuple[AccountState, ...] = ()  # each provider account (one, unless [accounts] names more)
    credit: Mapping[str, CreditState] = field(default_factory=dict)  # each line's credit at its last read
    version: int = 0  # grows with each snapshot published: a page rendered from one may be kept until the next
