"""The writing half of a journal, shared by the SQLite journal and the cluster's (PostgreSQL) one.

Forwarding comes first: ``record`` never blocks and never raises. Rows go through a queue to a writer
thread that commits them in batches; while the store refuses them (a full disk, a database gone away)
they wait in a bounded backlog, ``problem`` says why (and ``on_trouble`` is told, once per new
reason, and with None when writing works again), and the writer tries again every ``retry_s``.
"""

from __future__ import annotations

import collections
import queue
import threading
from typing import Any, Callable

import structlog

log = structlog.get_logger("forwardd.journal")

BACKLOG = 20_000  # entries kept in memory while the store refuses them
BATCH = 500  # rows at most in one transaction

Row = tuple[Any, ...]


class JournalWriter:
    """Subclasses give ``where`` (for logs), ``retry_s``, ``failures`` (the errors that mean "the store
    refuses, try again later"), ``_write(batch)`` (one transaction), ``_describe(err)`` (the message for
    ``problem``) and ``_disconnect()`` (forget the connection after a failure, and at the end)."""

    where = "the journal"
    retry_s = 5.0
    failures: tuple[type[BaseException], ...] = ()

    def __init__(self, on_trouble: Callable[[str | None], None] | None, write: bool) -> None:
        self.on_trouble = on_trouble
        self.problem: str | None = None
        self.dropped = 0
        self._queue: queue.Queue[Row | None] = queue.Queue()
        self._backlog: collections.deque[Row] = collections.deque(maxlen=BACKLOG)
        self._pending = 0
        self._idle = threading.Condition()
        self._writer: threading.Thread | None = None
        if write:
            self._writer = threading.Thread(target=self._write_loop, name="journal-writer", daemon=True)
            self._writer.start()

    @property
    def healthy(self) -> bool:
        return self.problem is None

    def _enqueue(self, row: Row) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(row)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every entry recorded so far is written (or held back while the store refuses it)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _stop_writer(self, timeout: float) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout)
            self._writer = None

    # ------------------------------------------------------------------------------ for subclasses

    def _write(self, batch: list[Row]) -> None:
        raise NotImplementedError

    def _describe(self, err: BaseException) -> str:
        return f"cannot write {self.where}: {err}"

    def _disconnect(self) -> None:
        pass

    # ------------------------------------------------------------------------------------- thread

    def _take(self) -> tuple[list[Row], int, bool]:
        """What to write now: the backlog and what is queued (waiting for it, or ``retry_s`` when a backlog
        waits), how many of those were new, and whether ``close`` asked the writer to stop."""
        try:
            item: Row | None = self._queue.get(timeout=self.retry_s if self._backlog else None)
        except queue.Empty:
            item = ()  # nothing new: time to retry the backlog
        stop = item is None
        batch = list(self._backlog)
        taken = 0
        if item:
            batch.append(item)
            taken = 1
        while not stop and taken < BATCH:  # take what else is waiting, to write it in one transaction
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                stop = True
                break
            batch.append(more)
            taken += 1
        return batch, taken, stop

    def _write_loop(self) -> None:
        while True:
            batch, taken, stop = self._take()
            if batch:
                try:
                    self._write(batch)
                    self._backlog.clear()
                    if self.problem is not None:
                        self.problem = None
                        self._tell(None)
                except self.failures as err:
                    self._disconnect()
                    kept = batch[-BACKLOG:]
                    self.dropped += len(batch) - len(kept)
                    self._backlog.clear()
                    self._backlog.extend(kept)
                    message = self._describe(err)
                    if self.problem != message:
                        self.problem = message
                        self._tell(message)
            with self._idle:
                self._pending -= taken
                self._idle.notify_all()
            if stop:
                self._disconnect()
                return

    def _tell(self, message: str | None) -> None:
        if message is None:
            log.info("journal_recovered", where=self.where)
        else:
            log.error("journal_failing", where=self.where, error=message, held_back=len(self._backlog))
        if self.on_trouble is not None:
            try:
                self.on_trouble(message)
            except Exception:  # noqa: BLE001 - a broken alert path must not stop the writer
                log.exception("journal_trouble_callback_failed")
