"""Calendar sources: files, https feeds and built-in bank holidays, each with a last good copy. An edge.

A feed is fetched with a conditional request (ETag / Last-Modified) and a timeout; parsing checks that
the body really is iCalendar (an HTML login page is named as such). A good copy is parsed once, kept in memory and written to ``<state>/calendars/`` so that a
restart with the feed down still plans. A failure never replaces the last good copy: it is reported
(``SourceState.error``) and the old events keep serving.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import holidays as holidays_lib
import httpx

from ..config import CalendarSettings, Config
from ..core.timeline import UTC, Event
from ..errors import CalendarError
from .parse import (
    REMEMBER_AHEAD,
    REMEMBER_BEHIND,
    ParsedCalendar,
    RememberedCalendar,
    parse_calendar,
    recall,
    remember,
)


class EventSource(Protocol):
    def events_between(self, start: dt.datetime, end: dt.datetime) -> tuple[list[Event], list[str]]: ...


@dataclass
class BuiltinHolidays:
    """Bank holidays from the ``holidays`` package: GB-ENG (England and Wales), GB-SCT, GB-NIR."""

    name: str
    region: str
    tz: ZoneInfo

    def events_between(self, start: dt.datetime, end: dt.datetime) -> tuple[list[Event], list[str]]:
        subdiv = {"GB-ENG": "ENG", "GB-WLS": "WLS", "GB-SCT": "SCT", "GB-NIR": "NIR"}[self.region]
        years = range(start.astimezone(self.tz).year, end.astimezone(self.tz).year + 1)
        days = holidays_lib.country_holidays("GB", subdiv=subdiv, years=list(years))
        out = []
        for day, title in sorted(days.items()):
            a = dt.datetime.combine(day, dt.time(), self.tz).astimezone(UTC)
            b = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.tz).astimezone(UTC)
            if b > start and a < end:
                out.append(Event(a, b, title, uid=f"{self.region}-{day}", calendar=self.name))
        return out, []


@dataclass
class SourceState:
    """What is known of one source: its last good copy and the last attempt's outcome."""

    name: str
    settings: CalendarSettings
    calendar: EventSource | None = None
    good_at: dt.datetime | None = None  # when the last good copy was fetched (or the file changed)
    checked_at: dt.datetime | None = None
    error: str | None = None
    digest: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def warnings(self) -> list[str]:
        return list(getattr(self.calendar, "warnings", []))

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.good_at is None else now - self.good_at

    def stale(self, now: dt.datetime) -> bool:
        age = self.age(now)
        return age is not None and age > self.settings.max_age


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class Sources:
    """All calendars of a config. ``refresh(name, now)`` returns True when the events changed."""

    def __init__(self, cfg: Config, state_dir: Path | None, transport: httpx.BaseTransport | None = None) -> None:
        self.cfg = cfg
        self.tz = cfg.tz
        self.cache_dir = state_dir / "calendars" if state_dir else None
        self.states = {name: SourceState(name, s) for name, s in cfg.calendars.items()}
        self._transport = transport

    def __getitem__(self, name: str) -> SourceState:
        return self.states[name]

    def refresh_all(self, now: dt.datetime) -> list[str]:
        """Refresh every source; returns the names whose events changed."""
        return [name for name in self.states if self.refresh(name, now)]

    def due(self, now: dt.datetime) -> list[str]:
        return [
            n
            for n, st in self.states.items()
            if st.checked_at is None or now - st.checked_at >= st.settings.refresh
        ]

    def refresh(self, name: str, now: dt.datetime) -> bool:
        st = self.states[name]
        st.checked_at = now
        s = st.settings
        if s.builtin:
            if st.calendar is None:
                st.calendar, st.good_at = BuiltinHolidays(name, s.builtin, self.tz), now
                return True
            st.good_at = now
            return False
        try:
            data, meta = self._read(st)
        except CalendarError as err:
            st.error = err.reason
            return self._fall_back_to_cache(st)
        if data is None:  # 304 Not Modified
            st.error, st.good_at = None, now
            return False
        digest = hashlib.sha256(data).hexdigest()
        if digest == st.digest:
            st.error, st.good_at = None, now
            st.etag, st.last_modified = meta.get("etag"), meta.get("last_modified")
            return False
        remembered = self._recall(name, data, digest) if st.calendar is None else None
        if remembered is not None:  # a restart, same bytes as last time: no need to parse
            st.calendar = remembered
        else:
            try:
                parsed = parse_calendar(name, data, self.tz)
            except CalendarError as err:
                st.error = err.reason
                return self._fall_back_to_cache(st)
            st.calendar = self._keep(st, data, now, parsed, digest)
        st.digest, st.error, st.good_at = digest, None, now
        st.etag, st.last_modified = meta.get("etag"), meta.get("last_modified")
        return True

    def _read(self, st: SourceState) -> tuple[bytes | None, dict[str, str | None]]:
        s = st.settings
        if not s.is_url:
            path = self.cfg.calendar_path(st.name)
            try:
                return path.read_bytes(), {}
            except OSError as err:
                raise CalendarError(st.name, f"cannot read {path}: {err.strerror}") from None
        headers = {"Accept": "text/calendar, */*;q=0.5", "User-Agent": "forwardd"}
        if st.calendar is not None and st.etag:
            headers["If-None-Match"] = st.etag
        if st.calendar is not None and st.last_modified:
            headers["If-Modified-Since"] = st.last_modified
        try:
            with httpx.Client(timeout=s.timeout.total_seconds(), transport=self._transport, follow_redirects=True) as c:
                resp = c.get(str(s.source), headers=headers)
        except httpx.TimeoutException:
            raise CalendarError(st.name, f"the feed did not answer within {s.timeout.total_seconds():g} s") from None
        except httpx.HTTPError as err:
            raise CalendarError(st.name, f"cannot fetch the feed: {type(err).__name__}: {err}") from None
        if resp.status_code == 304 and st.calendar is not None:
            return None, {}
        if resp.status_code != 200:
            raise CalendarError(st.name, f"the feed answered HTTP {resp.status_code}")
        return resp.content, {"etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified")}

    def _cache_paths(self, name: str) -> tuple[Path, Path] | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{_safe_name(name)}.ics", self.cache_dir / f"{_safe_name(name)}.json"

    def _keep(self, st: SourceState, data: bytes, now: dt.datetime, parsed: ParsedCalendar, digest: str) -> EventSource:
        """Keep a good copy: on disk (with its occurrences around now, so that a restart need not parse
        it) and in memory as those occurrences rather than the parsed tree. Without a state directory,
        the parsed calendar itself."""
        paths = self._cache_paths(st.name)
        if paths is None:
            return parsed
        try:
            saved = remember(parsed, digest, now - REMEMBER_BEHIND, now + self.cfg.daemon.horizon + REMEMBER_AHEAD)
        except CalendarError:
            return parsed
        ics, meta = paths
        record = {"good_at": now.isoformat(), "etag": st.etag, "last_modified": st.last_modified, "occurrences": saved}

        def write_meta(occurrences: dict[str, Any]) -> None:
            try:
                meta.write_text(json.dumps({**record, "occurrences": occurrences}))
            except OSError:
                pass  # the cache is a convenience; the in-memory copy still serves

        try:
            ics.parent.mkdir(parents=True, exist_ok=True)
            ics.with_suffix(".tmp").write_bytes(data)
            ics.with_suffix(".tmp").replace(ics)
        except OSError:
            pass
        write_meta(saved)
        return RememberedCalendar(st.name, data, self.tz, saved, on_remember=write_meta)

    def _meta(self, name: str) -> dict[str, Any]:
        """What was saved beside the cached copy (when it was good, its ETag, its occurrences), or {}."""
        paths = self._cache_paths(name)
        try:
            meta = json.loads(paths[1].read_text()) if paths is not None and paths[1].is_file() else {}
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def _recall(self, name: str, data: bytes, digest: str) -> EventSource | None:
        return recall(name, data, digest, self.tz, self._meta(name).get("occurrences"))

    def _fall_back_to_cache(self, st: SourceState) -> bool:
        """After a failure: keep the in-memory copy, or load the cached one. True if events changed."""
        if st.calendar is not None:
            return False
        paths = self._cache_paths(st.name)
        if paths is None or not paths[0].is_file():
            return False
        meta = self._meta(st.name)
        try:
            data = paths[0].read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            cal = self._recall(st.name, data, digest) or parse_calendar(st.name, data, self.tz)
        except (CalendarError, OSError):
            return False
        st.calendar, st.digest = cal, digest
        st.good_at = dt.datetime.fromisoformat(meta["good_at"]) if meta.get("good_at") else None
        st.etag, st.last_modified = meta.get("etag"), meta.get("last_modified")
        return True
