"""Windows time zones named by their display name, as Outlook and some Exchange exports write them in
TZID parameters and VTIMEZONE TZIDs: ``(UTC-05:00) Eastern Time (US & Canada)``.

Where this table comes from: the ``Display`` value of each zone under the Windows registry key
``HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Time Zones`` (what ``tzutil /l`` prints), in English,
on Windows 10 and 11, plus the few older wordings that exports from earlier Windows still carry. It maps
each display name to the zone's Windows ID (the registry key, ``Eastern Standard Time``); the ID goes to
an IANA zone through CLDR's windowsZones table, which icalendar ships as ``WINDOWS_TO_OLSON``. No package
forwardd uses ships the display names (icalendar 7.3, tzdata, and the PyPI packages that map Windows
zones — tzlocal's ``windows_tz``, exchangelib's ``winzone`` — hold the IDs only), so they are written
here, and ``tests/test_calendars_zones.py`` checks that each one reaches an IANA zone.

A display name is matched on its place part (after the offset in parentheses), so the offset Windows
shows (``UTC`` or the older ``GMT``, and offsets that changed, as Amman's did) does not matter, nor do
case, spacing, or writing ``&`` as ``and``.
"""

from __future__ import annotations

import re

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

# place part of the display name -> Windows zone ID
_DISPLAY_TO_WINDOWS = {
    "International Date Line West": "Dateline Standard Time",
    "Coordinated Universal Time-11": "UTC-11",
    "Aleutian Islands": "Aleutian Standard Time",
    "Hawaii": "Hawaiian Standard Time",
    "Marquesas Islands": "Marquesas Standard Time",
    "Alaska": "Alaskan Standard Time",
    "Coordinated Universal Time-09": "UTC-09",
    "Baja California": "Pacific Standard Time (Mexico)",
    "Coordinated Universal Time-08": "UTC-08",
    "Pacific Time (US & Canada)": "Pacific Standard Time",
    "Arizona": "US Mountain Standard Time",
    "La Paz, Mazatlan": "Mountain Standard Time (Mexico)",
    "Chihuahua, La Paz, Mazatlan": "Mountain Standard Time (Mexico)",
    "Mountain Time (US & Canada)": "Mountain Standard Time",
    "Yukon": "Yukon Standard Time",
    "Central America": "Central America Standard Time",
    "Central Time (US & Canada)": "Central Standard Time",
    "Easter Island": "Easter Island Standard Time",
    "Guadalajara, Mexico City, Monterrey": "Central Standard Time (Mexico)",
    "Saskatchewan": "Canada Central Standard Time",
    "Bogota, Lima, Quito, Rio Branco": "SA Pacific Standard Time",
    "Bogota, Lima, Quito": "SA Pacific Standard Time",
    "Chetumal": "Eastern Standard Time (Mexico)",
    "Eastern Time (US & Canada)": "Eastern Standard Time",
    "Haiti": "Haiti Standard Time",
    "Havana": "Cuba Standard Time",
    "Indiana (East)": "US Eastern Standard Time",
    "Turks and Caicos": "Turks And Caicos Standard Time",
    "Asuncion": "Paraguay Standard Time",
    "Atlantic Time (Canada)": "Atlantic Standard Time",
    "Caracas": "Venezuela Standard Time",
    "Cuiaba": "Central Brazilian Standard Time",
    "Georgetown, La Paz, Manaus, San Juan": "SA Western Standard Time",
    "Santiago": "Pacific SA Standard Time",
    "Newfoundland": "Newfoundland Standard Time",
    "Araguaina": "Tocantins Standard Time",
    "Brasilia": "E. South America Standard Time",
    "Cayenne, Fortaleza": "SA Eastern Standard Time",
    "City of Buenos Aires": "Argentina Standard Time",
    "Buenos Aires": "Argentina Standard Time",
    "Greenland": "Greenland Standard Time",
    "Montevideo": "Montevideo Standard Time",
    "Punta Arenas": "Magallanes Standard Time",
    "Saint Pierre and Miquelon": "Saint Pierre Standard Time",
    "Salvador": "Bahia Standard Time",
    "Coordinated Universal Time-02": "UTC-02",
    "Azores": "Azores Standard Time",
    "Cabo Verde Is.": "Cape Verde Standard Time",
    "Cape Verde Is.": "Cape Verde Standard Time",
    "Coordinated Universal Time": "UTC",
    "Dublin, Edinburgh, Lisbon, London": "GMT Standard Time",
    "Greenwich Mean Time : Dublin, Edinburgh, Lisbon, London": "GMT Standard Time",
    "Monrovia, Reykjavik": "Greenwich Standard Time",
    "Sao Tome": "Sao Tome Standard Time",
    "Casablanca": "Morocco Standard Time",
    "Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna": "W. Europe Standard Time",
    "Belgrade, Bratislava, Budapest, Ljubljana, Prague": "Central Europe Standard Time",
    "Brussels, Copenhagen, Madrid, Paris": "Romance Standard Time",
    "Sarajevo, Skopje, Warsaw, Zagreb": "Central European Standard Time",
    "West Central Africa": "W. Central Africa Standard Time",
    "Amman": "Jordan Standard Time",
    "Athens, Bucharest": "GTB Standard Time",
    "Athens, Bucharest, Istanbul": "GTB Standard Time",
    "Beirut": "Middle East Standard Time",
    "Cairo": "Egypt Standard Time",
    "Chisinau": "E. Europe Standard Time",
    "Damascus": "Syria Standard Time",
    "Gaza, Hebron": "West Bank Standard Time",
    "Harare, Pretoria": "South Africa Standard Time",
    "Helsinki, Kyiv, Riga, Sofia, Tallinn, Vilnius": "FLE Standard Time",
    "Helsinki, Kiev, Riga, Sofia, Tallinn, Vilnius": "FLE Standard Time",
    "Jerusalem": "Israel Standard Time",
    "Juba": "South Sudan Standard Time",
    "Kaliningrad": "Kaliningrad Standard Time",
    "Khartoum": "Sudan Standard Time",
    "Tripoli": "Libya Standard Time",
    "Windhoek": "Namibia Standard Time",
    "Baghdad": "Arabic Standard Time",
    "Istanbul": "Turkey Standard Time",
    "Kuwait, Riyadh": "Arab Standard Time",
    "Minsk": "Belarus Standard Time",
    "Moscow, St. Petersburg": "Russian Standard Time",
    "Moscow, St. Petersburg, Volgograd": "Russian Standard Time",
    "Nairobi": "E. Africa Standard Time",
    "Volgograd": "Volgograd Standard Time",
    "Tehran": "Iran Standard Time",
    "Abu Dhabi, Muscat": "Arabian Standard Time",
    "Astrakhan, Ulyanovsk": "Astrakhan Standard Time",
    "Baku": "Azerbaijan Standard Time",
    "Izhevsk, Samara": "Russia Time Zone 3",
    "Port Louis": "Mauritius Standard Time",
    "Saratov": "Saratov Standard Time",
    "Tbilisi": "Georgian Standard Time",
    "Yerevan": "Caucasus Standard Time",
    "Kabul": "Afghanistan Standard Time",
    "Ashgabat, Tashkent": "West Asia Standard Time",
    "Ekaterinburg": "Ekaterinburg Standard Time",
    "Islamabad, Karachi": "Pakistan Standard Time",
    "Qyzylorda": "Qyzylorda Standard Time",
    "Chennai, Kolkata, Mumbai, New Delhi": "India Standard Time",
    "Sri Jayawardenepura": "Sri Lanka Standard Time",
    "Kathmandu": "Nepal Standard Time",
    "Astana": "Central Asia Standard Time",
    "Dhaka": "Bangladesh Standard Time",
    "Omsk": "Omsk Standard Time",
    "Yangon (Rangoon)": "Myanmar Standard Time",
    "Bangkok, Hanoi, Jakarta": "SE Asia Standard Time",
    "Barnaul, Gorno-Altaysk": "Altai Standard Time",
    "Hovd": "W. Mongolia Standard Time",
    "Krasnoyarsk": "North Asia Standard Time",
    "Novosibirsk": "N. Central Asia Standard Time",
    "Tomsk": "Tomsk Standard Time",
    "Beijing, Chongqing, Hong Kong, Urumqi": "China Standard Time",
    "Irkutsk": "North Asia East Standard Time",
    "Kuala Lumpur, Singapore": "Singapore Standard Time",
    "Perth": "W. Australia Standard Time",
    "Taipei": "Taipei Standard Time",
    "Ulaanbaatar": "Ulaanbaatar Standard Time",
    "Eucla": "Aus Central W. Standard Time",
    "Chita": "Transbaikal Standard Time",
    "Osaka, Sapporo, Tokyo": "Tokyo Standard Time",
    "Pyongyang": "North Korea Standard Time",
    "Seoul": "Korea Standard Time",
    "Yakutsk": "Yakutsk Standard Time",
    "Adelaide": "Cen. Australia Standard Time",
    "Darwin": "AUS Central Standard Time",
    "Brisbane": "E. Australia Standard Time",
    "Canberra, Melbourne, Sydney": "AUS Eastern Standard Time",
    "Guam, Port Moresby": "West Pacific Standard Time",
    "Hobart": "Tasmania Standard Time",
    "Vladivostok": "Vladivostok Standard Time",
    "Lord Howe Island": "Lord Howe Standard Time",
    "Bougainville Island": "Bougainville Standard Time",
    "Chokurdakh": "Russia Time Zone 10",
    "Magadan": "Magadan Standard Time",
    "Norfolk Island": "Norfolk Standard Time",
    "Sakhalin": "Sakhalin Standard Time",
    "Solomon Is., New Caledonia": "Central Pacific Standard Time",
    "Anadyr, Petropavlovsk-Kamchatsky": "Russia Time Zone 11",
    "Auckland, Wellington": "New Zealand Standard Time",
    "Coordinated Universal Time+12": "UTC+12",
    "Fiji": "Fiji Standard Time",
    "Chatham Islands": "Chatham Islands Standard Time",
    "Coordinated Universal Time+13": "UTC+13",
    "Nuku'alofa": "Tonga Standard Time",
    "Samoa": "Samoa Standard Time",
    "Kiritimati Island": "Line Islands Standard Time",
}

# "(UTC-05:00) ", "(GMT+01:00) ", "(UTC) ": the offset a display name begins with
_OFFSET = re.compile(r"^\(\s*(?:UTC|GMT)\s*(?:[+-]\s*\d{1,2}(?::?\d{2})?)?\s*\)\s*", re.IGNORECASE)


def _key(place: str) -> str:
    return " ".join(place.replace("&", " and ").lower().split())


_BY_PLACE = {_key(place): windows for place, windows in _DISPLAY_TO_WINDOWS.items()}


def display_name_zone(tzid: str) -> str | None:
    """The IANA zone a Windows display name stands for (``(UTC-05:00) Eastern Time (US and Canada)`` ->
    ``America/New_York``), or None when ``tzid`` is not one."""
    offset = _OFFSET.match(tzid.strip())
    if offset is None:
        return None
    windows = _BY_PLACE.get(_key(tzid.strip()[offset.end():]))
    return WINDOWS_TO_OLSON.get(windows) if windows else None


def windows_display_names() -> dict[str, str]:
    """Every place part this module knows, with its Windows zone ID (for tests and documentation)."""
    return dict(_DISPLAY_TO_WINDOWS)
