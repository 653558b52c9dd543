"""Being polite to aql: what forwardd reads, and when, when nothing is due.

Planned changes are never held back: they are sent at their time, whatever else is going on. Reads
that only look for hand-made changes (drift checks) and the one read of every number at start-up are
*background* reads: each number is checked once per ``drift_check_every``, the numbers spread evenly over
the interval (so the account is never read in one burst); any read, a read for a change too, counts as
a check; and all background reads together stay under
``aql.max_requests_per_minute`` (a token bucket). An answer of HTTP 429 or 503 pauses background reads
(for its Retry-After, else an exponential back-off) and is counted.

Nothing here reads a clock: instants are passed in, so the daemon (real time) and the simulator
(virtual time) run the same rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..clock import Clock

BACKOFF_START_S = 5.0
BACKOFF_CAP_S = 300.0


class RequestBudget:
    """A token bucket for background reads: ``per_minute`` on average, bursts of at most ~10 s worth."""

    def __init__(self, per_minute: int, start: dt.datetime) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, min(per_minute / 6.0, 20.0))
        self._tokens = self.capacity
        self._at = start
        self.paused_until: dt.datetime | None = None
        self._backoff = 0.0
        self.throttled = 0  # answers of 429/503 seen

    def reserve(self, now: dt.datetime) -> dt.datetime:
        """Take one token; returns when the read may go (``now`` if at once). Never refuses: a later
        reservation simply gets a later time."""
        start = max(now, self._at)
        if self.paused_until is not None and self.paused_until > start:
            start = self.paused_until
        tokens = min(self.capacity, self._tokens + (start - self._at).total_seconds() * self.rate)
        if tokens >= 1:
            self._tokens, self._at = tokens - 1, start
            return start
        wait = (1 - tokens) / self.rate
        self._tokens, self._at = 0.0, start + dt.timedelta(seconds=wait)
        return self._at

    async def take(self, clock: Clock) -> None:
        """Wait (on ``clock``) for a token."""
        when = self.reserve(clock.now())
        delay = (when - clock.now()).total_seconds()
        if delay > 0:
            await clock.sleep(delay)

    def throttle(self, now: dt.datetime, retry_after: float | None) -> float:
        """aql said slow down: pause background reads for ``retry_after`` seconds, else for a back-off
        that doubles each time (5 s up to 5 min). Returns the pause."""
        self.throttled += 1
        if retry_after is not None:
            pause = retry_after
        else:
            self._backoff = min(max(self._backoff * 2, BACKOFF_START_S), BACKOFF_CAP_S)
            pause = self._backoff
        until = now + dt.timedelta(seconds=pause)
        if self.paused_until is None or until > self.paused_until:
            self.paused_until = until
        return pause

    def answered(self) -> None:
        """A request went through: the next throttling starts its back-off afresh."""
        self._backoff = 0.0


@dataclass
class DriftSchedule:
    """When each number is next read to look for hand-made changes.

    Each number has a phase, the numbers' phases spread evenly over ``every``. A number not yet read is
    due at ``anchor + phase`` (the start-up reads, spread over the first interval and under the cap).
    After any read at ``t`` it is due at ``t + every``, so a read for a change counts as a check, the
    spread the phases set is kept, and a hand-made change is always seen within ``every``. After a read
    for a change the next check comes a little sooner, by up to a quarter of an interval according to
    the phase, so that numbers changed at the same instant (one rota, many numbers) do not all fall due
    together an interval later. And a check that would come just before a planned change that reads the
    number anyway (any but an exact hand-over) is left to that read."""

    numbers: list[str]
    every: dt.timedelta
    anchor: dt.datetime
    phase: dict[str, dt.timedelta] = field(init=False)

    def __post_init__(self) -> None:
        count = max(1, len(self.numbers))
        self.phase = {n: self.every * i / count for i, n in enumerate(self.numbers)}

    def next_due(self, number: str, last_read: dt.datetime | None,
                 read_for_change: dt.datetime | None = None, planned_read: dt.datetime | None = None
                 ) -> dt.datetime | None:
        """When the number is next due for a check; None when a planned change's own read (at
        ``planned_read``) comes first anyway, so that no check is needed before it."""
        phase = self.phase.get(number, dt.timedelta(0))
        if last_read is None:
            due = self.anchor + phase
        elif read_for_change is not None and read_for_change >= last_read:
            due = last_read + self.every - phase / 4
        else:
            due = last_read + self.every
        if last_read is not None and planned_read is not None and last_read < planned_read <= due:
            return None
        return due

    def due(self, now: dt.datetime, read_at: Mapping[str, dt.datetime],
            read_for_change: Mapping[str, dt.datetime] | None = None,
            planned_reads: Mapping[str, dt.datetime] | None = None) -> list[str]:
        """Numbers due for a check at ``now``, the longest overdue first."""
        changes, planned = read_for_change or {}, planned_reads or {}
        when = {n: self.next_due(n, read_at.get(n), changes.get(n), planned.get(n)) for n in self.numbers}
        return sorted((n for n in self.numbers if (w := when[n]) is not None and w <= now),
                      key=lambda n: (when[n], n))


@dataclass
class RetryQueue:
    """Numbers whose last pass did not confirm them: tried again after 10 s, then twice as long each time,
    at most every 5 minutes, until a pass confirms them. These are changes, not background reads."""

    first_s: float = 10.0
    cap_s: float = 300.0
    due_at: dict[str, dt.datetime] = field(default_factory=dict)
    _wait: dict[str, float] = field(default_factory=dict)

    def failed(self, number: str, now: dt.datetime, at_least_s: float = 0.0) -> dt.datetime:
        wait = min(max(self._wait.get(number, 0) * 2, self.first_s, at_least_s), self.cap_s)
        self._wait[number] = wait
        self.due_at[number] = now + dt.timedelta(seconds=wait)
        return self.due_at[number]

    def confirmed(self, number: str) -> None:
        self.due_at.pop(number, None)
        self._wait.pop(number, None)

    def due(self, now: dt.datetime) -> list[str]:
        return sorted((n for n, t in self.due_at.items() if t <= now), key=lambda n: (self.due_at[n], n))


def planned_reads(changes_by_number: Mapping[str, Sequence[Any]], now: dt.datetime) -> dict[str, dt.datetime]:
    """Per number, when the next planned change that reads the account first (not an exact hand-over)
    comes after ``now``. ``changes`` are the plan's changes (with ``apply_from`` and ``exact``)."""
    out = {}
    for number, changes in changes_by_number.items():
        for c in changes[1:]:
            if c.apply_from > now and not c.exact:
                out[number] = c.apply_from
                break
    return out
