"""The page's view models: a plan, the daemon's state and an instant -> plain data for the templates.

Pure functions of what they are handed (the only I/O is the journal that ``history_view`` and
``status_view`` are given to read), so that each view is tested without a server or a browser, and the
same week view serves the daemon's page and ``forwardd plan --html``. Times are shown on the configured
wall clock; a week is seven local days, so a daylight-saving day is a 23- or 25-hour column and every
block is placed by its real share of its own day.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence
from zoneinfo import ZoneInfo

from ..aql.carrier import program_of
from ..config import Config
from ..core.phone import canonical
from ..core.plan import NumberPlan, Plan, program_at
from ..core.provider import ALL_DAY, Program, hms
from ..core.timeline import FindingKind, Kind, Segment, display_name
from ..core.words import clock_time, duration, when
from ..notify.keys import AlertKind
from .snapshot import JournalReader, LeaseState, Snapshot

if TYPE_CHECKING:
    from ..calendars.sources import SourceState

PALETTE = 12  # person colours p0..p11 in the stylesheet
HISTORY_LIMIT = 200
_WEEK = dt.timedelta(days=7)


# ----------------------------------------------------------------------------------------- names


class Names:
    """People by name, the number beside it: who a phone number belongs to, by ``[people]``."""

    _PHONE = re.compile(r"(?<!\d)(?:\+?44|0)\d{9,10}(?!\d)")

    def __init__(self, cfg: Config) -> None:
        self._by = {canonical(p.phone): display_name(name) for name, p in cfg.people.items()}

    def name(self, number: str | None) -> str | None:
        return self._by.get(canonical(number)) if number else None

    def who(self, number: str | None, person: str | None = None) -> str:
        """``Carol (07700900003)``; the bare number for someone not in [people]; "not forwarded"."""
        if not number:
            return "not forwarded"
        name = person if person and person != number else self.name(number)
        return f"{name} ({number})" if name else number

    def program(self, program: Program) -> str:
        """A program in words: ``Carol (07700900003) 17:30:00-23:59:59``, ``... all day``, ``no forwarding``."""
        if not program.active:
            return "no forwarding"
        window = "all day" if (program.start, program.end) == ALL_DAY else f"{hms(program.start)}-{hms(program.end)}"
        return f"{self.who(program.target)} {window}"

    def fields(self, fields: Mapping[str, Any]) -> str:
        """aql's managed fields in words (as a program when they make one; else key=value, names added)."""
        if {"forwardactive", "forwardstart", "forwardend"} <= set(fields):
            try:
                return self.program(program_of({k: str(v) for k, v in fields.items()}))
            except ValueError:
                pass
        return ", ".join(f"{k}={self.text(str(v))}" for k, v in fields.items())

    def text(self, text: str) -> str:
        """Free text with each known person's number followed by their name."""
        def named(m: re.Match[str]) -> str:
            name = self.name(m.group(0))
            return f"{name} ({m.group(0)})" if name else m.group(0)

        return self._PHONE.sub(named, text)


_t = clock_time


# ------------------------------------------------------------------------------------------ week


@dataclass(frozen=True)
class Day:
    date: dt.date
    label: str  # "Mon 30 Nov"
    short: str  # "Mon 30"
    weekend: bool
    today: bool
    hours: float  # 23, 24 or 25


@dataclass(frozen=True)
class Block:
    """A stretch in which one thing happens to the calls, placed in % of the week (or of its day)."""

    left: float
    width: float
    kind: str  # a Kind value, or "unplanned"
    css: str  # "p3" (a person's colour), "office", "gap", "fallback", "unplanned"
    name: str  # the person, "office hours", "GAP", ...
    number: str | None  # the number beside the name
    tag: str | None  # "override", "fallback", "holiday: Christmas Day", "nobody on call"...
    holiday: bool
    start: dt.datetime
    end: dt.datetime
    span: str  # "Mon 30 Nov 17:30 - Tue 01 Dec 09:00"
    reason: str
    cont_before: bool  # the stretch began before what is shown (the week, or the day)
    cont_after: bool  # and goes on after it


@dataclass(frozen=True)
class Handover:
    """A change of who takes the calls, at ``at``; ``exact`` when it must be sent at that second."""

    left: float  # % of the week (or of its day)
    at: dt.datetime
    time: str  # "17:30"
    exact: bool
    before: str
    after: str
    row: int  # 0 or 1: a label close to the one before goes on the second row; 2: no room for a label


@dataclass(frozen=True)
class LaneDay:
    """One day of one number, for the day-by-day rows (the one-number view on a phone)."""

    day: Day
    blocks: tuple[Block, ...]
    handovers: tuple[Handover, ...]
    now: float | None  # % of the day, when now is in it


@dataclass(frozen=True)
class AgendaItem:
    start: str  # "17:30"
    end: str  # "24:00" or "09:00"
    who: str  # "Carol (07700900003)" or "not forwarded"
    name: str  # "Carol", "not forwarded", "nobody (gap)"
    number: str | None  # beside the name
    reason: str
    kind: str
    css: str
    exact: bool  # begins with an exact hand-over
    gap: bool
    holiday: str | None


@dataclass(frozen=True)
class Lane:
    """One number over one week: blocks across the week (a block runs on over midnight) and, for the
    one-number view, the same cut into days, and in words."""

    voipnumber: str
    name: str | None
    blocks: tuple[Block, ...]
    handovers: tuple[Handover, ...]
    now: float | None  # % of the week
    exact: int  # exact hand-overs this week
    gaps: int  # coverage gaps touching this week
    error: str | None = None
    days: tuple[LaneDay, ...] = ()
    agenda: tuple[tuple[Day, tuple[AgendaItem, ...]], ...] = ()


@dataclass(frozen=True)
class Person:
    name: str
    number: str
    css: str


@dataclass(frozen=True)
class WeekView:
    index: int
    weeks: int
    title: str  # "Mon 30 Nov - Sun 06 Dec 2026"
    zone: str  # "Europe/London (GMT)"
    plan_span: str
    days: tuple[Day, ...]
    lanes: tuple[Lane, ...]
    people: tuple[Person, ...]
    exact: int
    gaps: int
    number: str | None  # the one number shown, when one is asked for
    warnings: tuple[str, ...] = ()


def _midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tz)


def _first_day(plan: Plan, tz: ZoneInfo) -> dt.date:
    return plan.start.astimezone(tz).date()


def week_count(plan: Plan, tz: ZoneInfo) -> int:
    """How many weeks (of seven local days from the plan's first day) the plan touches."""
    last = (plan.end - dt.timedelta(microseconds=1)).astimezone(tz).date()
    return max(1, math.ceil(((last - _first_day(plan, tz)).days + 1) / 7))


class _Colours:
    """Each person keeps one colour on every row: people in the order of [people], others after."""

    def __init__(self, cfg: Config) -> None:
        self._index = {display_name(name): i for i, name in enumerate(cfg.people)}

    def css(self, person: str | None) -> str:
        if person is None:
            return "fallback"
        i = self._index.get(person)
        if i is None:
            i = len(self._index) + sum(map(ord, person))  # stable for a number nobody named
            self._index[person] = i
        return f"p{i % PALETTE}"


_TAGS = {Kind.OVERRIDE: "override", Kind.FALLBACK: "fallback", Kind.MANUAL: "manual override"}


def _label(seg: Segment, names: Names, colours: _Colours) -> tuple[str, str | None, str | None, str]:
    """(name, number, tag, css) for a segment, by its kind."""
    holiday = f"holiday: {seg.holiday}" if seg.holiday else None
    if seg.kind is Kind.OFFICE_HOURS:
        return "office hours", None, holiday, "office"
    if seg.kind is Kind.GAP:
        return "GAP", None, "nobody on call" + (f"; {holiday}" if holiday else ""), "gap"
    kind_tag = _TAGS.get(seg.kind)
    if seg.target is None:  # a manual override that turns forwarding off
        return "not forwarded", None, kind_tag, "office"
    tag = f"{holiday} ({kind_tag})" if holiday and kind_tag else holiday or kind_tag
    person = seg.person if seg.person and seg.person != seg.target else names.name(seg.target)
    if person is not None:
        return person, seg.target, tag, colours.css(person)
    if seg.kind is Kind.FALLBACK:  # a fallback number that is nobody's in [people]
        return "fallback", seg.target, holiday, "fallback"
    return seg.target, seg.target, tag, colours.css(seg.target)


def _who(seg: Segment, names: Names) -> str:
    if seg.kind is Kind.OFFICE_HOURS:
        return "office hours"
    if seg.kind is Kind.GAP:
        return "nobody (gap)"
    if seg.target is None:
        return "not forwarded"
    return names.who(seg.target, seg.person)


def _days(first: dt.date, tz: ZoneInfo, today: dt.date | None) -> tuple[list[Day], list[dt.datetime]]:
    days, edges = [], []
    for i in range(8):  # in UTC: aware datetimes of one zone subtract by the wall clock, not in real time
        edges.append(_midnight(first + dt.timedelta(days=i), tz).astimezone(dt.timezone.utc))
    for i in range(7):
        d = first + dt.timedelta(days=i)
        hours = (edges[i + 1] - edges[i]).total_seconds() / 3600
        days.append(Day(d, f"{d:%a %d %b}", f"{d:%a %d}", d.weekday() >= 5, d == today, hours))
    return days, edges


def _pct(t: dt.datetime, a: dt.datetime, b: dt.datetime) -> float:
    return round(100 * (t - a).total_seconds() / (b - a).total_seconds(), 3)


class _Ruler:
    """Where an instant falls across a week of local days, in %: each day is a seventh of the week
    whatever its length (23 or 25 hours on a daylight-saving change)."""

    def __init__(self, edges: list[dt.datetime]) -> None:
        self.edges = edges

    def x(self, t: dt.datetime) -> float:
        e = self.edges
        if t <= e[0]:
            return 0.0
        if t >= e[-1]:
            return 100.0
        i = bisect.bisect_right(e, t) - 1
        return round(100 * (i + (t - e[i]) / (e[i + 1] - e[i])) / 7, 3)


# How much of a lane a time label takes, in % (a week about 1,000 px wide; a day on a phone, 330 px):
# "17:30", and "EXACT 17:30".
_LABEL_WEEK = (3.8, 7.2)
_LABEL_DAY = (11.0, 22.0)


def _rows(marks: list[tuple[float, bool]], widths: tuple[float, float]) -> list[int]:
    """A row for each mark's label (marks ascending, with whether it is exact): 0 or 1, whichever has
    room; 2 (no label, the line and its tooltip stay) when neither has, except that an exact hand-over's
    label is always shown."""
    rows, ends = [], [-math.inf, -math.inf]
    for x, exact in marks:
        width = widths[1] if exact else widths[0]
        if x >= ends[0]:
            row = 0
        elif x >= ends[1]:
            row = 1
        elif exact:
            row = 0 if ends[0] <= ends[1] else 1
        else:
            rows.append(2)
            continue
        ends[row] = x + width
        rows.append(row)
    return rows


def _block(s: Segment, p0: dt.datetime, p1: dt.datetime, left: float, right: float, names: Names,
           colours: _Colours, tz: ZoneInfo) -> Block:
    name, num, tag, css = _label(s, names, colours)
    return Block(left, round(right - left, 3), s.kind.value, css, name, num, tag, s.holiday is not None, s.start,
                 s.end, f"{when(s.start, tz)} - {when(s.end, tz)}", s.reason, s.start < p0, s.end > p1)


def _unplanned(p0: dt.datetime, p1: dt.datetime, left: float, right: float, tz: ZoneInfo, before: bool,
               after: bool) -> Block:
    return Block(left, round(right - left, 3), "unplanned", "unplanned", "not planned", None, None, False, p0, p1,
                 f"{when(p0, tz)} - {when(p1, tz)}", "outside the planned horizon", before, after)


def _lane(n: NumberPlan, cfg: Config, plan: Plan, days: list[Day], edges: list[dt.datetime],
          now: dt.datetime | None, names: Names, colours: _Colours, by_day: bool) -> Lane:
    tz = cfg.tz
    number = cfg.number(n.voipnumber)
    if n.error:
        return Lane(n.voipnumber, number.name, (), (), None, 0, 0, n.error)
    w0, w1 = edges[0], edges[-1]
    ruler = _Ruler(edges)
    exact_at = {c.apply_from for c in n.changes[1:] if c.exact}
    segs = n.segments
    lo = bisect.bisect_right([s.end for s in segs], w0)  # the first segment ending after the week starts
    shown: list[Segment] = []
    for s in segs[lo:]:
        if s.start >= w1:
            break
        shown.append(s)
    gaps = sum(1 for s in shown if s.kind is Kind.GAP)
    changes: list[tuple[dt.datetime, bool, str, str]] = []
    for i in range(lo, lo + len(shown)):
        s = segs[i]
        if i > 0 and w0 <= s.start < w1 and s.target != segs[i - 1].target:
            changes.append((s.start, s.start in exact_at, _who(segs[i - 1], names), _who(s, names)))
    marked = {h[0] for h in changes}
    for t in exact_at:  # an exact change that is not at a change of target is flagged all the same
        if w0 <= t < w1 and t not in marked:
            changes.append((t, True, "", ""))
    changes.sort()

    blocks: list[Block] = []
    if w0 < plan.start:
        blocks.append(_unplanned(w0, min(plan.start, w1), 0.0, ruler.x(plan.start), tz, False, plan.start > w1))
    for s in shown:
        p0, p1 = max(s.start, w0), min(s.end, w1)
        blocks.append(_block(s, w0, w1, ruler.x(p0), ruler.x(p1), names, colours, tz))
    if plan.end < w1:
        blocks.append(_unplanned(max(plan.end, w0), w1, ruler.x(plan.end), 100.0, tz, plan.end < w0, False))
    xs = [(ruler.x(t), ex) for t, ex, *_ in changes]
    handovers = tuple(Handover(x, t, _t(t, tz), ex, before, after, row)
                      for (x, _), row, (t, ex, before, after) in zip(xs, _rows(xs, _LABEL_WEEK), changes))
    now_x = ruler.x(now) if now is not None and w0 <= now < w1 else None

    lane_days: list[LaneDay] = []
    agenda_days: list[tuple[Day, tuple[AgendaItem, ...]]] = []
    for i, day in enumerate(days if by_day else ()):
        a, b = edges[i], edges[i + 1]
        pieces: list[Block] = []
        items: list[AgendaItem] = []
        if a < plan.start:
            pieces.append(_unplanned(a, min(b, plan.start), 0.0, _pct(min(b, plan.start), a, b), tz, False, False))
        for s in shown:
            if s.end <= a or s.start >= b:
                continue
            p0, p1 = max(s.start, a), min(s.end, b)
            block = _block(s, a, b, _pct(p0, a, b), _pct(p1, a, b), names, colours, tz)
            pieces.append(block)
            who = "not forwarded" if s.kind is Kind.OFFICE_HOURS else _who(s, names)
            shown_name = who if block.number is None else block.name
            items.append(AgendaItem(_t(p0, tz), "24:00" if p1 == b else _t(p1, tz), who, shown_name, block.number,
                                    s.reason,
                                    s.kind.value, block.css, p0 == s.start and s.start in exact_at,
                                    s.kind is Kind.GAP, s.holiday))
        if b > plan.end:
            pieces.append(_unplanned(max(a, plan.end), b, _pct(max(a, plan.end), a, b), 100.0, tz, False, False))
        today = [c for c in changes if a <= c[0] < b]
        dxs = [(_pct(t, a, b), ex) for t, ex, *_ in today]
        hs = tuple(Handover(x, t, _t(t, tz), ex, before, after, row)
                   for (x, _), row, (t, ex, before, after) in zip(dxs, _rows(dxs, _LABEL_DAY), today))
        lane_days.append(LaneDay(day, tuple(pieces), hs, _pct(now, a, b) if now is not None and a <= now < b else None))
        agenda_days.append((day, tuple(items)))
    exact = sum(1 for c in changes if c[1])
    return Lane(n.voipnumber, number.name, tuple(blocks), handovers, now_x, exact, gaps, None, tuple(lane_days),
                tuple(agenda_days))


def week_view(cfg: Config, plan: Plan, week: int = 0, now: dt.datetime | None = None,
              number: str | None = None, warnings: Sequence[str] = ()) -> WeekView:
    """Week ``week`` (0 = the one holding the plan's start; seven local days from the start's day) of
    ``plan``: a lane per number (or only ``number``'s, with the day-by-day text too). ``now`` marks the
    current instant and today. Raises ValueError for a week outside the plan or an unknown number."""
    tz = cfg.tz
    weeks = week_count(plan, tz)
    if not 0 <= week < weeks:
        raise ValueError(f"week {week} is outside the plan (weeks 0 to {weeks - 1})")
    numbers = plan.numbers
    if number is not None:
        numbers = [plan.for_number(number)]  # KeyError -> the caller says "no such number"
    first = _first_day(plan, tz) + dt.timedelta(days=7 * week)
    today = now.astimezone(tz).date() if now is not None else None
    days, edges = _days(first, tz, today)
    names, colours = Names(cfg), _Colours(cfg)
    # Numbers on the same calendars and policy share one timeline (the planner memoises it), so their
    # lanes are the same but for the header: build each distinct one once.
    memo: dict[tuple[int, int], Lane] = {}
    lanes = []
    for n in numbers:
        key = (id(n.segments), id(n.changes))
        lane = memo.get(key) if not n.error else None
        if lane is None:
            lane = _lane(n, cfg, plan, days, edges, now, names, colours, by_day=number is not None)
            if not n.error:
                memo[key] = lane
        elif lane.voipnumber != n.voipnumber:
            lane = dataclasses.replace(lane, voipnumber=n.voipnumber, name=cfg.number(n.voipnumber).name)
        lanes.append(lane)
    people = tuple(Person(display_name(name), p.phone, colours.css(display_name(name)))
                   for name, p in cfg.people.items())
    z0, z1 = edges[0].astimezone(tz).tzname(), edges[-1].astimezone(tz).tzname()
    zone = f"{cfg.timezone} ({z0})" if z0 == z1 else f"{cfg.timezone} ({z0}, then {z1})"
    last = days[-1].date
    return WeekView(week, weeks, f"{first:%a %d %b} - {last:%a %d %b %Y}", zone,
                    f"{when(plan.start, tz)} - {when(plan.end, tz)}", tuple(days), tuple(lanes), people,
                    sum(la.exact for la in lanes), sum(la.gaps for la in lanes), number, tuple(warnings))


def plan_warnings(plan: Plan, cfg: Config, number: str | None = None) -> list[str]:
    """The plan's findings in words, once each with the labels of the numbers they concern (only
    ``number``'s and the calendars', when given). Gaps are left out: the lanes show them."""
    labels = {n.voipnumber: n.label for n in cfg.numbers}
    found: dict[tuple[str, str], list[str]] = {}
    for v, f in plan.warnings:
        if f.kind is FindingKind.GAP or (number is not None and v not in (None, number)):
            continue
        who = found.setdefault((f.kind, f.message), [])
        if v is not None:
            who.append(labels.get(v, v))
    return [f"{', '.join(who) + ': ' if who else ''}{message}" for (_, message), who in found.items()]


# ---------------------------------------------------------------------------------------- status


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
    ok: bool
    state: str  # "fresh", "failing, last good copy in use", "stale", "no good copy"
    age: str | None
    max_age: str
    error: str | None


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
    names, colours = Names(cfg), _Colours(cfg)
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
        np_ = _number_plan(snap.plan, v)
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
        who = _who(seg, names) if seg else "unknown"
        css = _label(seg, names, colours)[3] if seg else "unplanned"
        rows.append(StatusRow(v, number.name, state, ok, who, seg.reason if seg else "", css,
                              names.program(found[1].program) if found else None, held, held_at, last_read, note,
                              problems, nxt))
    calendars = tuple(_calendar_row(name, st, now) for name, st in snap.sources.items())
    return StatusView(when(now, tz, seconds=True), tuple(rows), calendars,
                      snap.journal.problem if snap.journal is not None else None, tuple(general),
                      sum(r.ok for r in rows), health(snap),
                      cluster_row(snap.cluster, tz) if snap.cluster is not None else None)


def _local(iso: str, tz: ZoneInfo) -> str | None:
    try:
        return when(dt.datetime.fromisoformat(iso), tz, seconds=True)
    except ValueError:
        return None


def _number_plan(plan: Plan | None, voipnumber: str) -> NumberPlan | None:
    if plan is None:
        return None
    try:
        return plan.for_number(voipnumber)
    except KeyError:
        return None


def _calendar_row(name: str, st: SourceState, now: dt.datetime) -> CalendarRow:
    age = st.age(now)
    max_age = duration(st.settings.max_age.total_seconds())
    if not st.loaded:
        return CalendarRow(name, False, "no good copy", None, max_age, st.error)
    if st.stale(now):
        return CalendarRow(name, False, "stale", duration(age.total_seconds()) if age else None, max_age, st.error)
    state = "failing, last good copy in use" if st.error else "fresh"
    return CalendarRow(name, True, state, duration(age.total_seconds()) if age else None, max_age, st.error)


# ---------------------------------------------------------------------------------------- health


@dataclass(frozen=True)
class Health:
    ok: bool
    reasons: tuple[str, ...]
    numbers: int
    confirmed: int

    def json(self, now: dt.datetime) -> dict[str, Any]:
        return {"ok": self.ok, "status": "ok" if self.ok else "unhealthy", "at": now.isoformat(),
                "numbers": self.numbers, "confirmed": self.confirmed, "reasons": list(self.reasons)}


def health(snap: Snapshot) -> Health:
    """Healthy when every number is confirmed to hold its program for now, every calendar has a copy
    younger than its max_age, the journal can be written, and (in a cluster) an instance leads and may
    send; otherwise the reasons, one per problem."""
    cfg, now = snap.cfg, snap.now
    reasons: list[str] = []
    confirmed = 0
    if snap.plan is None:
        reasons.append("not planned yet (starting up)")
    drifting = {k.number for k in snap.alerts if k.kind is AlertKind.DRIFT}
    for number in cfg.numbers:
        v, label = number.voipnumber, number.label
        np_ = _number_plan(snap.plan, v)
        if snap.plan is None:
            continue
        if np_ is None or np_.error:
            reasons.append(f"{label}: no plan ({np_.error if np_ else 'not in the plan'})")
        elif program_at(np_.changes, now) is None:
            reasons.append(f"{label}: no program planned for now")
        elif v in drifting:
            reasons.append(f"{label}: the account was changed by hand (drift)")
        elif v in snap.unconfirmed or v not in snap.confirmed:
            reasons.append(f"{label}: not confirmed: the account has not been read back holding the program "
                           "for now")
        else:
            confirmed += 1
    for name, st in snap.sources.items():
        if not st.loaded:
            reasons.append(f"calendar {name}: no good copy ({st.error or 'not read yet'})")
        elif st.stale(now):
            age = st.age(now)
            reasons.append(f"calendar {name}: the last good copy is {duration(age.total_seconds()) if age else '?'} "
                           f"old, older than its max_age {duration(st.settings.max_age.total_seconds())}"
                           + (f" ({st.error})" if st.error else ""))
    if snap.journal is not None and snap.journal.problem:
        reasons.append(f"journal: {snap.journal.problem}")
    lease = snap.cluster
    if lease is not None:
        if lease.problem:
            reasons.append(f"cluster: {lease.problem}")
        if lease.leader is None:
            reasons.append("cluster: no instance leads: nothing is sent to aql")
        elif lease.leading and not lease.sending:
            reasons.append(f"cluster: {lease.instance} leads but may not send now (taking over, or its lease is "
                           "not confirmed)")
    return Health(not reasons, tuple(reasons), len(cfg.numbers), confirmed)


# --------------------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryRow:
    at: str
    kind: str
    voipnumber: str | None
    label: str | None
    ok: bool | None
    text: str
    instance: str | None = None  # in a cluster: which host wrote it


@dataclass(frozen=True)
class HistoryView:
    rows: tuple[HistoryRow, ...]
    number: str | None
    numbers: tuple[tuple[str, str], ...]  # (voipnumber, label) to filter by
    error: str | None
    limit: int


def _entry_text(e: Mapping[str, Any], names: Names) -> str:
    kind = e.get("kind")
    if kind == "change":
        fields = e.get("fields")
        sent = names.fields(fields) if isinstance(fields, dict) else ""
        if e.get("program"):
            return f"sent, to make it {names.text(str(e['program']))}: {sent}"
        return f"sent {sent}"
    if kind == "readback":
        fields = e.get("fields")
        got = names.fields(fields) if isinstance(fields, dict) else ""
        if e.get("ok"):
            return f"read back: {got}"
        wanted = e.get("wanted")
        return f"read back {got}; wanted {names.fields(wanted) if isinstance(wanted, dict) else '?'}"
    if kind == "drift":
        found, wanted = e.get("found"), e.get("wanted")
        return (f"changed by hand: found {names.fields(found) if isinstance(found, dict) else '?'}; "
                f"the plan wants {names.fields(wanted) if isinstance(wanted, dict) else '?'}")
    if kind in ("alert", "recovery"):
        return names.text(str(e.get("message", e.get("key", ""))))
    if kind == "error":
        return names.text(str(e.get("error", "")))
    if kind == "calendar":
        if e.get("error"):
            return f"calendar {e.get('calendar')}: {e.get('error')}"
        return f"calendar {e.get('calendar')} read" + ("" if e.get("events_loaded", True) else " (no copy)")
    if kind == "start":
        return f"forwardd started (pid {e.get('pid')}, {e.get('config')})"
    if kind == "stop":
        return "forwardd stopped"
    if kind == "leader":
        if e.get("event") == "acquired":
            before = f" (took over from {e['previous']})" if e.get("previous") else ""
            return f"{e.get('instance')} took the cluster lease{before}"
        return f"{e.get('instance')} lost the cluster lease and stopped sending: {e.get('reason')}"
    skip = {"id", "at", "kind", "voipnumber", "ok", "instance"}
    return names.text(", ".join(f"{k}: {v}" for k, v in e.items() if k not in skip))


def history_view(cfg: Config, journal: JournalReader | None, number: str | None = None,
                 limit: int = HISTORY_LIMIT) -> HistoryView:
    """The newest ``limit`` journal entries (of ``number`` only, when given), newest first, each in words
    with people by name beside their numbers."""
    names = Names(cfg)
    numbers = tuple((n.voipnumber, n.label) for n in cfg.numbers)
    labels = dict(numbers)
    if journal is None:
        return HistoryView((), number, numbers, "there is no journal yet", limit)
    try:
        entries = journal.entries(voipnumber=number, limit=limit)
    except Exception as err:  # noqa: BLE001 - JournalError (or a broken file): shown, not raised
        return HistoryView((), number, numbers, str(err), limit)
    tz = cfg.tz
    rows = []
    for e in reversed(entries):
        try:
            at = when(dt.datetime.fromisoformat(str(e.get("at"))), tz, seconds=True)
        except ValueError:
            at = str(e.get("at"))
        v = e.get("voipnumber")
        rows.append(HistoryRow(at, str(e.get("kind")), v, labels.get(v, v) if v else None, e.get("ok"),
                               _entry_text(e, names), e.get("instance")))
    return HistoryView(tuple(rows), number, numbers, None, limit)
