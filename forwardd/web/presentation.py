"""How forwardd says things to people: people by name with their number beside it, programs and aql's
fields in words, journal entries in words, times and durations (from ``core.words``). One way of saying
them for the page, the command line, alerts and notices.

Plain Python over the config: no templates (importing it does not import Jinja2), no I/O, no clock.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

from ..aql.carrier import program_of
from ..config import Config
from ..core.phone import canonical
from ..core.plan import NumberPlan, program_at
from ..core.provider import ALL_DAY, Program, hms
from ..core.timeline import Kind, Segment, display_name
from ..core.words import clock_time, duration, interval, span, until, when

__all__ = ["Names", "NowAndNext", "clock_time", "duration", "entry_text", "interval", "now_and_next", "plural",
           "segment_who", "until", "when"]


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 line``, ``3,200 lines``; ``nouns`` when adding an s will not do (``1 entry``, ``2 entries``)."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


class Names:
    """People by name, the number beside it: who a phone number belongs to, by ``[people]``."""

    _PHONE = re.compile(r"(?<!\d)(?:\+?44|0)\d{9,10}(?!\d)")

    def __init__(self, cfg: Config) -> None:
        self._by = {canonical(p.phone): display_name(name) for name, p in cfg.people.items()}

    def name(self, number: str | None) -> str | None:
        """The name of the person whose number this is, or None."""
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


def segment_who(seg: Segment, names: Names) -> str:
    """Where a segment sends the calls, in words: ``Carol (07700900003)``, ``office hours``,
    ``nobody (gap)``, ``not forwarded``."""
    if seg.kind is Kind.OFFICE_HOURS:
        return "office hours"
    if seg.kind is Kind.GAP:
        return "nobody (gap)"
    if seg.target is None:
        return "not forwarded"
    return names.who(seg.target, seg.person)


def entry_text(e: Mapping[str, Any], names: Names, tz: ZoneInfo | None = None) -> str:
    """A journal entry in words, people by name beside their numbers: ``read back: Bob (07700900002) all day``;
    ``tz``: the wall clock an override's span is said on."""
    kind = e.get("kind")
    if kind == "change":
        fields = e.get("fields")
        if e.get("program"):
            return f"sent: {names.text(str(e['program']))}"
        return f"sent {names.fields(fields) if isinstance(fields, dict) else ''}"
    if kind == "override":
        return override_text(e, names, tz)
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


@dataclass(frozen=True)
class NowAndNext:
    """Who has a line's calls at an instant (``segment``, whose ``who`` is in words), until when they
    keep them (``until``: when the calls next go elsewhere, or the end of the plan), and who has them then
    (None at the end of the plan)."""

    segment: Segment
    who: str
    until: dt.datetime
    then: str | None

    def words(self, now: dt.datetime, tz: ZoneInfo) -> str:
        """``Dave (07700900004) until 09:00, then Erin (07700900005)``; ``... until Mon 14 Dec 00:00 (the
        end of the plan)``; ``office hours (not forwarded) until 17:30, then ...``."""
        return "".join(self.parts(now, tz))

    def parts(self, now: dt.datetime, tz: ZoneInfo) -> tuple[str, str]:
        """``words`` in two: who (``Dave (07700900004)``), and the rest (`` until 09:00, then ...``)."""
        who = "office hours (not forwarded)" if self.segment.kind is Kind.OFFICE_HOURS else self.who
        then = f", then {self.then}" if self.then else " (the end of the plan)"
        return who, f" until {until(self.until, now, tz)}{then}"


def override_text(e: Mapping[str, Any], names: Names, tz: ZoneInfo | None) -> str:
    """A command-line override's journal entry: ``Bob (07700900002) from Thu 3 Dec 07:28 until 09:00 (GMT)
    (override by ann: covering, ID 7)``, or ``ID 7 cancelled by ann``."""
    if e.get("cancelled"):
        return f"ID {e.get('id')} cancelled by {e.get('by')}"
    who = "no forwarding" if e.get("to") is None else names.who(e.get("to"), display_name(e["person"])
                                                                 if e.get("person") else None)
    try:
        when = " " + span(dt.datetime.fromisoformat(e["start"]), dt.datetime.fromisoformat(e["end"]), tz) if tz else ""
    except (KeyError, TypeError, ValueError):
        when = ""
    return f"{who}{when} ({e.get('reason')}, ID {e.get('id')})"


def now_and_next(segments: Sequence[Segment], now: dt.datetime, names: Names) -> NowAndNext | None:
    """Who has the calls at ``now`` and until when, from a line's timeline (sorted, adjacent segments):
    the calls stay with the same who across segments that differ only in their reason. None when the
    timeline does not cover ``now``."""
    i = bisect.bisect_right([s.start for s in segments], now) - 1
    if i < 0 or not segments[i].start <= now < segments[i].end:
        return None
    who = segment_who(segments[i], names)
    j = i + 1
    while j < len(segments) and segments[j].start == segments[j - 1].end and segment_who(segments[j], names) == who:
        j += 1
    if j == len(segments):
        return NowAndNext(segments[i], who, segments[-1].end, None)
    return NowAndNext(segments[i], who, segments[j].start, segment_who(segments[j], names))


def next_change_words(np_: NumberPlan, now: dt.datetime, names: Names, tz: ZoneInfo) -> str | None:
    """The change after the program in force at ``now``, as who gets the calls from when, and when it is
    sent: ``Carol (07700900003) from 17:30 (sent between 09:00 and 17:30)``; ``Bob (07700900002) from
    09:00 (sent at 09:00 exactly: an exact hand-over)``. The previous program stops being right at the
    change's ``apply_by``, so that is when it shows: a new person, or the same one kept on (``Carol
    (07700900003) keeps the calls past midnight``, where a window moves on). None when no change follows."""
    found = program_at(np_.changes, now)
    if found is None or found[0] + 1 >= len(np_.changes):
        return None
    c = np_.changes[found[0] + 1]
    at = c.apply_by
    seg = next((s for s in np_.segments if s.start <= at < s.end), None)
    before = next((s for s in np_.segments if s.start < at <= s.end), None)
    if seg is None:  # at the end of the plan: the program itself
        who = f"{names.program(c.program)} from {until(at, now, tz)}"
    else:
        said = segment_who(seg, names)
        said = "office hours (not forwarded)" if said == "office hours" else said
        same = before is not None and segment_who(before, names) == segment_who(seg, names)
        kept = "keeps the calls past" if seg.target is not None else "still, past"
        who = f"{said} {kept if same else 'from'} {until(at, now, tz)}"
    if c.exact:
        return f"{who} (sent at {until(at, now, tz)} exactly: an exact hand-over)"
    return f"{who} (sent between {until(c.apply_from, now, tz)} and {until(at, now, tz)})"
