"""What an alert is about, as structure: a kind and the thing it concerns (a line, a calendar, an account).

Code decides on these fields (the page files an alert under its line by ``key.number``, never by reading
text back), and people read ``describe()``. The one text form, ``text()``, exists only to keep the
standing alerts in the state directory across restarts; ``parse`` reads it back, and reads the plain
strings older versions wrote.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from urllib.parse import quote, unquote


class AlertKind(str, enum.Enum):
    """Why forwardd alerts. The value is the stable name used in the journal and the state directory."""

    AUTH = "auth"  # an account refused the credentials
    REJECTED = "rejected"  # aql answered ERR: to a line's change
    LATE = "late"  # a line's program was not confirmed by the end of its send window
    DRIFT = "drift"  # a line was changed by hand in the provider's portal
    CREDIT = "credit"  # a line's credit is low, or will run out soon
    CALENDAR = "calendar"  # a calendar fails, or its last good copy is too old
    EVENT = "event"  # an event routes calls nowhere (names nobody, two people, a number nobody allowed)
    GAP = "gap"  # nobody on call and no fallback
    JOURNAL = "journal"  # the journal cannot be written
    JOURNAL_MOVED = "journal-moved"  # a corrupt journal was moved aside
    OVERRIDES = "overrides"  # the command-line overrides cannot be read
    CONFIG = "config"  # a reloaded config was refused
    CLUSTER = "cluster"  # the cluster's database cannot be reached
    FENCE = "fence"  # this instance leads but may not send
    LEADER = "leader"  # leadership moved (told once, never standing)


@dataclass(frozen=True, order=True)
class AlertKey:
    """One alert's identity: a standing alert with the same key is not sent again within ``repeat_after``."""

    kind: AlertKind
    number: str | None = None  # the line it concerns
    calendar: str | None = None  # the calendar it concerns
    account: str | None = None  # the provider account it concerns
    detail: str | None = None  # what else tells two alerts of one kind apart (an event's key, a gap's span)

    def text(self) -> str:
        """The stable text form (the state directory, the journal): the kind alone, ``kind:subject`` when
        one field is set and reads unambiguously (``drift:606309``, ``calendar:rota``), else labelled
        fields (``auth:a=main``... ``kind:n=606309:a=main``)."""
        labelled = [(label, value) for label, value in (("n", self.number), ("c", self.calendar),
                                                         ("a", self.account), ("d", self.detail)) if value is not None]
        if not labelled:
            return self.kind.value
        if len(labelled) == 1 and labelled[0][0] == _NATURAL.get(self.kind, "d") and not any(
                c in labelled[0][1] for c in ":="):
            return f"{self.kind.value}:{labelled[0][1]}"
        return ":".join([self.kind.value, *(f"{label}={quote(value, safe='')}" for label, value in labelled)])

    @classmethod
    def parse(cls, text: str) -> AlertKey | None:
        """The key ``text()`` wrote, or one of the plain strings older versions wrote (``drift:606309``,
        ``calendar:rota``); None for anything else."""
        kind_text, _, rest = text.partition(":")
        try:
            kind = AlertKind(kind_text)
        except ValueError:
            return None
        if not rest:
            return cls(kind)
        fields: dict[str, str] = {}
        if all(p[:2] in ("n=", "c=", "a=", "d=") for p in rest.split(":")):
            for part in rest.split(":"):
                fields[part[0]] = unquote(part[2:])
            return cls(kind, fields.get("n"), fields.get("c"), fields.get("a"), fields.get("d"))
        # kind:subject, the subject's meaning given by the kind
        natural = _NATURAL.get(kind, "d")
        return cls(kind, number=rest if natural == "n" else None, calendar=rest if natural == "c" else None,
                   account=rest if natural == "a" else None, detail=rest if natural == "d" else None)

    def describe(self) -> str:
        """What the alert is about, for people: ``line 606309``, ``calendar 'rota'``, ``the aql account``."""
        if self.number is not None:
            return f"line {self.number}"
        if self.calendar is not None:
            return f"calendar '{self.calendar}'"
        if self.kind is AlertKind.AUTH:
            return f"account '{self.account}'" if self.account else "the aql account"
        return _SUBJECTS.get(self.kind, self.kind.value.replace("-", " "))


# the field a kind's plain ``kind:subject`` text names
_NATURAL = {AlertKind.REJECTED: "n", AlertKind.LATE: "n", AlertKind.DRIFT: "n", AlertKind.CREDIT: "n",
            AlertKind.CALENDAR: "c", AlertKind.AUTH: "a"}

_SUBJECTS = {
    AlertKind.EVENT: "a calendar event",
    AlertKind.GAP: "on-call cover",
    AlertKind.JOURNAL: "the journal",
    AlertKind.JOURNAL_MOVED: "the journal",
    AlertKind.OVERRIDES: "the command-line overrides",
    AlertKind.CONFIG: "the configuration",
    AlertKind.CLUSTER: "the cluster database",
    AlertKind.FENCE: "the cluster lease",
    AlertKind.LEADER: "the cluster",
}


@dataclass(frozen=True)
class Standing:
    """An alert that stands now: its message (a sentence), since when, and when it was last sent."""

    key: AlertKey
    message: str
    since: dt.datetime
    last_sent: dt.datetime
