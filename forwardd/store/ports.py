"""The store's interfaces, in one place: every consumer (the reconciler, alerts, notices, the page, the
commands) uses these, and both backends (SQLite on one host, PostgreSQL in a cluster) implement them.
``tests/test_store_contract.py`` runs one suite against both.

Journal entries have a kind (``EntryKind``) and a detail (a JSON object); what each kind's detail
holds is said beside it.

The journal's order, in which every backend gives entries, is their time (``at``), then the order they were recorded in: not the
order they reached the store. In a cluster, a host cut off from the database writes its backlog when it
comes back, after other hosts' newer entries; those entries still take their place in time, and a
read-back confirmed there is not taken for the newest.
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
    def healthy(self) -> bool: ...

    def record(self, kind: str, at: dt.datetime, voipnumber: str | None = None, ok: bool | None = None,
               **detail: Any) -> None: ...

    def entries(self, voipnumber: str | None = None, since: dt.datetime | None = None, kind: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        """The entries of ``voipnumber``, at ``since`` or later, of ``kind`` (each when given), oldest first in the
        journal's order (above); with ``limit``, the newest ``limit`` of them (none for a limit below 1), still
        oldest first. Raises ForwarddError when the journal cannot be read."""
        ...

    def last_confirmed(self, voipnumber: str) -> dict[str, str] | None:
        """The fields of the line's newest read-back (in the journal's order) with ``ok``, or None: also when that
        read-back holds no fields, and when the journal cannot be read (it never raises)."""
        ...

    def confirmed_all(self) -> dict[str, dict[str, str]]:
        """Per line, what ``last_confirmed`` says (lines with nothing confirmed left out). Raises ForwarddError."""
        ...

    def flush(self, timeout: float = 5.0) -> bool: ...

    def close(self, timeout: float = 5.0) -> None: ...


class OverrideStore(Protocol):
    """Command-line overrides and the claims of notices sent, read and written synchronously."""

    def add(self, voipnumber: str, target: str | None, person: str | None, start: dt.datetime, end: dt.datetime,
            note: str, made_by: str, now: dt.datetime) -> int: ...

    def get(self, override_id: int) -> Override | None: ...

    def cancel(self, override_id: int, by: str, now: dt.datetime) -> Override | None:
        """Cancel it, in one transaction; returns it as it now is, or None when there is no such override.
        An override cancelled before stays as it was (its ``cancelled_at`` says when)."""
        ...

    def listed(self, now: dt.datetime, everything: bool = False) -> list[Override]: ...

    def version(self) -> int:
        """A counter that moves with every add and cancel."""
        ...

    def notice_made(self, key: str) -> bool: ...

    def record_notice(self, key: str, person: str, voipnumber: str, kind: str, shift_start: dt.datetime,
                      shift_end: dt.datetime, open_end: bool, now: dt.datetime) -> bool: ...

    def notice_outcome(self, key: str, outcome: str) -> None: ...

    def told(self, since: dt.datetime) -> list[Told]: ...

    def close(self) -> None: ...
