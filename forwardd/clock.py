"""The one clock. Everything that needs the time gets a ``Clock``; the core gets instants passed in.

``SystemClock`` is the wall clock (the only place it is read). ``VirtualClock`` is time the simulator
and the tests move: the daemon's whole engine runs on it unchanged, a day of it in seconds.

A driven virtual clock (``VirtualClock(start, driven=True)``) works like a discrete-event simulator:
``sleep`` and ``sleep_until`` wait for a timer, and ``run_until`` moves time to the next timer only once
every task on the loop is waiting (on the clock, a lock, a queue). While something waits on the outside
world (a thread's work, a subprocess, a socket: ``outside()``), time stands still, so what happens at
which virtual instant never depends on how fast the machine is. An undriven one (the default) is for
a lone task under test: sleeping on it simply moves it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
import weakref
from typing import Callable, Iterator, Protocol

UTC = dt.timezone.utc
_SETTLE_POLL_S = 0.0005  # how often a driven clock looks again while the outside world is being waited for


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_until(self, t: dt.datetime) -> None: ...

    def call_at(self, t: dt.datetime, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` on the running loop at ``t`` (at once when ``t`` has passed)."""
        ...

    def outside(self) -> contextlib.AbstractContextManager[None]:
        """Around a wait on the outside world (a thread, a subprocess, a socket): virtual time stands still
        meanwhile; the wall clock does not care."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, t: dt.datetime) -> None:
        await asyncio.sleep(max(0.0, (t - self.now()).total_seconds()))

    def call_at(self, t: dt.datetime, callback: Callable[[], None]) -> Timer:
        # the loop's own timer runs on the monotonic clock: a wall-clock step (NTP) between now and then
        # shifts it, so a caller that needs the instant checks ``now()`` when called back
        return asyncio.get_running_loop().call_later(max(0.0, (t - self.now()).total_seconds()), callback)

    def outside(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


# the driven virtual clock of each event loop, for the waits that do not know their clock (``aio.off_loop``)
_DRIVEN: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, VirtualClock] = weakref.WeakKeyDictionary()


def driven_clock() -> VirtualClock | None:
    """The driven virtual clock running this loop, if any."""
    try:
        return _DRIVEN.get(asyncio.get_running_loop())
    except RuntimeError:
        return None


def outside_world() -> contextlib.AbstractContextManager[None]:
    """A wait on the outside world (a subprocess, a socket) by code that does not know its clock: a driven
    virtual clock stands still meanwhile, as if the wait took no time (on any other clock: nothing)."""
    clock = driven_clock()
    return clock.outside() if clock is not None else contextlib.nullcontext()


class VirtualClock:
    """Time that moves only when told to (``set``, ``advance``), when slept on (undriven), or when every
    task waits for it (driven, inside ``run_until``)."""

    def __init__(self, start: dt.datetime, *, driven: bool = False) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock's time must be timezone-aware")
        self._now = start.astimezone(UTC)
        self.driven = driven
        self._timers: list[tuple[dt.datetime, int, _VirtualTimer]] = []
        self._order = itertools.count()
        self._outside = 0

    def now(self) -> dt.datetime:
        return self._now

    def set(self, t: dt.datetime) -> None:
        """Move to ``t`` (never backwards)."""
        self._now = max(self._now, t.astimezone(UTC))

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=max(0.0, seconds))

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + dt.timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, t: dt.datetime) -> None:
        if not self.driven:
            self.set(t)
            await asyncio.sleep(0)  # let other tasks run, as a real sleep would
            return
        if t <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_at(t, lambda: _settle_future(future))
        try:
            await future
        finally:
            timer.cancel()

    def call_at(self, t: dt.datetime, callback: Callable[[], None]) -> Timer:
        """A timer that ``run_until`` fires when virtual time reaches ``t`` (an undriven clock fires its
        timers only when told: ``fire_due``)."""
        timer = _VirtualTimer(callback)
        heapq.heappush(self._timers, (max(t.astimezone(UTC), self._now), next(self._order), timer))
        return timer

    @contextlib.contextmanager
    def outside(self) -> Iterator[None]:
        self._outside += 1
        try:
            yield
        finally:
            self._outside -= 1

    def next_timer(self) -> dt.datetime | None:
        """When the next timer fires, if there is one."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def fire_due(self) -> int:
        """Fire every timer due at the clock's time; returns how many fired."""
        fired = 0
        while self._timers and self._timers[0][0] <= self._now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback()
                fired += 1
        return fired

    async def run_until(self, end: dt.datetime, *, inclusive: bool = True) -> None:
        """Run the loop's tasks on virtual time until ``end``: settle (every task waits), wake the next
        sleepers, again, until the next timer lies past ``end`` (at or past it, when not ``inclusive``);
        then the clock stands at ``end``. Only for a driven clock."""
        if not self.driven:
            raise RuntimeError("run_until needs a driven clock: VirtualClock(start, driven=True)")
        _DRIVEN[asyncio.get_running_loop()] = self
        end = end.astimezone(UTC)
        while True:
            await self.settle()
            t = self.next_timer()
            if t is None or t > end or (t == end and not inclusive):
                self._now = max(self._now, end)
                return
            self._now = max(self._now, t)
            self.fire_due()

    async def settle(self) -> None:
        """Return once no task can run without time moving: none is ready, and nothing waits on the
        outside world."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0)
            if self._outside:
                await asyncio.sleep(_SETTLE_POLL_S)  # a real wait: a thread or a subprocess is working
                continue
            # asyncio keeps the callbacks ready to run in ``_ready`` (CPython's BaseEventLoop, since 3.4);
            # the only way to know that every other task is waiting, short of a loop of our own
            if getattr(loop, "_ready", None):
                continue
            return


def _settle_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _VirtualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def whole_seconds(t: dt.datetime) -> dt.datetime:
    return t.replace(microsecond=0)
