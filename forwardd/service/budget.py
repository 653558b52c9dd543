"""Being polite to aql: what forwardd reads, and when, when nothing is due.

Planned changes are never held back: they are sent at their time, whatever else is going on. Reads
that only look for hand-made changes (drift checks) and the one read of every number at start-up are
*background* reads: each number is checked once per ``drift_check_every`` in its own slot, the numbers
spread evenly over the interval (so the account is never read in one burst), and all background reads
of an account together stay under its ``max_requests_per_minute`` (a token bucket). When that cap
cannot read every number once per ``drift_check_every``, the interval grows to what the cap allows
(``drift_interval``), and forwardd says so. An answer of HTTP 429 or 503 pauses background reads (for
its Retry-After, else an exponential back-off) and is counted.

Nothing here reads a clock: instants are passed in, so the daemon (real time) and the simulator
(virtual time) run the same rules.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

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


def drift_interval(numbers: int, every: dt.timedelta, per_minute: int) -> dt.timedelta:
    """How often each of ``numbers`` lines can be read: ``every``, or, when reading them all that often
    would take more than ``per_minute`` reads a minute, the whole minutes the cap needs for them all."""
    need = numbers / per_minute  # minutes to read every line once under the cap
    if need * 60 <= every.total_seconds():
        return every
    return dt.timedelta(minutes=math.ceil(need))


def drift_note(numbers: int, every: dt.timedelta, per_minute: int) -> str | None:
    """Why the drift interval is longer than configured, in words; None when it is not."""
    actual = drift_interval(numbers, every, per_minute)
    if actual == every:
        return None
    need = math.ceil(numbers / (every.total_seconds() / 60))
    return (f"{_span(every)} for {numbers:,} numbers needs {need:,} reads a minute; under the cap of "
            f"{per_minute:,} each number is checked every {int(actual.total_seconds() // 60)} minutes")


def _span(d: dt.timedelta) -> str:
    s = int(d.total_seconds())
    if s % 3600 == 0:
        return f"{s // 3600}h"
    return f"{s // 60}m" if s % 60 == 0 else f"{s}s"


class DriftGrid:
    """When each line of one account is read to look for hand-made changes.

    The lines share one interval (``drift_interval``: the configured one, or longer when the cap cannot
    read them all that often), cut into as many slots as the cap allows reads in it (at least one per
    line). Each slot recurs once per interval and belongs to at most one line, so the background reads
    never come faster than the cap, however many lines were read at one instant. A line is read in its
    slot; at start-up the lines' slots are spread evenly over the first interval (the start-up reads). A
    read at any other time (one for a change) moves the line to the latest free slot that still comes
    within one interval of that read, so it counts as a check; a line is therefore read at least once
    per interval, whatever happens."""

    def __init__(self, numbers: list[str], every: dt.timedelta, per_minute: int, anchor: dt.datetime) -> None:
        self.numbers = numbers
        self.every = every
        self.per_minute = per_minute
        self.anchor = anchor
        self.interval = drift_interval(len(numbers), every, per_minute)
        count = max(1, len(numbers))
        self.slots = max(count, int(self.interval.total_seconds() / 60 * per_minute))
        self.width = self.interval / self.slots
        self._owner: list[str | None] = [None] * self.slots
        self._index: dict[str, int] = {}
        for i, n in enumerate(numbers):
            self._take(n, i * self.slots // count)

    def _take(self, number: str, index: int) -> None:
        old = self._index.get(number)
        if old is not None and self._owner[old] == number:
            self._owner[old] = None
        self._owner[index] = number
        self._index[number] = index

    def _slot_index(self, t: dt.datetime) -> int:
        return int(((t - self.anchor) % self.interval) / self.width) % self.slots

    def _after(self, index: int, t: dt.datetime, strictly: bool = True) -> dt.datetime:
        """The first instance of slot ``index`` after ``t`` (at or after, when not ``strictly``)."""
        base = self.anchor + self.width * index
        k = (t - base) / self.interval
        whole = math.floor(k) + 1 if strictly else math.ceil(k)
        return base + self.interval * max(whole, 0 if base > t else whole)

    def phase(self, number: str) -> dt.timedelta:
        return self.width * self._index.get(number, 0)

    def read(self, number: str, at: dt.datetime) -> None:
        """``number`` was read at ``at``: keep its slot when this was its slot's read, else move it to the
        latest free slot at most one interval after ``at``."""
        index = self._index.get(number)
        if index is None:
            return
        target = self._slot_index(at + self.interval)
        for step in range(self.slots):
            i = (target - step) % self.slots
            if i == index:
                return  # its own slot comes first: it stays
            if self._owner[i] is None:
                self._take(number, i)
                return

    def next_check(self, number: str, last_read: dt.datetime | None, now: dt.datetime) -> dt.datetime:
        """The line's next slot: the first after ``last_read`` (within one interval of it), or the first from
        ``now`` when it was never read."""
        index = self._index.get(number, 0)
        if last_read is None:  # the start-up reads: their slots in the first interval (later, the next one)
            return self._after(index, self.anchor if now < self.anchor + self.interval else now, strictly=False)
        return self._after(index, last_read)


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
