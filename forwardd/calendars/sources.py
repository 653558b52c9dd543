"""Calendar sources: files, https feeds and built-in bank holidays, each with a last good copy. An edge.

A feed's bytes (``fetch``) are expanded, in a worker process with a deadline and bounds (``worker``,
``limits``), into occurrences over a window around the horizon; that *copy* is what the planner gets,
as plain events. A copy is kept in memory and in the state directory (``cache``), so a restart with
unchanged feeds expands nothing and a restart with the feed down still plans. A failure never replaces
the last good copy: it is reported (``SourceState.error``) and the old events keep serving. So does a
feed that suddenly has no events at all in the horizon, until its copy is older than ``max_age``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import httpx

from ..config import CalendarSettings, Config, FeedCredentials, calendar_credentials
from ..core.plan import CalendarEvents
from ..core.timeline import Finding, FindingKind
from ..errors import CalendarError, ConfigError
from ..logs import register_secret
from .cache import FeedCache, cache_version
from .expansion import Expansion
from .fetch import Fetched, download, read_file
from .holidays import builtin_bytes
from .limits import Limits
from .worker import Expander

__all__ = ["FeedCopy", "SourceState", "Sources", "cache_version"]
# Occurrences are kept for a window a little wider than the horizon, so that the horizon can move on
# by the hour for days before the feed must be expanded again.
KEEP_BEHIND = dt.timedelta(days=1)
KEEP_AHEAD = dt.timedelta(days=7)


def _findings(name: str, texts: list[str]) -> tuple[Finding, ...]:
    return tuple(Finding(FindingKind.CALENDAR, t, key=f"calendar:{name}:{hashlib.sha256(t.encode()).hexdigest()[:16]}",
                         calendar=name) for t in texts)


@dataclass
class FeedCopy:
    """A good copy of a feed: its occurrences over a window. The bytes stay on disk when there is a
    state directory (``data`` None), else in memory, for the next expansion."""

    name: str
    source: str
    digest: str
    expansion: Expansion
    data: bytes | None = None

    @functools.cached_property
    def events(self) -> CalendarEvents:
        e = self.expansion
        return CalendarEvents(self.name, f"{self.digest[:16]}@{e.window[0].isoformat()}", tuple(e.events),
                              _findings(self.name, [*e.warnings, *e.notes]))

    def covers(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.expansion.window[0] <= start and end <= self.expansion.window[1]

    def count_between(self, start: dt.datetime, end: dt.datetime) -> int:
        return len(self.events.between(start, end))


@dataclass
class SourceState:
    """What is known of one source: its last good copy and the last attempt's outcome."""

    name: str
    settings: CalendarSettings
    copy: FeedCopy | None = None
    good_at: dt.datetime | None = None  # when the last good copy was fetched (or last confirmed unchanged)
    checked_at: dt.datetime | None = None
    error: str | None = None
    digest: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    stat: tuple[int, int, int] | None = None  # a file's size, mtime and inode when last read

    @property
    def loaded(self) -> bool:
        return self.copy is not None

    @property
    def warnings(self) -> list[str]:
        if isinstance(self.copy, FeedCopy):
            return list(self.copy.expansion.warnings) + list(self.copy.expansion.notes)
        return []

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.good_at is None else now - self.good_at

    def stale(self, now: dt.datetime) -> bool:
        age = self.age(now)
        return age is not None and age > self.settings.max_age


def _source_id(cfg: Config, name: str) -> str:
    s = cfg.calendars[name]
    if s.builtin:
        return f"builtin:{s.builtin}"
    return str(s.source) if s.is_url else str(cfg.calendar_path(name))


class Sources:
    """All calendars of a config. ``await refresh(name, now)`` returns True when the events changed;
    ``await snapshot(start, end)`` gives the planner every calendar's events over a horizon."""

    def __init__(
        self, cfg: Config, state_dir: Path | None, expander: Expander,
        transport: httpx.AsyncBaseTransport | None = None, env: Mapping[str, str] | None = None,
    ) -> None:
        self.cfg = cfg
        self.env = env  # where a feed's password_env is looked up (default: the process's environment)
        self.tz = cfg.tz
        self.cache = FeedCache(state_dir / "calendars" if state_dir else None, cfg.tz)
        self.states = {name: SourceState(name, s) for name, s in cfg.calendars.items()}
        self.expander = expander
        self._transport = transport
        self._locks: dict[str, asyncio.Lock] = {}

    def __getitem__(self, name: str) -> SourceState:
        return self.states[name]

    def adopt(self, old: Sources) -> None:
        """Keep ``old``'s copies of calendars whose settings did not change (a reload)."""
        for name, st in old.states.items():
            if name in self.states and st.settings == self.states[name].settings:
                self.states[name] = st

    def limits(self, name: str) -> Limits:
        return Limits(max_occurrences=self.cfg.calendars[name].max_occurrences)

    def window_for(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        start = now.replace(minute=0, second=0, microsecond=0) - KEEP_BEHIND
        return start, start + KEEP_BEHIND + self.cfg.daemon.horizon + KEEP_AHEAD

    def horizon_for(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """What a remembered copy must cover to be of use now: this hour and the horizon after it."""
        start = now.replace(minute=0, second=0, microsecond=0)
        return start, start + self.cfg.daemon.horizon

    def due(self, now: dt.datetime) -> list[str]:
        return [n for n, st in self.states.items()
                if st.checked_at is None or now - st.checked_at >= st.settings.refresh]

    async def refresh_all(self, now: dt.datetime, names: list[str] | None = None) -> list[str]:
        """Refresh the named sources (default all) concurrently; returns the names whose events changed."""
        names = list(self.states) if names is None else names
        changed = await asyncio.gather(*(self.refresh(n, now) for n in names))
        return [n for n, c in zip(names, changed) if c]

    async def refresh(self, name: str, now: dt.datetime) -> bool:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            return await self._refresh(self.states[name], now)

    async def _refresh(self, st: SourceState, now: dt.datetime) -> bool:
        st.checked_at = now
        try:
            got = await self._fetch(st)
        except CalendarError as err:
            st.error = err.reason
            return await self._fall_back_to_cache(st, now)
        if got.data is None:  # not modified since the copy we hold
            st.error, st.good_at = None, now
            return False
        data = got.data
        digest = hashlib.sha256(data).hexdigest()
        if digest == st.digest and st.copy is not None:
            st.error, st.good_at, st.stat = None, now, got.stat
            st.etag, st.last_modified = got.etag, got.last_modified
            return False
        source = _source_id(self.cfg, st.name)
        window = self.window_for(now)
        copy = self._recall(st.name, source, digest, self.horizon_for(now), data)
        if copy is None:
            try:
                expansion = await self.expander.expand(st.name, data, self.tz, *window, self.limits(st.name))
            except CalendarError as err:
                st.error = err.reason
                return await self._fall_back_to_cache(st, now)
            copy = FeedCopy(st.name, source, digest, expansion, data)
        suspicious = self._suddenly_empty(st, copy, now)
        if suspicious:
            st.error = suspicious
            return False
        st.copy, st.digest, st.error, st.good_at, st.stat = copy, digest, None, now, got.stat
        st.etag, st.last_modified = got.etag, got.last_modified
        await self._keep(st, copy, data)
        return True

    async def _fetch(self, st: SourceState) -> Fetched:
        s = st.settings
        if s.builtin:  # read like a feed, by the worker: the daemon never loads the holidays package
            return Fetched(builtin_bytes(s.builtin))
        if not s.is_url:
            return await read_file(st.name, s, self.cfg.calendar_path(st.name), st.stat if st.copy else None)
        return await download(st.name, s, st.etag if st.copy else None, st.last_modified if st.copy else None,
                              self._transport, self._credentials(st.name) if s.private else None)

    def _credentials(self, name: str) -> FeedCredentials | None:
        """A private feed's credentials, read again at each fetch (a changed password file is used at the
        next refresh) and registered for redaction. Raises CalendarError naming the key and the reason."""
        try:
            auth = calendar_credentials(self.cfg, name, dict(self.env) if self.env is not None else None)
        except ConfigError as err:
            raise CalendarError(name, "; ".join(f"{key}: {reason}" for key, reason in err.problems)) from None
        for secret in auth.secrets if auth is not None else ():
            register_secret(secret.get_secret_value())
        return auth

    def _recall(self, name: str, source: str, digest: str, window: tuple[dt.datetime, dt.datetime],
                data: bytes | None) -> FeedCopy | None:
        expansion = self.cache.recall(name, source, digest)
        if expansion is None:
            return None
        copy = FeedCopy(name, source, digest, expansion, data)
        return copy if copy.covers(*window) else None

    async def _keep(self, st: SourceState, copy: FeedCopy, data: bytes | None) -> None:
        record = {"source": copy.source, "digest": copy.digest, "good_at": st.good_at.isoformat() if st.good_at
                  else None, "etag": st.etag, "last_modified": st.last_modified,
                  "expansion": copy.expansion.to_json()}
        if await self.cache.keep(st.name, record, data):
            copy.data = None  # on disk now: free the memory

    def _suddenly_empty(self, st: SourceState, new: FeedCopy, now: dt.datetime) -> str | None:
        """Why a new copy with no events in the horizon is not taken yet, or None to take it."""
        horizon = (now, now + self.cfg.daemon.horizon)
        old = st.copy
        if not isinstance(old, FeedCopy) or new.count_between(*horizon) > 0 or st.stale(now):
            return None
        had = old.count_between(*horizon) if old.covers(*horizon) else len(old.events.events)
        if had == 0:
            return None
        return (f"the feed suddenly has no events in the horizon (its last good copy has {had}); keeping that "
                f"copy until it is older than max_age ({st.settings.max_age})")

    async def snapshot(self, start: dt.datetime, end: dt.datetime) -> dict[str, CalendarEvents | None]:
        """Every calendar's events over ``[start, end)``: from the copies, expanding a feed again (from
        its bytes) where its copy's window does not cover the horizon. A calendar without a good copy
        maps to None."""
        out: dict[str, CalendarEvents | None] = {}
        for name, st in self.states.items():
            copy = st.copy
            if isinstance(copy, FeedCopy):
                if not copy.covers(start, end):
                    copy = await self._widen(st, copy, start, end)
                out[name] = copy.events
            else:
                out[name] = None
        return out

    async def _widen(self, st: SourceState, copy: FeedCopy, start: dt.datetime, end: dt.datetime) -> FeedCopy:
        lock = self._locks.setdefault(st.name, asyncio.Lock())
        async with lock:
            if st.copy is not copy:  # replaced meanwhile
                return st.copy if isinstance(st.copy, FeedCopy) else copy
            data = copy.data if copy.data is not None else await self.cache.cached_bytes(st.name)
            if data is None or hashlib.sha256(data).hexdigest() != copy.digest:
                return copy  # cannot widen: serve what there is (the horizon's far end may be thin)
            window = (start - KEEP_BEHIND, end + KEEP_AHEAD)
            try:
                expansion = await self.expander.expand(st.name, data, self.tz, *window, self.limits(st.name))
            except CalendarError as err:
                st.error = err.reason
                return copy
            wider = FeedCopy(st.name, copy.source, copy.digest, expansion, copy.data)
            st.copy = wider
            await self._keep(st, wider, None)
            return wider

    async def _fall_back_to_cache(self, st: SourceState, now: dt.datetime) -> bool:
        """After a failure: keep the in-memory copy, or take the cached one. True if events changed."""
        if st.copy is not None:
            return False
        if not self.cache.has_bytes(st.name):
            return False
        meta = self.cache.meta(st.name)
        source = _source_id(self.cfg, st.name)
        if meta.get("source") != source:
            return False  # made from another URL or file: never serve it for this one
        data = await self.cache.cached_bytes(st.name)
        if data is None:
            return False
        digest = hashlib.sha256(data).hexdigest()
        copy = self._recall(st.name, source, digest, self.horizon_for(now), None)
        if copy is None:
            try:
                expansion = await self.expander.expand(st.name, data, self.tz, *self.window_for(now),
                                                       self.limits(st.name))
            except CalendarError:
                return False
            copy = FeedCopy(st.name, source, digest, expansion, None)
        st.copy, st.digest, st.good_at = copy, digest, FeedCache.good_at(meta)
        st.etag, st.last_modified = meta.get("etag"), meta.get("last_modified")
        return True
