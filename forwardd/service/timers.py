"""When the engine's jobs run: one heap of timed calls on the injected clock, and one task that calls
each at its instant. The daemon runs it on the wall clock; ``simulate`` and the tests run the very same
engine on a virtual clock (a day in seconds). APScheduler's triggers say when a periodic job is next
due; APScheduler's own schedulers read the wall clock, so they cannot run on a virtual one.

A timed call must be quick (it runs on the loop between other work): one that has work to do starts a
task. Calls due at the same instant run in the order they were set.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
from typing import Any, Callable

import structlog
from apscheduler.triggers.interval import IntervalTrigger

from ..clock import Clock

log = structlog.get_logger("forwardd.timers")
UTC = dt.timezone.utc


class Handle:
    """A timed call; ``cancel()`` drops it."""

    __slots__ = ("cancelled", "fn", "args")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[dt.datetime, int, Handle]] = []
        self._order = itertools.count()
        self._alarm: asyncio.Future[None] | None = None
        self._alarm_at: dt.datetime | None = None
        self._cancelled = 0

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled

    def at(self, t: dt.datetime, fn: Callable[..., Any], *args: Any) -> Handle:
        """Call ``fn(*args)`` at ``t`` (as soon as possible when ``t`` has passed)."""
        handle = Handle(fn, args)
        heapq.heappush(self._heap, (t, next(self._order), handle))
        if self._alarm is not None and not self._alarm.done() and (self._alarm_at is None or t < self._alarm_at):
            self._alarm.set_result(None)  # the loop sleeps past this one: wake it to sleep again, shorter
        return handle

    def cancel(self, handle: Handle | None) -> None:
        if handle is not None and not handle.cancelled:
            handle.cancel()
            self._cancelled += 1  # (a periodic job's handle is not in the heap: only an estimate)
            if self._cancelled > 1000 and self._cancelled * 2 > len(self._heap):
                self._heap = [e for e in self._heap if not e[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def every(self, seconds: float, fn: Callable[[], Any], *, first: dt.datetime | None = None) -> Handle:
        """Call ``fn()`` every ``seconds`` (from ``first``, default now + ``seconds``) until the handle
        returned is cancelled. A call that finds the previous one's task still running is skipped (``fn``
        says so by returning a task: the next call comes only after it); missed calls are not made up."""
        start = first or self.clock.now() + dt.timedelta(seconds=seconds)
        trigger = IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC)
        periodic = Handle(fn, ())
        running: list[asyncio.Task[Any] | None] = [None]

        def tick(prev: dt.datetime) -> None:
            if periodic.cancelled:
                return
            task = running[0]
            if task is None or task.done():
                result = fn()
                running[0] = result if isinstance(result, asyncio.Task) else None
            # the next slot of the grid after now: a loop that fell behind skips what it missed
            nxt = trigger.get_next_fire_time(None, max(self.clock.now(), prev) + dt.timedelta(microseconds=1))
            if nxt is not None:
                self.at(nxt, tick, nxt)

        self.at(start, tick, start)
        return periodic

    async def run(self) -> None:
        """Call each timed call at its instant, for ever (cancel the task to stop)."""
        loop = asyncio.get_running_loop()
        while True:
            now = self.clock.now()
            while self._heap and (self._heap[0][2].cancelled or self._heap[0][0] <= now):
                _, _, handle = heapq.heappop(self._heap)
                if handle.cancelled:
                    self._cancelled = max(0, self._cancelled - 1)
                    continue
                handle.cancelled = True
                try:
                    handle.fn(*handle.args)
                except Exception:  # noqa: BLE001 - one broken job must not stop the others
                    log.exception("timer_failed", job=getattr(handle.fn, "__qualname__", repr(handle.fn)))
            self._alarm = alarm = loop.create_future()
            self._alarm_at = self._heap[0][0] if self._heap else None
            timer = self.clock.call_at(self._alarm_at, lambda: _ring(alarm)) if self._alarm_at is not None else None
            try:
                await alarm
            finally:
                if timer is not None:
                    timer.cancel()
                self._alarm = None
            await asyncio.sleep(0)  # let what the last calls started run before the next instant's calls


def _ring(alarm: asyncio.Future[None]) -> None:
    if not alarm.done():
        alarm.set_result(None)
