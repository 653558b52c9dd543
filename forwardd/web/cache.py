"""The bytes of pages already rendered from the current snapshot, so that a page is rendered once per
snapshot however many ask for it (and however many ask at once), and gzip for clients that take it.

Bounded: only the current snapshot's pages are kept (a new snapshot drops the others at once), at most
``max_entries`` of them and ``max_bytes`` in all (the least recently used go first), so memory stays
flat after a day of serving pages, whatever queries clients make up.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Hashable

from .snapshot import Snapshot

Response = tuple[str, str, bytes, dict[str, str]]  # status, content type, body, extra headers

GZIP_MIN = 1024  # smaller bodies are sent as they are
WAIT_S = 5.0  # how long a request waits for another that renders the same page, before rendering it itself


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip (``gzip``, ``x-gzip`` or ``*``, without ``q=0``)."""
    for part in (header or "").lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip()
        if q.startswith("q="):
            try:
                if float(q[2:]) <= 0:
                    return False
            except ValueError:
                return False
        return True
    return False


def gzipped(body: bytes) -> bytes:
    """``body`` compressed (the same bytes for the same body: no time stamp)."""
    return gzip.compress(body, compresslevel=6, mtime=0)


@dataclass
class Entry:
    """One rendered response, and its gzip once a client has asked for it."""

    response: Response
    _gz: bytes | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return len(self.response[2]) + len(self._gz or b"")

    def body(self, gz: bool) -> bytes:
        """The body, compressed when ``gz`` (computed once, then kept)."""
        if not gz:
            return self.response[2]
        if self._gz is None:
            self._gz = gzipped(self.response[2])
        return self._gz


class PageCache:
    """Responses rendered from one snapshot, by a key (a path and its query)."""

    def __init__(self, max_entries: int = 24, max_bytes: int = 24 * 1024 * 1024) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.renders = 0  # how many responses were made (not served from the cache)
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._making: dict[Hashable, threading.Event] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())

    def _current(self, snap: Snapshot) -> bool:
        """Whether ``snap`` is the snapshot the entries were made from (the same object, or the same
        published version: the engine's versions grow with each snapshot; 0 is never published)."""
        old = self._snap
        return old is not None and (snap is old or (snap.version != 0 and snap.version == old.version))

    def get(self, snap: Snapshot, key: Hashable, make: Callable[[], Response]) -> Entry:
        """The response for ``key`` made from ``snap``: kept from an earlier request, or made now by
        ``make`` (once, when several requests ask at the same moment) and kept."""
        while True:
            with self._lock:
                if not self._current(snap):
                    self._snap, self._entries, self._making = snap, OrderedDict(), {}
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    return entry
                making = self._making.get(key)
                if making is None:
                    making = self._making[key] = threading.Event()
                    break
            if not making.wait(WAIT_S):  # the first asker is slow: do not wait for ever
                return Entry(self._make(make))
        try:
            entry = Entry(self._make(make))
            with self._lock:
                if self._snap is snap or self._current(snap):
                    self._entries[key] = entry
                    self._trim()
            return entry
        finally:
            making.set()
            with self._lock:
                if self._making.get(key) is making:
                    del self._making[key]

    def body(self, entry: Entry, gz: bool) -> bytes:
        """``entry``'s body for a client that takes gzip (``gz``) or not; the gzip is kept with it."""
        with self._lock:
            had = entry._gz is not None
        out = entry.body(gz)
        if gz and not had:
            with self._lock:
                self._trim()
        return out

    def _make(self, make: Callable[[], Response]) -> Response:
        response = make()
        with self._lock:
            self.renders += 1
        return response

    def _trim(self) -> None:
        """Drop the least recently used entries beyond the bounds (the lock is held)."""
        total = sum(e.size for e in self._entries.values())
        while self._entries and (len(self._entries) > self.max_entries or total > self.max_bytes):
            _, dropped = self._entries.popitem(last=False)
            total -= dropped.size
