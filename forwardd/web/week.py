"""The week view: a plan and an instant -> a lane per line across seven local days, for the daemon's
page and ``forwardd plan --html``. A week is seven local days, so a daylight-saving day is a 23- or
25-hour column and every block is placed by its real share of its own day.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Sequence
from zoneinfo import ZoneInfo

from ..config import Config
from ..core.plan import NumberPlan, Plan
from ..core.timeline import FindingKind, Kind, Segment, display_name
from ..presentation import Names, clock_time, segment_who, when

PALETTE = 12  # person colours p0..p11 in the stylesheet
_WEEK = dt.timedelta(days=7)
_t = clock_time



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


class Colours:
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


def label(seg: Segment, names: Names, colours: Colours) -> tuple[str, str | None, str | None, str]:
    """(name, number, tag, css) for a segment's block, by its kind."""
    holiday = f"holiday: {seg.holiday}" if seg.holiday else None
    if seg.kind is Kind.OFFICE_HOURS:
        return "office hours", None, holiday, "office"
    if seg.kind is Kind.GAP:
        return "GAP", None, "nobody on call" + (f"; {holiday}" if holiday else ""), "gap"
    kind_tag = _TAGS.get(seg.kind)
    if seg.forwardto is None:  # a manual override that turns forwarding off
        return "not forwarded", None, kind_tag, "office"
    tag = f"{holiday} ({kind_tag})" if holiday and kind_tag else holiday or kind_tag
    person = seg.person if seg.person and seg.person != seg.forwardto else names.name(seg.forwardto)
    if person is not None:
        return person, seg.forwardto, tag, colours.css(person)
    if seg.kind is Kind.FALLBACK:  # a fallback number that is nobody's in [people]
        return "fallback", seg.forwardto, holiday, "fallback"
    return seg.forwardto, seg.forwardto, tag, colours.css(seg.forwardto)


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
           colours: Colours, tz: ZoneInfo) -> Block:
    name, num, tag, css = label(s, names, colours)
    return Block(left, round(right - left, 3), s.kind.value, css, name, num, tag, s.holiday is not None, s.start,
                 s.end, f"{when(s.start, tz)} - {when(s.end, tz)}", s.reason, s.start < p0, s.end > p1)


def _unplanned(p0: dt.datetime, p1: dt.datetime, left: float, right: float, tz: ZoneInfo, before: bool,
               after: bool) -> Block:
    return Block(left, round(right - left, 3), "unplanned", "unplanned", "not planned", None, None, False, p0, p1,
                 f"{when(p0, tz)} - {when(p1, tz)}", "outside the planned horizon", before, after)


def _lane(n: NumberPlan, cfg: Config, plan: Plan, days: list[Day], edges: list[dt.datetime],
          now: dt.datetime | None, names: Names, colours: Colours, by_day: bool) -> Lane:
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
        if i > 0 and w0 <= s.start < w1 and s.forwardto != segs[i - 1].forwardto:
            changes.append((s.start, s.start in exact_at, segment_who(segs[i - 1], names), segment_who(s, names)))
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
            who = "not forwarded" if s.kind is Kind.OFFICE_HOURS else segment_who(s, names)
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
    names, colours = Names(cfg), Colours(cfg)
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
