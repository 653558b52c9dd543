"""The timeline's vocabulary: calendar events and one-off overrides in, segments and findings out, and the
policy that decides between them. Pure values (``timeline`` builds with them)."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

UTC = dt.timezone.utc


def epoch(t: dt.datetime) -> int:
    """Aware datetime -> integer epoch seconds. Raises ValueError on a naive one."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t!r}: forwardd's core only takes timezone-aware instants")
    return int(t.timestamp() // 1)


def from_epoch(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True, slots=True)
class Event:
    """One occurrence of a calendar event, as aware UTC instants. ``stamp`` is when it was last changed
    (LAST-MODIFIED, else DTSTAMP), used only to break a tie between two identical spans."""

    start: dt.datetime
    end: dt.datetime
    summary: str = ""
    location: str = ""
    description: str = ""
    uid: str = ""
    calendar: str = ""
    stamp: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Manual:
    """A one-off override from the command line: ``forwardto`` None means no forwarding. Of two that
    overlap, the higher ``rank`` (the later one made) wins."""

    start: dt.datetime
    end: dt.datetime
    target: str | None
    person: str | None
    reason: str
    rank: int = 0


class Kind(str, enum.Enum):
    """Which rule decided a segment."""

    MANUAL = "manual"  # a command-line override
    OFFICE_HOURS = "office_hours"
    OVERRIDE = "override"  # an override calendar's event
    ROTA = "rota"
    FALLBACK = "fallback"
    GAP = "gap"  # nobody on call and no fallback: calls are not forwarded


@dataclass(frozen=True, slots=True)
class Segment:
    """``[start, end)`` (aware UTC) in which calls go to ``target`` (None: not forwarded).

    ``person`` is the name behind the number, when known; ``holiday`` the holiday that opened office
    hours to forwarding; ``reason`` the same in words, for people."""

    start: dt.datetime
    end: dt.datetime
    target: str | None
    reason: str
    kind: Kind = Kind.ROTA
    person: str | None = None
    holiday: str | None = None


class FindingKind(str, enum.Enum):
    """What a finding is about (for code; the message is for people)."""

    UNNAMED = "unnamed"  # an event names nobody in [people] and carries no number
    TWO_NAMES = "two_names"  # an event names two people, or carries two numbers
    DISALLOWED = "disallowed"  # an event carries a number nobody allowed
    OVERLAP = "overlap"  # rota events overlap; the later one wins for the overlap
    TIE = "tie"  # two events with the same span; the one changed last wins
    GAP = "gap"  # nobody on call and no fallback
    CALENDAR = "calendar"  # what reading a calendar found (a skipped component, a calendar not loaded)

    @property
    def routes_nowhere(self) -> bool:
        """An event of this finding counts as no event: calls go nowhere because of it (alerted)."""
        return self in (FindingKind.UNNAMED, FindingKind.TWO_NAMES, FindingKind.DISALLOWED)


@dataclass(frozen=True)
class Finding:
    """Something a person should look at: an event naming nobody, an overlap, a gap. ``kind`` is for
    code; ``key`` identifies it across re-plans, so that it is alerted once."""

    kind: FindingKind
    message: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    key: str = ""
    calendar: str | None = None  # the calendar it is about, when there is one

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class OfficeRule:
    """Office hours on some weekdays (0 = Monday); ``end`` None is midnight at the end of the day."""

    weekdays: frozenset[int]
    start: dt.time
    end: dt.time | None


@dataclass
class Policy:
    """Everything that decides one number's routing, apart from the events themselves.

    ``people`` maps names to numbers; ``allowed`` are the prefixes a number written in an event's text
    must match to be used (see ``phone.number_allowed``); numbers of known people and the fallback are
    always allowed."""

    people: Mapping[str, str]
    office_hours: Sequence[OfficeRule] = ()
    fallback: str | None = None
    fallback_person: str | None = None
    allowed: tuple[str, ...] = ("01", "02", "03", "07", "!070")
    name_patterns: list[tuple[str, re.Pattern[str]]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.name_patterns = [(name, name_pattern(name)) for name in self.people]


@functools.lru_cache(maxsize=4096)
def name_pattern(name: str) -> re.Pattern[str]:
    """A person's name as a whole word, any case ("On call: ALICE" names alice; "Malice" does not)."""
    return re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)", re.IGNORECASE)
