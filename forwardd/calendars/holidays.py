"""Built-in bank holidays (``builtin = "GB-ENG"``, ``GB-WLS``, ``GB-SCT``, ``GB-NIR``) from the ``holidays``
package, as occurrences like a feed's. Computed where feeds are read (the calendar worker), so that the
daemon never loads the package (it brings every country's calendars: some 17 MB)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from ..core.timeline import UTC, Event
from .expansion import Expansion

PREFIX = b"BUILTIN:"
REGIONS = {"GB-ENG": "ENG", "GB-WLS": "WLS", "GB-SCT": "SCT", "GB-NIR": "NIR"}


def builtin_bytes(region: str) -> bytes:
    """What a built-in calendar's "feed" is: its name, which the worker reads as one."""
    return PREFIX + region.encode() + b"\n"


def is_builtin(data: bytes) -> bool:
    return data.startswith(PREFIX)


def holidays_between(name: str, data: bytes, tz: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime
                     ) -> Expansion:
    """The region's bank holidays overlapping ``[start, end)``, each a whole day of ``tz``. Raises KeyError
    for an unknown region."""
    import holidays as holidays_lib

    region = data[len(PREFIX):].decode().strip()
    years = list(range(start.astimezone(tz).year, end.astimezone(tz).year + 1))
    days = holidays_lib.country_holidays("GB", subdiv=REGIONS[region], years=years)
    out = []
    for day, title in sorted(days.items()):
        a = dt.datetime.combine(day, dt.time(), tz).astimezone(UTC)
        b = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).astimezone(UTC)
        if b > start and a < end:
            out.append(Event(a, b, title, uid=f"{region}-{day}", calendar=name))
    return Expansion((start, end), out)
