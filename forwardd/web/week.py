"""The week view: a plan and an instant -> who has each line's calls now, in words, then a lane per group
of lines (lines with the same plan share one) across seven local days, for the daemon's page and
``forwardd plan --html``.

A week is seven local days, so a daylight-saving day is a 23- or 25-hour column and every block is
placed by its real share of its own day. Blocks are cut at midnight: each day's column carries its own
labels, and the same blocks read as a day-by-day list on a phone.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ..config import Config
from ..core.plan import Plan
from ..core.timeline import FindingKind, Kind, Segment, display_name
from .lines import PER_PAGE, Group, Member, Selection, members_words, one, select
from .marks import Colours, label, label_classes
from .presentation import Names, clock_time, now_and_next, segment_who, when

SHORT = dt.timedelta(minutes=45)  # a stretch shorter than this is drawn wider than its time, to be seen


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
    """The part, within one local day, of a stretch in which one thing happens to the calls; placed in %
    of the week, and said in words for the list a phone shows."""

    day: int  # 0..6
    left: float
    width: float
    kind: str  # a Kind value, or "unplanned"
    css: str  # "p3" (a person's colour), "office", "gap", "fallback", "unplanned"
    name: str  # the person, "office hours", "GAP", ...
    number: str | None  # the number beside the name
    tag: str | None  # "override", "fallback", "holiday: Christmas Day", "nobody on call"...
    holiday: bool
    start: dt.datetime  # of this day's part
    end: dt.datetime
    times: str  # "17:30–24:00", of this day's part
    span: str  # the whole stretch: "Mon 30 Nov 17:30 - Tue 01 Dec 09:00"
    reason: str
    cont_before: bool  # the stretch began before this part (the day before, or before the week)
    cont_after: bool  # and goes on after it
    exact: bool = False  # the stretch begins here with an exact hand-over
    short: bool = False  # the stretch is too short to see at its true width
    now: bool = False  # now falls in this part


@dataclass(frozen=True)
class Handover:
    """A change of who takes the calls, at ``at``; ``exact`` when it must be sent at that second."""

    left: float  # % of the week
    at: dt.datetime
    time: str  # "17:30"
    exact: bool
    before: str
    after: str
    rows: str  # the label's row in each layout (marks.label_classes)


@dataclass(frozen=True)
class Lane:
    """One group of lines over one week: its blocks, day by day, and its hand-overs."""

    members: tuple[Member, ...]
    size: int  # lines in the group, on every page
    blocks: tuple[Block, ...]
    handovers: tuple[Handover, ...]
    now: float | None  # % of the week
    exact: int  # exact hand-overs this week
    gaps: int  # coverage gaps touching this week
    error: str | None = None
    one: bool = False  # the one-line view: the day-by-day words are shown too

    @property
    def voipnumber(self) -> str:
        return self.members[0].voipnumber

    @property
    def name(self) -> str | None:
        return self.members[0].name

    @property
    def label(self) -> str:
        return self.members[0].label


@dataclass(frozen=True)
class NowLine:
    """Who has a group's calls now, and until when, in words."""

    lines: str  # "Support line (606309)", "... and 49 more lines"
    voipnumber: str  # the group's first line
    css: str
    name: str  # "Dave", "office hours", "GAP", "no plan"
    who: str  # "Dave (07700900004)"
    rest: str  # " until 09:00, then Erin (07700900005)"

    @property
    def words(self) -> str:
        return self.who + self.rest


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
    lines: Selection
    now: tuple[NowLine, ...] = ()  # who has the calls now (when ``now`` is planned)
    now_at: str | None = None  # "Tue 01 Dec 20:00"


def _first_day(plan: Plan, tz: ZoneInfo) -> dt.date:
    return plan.start.astimezone(tz).date()


def week_count(plan: Plan, tz: ZoneInfo) -> int:
    """How many weeks (of seven local days from the plan's first day) the plan touches."""
    last = (plan.end - dt.timedelta(microseconds=1)).astimezone(tz).date()
    return max(1, math.ceil(((last - _first_day(plan, tz)).days + 1) / 7))


def _days(first: dt.date, tz: ZoneInfo, today: dt.date | None) -> tuple[list[Day], list[dt.datetime]]:
    days, edges = [], []
    for i in range(8):  # in UTC: aware datetimes of one zone subtract by the wall clock, not in real time
        edges.append(dt.datetime.combine(first + dt.timedelta(days=i), dt.time(), tz).astimezone(dt.timezone.utc))
    for i in range(7):
        d = first + dt.timedelta(days=i)
        hours = (edges[i + 1] - edges[i]).total_seconds() / 3600
        days.append(Day(d, f"{d:%a %d %b}", f"{d:%a %d}", d.weekday() >= 5, d == today, hours))
    return days, edges


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

    def day(self, t: dt.datetime) -> int:
        return min(6, max(0, bisect.bisect_right(self.edges, t) - 1))


class _Cutter:
    """Cuts stretches of a week at midnight into blocks."""

    def __init__(self, edges: list[dt.datetime], now: dt.datetime | None, tz: ZoneInfo) -> None:
        self.ruler, self.edges, self.now, self.tz = _Ruler(edges), edges, now, tz

    def cut(self, a: dt.datetime, b: dt.datetime, seg: Segment | None, parts: tuple[str, str | None, str | None, str],
            exact: bool = False) -> list[Block]:
        """The blocks of ``[a, b)`` (within the week), one per local day; ``seg`` None: not planned."""
        name, number, tag, css = parts
        start, end = (seg.start, seg.end) if seg else (a, b)
        span = f"{when(start, self.tz)} - {when(end, self.tz)}"
        out, p0 = [], a
        while p0 < b:
            i = self.ruler.day(p0)
            p1 = min(b, self.edges[i + 1])
            left = self.ruler.x(p0)
            times = f"{clock_time(p0, self.tz)}–{'24:00' if p1 == self.edges[i + 1] else clock_time(p1, self.tz)}"
            out.append(Block(i, left, round(self.ruler.x(p1) - left, 3), seg.kind.value if seg else "unplanned", css,
                             name, number, tag, bool(seg and seg.holiday), p0, p1, times, span,
                             seg.reason if seg else "outside the planned horizon", p0 > start, p1 < end,
                             exact and p0 == start, end - start < SHORT,
                             self.now is not None and p0 <= self.now < p1))
            p0 = p1
        return out


_UNPLANNED = ("not planned", None, None, "unplanned")


def _lane(group: Group, plan: Plan, edges: list[dt.datetime], now: dt.datetime | None, names: Names,
          colours: Colours, tz: ZoneInfo, one_line: bool) -> Lane:
    n = group.plan
    if n is None or n.error:
        return Lane(group.members, group.size, (), (), None, 0, 0, n.error if n else "not in the plan", one_line)
    w0, w1 = edges[0], edges[-1]
    cutter = _Cutter(edges, now, tz)
    exact_at = {c.apply_from for c in n.changes[1:] if c.exact}
    segs = n.segments
    lo = bisect.bisect_right([s.end for s in segs], w0)  # the first segment ending after the week starts
    hi = bisect.bisect_left([s.start for s in segs], w1, lo)
    blocks: list[Block] = []
    if w0 < plan.start:
        blocks += cutter.cut(w0, min(plan.start, w1), None, _UNPLANNED)
    changes: list[tuple[dt.datetime, bool, str, str]] = []
    for i in range(lo, hi):
        s = segs[i]
        exact = s.start in exact_at
        blocks += cutter.cut(max(s.start, w0), min(s.end, w1), s, label(s, names, colours), exact)
        if i > 0 and w0 <= s.start < w1 and s.target != segs[i - 1].target:
            changes.append((s.start, exact, segment_who(segs[i - 1], names), segment_who(s, names)))
    marked = {h[0] for h in changes}
    for t in exact_at:  # an exact change that is not at a change of target is flagged all the same
        if w0 <= t < w1 and t not in marked:
            changes.append((t, True, "", ""))
    changes.sort()
    if plan.end < w1:
        blocks += cutter.cut(max(plan.end, w0), w1, None, _UNPLANNED)
    xs = [(cutter.ruler.x(t), ex) for t, ex, *_ in changes]
    handovers = tuple(Handover(x, t, clock_time(t, tz), ex, before, after, rows)
                      for (x, _), rows, (t, ex, before, after) in zip(xs, label_classes(xs), changes))
    now_x = cutter.ruler.x(now) if now is not None and w0 <= now < w1 else None
    gaps = sum(1 for s in segs[lo:hi] if s.kind is Kind.GAP)
    return Lane(group.members, group.size, tuple(blocks), handovers, now_x, sum(1 for c in changes if c[1]), gaps,
                None, one_line)


def _now_line(group: Group, now: dt.datetime, names: Names, colours: Colours, tz: ZoneInfo) -> NowLine:
    lines = members_words(group.members, len(group.members))
    n = group.plan
    if n is None or n.error:
        return NowLine(lines, group.first.voipnumber, "unplanned", "no plan", "no plan",
                       f" ({n.error if n else 'not in the plan'})")
    found = now_and_next(n.segments, now, names)
    if found is None:
        return NowLine(lines, group.first.voipnumber, "unplanned", "not planned", "not planned", " now")
    name, _, _, css = label(found.segment, names, colours)
    return NowLine(lines, group.first.voipnumber, css, name, *found.parts(now, tz))


def week_view(cfg: Config, plan: Plan, week: int = 0, now: dt.datetime | None = None, number: str | None = None,
              q: str | None = None, page: int = 0, per_page: int | None = PER_PAGE) -> WeekView:
    """Week ``week`` (0 = the one holding the plan's start; seven local days from the start's day) of
    ``plan``: a lane per group of lines on page ``page`` of those matching ``q`` (or only ``number``'s,
    with the day-by-day words too). ``now`` marks the current instant and today, and gives who has the
    calls now. Raises ValueError for a week outside the plan, lines.PageOutOfRange for a page past the
    last, KeyError for a number not in the config."""
    tz = cfg.tz
    weeks = week_count(plan, tz)
    if not 0 <= week < weeks:
        raise ValueError(f"week {week} is outside the plan (weeks 0 to {weeks - 1})")
    lines = one(cfg, plan, number) if number is not None else select(cfg, plan, q, page, per_page)
    first = _first_day(plan, tz) + dt.timedelta(days=7 * week)
    today = now.astimezone(tz).date() if now is not None else None
    days, edges = _days(first, tz, today)
    names, colours = Names(cfg), Colours(cfg)
    lanes = tuple(_lane(g, plan, edges, now, names, colours, tz, number is not None) for g in lines.groups)
    people = tuple(Person(display_name(name), p.phone, colours.css(display_name(name)))
                   for name, p in cfg.people.items())
    planned_now = now is not None and plan.start <= now < plan.end
    now_lines = tuple(_now_line(g, now, names, colours, tz) for g in lines.groups) if planned_now and now else ()
    z0, z1 = edges[0].astimezone(tz).tzname(), edges[-1].astimezone(tz).tzname()
    zone = f"{cfg.timezone} ({z0})" if z0 == z1 else f"{cfg.timezone} ({z0}, then {z1})"
    return WeekView(week, weeks, f"{first:%a %d %b} - {days[-1].date:%a %d %b %Y}", zone,
                    f"{when(plan.start, tz)} - {when(plan.end, tz)}", tuple(days), lanes, people,
                    sum(la.exact for la in lanes), sum(la.gaps for la in lanes), number, lines, now_lines,
                    when(now, tz) if planned_now and now else None)


def plan_warnings(plan: Plan, cfg: Config, number: str | None = None) -> list[str]:
    """The plan's findings in words, once each with the labels of the numbers they concern (only
    ``number``'s and the calendars', when given; at most a few labels each). Gaps are left out: the
    lanes show them."""
    labels = {n.voipnumber: n.label for n in cfg.numbers}
    found: dict[tuple[str, str], list[str]] = {}
    for v, f in plan.warnings:
        if f.kind is FindingKind.GAP or (number is not None and v not in (None, number)):
            continue
        who = found.setdefault((f.kind, f.message), [])
        if v is not None:
            who.append(labels.get(v, v))
    out = []
    for (_, message), who in found.items():
        named = ", ".join(who[:3]) + (f" and {len(who) - 3:,} more lines" if len(who) > 3 else "")
        out.append(f"{named + ': ' if who else ''}{message}")
    return out

