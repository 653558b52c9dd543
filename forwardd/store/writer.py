"""The writing half of a journal, shared by the SQLite journal and the cluster's (PostgreSQL) one.

Forwarding comes first: ``record`` never blocks and never raises. Rows go through a queue to a writer
thread that commits them in batches; while the store refuses them (a full disk, a database gone away)
they wait in a bounded backlog, ``problem`` says why (and ``on_trouble`` is told, once per new
reason, and with None when writing works again), and the writer tries again every ``retry_s``.

Both backends store what ``record`` makes of an entry here, so that they keep the same text
(``text.clean_text``, ``text.detail_json``). An entry that cannot be made at all (a kind that is not
text, a time that is not a datetime) is dropped and logged; a row the store refuses for what it holds
is dropped alone, and logged, and the writer goes on.
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import queue
import threading
from typing import Any, Callable

import structlog

from .text import clean_text, detail_json

log = structlog.get_logger("forwardd.journal")

BACKLOG = 20_000  # entries kept in memory while the store refuses them
BATCH = 500  # rows at most in one transaction
Row = tuple[Any, ...]


class JournalWriter:
    """Subclasses give ``where`` (for logs), ``retry_s``, ``failures`` (the errors that mean "the store
    refuses, try again later"), ``refused`` (those among them that mean "the store refuses these rows
    for what they hold"), ``_row(...)`` (an entry as the store's row), ``_write(batch)`` (one
    transaction), ``_describe(err)`` (the message for ``problem``) and ``_disconnect()`` (forget the
    connection after a failure, and at the end)."""

    where = "the journal"
    retry_s = 5.0
    failures: tuple[type[BaseException], ...] = ()
    refused: tuple[type[BaseException], ...] = ()

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
        """Whether writing works (``problem`` is None)."""
        return self.problem is None

    def record(
        self, kind: str, at: dt.datetime, voipnumber: str | None = None, ok: bool | None = None, **detail: Any
    ) -> None:
        """Queue an entry for the writer: ``kind`` (an ``EntryKind`` or its text), when it happened, the
        line it is about, whether it went well, and its detail. Returns at once; never raises (an entry that
        cannot be made is dropped and logged)."""
        try:
            if not isinstance(kind, str):
                raise TypeError(f"the kind is {type(kind).__name__}, not text")
            row = self._row(clean_text(kind.value if isinstance(kind, enum.Enum) else kind),
                            at.astimezone(dt.timezone.utc), None if voipnumber is None else clean_text(str(voipnumber)),
                            None if ok is None else bool(ok), detail_json(detail))
        except Exception as err:  # noqa: BLE001 - forwarding comes first: a bad entry is lost, not raised
            self._drop(kind, voipnumber, f"cannot make a journal entry of it: {type(err).__name__}: {err}")
            return
        with self._idle:
            self._pending += 1
        self._queue.put(row)

    def _drop(self, kind: object, voipnumber: object, why: str) -> None:
        with self._idle:
            self.dropped += 1
        log.error("journal_entry_refused", where=self.where, kind=str(kind)[:40], voipnumber=str(voipnumber)[:40],
                  error=why)

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

    def _row(self, kind: str, at: dt.datetime, voipnumber: str | None, ok: bool | None, detail: str) -> Row:
        """The store's row for an entry (``at`` in UTC, ``detail`` JSON text); kind and number at 1 and 2."""
        raise NotImplementedError

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

    def _commit(self, batch: list[Row]) -> None:
        """Write ``batch`` in one transaction, emptying it. When the store refuses it for what it holds
        (``refused``, or an error nobody expected), row by row, dropping (and logging) each row refused.
        Raises ``failures`` (the store refuses everything now), with the rows not yet written left in
        ``batch``."""
        try:
            self._write(batch)
            batch.clear()
            return
        except self.refused:
            pass
        except self.failures:
            raise
        except Exception:  # noqa: BLE001 - the writer must never die: find the row, keep the others
            log.exception("journal_batch_refused", where=self.where, rows=len(batch))
        while batch:
            try:
                self._write(batch[:1])
            except self.refused as err:
                self._drop(batch[0][1], batch[0][2], self._describe(err))
            except self.failures:
                raise
            except Exception as err:  # noqa: BLE001 - as above
                self._drop(batch[0][1], batch[0][2], f"{type(err).__name__}: {err}")
            del batch[0]

    def _write_loop(self) -> None:
        while True:
            batch, taken, stop = self._take()
            if batch:
                try:
                    self._commit(batch)
                    self._backlog.clear()
                    if self.problem is not None:
                        self.problem = None
                        self._tell(None)
                except self.failures as err:
                    self._disconnect()
                    kept = batch[-BACKLOG:]
                    with self._idle:
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


def entries_query(columns: str, table: str, mark: str, voipnumber: str | None, since: object | None,
                  kind: str | None, limit: int | None, derived: str = "") -> tuple[str, list[Any]]:
    """The one query both journals answer ``entries`` with, in either dialect (``mark``: ``?`` or ``%s``;
    ``since`` as the database takes it; ``derived``: what a subquery must be called): entries oldest first,
    by time then as written, the newest ``limit`` when given and none for a limit below 1."""
    sql, args = f"SELECT {columns} FROM {table} WHERE 1=1", []
    for column, value in (("voipnumber", voipnumber), ("at", since), ("kind", kind)):
        if value:
            sql += f" AND {column} {'>=' if column == 'at' else '='} {mark}"
            args.append(str(getattr(value, "value", value)) if column == "kind" else value)
    if limit is not None:
        sql = f"SELECT * FROM ({sql} ORDER BY at DESC, id DESC LIMIT {max(0, int(limit))}){derived}"
    return sql + " ORDER BY at, id", args
