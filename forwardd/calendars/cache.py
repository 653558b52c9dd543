"""A feed's last good copy in the state directory (``<state>/calendars/``): its bytes, and its occurrences
keyed by the feed's source, its SHA-256, the time zone and the code's versions, so that a restart with
unchanged feeds expands nothing, a restart with the feed down still plans, and a changed URL never
serves the old one's copy. A cache that cannot be written costs only a re-expansion after a restart."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..aio import off_loop
from ..files import atomic_write, private_dir
from .expansion import EXPANSION, Expansion


@functools.lru_cache(maxsize=1)
def cache_version() -> str:
    from importlib.metadata import version

    from .. import __version__

    return (f"forwardd {__version__} expansion {EXPANSION}, icalendar {version('icalendar')}, "
            f"rie {version('recurring-ical-events')}")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class FeedCache:
    def __init__(self, folder: Path | None, tz: ZoneInfo) -> None:
        self.folder = folder
        self.tz = tz

    def paths(self, name: str) -> tuple[Path, Path] | None:
        if self.folder is None:
            return None
        return self.folder / f"{_safe_name(name)}.ics", self.folder / f"{_safe_name(name)}.json"

    async def keep(self, name: str, record: dict[str, Any], data: bytes | None) -> bool:
        """Write ``record`` (what ``recall`` reads) beside the bytes (when given). True when written."""
        paths = self.paths(name)
        if paths is None:
            return False
        ics, meta = paths
        record = {**record, "tz": self.tz.key, "version": cache_version()}

        def write() -> None:
            private_dir(ics.parent)
            if data is not None:
                atomic_write(ics, data)
            atomic_write(meta, json.dumps(record))

        try:
            await off_loop(write, timeout=30)
            return True
        except (OSError, TimeoutError):
            return False

    def meta(self, name: str) -> dict[str, Any]:
        paths = self.paths(name)
        try:
            meta = json.loads(paths[1].read_text()) if paths is not None and paths[1].is_file() else {}
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def has_bytes(self, name: str) -> bool:
        paths = self.paths(name)
        return paths is not None and paths[0].is_file()

    async def cached_bytes(self, name: str) -> bytes | None:
        paths = self.paths(name)
        if paths is None:
            return None
        try:
            return await off_loop(paths[0].read_bytes, timeout=30)
        except (OSError, TimeoutError):
            return None

    def recall(self, name: str, source: str, digest: str) -> Expansion | None:
        """The saved occurrences, if they were made from exactly these bytes, from this source, by this
        code; anything else (impossible contents too) is a miss."""
        meta = self.meta(name)
        try:
            if (meta.get("source"), meta.get("digest"), meta.get("tz"), meta.get("version")) != (
                    source, digest, self.tz.key, cache_version()):
                return None
            return Expansion.from_json(name, meta["expansion"])
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            return None

    @staticmethod
    def good_at(meta: dict[str, Any]) -> dt.datetime | None:
        try:
            good_at = dt.datetime.fromisoformat(meta["good_at"]) if meta.get("good_at") else None
        except (TypeError, ValueError):
            return None
        return good_at if good_at is not None and good_at.tzinfo is not None else None
