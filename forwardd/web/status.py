"""The status view: the health headline; then the lines, a group at a time (lines with the same plan
share who has the calls now and the next change), each line with what the account held at its last
read, confirmed or not, drift; the accounts, the calendars, the cluster, the alerts standing.

At 10,000 lines a page holds at most ``lines.PER_PAGE`` of them; ``?q=`` finds lines, and "only lines
needing attention" keeps those not confirmed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..config import NumberSettings
from ..core.credit import credit_words
from ..core.plan import NumberPlan, program_at
from ..notify.keys import AlertKind
from .health import Health, drift_words, health
from .lines import PER_PAGE, Member, Selection, select
from .marks import Colours, label
from .presentation import Names, duration, next_change_words, now_and_next, plural, until, when
from .snapshot import AccountState, JournalReader, LeaseState, Snapshot

if TYPE_CHECKING:
    from ..calendars.sources import SourceState

JOURNAL_READS = 25  # lines of a page whose last differing read is looked up in the journal


@dataclass(frozen=True)
class NextChange:
    program: str
    send_from: str
    send_by: str
    slack: str
    exact: bool
    words: str | None = None  # who gets the calls from when, and when it is sent (as `forwardd status` says it)


@dataclass(frozen=True)
class StatusRow:
    """One line: its state, and what the account held."""

    voipnumber: str
    name: str | None
    label: str
    account: str | None  # when there are several accounts
    state: str  # "confirmed", "not confirmed", "drift", "no plan"
    ok: bool
    held: str | None  # what the account held at the last read that forwardd kept
    held_at: str | None  # when that was read
    last_read: str | None  # the last read of the account (getuser), whatever it found
    note: str
    problems: tuple[str, ...]
    credit: str = "credit not read yet"  # the line's credit in words, at its last read
    credit_low: bool = False  # unreadable, below the alert threshold, or running out soon


@dataclass(frozen=True)
class StatusGroup:
    """Lines with one plan: who has their calls now and until when, the program in force, the next change."""

    now_who: str
    now_until: str  # " until Wed 12:00, then Bob (07700900002)", or ""
    now_reason: str
    now_css: str
    should_be: str | None
    next: NextChange | None
    rows: tuple[StatusRow, ...]


@dataclass(frozen=True)
class CalendarRow:
    name: str
    level: str  # "ok" (fresh), "warn" (failing, its last good copy within max_age), "bad"
    state: str  # "fresh", "failing, last good copy in use", "stale", "no good copy"
    age: str | None
    max_age: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.level == "ok"


@dataclass(frozen=True)
class AccountRow:
    name: str
    numbers: str  # "1,200 lines"
    drift: str  # "every 1h", or the interval in effect and the one configured
    slowed: bool  # the interval in effect differs from the configured one
    problem: str | None


@dataclass(frozen=True)
class ClusterRow:
    instance: str  # this instance
    role: str  # "leader", "leader, taking over", "leader, not sending", "standby"
    leader: str | None  # who leads, None when nobody is known to
    since: str | None  # since when, on the wall clock
    problem: str | None


@dataclass(frozen=True)
class StatusView:
    at: str
    groups: tuple[StatusGroup, ...]
    calendars: tuple[CalendarRow, ...]
    journal_problem: str | None
    alerts: tuple[str, ...]
    health: Health
    lines: Selection
    cluster: ClusterRow | None = None
    accounts: tuple[AccountRow, ...] = ()
    attention: bool = False  # only the lines needing attention

    @property
    def rows(self) -> tuple[StatusRow, ...]:
        """The page's lines, group after group."""
        return tuple(r for g in self.groups for r in g.rows)

    @property
    def confirmed(self) -> int:
        return self.health.confirmed


def cluster_row(lease: LeaseState, tz: ZoneInfo) -> ClusterRow:
    """Who leads and since when, and what this instance is."""
    role = ("standby" if not lease.leading else "leader" if lease.sending
            else "leader, not sending" if lease.problem else "leader, taking over")
    return ClusterRow(lease.instance, role, lease.leader, when(lease.since, tz, seconds=True) if lease.since else None,
                      lease.problem)


def _last_seen(journal: JournalReader | None, voipnumber: str) -> tuple[dict[str, Any], str] | None:
    """The account's fields at the newest read the journal kept for the number that did not confirm
    (a read-back that differed, or drift), with its time; None when there is none or no journal."""
    if journal is None:
        return None
    try:
        entries = journal.entries(voipnumber=voipnumber, limit=20)
    except Exception:  # noqa: BLE001 - an unreadable journal only leaves this detail out
        return None
    for e in reversed(entries):
        if e.get("kind") == "readback" and isinstance(e.get("fields"), dict):
            return e["fields"], str(e.get("at"))
        if e.get("kind") == "drift" and isinstance(e.get("found"), dict):
            return e["found"], str(e.get("at"))
    return None


class _Lines:
    """What the snapshot says of each line: its alerts, and whether it holds its program for now."""

    def __init__(self, snap: Snapshot, names: Names) -> None:
        self.snap, self.names = snap, names
        self.problems: dict[str, list[str]] = {}
        self.drift: dict[str, str] = {}
        self.general: list[str] = []
        for key, standing in snap.alerts.items():
            if key.number is None:
                self.general.append(names.text(standing.message))
            elif key.kind is AlertKind.DRIFT:
                self.drift[key.number] = standing.message
            else:
                self.problems.setdefault(key.number, []).append(standing.message)
        self.plans = {n.voipnumber: n for n in snap.plan.numbers} if snap.plan is not None else {}
        self._in_force: dict[int, bool] = {}
        self.reads = JOURNAL_READS if snap.starting is None else 0  # starting: nothing read yet to look up

    def ok(self, v: str) -> bool:
        """Whether line ``v`` is confirmed to hold its program for now."""
        np_ = self.plans.get(v)
        if np_ is None or np_.error:
            return False
        key = id(np_.changes)
        if key not in self._in_force:
            self._in_force[key] = program_at(np_.changes, self.snap.now) is not None
        snap = self.snap
        return self._in_force[key] and v not in snap.unconfirmed and v in snap.confirmed and v not in self.drift

    def needs_attention(self, n: NumberSettings) -> bool:
        return not self.ok(n.voipnumber) or n.voipnumber in self.problems

    def row(self, m: Member, planned: bool) -> StatusRow:
        """Line ``m``'s row: its state, what the account held and when, its problems."""
        snap, names, tz, v = self.snap, self.names, self.snap.cfg.tz, m.voipnumber
        problems = tuple(self.problems.get(v, ()))
        credit = snap.credit.get(v)
        money = (credit_words(credit), credit is not None and credit.attention)
        if not planned:
            return StatusRow(v, m.name, m.label, m.account, "no plan", False, None, None, None, "no plan", problems,
                             *money)
        ok, drift, confirmed = self.ok(v), self.drift.get(v), snap.confirmed.get(v)
        read = snap.read_at.get(v)
        last_read = when(read, tz, seconds=True) if read else None
        held = held_at = None
        if ok and confirmed is not None and v in snap.right_until:
            held, held_at = names.fields(confirmed), last_read
            note = f"holds the program before the change due, still right until {when(snap.right_until[v], tz)}"
        elif ok and confirmed is not None:
            held, held_at, note = names.fields(confirmed), last_read, "holds the program for now"
        else:
            seen = None
            if self.reads > 0:
                self.reads -= 1
                seen = _last_seen(snap.journal, v)
            if seen is not None:
                held, held_at = names.fields(seen[0]), _local(seen[1], tz)
            elif confirmed is not None:
                held = names.fields(confirmed)
            note = ("changed by hand" if drift else "not read yet" if read is None and held is None
                    else "not confirmed to hold the program for now")
        state = "drift" if drift else "confirmed" if ok else "not confirmed"
        return StatusRow(v, m.name, m.label, m.account, state, ok, held, held_at, last_read, note,
                         (drift, *problems) if drift else problems, *money)


def _group(np_: NumberPlan | None, rows: tuple[StatusRow, ...], snap: Snapshot, names: Names,
           colours: Colours) -> StatusGroup:
    now, tz = snap.now, snap.cfg.tz
    if np_ is None or np_.error:
        why = np_.error if np_ is not None and np_.error else "not planned yet"
        return StatusGroup("unknown", "", why, "unplanned", None, None, rows)
    found = program_at(np_.changes, now)
    nxt = None
    if found is not None and found[0] + 1 < len(np_.changes):
        c = np_.changes[found[0] + 1]
        nxt = NextChange(names.program(c.program), when(c.apply_from, tz, seconds=True),
                         when(c.apply_by, tz, seconds=True), "exact" if c.exact else duration(c.slack.total_seconds()),
                         c.exact, next_change_words(np_, now, names, tz))
    now_next = now_and_next(np_.segments, now, names)
    if now_next is None:
        return StatusGroup("unknown", "", "not planned now", "unplanned", None, nxt, rows)
    then = f", then {now_next.then}" if now_next.then else " (the end of the plan)"
    return StatusGroup(now_next.who, f" until {until(now_next.until, now, tz)}{then}", now_next.segment.reason,
                       label(now_next.segment, names, colours)[3],
                       names.program(found[1].program) if found else None, nxt, rows)


def status_view(snap: Snapshot, q: str | None = None, page: int = 0, attention: bool = False,
                per_page: int | None = PER_PAGE) -> StatusView:
    """Page ``page`` of the lines matching ``q`` (only those needing attention, when asked), a group of
    lines with one plan at a time: who should have the calls now and until when, the program in force
    and the next change with its send window and slack; per line, what the account held at its last
    read and when, confirmed or not, drift. And the accounts, calendars, journal, alerts standing.
    Raises lines.PageOutOfRange for a page past the last."""
    cfg, now, tz = snap.cfg, snap.now, snap.cfg.tz
    names, colours = Names(cfg), Colours(cfg)
    lines = _Lines(snap, names)
    chosen = select(cfg, snap.plan, q, page, per_page, keep=lines.needs_attention if attention else None)
    groups = []
    for g in chosen.groups:
        planned = g.plan is not None and not g.plan.error
        groups.append(_group(g.plan, tuple(lines.row(m, planned) for m in g.members), snap, names, colours))
    calendars = tuple(_calendar_row(name, st, now) for name, st in snap.sources.items())
    return StatusView(when(now, tz, seconds=True), tuple(groups), calendars,
                      snap.journal.problem if snap.journal is not None else None, tuple(lines.general), health(snap),
                      chosen, cluster_row(snap.cluster, tz) if snap.cluster is not None else None,
                      account_rows(snap.accounts), attention)


def _local(iso: str, tz: ZoneInfo) -> str | None:
    try:
        return when(dt.datetime.fromisoformat(iso), tz, seconds=True)
    except ValueError:
        return None


def _calendar_row(name: str, st: SourceState, now: dt.datetime) -> CalendarRow:
    """A calendar's state: fresh (ok), failing with its last good copy in use (warn), stale or no copy (bad)."""
    age = st.age(now)
    max_age = duration(st.settings.max_age.total_seconds())
    old = duration(age.total_seconds()) if age else None
    if not st.loaded:
        return CalendarRow(name, "bad", "no good copy", None, max_age, st.error)
    if st.stale(now):
        return CalendarRow(name, "bad", "stale", old, max_age, st.error)
    if st.error:
        return CalendarRow(name, "warn", "failing, last good copy in use", old, max_age, st.error)
    return CalendarRow(name, "ok", "fresh", old, max_age, None)


def account_rows(accounts: tuple[AccountState, ...]) -> tuple[AccountRow, ...]:
    """Each account: its lines, how often they are read for hand-made changes, its problem."""
    return tuple(AccountRow(a.name, plural(a.numbers, "line"), drift_words(a), a.drift_effective != a.drift_every,
                            a.problem) for a in accounts)

