"""Notices to people: who goes on call when, and what to tell them. Pure: a plan and an instant in, the
notices due out; remembering what was sent is the store's job.

A *shift* is a stretch in which a number's calls go to one person, joined across the number's office
hours (the office answers then; the person is still on call either side). Each shift earns a notice
``before`` its start and one at its start, with the same words ("You're on call for Support line
(606309) from Fri 4 Dec 18:00 until Mon 7 Dec 08:30 (GMT)": dates and the zone, so that a notice read
late, or across a change of the clocks, says when); a shift a person was told about that is later moved or
cancelled earns one more. Shifts that began before the plan did (their start is not known) or run past
its end (their end is not known yet) are marked open on that side, so that a horizon moving on is not
mistaken for a change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from .plan import NumberPlan
from .timeline import Kind
from .words import span

START_GRACE = dt.timedelta(hours=1)  # a start notice still goes out this long after the start (a restart)


@dataclass(frozen=True)
class Shift:
    voipnumber: str
    person: str  # the [people] key
    start: dt.datetime
    end: dt.datetime
    open_start: bool = False
    open_end: bool = False


@dataclass(frozen=True)
class Told:
    """A notice already made about a shift (from the store)."""

    person: str
    voipnumber: str
    start: dt.datetime
    end: dt.datetime
    open_end: bool
    made_at: dt.datetime


@dataclass(frozen=True)
class Notice:
    key: str  # made once, ever
    person: str
    voipnumber: str
    kind: str  # before, start, changed, cancelled
    shift: Shift
    title: str
    body: str


def shifts(numbers: Sequence[NumberPlan], people: Mapping[str, str], horizon: tuple[dt.datetime, dt.datetime]
           ) -> list[Shift]:
    """Every shift of the people in ``people`` (name -> phone) in these plans."""
    by_phone = {phone: name for name, phone in people.items()}
    out: list[Shift] = []
    for n in numbers:
        current: Shift | None = None
        for s in n.segments:
            who = by_phone.get(s.target) if s.target else None
            if who is not None and current is not None and current.person == who:
                current = Shift(n.voipnumber, who, current.start, s.end, current.open_start, s.end >= horizon[1])
                continue
            if who is None and current is not None and s.kind is Kind.OFFICE_HOURS:
                continue  # the office answers; bridged if the same person follows
            if current is not None:
                out.append(current)
            current = (Shift(n.voipnumber, who, s.start, s.end, s.start <= horizon[0], s.end >= horizon[1])
                       if who is not None else None)
        if current is not None:
            out.append(current)
    return out


def describe(shift: Shift, label: str, tz: ZoneInfo) -> str:
    """``You're on call for Support line (606309) from Thu 3 Dec 07:28 until 07:38 (GMT)``."""
    return f"You're on call for {label} {span(shift.start, shift.end, tz, at_least=shift.open_end)}"


def _key(s: Shift, kind: str) -> str:
    return f"{s.voipnumber}:{s.person}:{int(s.start.timestamp())}:{kind}"


def due(all_shifts: Iterable[Shift], now: dt.datetime, before: dt.timedelta, labels: Mapping[str, str],
        tz: ZoneInfo) -> list[Notice]:
    """The before- and start-notices due at ``now`` (whether already sent is for the caller to check)."""
    out = []
    for s in all_shifts:
        if s.open_start or s.end <= now:
            continue
        text = describe(s, labels[s.voipnumber], tz)
        if s.start - before <= now < s.start:
            out.append(Notice(_key(s, "before"), s.person, s.voipnumber, "before", s, "On call soon", text))
        elif s.start <= now < s.start + START_GRACE:
            out.append(Notice(_key(s, "start"), s.person, s.voipnumber, "start", s, "On call now", text))
    return out


def changes(told: Sequence[Told], all_shifts: Sequence[Shift], now: dt.datetime, labels: Mapping[str, str],
            tz: ZoneInfo) -> list[Notice]:
    """Notices for shifts people were told about and that the plan has since moved or cancelled.

    Of the notices about overlapping spans of one person on one number, only the newest counts (after a
    change notice, the changed shift is what the person knows)."""
    latest: list[Told] = []
    for t in sorted(told, key=lambda t: t.made_at):
        latest = [k for k in latest if not (k.person == t.person and k.voipnumber == t.voipnumber
                                            and k.start < t.end and t.start < k.end)]
        latest.append(t)
    out = []
    for t in latest:
        if t.end <= now:
            continue
        mine = [s for s in all_shifts if s.person == t.person and s.voipnumber == t.voipnumber
                and s.start < t.end and t.start < s.end]
        same = [s for s in mine if (s.open_start or s.start == t.start)
                and (s.end == t.end or (t.open_end and s.end >= t.end) or (s.open_end and s.end <= t.end))]
        if same:
            continue
        label = labels[t.voipnumber]
        was = describe(Shift(t.voipnumber, t.person, t.start, t.end, open_end=t.open_end), label, tz)
        was = was.replace("You're on call", "your shift", 1)
        if mine:
            s = max(mine, key=lambda s: min(s.end, t.end) - max(s.start, t.start))
            key = f"{_key(s, 'changed')}:{int(s.end.timestamp())}:{int(t.start.timestamp())}"
            body = f"Changed: {was[0].lower() + was[1:]} is now: {describe(s, label, tz)}."
            out.append(Notice(key, t.person, t.voipnumber, "changed", s, "On-call shift changed", body))
        else:
            gone = Shift(t.voipnumber, t.person, t.start, t.end, open_end=t.open_end)
            key = f"{_key(gone, 'cancelled')}:{int(t.end.timestamp())}"
            out.append(Notice(key, t.person, t.voipnumber, "cancelled", gone, "On-call shift cancelled",
                              f"Cancelled: {was}. You are no longer on call then."))
    return out
