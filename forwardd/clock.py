"""The one clock. Everything that needs the time gets a ``Clock``; the core gets instants passed in.

``SystemClock`` is the wall clock (the only place it is read); ``VirtualClock`` is a clock the simulator
and tests move by hand: sleeping on it advances it at once, so a day of reconciling runs in seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Protocol

UTC = dt.timezone.utc


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that only moves when told to (``advance``, ``set``) or when slept on."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock's time must be timezone-aware")
        self._now = start.astimezone(UTC)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, t: dt.datetime) -> None:
        """Move to ``t`` (never backwards)."""
        self._now = max(self._now, t.astimezone(UTC))

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=max(0.0, seconds))

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


def whole_seconds(t: dt.datetime) -> dt.datetime:
    return t.replace(microsecond=0)
