"""One account's work queue: the passes its lines need, run by a pool as wide as the requests the account
may have in flight, most urgent first; its drift-check slots and its retries. Each account has its own
lane (and reconciler, budget and carrier), so a refused password or an outage on one never delays the
changes of another.

A line is never in two passes at once: a pass asked for while one runs follows it, and asks made while
one waits are merged into it (the most urgent kind, the longest send window), since a pass always makes
the line hold what should be in force when it runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import itertools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Coroutine

from .budget import DriftGrid, RetryQueue
from .timers import Handle, Timers

if TYPE_CHECKING:
    from .reconcile import Outcome
    from .services import AccountEdges


class PassKind(enum.IntEnum):
    """Why a pass runs; the lower, the sooner it goes when several wait."""

    EXACT = 0  # an exact hand-over at its second
    CHANGE = 1  # a planned change, or a change found due (a re-plan, start-up)
    RETRY = 2  # a line whose last pass did not confirm it
    CHECK = 3  # a drift check (a background read, its budget already taken)

    @property
    def label(self) -> str:
        return {PassKind.EXACT: "exact hand-over", PassKind.CHANGE: "change", PassKind.RETRY: "retry",
                PassKind.CHECK: "drift check"}[self]


@dataclass(frozen=True)
class PassRequest:
    kind: PassKind
    exact_at: dt.datetime | None = None  # an exact hand-over's boundary: sent then, without a read first
    keep_trying_until: dt.datetime | None = None
    unread: bool = False  # a line never confirmed: programmed without a read first
    start_up: bool = False  # the daemon's first pass over the line

    def merged(self, other: PassRequest) -> PassRequest:
        first, second = (self, other) if self.kind <= other.kind else (other, self)
        until = max((t for t in (self.keep_trying_until, other.keep_trying_until) if t is not None), default=None)
        return replace(first, exact_at=first.exact_at or second.exact_at, keep_trying_until=until,
                       unread=self.unread or other.unread, start_up=self.start_up or other.start_up)


Runner = Callable[["Lane", str, PassRequest], Coroutine[Any, Any, "Outcome | None"]]


class Lane:
    def __init__(self, edges: AccountEdges, numbers: list[str], anchor: dt.datetime, drift_every: dt.timedelta,
                 timers: Timers, run: Runner) -> None:
        self.edges = edges
        self.name = edges.name
        self.reconciler = edges.reconciler
        self.budget = edges.budget
        self.numbers = numbers
        self.grid = DriftGrid(numbers, drift_every, edges.settings.max_requests_per_minute, anchor)
        self.retries = RetryQueue()
        self.timers = timers
        self._run = run
        self._queue: asyncio.PriorityQueue[tuple[int, int, str]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self.pending: dict[str, tuple[int, PassRequest]] = {}  # line -> (its entry's order, what it asks)
        self.running: set[str] = set()
        self._again: dict[str, PassRequest] = {}
        self._checks: dict[str, tuple[dt.datetime, Handle]] = {}
        self._retry_timers: dict[str, Handle] = {}
        self._workers: list[asyncio.Task[Any]] = []
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.closed = False

    # ------------------------------------------------------------------------------------ passes

    def submit(self, number: str, request: PassRequest) -> None:
        """Ask for a pass on ``number`` (merged with one already waiting, or run after one running)."""
        if self.closed:
            return
        if number in self.running and number not in self.pending:
            self._again[number] = self._again[number].merged(request) if number in self._again else request
            return
        waiting = self.pending.get(number)
        if waiting is not None:
            merged = waiting[1].merged(request)
            if merged.kind == waiting[1].kind:
                self.pending[number] = (waiting[0], merged)
                return
            request = merged  # more urgent now: queued again at its new rank (the old entry is skipped)
        order = next(self._order)
        self.pending[number] = (order, request)
        self._queue.put_nowait((int(request.kind), order, number))

    def start(self, width: int) -> None:
        self._workers = [asyncio.get_running_loop().create_task(self._work(), name=f"lane-{self.name}-{i}")
                         for i in range(max(1, width))]

    async def _work(self) -> None:
        while True:
            _, order, number = await self._queue.get()
            entry = self.pending.get(number)
            if entry is None or entry[0] != order:
                continue  # merged into a later entry
            if number in self.running:
                del self.pending[number]
                self._again[number] = self._again[number].merged(entry[1]) if number in self._again else entry[1]
                continue
            del self.pending[number]
            self.running.add(number)
            task: asyncio.Task[Outcome | None] = asyncio.get_running_loop().create_task(
                self._run(self, number, entry[1]))
            self.in_flight.add(task)
            try:
                await asyncio.shield(task)  # (a worker cancelled at shutdown leaves the pass to be waited for)
            except Exception:  # noqa: BLE001 - a pass never raises by design; if one does, the lane goes on
                pass
            finally:
                self.running.discard(number)
                if task.done():
                    self.in_flight.discard(task)
                else:
                    task.add_done_callback(self.in_flight.discard)
                again = self._again.pop(number, None)
                if again is not None:
                    self.submit(number, again)

    def busy(self) -> bool:
        return bool(self.pending or self.running)

    # ----------------------------------------------------------------------------- drift checks

    def schedule_check(self, number: str, now: dt.datetime, on_due: Callable[[Lane, str], None],
                       not_before: dt.datetime | None = None) -> None:
        """(Re)schedule the line's next drift check: its first slot after its last read (and not before
        ``not_before``: a slot that has just come, and was put off, comes again no sooner)."""
        due = self.grid.next_check(number, self.reconciler.read_at.get(number), now)
        if not_before is not None and due < not_before:
            due = not_before
        old = self._checks.get(number)
        if old is not None:
            if old[0] == due:
                return
            self.timers.cancel(old[1])
        self._checks[number] = (due, self.timers.at(due, on_due, self, number))

    def check_at(self, number: str) -> dt.datetime | None:
        """When the line's next drift check is due (None when none is scheduled)."""
        entry = self._checks.get(number)
        return entry[0] if entry is not None else None

    def check_taken(self, number: str) -> None:
        self._checks.pop(number, None)

    def defer_check(self, number: str, until: dt.datetime, on_due: Callable[[Lane, str], None]) -> None:
        """The budget's turn for this check is later (aql asked us to slow down): wait for it."""
        self._checks[number] = (until, self.timers.at(until, on_due, self, number))

    # ---------------------------------------------------------------------------------- retries

    def retry_later(self, number: str, now: dt.datetime, on_due: Callable[[Lane, str], None],
                    at_least_s: float = 0.0) -> dt.datetime:
        due = self.retries.failed(number, now, at_least_s)
        self.timers.cancel(self._retry_timers.get(number))
        self._retry_timers[number] = self.timers.at(due, on_due, self, number)
        return due

    def confirmed(self, number: str) -> None:
        self.retries.confirmed(number)
        self.timers.cancel(self._retry_timers.pop(number, None))

    # ------------------------------------------------------------------------------------ closing

    def close(self) -> list[asyncio.Task[Any]]:
        """Take no more work; drop the timers; returns the passes still running (to wait for)."""
        self.closed = True
        for _, handle in self._checks.values():
            self.timers.cancel(handle)
        for handle in self._retry_timers.values():
            self.timers.cancel(handle)
        self._checks.clear()
        self._retry_timers.clear()
        self.pending.clear()
        self._again.clear()
        return [t for t in self.in_flight if not t.done()]

    def cancel(self) -> None:
        """Stop at once: the workers and every pass in flight (a crash, or a shutdown past its grace)."""
        for task in [*self._workers, *self.in_flight]:
            task.cancel()
