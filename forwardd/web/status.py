"""The status view: per line, who should have the calls now, what the account held at its last read,
confirmed or not, drift, the next change; the calendars, the cluster, the alerts standing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..core.plan import program_at
from ..notify.keys import AlertKind
from ..presentation import Names, duration, plural, segment_who, when
from .health import Health, drift_words, health, number_plan
from .marks import Colours, label
from .snapshot import AccountState, JournalReader, LeaseState, Snapshot

if TYPE_CHECKING:
    from ..calendars.sources import SourceState



@dataclass(frozen=True)
class NextChange:
    program: str
    send_from: str
    send_by: str
    slack: str
    exact: bool


@dataclass(frozen=True)
class StatusRow:
    voipnumber: str
    name: str | None
    state: str  # "confirmed", "not confirmed", "drift", "no plan"
    ok: bool
    now_who: str
    now_reason: str
    now_css: str
    should_be: str | None
    held: str | None  # what the account held at the last read that forwardd kept
    held_at: str | None  # when that was read
    last_read: str | None  # the last read of the account (getuser), whatever it found
    note: str
    problems: tuple[str, ...]
    next: NextChange | None


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
    rows: tuple[StatusRow, ...]
    calendars: tuple[CalendarRow, ...]
    journal_problem: str | None
    alerts: tuple[str, ...]
    confirmed: int
    health: Health
    cluster: ClusterRow | None = None
    accounts: tuple[AccountRow, ...] = ()


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


def status_view(snap: Snapshot) -> StatusView:
    """Per number: who should have the calls now, what the account held at its last read and when,
    confirmed or not, drift, the next change with its send window and slack; the calendars; the
    journal; the alerts standing."""
    cfg, now, tz = snap.cfg, snap.now, snap.cfg.tz
    names, colours = Names(cfg), Colours(cfg)
    by_number: dict[str, list[str]] = {}
    drift_of: dict[str, str] = {}
    general: list[str] = []
    for key, standing in snap.alerts.items():
        if key.number is None:
            general.append(names.text(standing.message))
        elif key.kind is AlertKind.DRIFT:
            drift_of[key.number] = standing.message
        else:
            by_number.setdefault(key.number, []).append(standing.message)
    rows = []
    for number in cfg.numbers:
        v = number.voipnumber
        problems = tuple(by_number.get(v, ()))
        np_ = number_plan(snap.plan, v)
        if np_ is None or np_.error:
            rows.append(StatusRow(v, number.name, "no plan", False, "unknown", (np_.error if np_ else None)
                                  or "not planned yet", "unplanned", None, None, None, None, "no plan", problems,
                                  None))
            continue
        seg = next((s for s in np_.segments if s.start <= now < s.end), None)
        found = program_at(np_.changes, now)
        drift = drift_of.get(v)
        confirmed = snap.confirmed.get(v)
        ok = found is not None and v not in snap.unconfirmed and confirmed is not None and drift is None
        state = "drift" if drift else "confirmed" if ok else "not confirmed"
        read = snap.read_at.get(v)
        last_read = when(read, tz, seconds=True) if read else None
        held = held_at = None
        if ok and confirmed is not None:
            held, held_at, note = names.fields(confirmed), last_read, "holds the program for now"
        else:
            seen = _last_seen(snap.journal, v)
            if seen is not None:
                held, held_at = names.fields(seen[0]), _local(seen[1], tz)
            elif confirmed is not None:
                held = names.fields(confirmed)
            note = ("changed by hand" if drift else "not read yet" if read is None and held is None
                    else "not confirmed to hold the program for now")
        if drift:
            problems = (drift, *problems)
        nxt = None
        if found is not None and found[0] + 1 < len(np_.changes):
            c = np_.changes[found[0] + 1]
            nxt = NextChange(names.program(c.program), when(c.apply_from, tz, seconds=True),
                             when(c.apply_by, tz, seconds=True), "exact" if c.exact else duration(c.slack.total_seconds()),
                             c.exact)
        who = segment_who(seg, names) if seg else "unknown"
        css = label(seg, names, colours)[3] if seg else "unplanned"
        rows.append(StatusRow(v, number.name, state, ok, who, seg.reason if seg else "", css,
                              names.program(found[1].program) if found else None, held, held_at, last_read, note,
                              problems, nxt))
    calendars = tuple(_calendar_row(name, st, now) for name, st in snap.sources.items())
    return StatusView(when(now, tz, seconds=True), tuple(rows), calendars,
                      snap.journal.problem if snap.journal is not None else None, tuple(general),
                      sum(r.ok for r in rows), health(snap),
                      cluster_row(snap.cluster, tz) if snap.cluster is not None else None, account_rows(snap.accounts))


def _local(iso: str, tz: ZoneInfo) -> str | None:
    try:
        return when(dt.datetime.fromisoformat(iso), tz, seconds=True)
    except ValueError:
        return None


def _calendar_row(name: str, st: SourceState, now: dt.datetime) -> CalendarRow:
    """A calendar's state: fresh (ok), failing with its last good copy in use (warn), stale or no copy (bad)."""
    age = st.age(now)
    max_age = duration(st.settings.max_age.total_seconds())
    if not st.loaded:
        return CalendarRow(name, "bad", "no good copy", None, max_age, st.error)
    if st.stale(now):
        return CalendarRow(name, "bad", "stale", duration(age.total_seconds()) if age else None, max_age, st.error)
    if st.error:
        return CalendarRow(name, "warn", "failing, last good copy in use", duration(age.total_seconds()) if age else None,
                           max_age, st.error)
    return CalendarRow(name, "ok", "fresh", duration(age.total_seconds()) if age else None, max_age, None)


def account_rows(accounts: tuple[AccountState, ...]) -> tuple[AccountRow, ...]:
    """Each account: its lines, how often they are read for hand-made changes, its problem."""
    return tuple(AccountRow(a.name, plural(a.numbers, "line"), drift_words(a), a.drift_effective != a.drift_every,
                            a.problem) for a in accounts)
