"""The text of a feed, repaired before icalendar reads it: logical lines, parameters, zone names.

- lines are unfolded (RFC 5545 3.1), each with the number of its first physical line for warnings;
- a custom VTIMEZONE ("Customized Time Zone") is renamed per feed and definition before parsing,
  because icalendar caches zones by TZID for the whole process and two feeds would collide;
- a Windows display name (``(UTC-05:00) Eastern Time (US & Canada)``, in a TZID parameter or a
  VTIMEZONE, quoted or not) becomes the IANA zone it names, as Windows zone IDs are;
- a date with a TZID (RFC 5545 3.2.19: a TZID is not applied to a DATE; Radicale writes
  ``DTSTART;TZID=Europe/Paris;VALUE=DATE``, old Google exports ``DTSTART;TZID=America/Los_Angeles:20041225``)
  loses the TZID, which is kept aside for a warning (validity.py): all-day values cover whole local days
  of the configured zone.
"""

from __future__ import annotations

import hashlib
import re

from .windows_zones import display_name_zone
from .zones import known_zone

_LINE_BREAK = re.compile(r"\r?\n")
_TZID_IN_LINE = re.compile(r";\s*TZID\s*=", re.IGNORECASE)
_SAFE_TZID = re.compile(r"[^A-Za-z0-9+_./-]+")
_UNQUOTED_OFFSET_TZID = re.compile(r";\s*TZID\s*=\s*\(", re.IGNORECASE)
_DATES = re.compile(r"\s*\d{8}\s*(?:,\s*\d{8}\s*)*")
# the properties whose values may be dates
DATE_PROPS = frozenset({"DTSTART", "DTEND", "DUE", "EXDATE", "RDATE", "RECURRENCE-ID"})
DATE_TZID = "X-FORWARDD-DATE-TZID"


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Unfold the text (RFC 5545 3.1): each content line with the number of its first physical line."""
    out: list[tuple[int, str]] = []
    parts: list[str] = []  # joined once: an attachment folded over thousands of lines stays linear
    first = 0
    for number, line in enumerate(_LINE_BREAK.split(text), 1):
        if line[:1] in (" ", "\t") and parts:
            parts.append(line[1:])
            continue
        if parts:
            out.append((first, "".join(parts)))
        parts, first = [line], number
    if parts:
        out.append((first, "".join(parts)))
    return out


def tag(line: str) -> str:
    """A short line upper-cased and stripped (``BEGIN:VEVENT``), to compare; '' for a long one."""
    return line.strip().upper() if len(line) < 80 else ""


def split_line(line: str) -> tuple[str, str]:
    """A content line as (name and parameters, value): split at the first colon outside quotes."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            return line[:i], line[i + 1:]
    return line, ""


def split_params(head: str) -> list[str]:
    """``NAME;P1=V1;P2="V;2"`` -> ``["NAME", "P1=V1", 'P2="V;2"']`` (semicolons inside quotes stay)."""
    parts, quoted, last = [], False, 0
    for i, ch in enumerate(head):
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            parts.append(head[last:i])
            last = i + 1
    parts.append(head[last:])
    return parts


def text_value(value: str) -> str:
    """A TEXT value unescaped (RFC 5545 3.3.11): Exchange writes ``Bangkok\\, Hanoi`` in a TZID."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def param_value(value: str) -> str:
    """A parameter value unquoted and decoded (RFC 6868: ``^'`` is a quote, ``^n`` a newline)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return re.sub(r"\^([\^'nN])", lambda m: {"^": "^", "'": '"'}.get(m.group(1), "\n"), value)


def isolate_custom_zones(lines: list[tuple[int, str]]) -> tuple[list[tuple[int, str]], dict[str, str]]:
    """Rename each non-standard VTIMEZONE's TZID to one unique to its definition, in the VTIMEZONE and in
    every TZID parameter that names it; return the lines and the original name of each new one. A
    Windows display name, in a VTIMEZONE or a parameter, becomes the IANA zone it stands for, as the
    Windows zone IDs do (icalendar maps those itself): the tz database knows the zone's history, where
    an exporter's VTIMEZONE gives only this year's rules.

    The TZID is TEXT in a VTIMEZONE (Exchange escapes its commas: ``Bangkok\\, Hanoi``) but a parameter,
    perhaps quoted, in an event (``TZID="Bangkok, Hanoi"``), so both are compared decoded; and some
    exporters write ``TZID: 1`` and ``TZID= 1``, which the parser trims on one side only, so surrounding
    whitespace does not count either.
    """
    renames: dict[str, str] = {}
    out = list(lines)
    start = None
    for i, (_, line) in enumerate(out):
        key = tag(line)
        if key == "BEGIN:VTIMEZONE":
            start = i
        elif key == "END:VTIMEZONE" and start is not None:
            block = [text for _, text in out[start:i + 1]]
            for j in range(start + 1, i):
                head, value = split_line(out[j][1])
                if split_params(head)[0].strip().upper() == "TZID":
                    tzid = text_value(value).strip().strip('"').strip()  # some write TZID:"name"
                    display = display_name_zone(tzid)
                    if display is not None:
                        renames[tzid] = display
                        out[j] = (out[j][0], f"TZID:{display}")
                    elif not known_zone(tzid):
                        digest = hashlib.sha256("\n".join(block).encode()).hexdigest()[:10]
                        renames[tzid] = f"forwardd-{digest}/{_SAFE_TZID.sub('_', tzid)[:40]}"
                        out[j] = (out[j][0], f"TZID:{renames[tzid]}")
                    break
            start = None
    for i, (number, line) in enumerate(out):
        if not _TZID_IN_LINE.search(line) or not (renames or "(" in line):
            continue
        head, value = split_line(line)
        parts = split_params(head)
        changed = False
        for k, part in enumerate(parts[1:], 1):
            pname, eq, pvalue = part.partition("=")
            if not eq or pname.strip().upper() != "TZID":
                continue
            old = param_value(pvalue)
            new = renames.get(old.strip()) or display_name_zone(old)
            if new is not None:
                parts[k], changed = f'{pname}="{new}"', True
        if changed:
            out[i] = (number, ";".join(parts) + ":" + value)
    return out, {new: old for old, new in renames.items() if new.startswith("forwardd-")}


def quote_display_names(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Quote an unquoted TZID parameter that begins with an offset in parentheses, as some exporters write
    a Windows display name (``DTSTART;TZID=(UTC-05:00) Eastern Time (US & Canada):20260309T090000``): its
    colon would otherwise end the parameters. The value of such a line is what follows its last colon
    (a date, date-time or period has none)."""
    out = lines
    for i, (number, line) in enumerate(lines):
        found = _UNQUOTED_OFFSET_TZID.search(line)
        if found is None or ":" not in line[found.end():]:
            continue
        head, value = line[:line.rindex(":")], line[line.rindex(":") + 1:]
        start = found.end() - 1  # the "("
        stop = head.find(";", start)
        stop = len(head) if stop < 0 else stop
        if out is lines:
            out = list(lines)
        out[i] = (number, f'{head[:start]}"{head[start:stop].strip()}"{head[stop:]}:{value}')
    return out


def dates_without_zone(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Take the TZID off each date value (``DTSTART;TZID=Europe/Paris;VALUE=DATE:20250716``, or Google's
    old ``DTSTART;TZID=America/Los_Angeles:20041225``): RFC 5545 3.2.19 says a TZID is not applied to a
    DATE, and a date is a whole day of the configured zone. icalendar would read it as midnight in that
    zone. The TZID is kept in an ``X-FORWARDD-DATE-TZID`` parameter, for a warning to name it
    (_date_zone_warnings) and for the zones an all-day series' UTC values may be written in."""
    out = lines
    for i, (number, line) in enumerate(lines):
        if not _TZID_IN_LINE.search(line):
            continue
        head, value = split_line(line)
        if not _DATES.fullmatch(value):
            continue
        parts = split_params(head)
        if parts[0].strip().upper() not in DATE_PROPS:
            continue
        tzids = [param_value(p.partition("=")[2]) for p in parts[1:] if p.partition("=")[0].strip().upper() == "TZID"]
        keep = [p for p in parts[1:] if p.partition("=")[0].strip().upper() not in ("TZID", "VALUE")]
        mark = tzids[0].replace('"', "'").replace("^", "")
        if out is lines:
            out = list(lines)
        out[i] = (number, ";".join([parts[0], *keep, "VALUE=DATE", f'{DATE_TZID}="{mark}"']) + ":" + value)
    return out
