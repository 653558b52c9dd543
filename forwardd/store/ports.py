"""The store's interfaces, in one place: every consumer (the reconciler, alerts, notices, the page, the
commands) uses these, and both backends (SQLite on one host, PostgreSQL in a cluster) implement them.
``tests/test_store_contract.py`` runs one suite against both.

Journal entries have a kind (``EntryKind``) and a detail (a JSON object); what each kind's detail
holds is said beside it. ``entries`` gives each as a dict: ``id``, ``at`` (ISO text, UTC), ``kind``,
``voipnumber``, ``ok`` (True, False or None), and the detail's keys (which win where one has the name
of a column: an override's entry's ``id`` is the override's); the cluster's also name the ``instance``
that wrote them. Both backends keep the same text (``writer.record``): NUL characters are dropped, a
lone surrogate becomes U+FFFD, and what JSON cannot say (NaN, infinities, other objects, a structure
within itself) is kept as its text. Numbers come back as JSON numbers (a float written with an
exponent, 1e16 and up, may come back from PostgreSQL as the integer of that value).

The journal's order, in which every backend gives entries, is their time (``at``), then the order
they were recorded in: not the order they reached the store. In a cluster, a host cut off from the
database writes its backlog when it comes back, after other hosts' newer entries; those entries still
take their place in time, and a read-back confirmed there is not taken for the newest.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..core.notices import Told
    from .overrides import Override


class EntryKind(str, enum.Enum):
    """What a journal entry records."""

    CHANGE = "change"  # a change sent: fields (the carrier's), program (in words), account
    READBACK = "readback"  # a read of a line after a change or at a check: ok, fields, state, account
    DRIFT = "drift"  # a line found changed by hand: found (fields), wanted (fields), state, account
    ERROR = "error"  # a request that failed: error (the message), failure (a kind), account
    ALERT = "alert"  # an alert sent: key, alert (its kind), message, calendar, account
    RECOVERY = "recovery"  # an alert cleared: the same
    CALENDAR = "calendar"  # a calendar refresh: calendar, error, events_loaded
    START = "start"  # the daemon started: config, pid
    STOP = "stop"  # the daemon stopped
    OVERRIDE = "override"  # a command-line override added or cancelled: id, action, by, note...
    NOTICE = "notice"  # a notice to a person: key, person, outcome
    LEADER = "leader"  # leadership of a cluster moved: event, instance, since, previous, reason
    CREDIT = "credit"  # a line's credit changed: credit (as the carrier wrote it), account


class JournalStore(Protocol):
    """The append-only journal. ``record`` never blocks and never raises (forwarding comes first)."""

    problem: str | None  # why writing fails now, or None

    @property
    def healthy(self) -> bool:
        """Whether writing works now (``problem`` is None)."""
        ...

    def record(self, kind: str, at: dt.datetime, voipnumber: str | None = None, ok: bool | None = None,
               **detail: Any) -> None:
        """Queue an entry. Returns at once, never raises: while the store cannot be written, entries are
        held back (``problem`` says why) and written when it can; an entry that cannot be made at all (a
        kind that is not text, a time that is not a datetime) is dropped and logged."""
        ...

    def entries(self, voipnumber: str | None = None, since: dt.datetime | None = None, kind: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        """The entries of ``voipnumber``, at ``since`` or later, of ``kind`` (each when given), oldest
        first in the journal's order (above); with ``limit``, the newest ``limit`` of them (none for a
        limit below 1), still oldest first. Raises ForwarddError when the journal cannot be read."""
        ...

    def last_confirmed(self, voipnumber: str) -> dict[str, str] | None:
        """The fields of the line's newest read-back with ``ok`` (in the journal's order), or None: also
        when that read-back holds no fields, and when the journal cannot be read (it never raises)."""
        ...

    def confirmed_all(self) -> dict[str, dict[str, str]]:
        """Per line, what ``last_confirmed`` says (lines with nothing confirmed left out). Raises
        ForwarddError when the journal cannot be read."""
        ...

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every entry recorded so far is written, or held back while the store refuses it.
        Returns False when ``timeout`` (seconds) passed first."""
        ...

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds) and let the store go."""
        ...


class OverrideStore(Protocol):
    """Command-line overrides and the claims of notices sent, read and written synchronously. Every
    method raises ForwarddError (``overrides.StoreError``) when the store cannot be read or written.
    Times come back as the same instants, in UTC."""

    def add(self, voipnumber: str, forwardto: str | None, person: str | None, start: dt.datetime, end: dt.datetime,
            note: str, made_by: str, now: dt.datetime) -> Override:
        """Add an override (``forwardto`` None: no forwarding) and move the version, in one transaction.
        Returns it, with its new ID."""
        ...

    def get(self, override_id: int) -> Override | None:
        """The override with this ID, cancelled or not, or None."""
        ...

    def cancel(self, override_id: int, by: str, now: dt.datetime) -> Override | None:
        """Cancel it and move the version, in one transaction; returns it as it now is, or None when there
        is no such override. One cancelled before stays as it was and is returned so: its ``cancelled_by``
        and ``cancelled_at`` are the first cancellation's (not ``by`` and ``now``), and the version does
        not move."""
        ...

    def listed(self, now: dt.datetime, everything: bool = False) -> list[Override]:
        """The overrides live at ``now`` (not cancelled, ``end`` after ``now``), or with ``everything``
        all of them; by start, then ID."""
        ...

    def version(self) -> int:
        """A counter that moves with every add and every cancel that cancelled, and with nothing else; 0
        before the first add. Another store object on the same database sees it move."""
        ...

    def notice_made(self, key: str) -> bool:
        """Whether a notice with this key was claimed (by any store object on the database)."""
        ...

    def record_notice(self, key: str, person: str, voipnumber: str, kind: str, shift_start: dt.datetime,
                      shift_end: dt.datetime, open_end: bool, now: dt.datetime) -> bool:
        """Claim a notice before it is sent. Returns True for the first claim of ``key`` (send it), False
        for any later one, from any store object on the database (the first claim stays as it was)."""
        ...

    def notice_outcome(self, key: str, outcome: str) -> None:
        """Note how sending the notice ``key`` went (nothing for a key never claimed)."""
        ...

    def told(self, since: dt.datetime) -> list[Told]:
        """What people were told about shifts that had not ended by ``since``, cancellations left out;
        oldest notice first (notices made at one instant by their key)."""
        ...

    def close(self) -> None:
        """Let the store go (it connects again if used after)."""
        ...
