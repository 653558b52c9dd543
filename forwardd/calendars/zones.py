"""Which zones a feed's times are in.

- a TZID may name an IANA zone, a Windows zone ID ("GMT Standard Time", which icalendar maps through
  CLDR's table), a Windows display name ("(UTC-05:00) Eastern Time (US & Canada)", windows_zones.py),
  UTC, a globally unique TZID ending in an IANA name ("/mozilla.org/20070129_1/Europe/Paris"), or one
  of the feed's own VTIMEZONEs (text.isolate_custom_zones gives each a name of its own);
- floating times are read in the calendar's declared zone (X-WR-TIMEZONE, as Google, Apple and
  Outlook.com write it) when it names one, else in the configured zone. X-WR-TIMEZONE changes nothing
  else: a UTC time is that instant, and a series in UTC repeats at the same UTC time (RFC 5545; the
  x-wr-timezone package that recurring-ical-events' ``of()`` applies would move UTC series onto the
  declared zone's wall clock, so forwardd builds its CalendarQuery itself, occurrences.py);
- a TZID that names no known zone and no VTIMEZONE of the feed is read as floating, with a warning
  saying in which zone its times were read (series.py says how a series using one is read).
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from .windows_zones import display_name_zone

_KNOWN_ZONES = zoneinfo.available_timezones()


def zone_key(tzid: str) -> str | None:
    """The IANA name of the zone a TZID names: an IANA name, a Windows zone ID ("GMT Standard Time"), a
    Windows display name ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London", see windows_zones.py), UTC,
    or a globally unique TZID ending in an IANA name ("/mozilla.org/20070129_1/Europe/Paris"); None
    when it names none of these."""
    tzid = tzid.strip().strip('"').strip()
    if tzid in _KNOWN_ZONES:
        return tzid
    if tzid in WINDOWS_TO_OLSON:
        return WINDOWS_TO_OLSON[tzid]
    if tzid.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    if tzid.startswith("/"):
        parts = tzid.strip("/").split("/")
        return next(("/".join(parts[k:]) for k in range(1, len(parts)) if "/".join(parts[k:]) in _KNOWN_ZONES), None)
    return display_name_zone(tzid)


def known_zone(tzid: str) -> bool:
    """Whether a TZID names a zone without the feed's VTIMEZONEs (see zone_key)."""
    return zone_key(tzid) is not None


def floating_zone(name: str, cal: Any, tz: zoneinfo.ZoneInfo, warnings: list[str]) -> tuple[zoneinfo.ZoneInfo, bool]:
    """The zone floating times of ``cal`` are read in, and whether the calendar declared it: its
    X-WR-TIMEZONE (Google, Apple, Outlook.com) when that names a zone, else the configured one."""
    declared = cal.get("X-WR-TIMEZONE")
    if declared is None:
        return tz, False
    key = str(declared).strip()
    try:
        return zoneinfo.ZoneInfo(zone_key(key) or key), True
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError; "../x" a ValueError
        pass
    warnings.append(f"calendar {name!r}: X-WR-TIMEZONE {key!r} names no known time zone; floating times are "
                    f"read as {tz.key} wall time")
    return tz, False


def defined_zones(cal: Any) -> list[Any]:
    """The zones of the calendar's VTIMEZONEs, as icalendar resolves them."""
    zones = []
    for component in cal.walk("VTIMEZONE"):
        try:
            zones.append(component.to_tz())
        except Exception:  # a definition icalendar cannot turn into a zone: the others still count
            continue
    return zones


def zone_name(zone: Any, renamed: dict[str, str]) -> str:
    """A zone (or TZID) as a warning names it: by the name the feed gave it, before text.isolate_custom_zones
    renamed it (``renamed``: new name -> old)."""
    key = getattr(zone, "key", None) or str(zone)
    for new, old in renamed.items():
        if new in key:
            return old
    return key
