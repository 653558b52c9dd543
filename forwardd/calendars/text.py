"""The text of a feed, repaired before icalendar reads it: logical lines, parameters, zone names.

- the text is unfolded (RFC 5545 3.1) and repaired with regular expressions that find the few lines
  needing it, so a feed of 100,000 events costs a few passes in C, not a Python loop per line; the
  number of each logical line's first physical line is kept for warnings (Text.line_of);
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

import bisect
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .windows_zones import display_name_zone
from .zones import known_zone

_FOLD = re.compile(r"\r?\n[ \t]")
_SAFE_TZID = re.compile(r"[^A-Za-z0-9+_./-]+")
_UNQUOTED_OFFSET_TZID = re.compile(r";\s*TZID\s*=\s*\(", re.IGNORECASE)
_DATES = re.compile(r"\s*\d{8}\s*(?:,\s*\d{8}\s*)*")
# the properties whose values may be dates
DATE_PROPS = frozenset({"DTSTART", "DTEND", "DUE", "EXDATE", "RDATE", "RECURRENCE-ID"})
DATE_TZID = "X-FORWARDD-DATE-TZID"
# The lines each repair may change, found in one pass over the unfolded text (re.M: ^ and $ at lines)
_UNQUOTED_OFFSET_LINE = re.compile(r"^[^\r\n]*;[ \t]*TZID[ \t]*=[ \t]*\([^\r\n]*?(?=\r?$)", re.M | re.I)
_DATE_WITH_TZID_LINE = re.compile(
    r"^(?:DTSTART|DTEND|DUE|EXDATE|RDATE|RECURRENCE-ID)[ \t]*;[^\r\n]*?TZID[^\r\n]*?:[ \t]*\d{8}[ \t]*"
    r"(?:,[ \t]*\d{8}[ \t]*)*(?=\r?$)", re.M | re.I)
# a VTIMEZONE from its BEGIN to its END, not across another's BEGIN (one left open is passed by)
_VTIMEZONE = re.compile(r"^BEGIN:VTIMEZONE[ \t]*\r?$(?:(?!^BEGIN:VTIMEZONE\b).)*?^END:VTIMEZONE[ \t]*(?=\r?$)",
                        re.M | re.S | re.I)
_TZID_PROPERTY = re.compile(r"^TZID[ \t]*(?:;[^\r\n]*)?:[^\r\n]*?(?=\r?$)", re.M | re.I)
_TZID_PARAM_LINE = re.compile(r"^[^\r\n]*;[ \t]*TZID[ \t]*=[^\r\n]*?(?=\r?$)", re.M | re.I)
_DISPLAY_PARAM = re.compile(r';[ \t]*TZID[ \t]*=[ \t]*"?[ \t]*\(', re.I)
# cheap first looks (a literal to search for, few backtracks) before the line patterns above
_DATE_VALUE_LINE = re.compile(r":[ \t]*\d{8}[ \t]*(?:,[ \t]*\d{8}[ \t]*)*\r?$", re.M)


@dataclass
class Text:
    """A feed's text unfolded and repaired (see repair), the original name of each VTIMEZONE renamed
    (new name -> old), and the way back from a logical line to its physical line number."""

    text: str
    renamed: dict[str, str] = field(default_factory=dict)
    dates_had_zones: bool = False  # whether date_without_zone took a TZID off a date
    # the logical line (0-based) each folded continuation line belongs to, in order
    fold_owners: list[int] = field(default_factory=list, repr=False)

    def line_of(self, logical: int) -> int:
        """The number (1-based) of the physical line on which logical line ``logical`` (0-based) begins."""
        return logical + 1 + bisect.bisect_left(self.fold_owners, logical)


def repair(text: str) -> Text:
    """``text`` unfolded, with its display-name TZIDs quoted and mapped, its dates' TZIDs taken off and its
    custom VTIMEZONEs renamed (see the module docstring); each step rewrites only the lines it finds."""
    owners: list[int] = []
    newlines, pos = 0, 0
    for k, fold in enumerate(_FOLD.finditer(text)):
        newlines += text.count("\n", pos, fold.start())
        pos = fold.start()
        owners.append(newlines - k)  # the continuation is physical line newlines + 1, logical line newlines - k
    unfolded = _FOLD.sub("", text) if owners else text
    if _UNQUOTED_OFFSET_TZID.search(unfolded):
        unfolded = _each(_UNQUOTED_OFFSET_LINE, quote_display_name, unfolded)
    dated = False
    if _DATE_VALUE_LINE.search(unfolded):
        repaired = _each(_DATE_WITH_TZID_LINE, date_without_zone, unfolded)
        unfolded, dated = repaired, repaired is not unfolded
    unfolded, renamed = isolate_custom_zones(unfolded)
    return Text(unfolded, renamed, dated, owners)


def _each(pattern: re.Pattern[str], repair_line: Callable[[str], str], text: str) -> str:
    """``text`` with each line ``pattern`` finds replaced by ``repair_line(line)`` (the text itself when
    there is none, so that a feed needing no repair is not copied)."""
    if pattern.search(text) is None:
        return text
    return pattern.sub(lambda m: repair_line(m.group(0)), text)


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


def isolate_custom_zones(text: str) -> tuple[str, dict[str, str]]:
    """Rename each non-standard VTIMEZONE's TZID to one unique to its definition, in the VTIMEZONE and in
    every TZID parameter that names it; return the text and the original name of each new one. A
    Windows display name, in a VTIMEZONE or a parameter, becomes the IANA zone it stands for, as the
    Windows zone IDs do (icalendar maps those itself): the tz database knows the zone's history, where
    an exporter's VTIMEZONE gives only this year's rules.

    The TZID is TEXT in a VTIMEZONE (Exchange escapes its commas: ``Bangkok\\, Hanoi``) but a parameter,
    perhaps quoted, in an event (``TZID="Bangkok, Hanoi"``), so both are compared decoded; and some
    exporters write ``TZID: 1`` and ``TZID= 1``, which the parser trims on one side only, so surrounding
    whitespace does not count either.
    """
    renames: dict[str, str] = {}

    def zone(block: re.Match[str]) -> str | None:
        """The VTIMEZONE's text with its TZID renamed, or None when it keeps its name."""
        found = _TZID_PROPERTY.search(block.group(0))
        if found is None:
            return None
        tzid = text_value(split_line(found.group(0))[1]).strip().strip('"').strip()  # some write TZID:"name"
        display = display_name_zone(tzid)
        if display is not None:
            renames[tzid] = display
        elif not known_zone(tzid):
            digest = hashlib.sha256(block.group(0).encode()).hexdigest()[:10]
            renames[tzid] = f"forwardd-{digest}/{_SAFE_TZID.sub('_', tzid)[:40]}"
        else:
            return None
        return block.group(0)[:found.start()] + f"TZID:{renames[tzid]}" + block.group(0)[found.end():]

    pieces: list[str] = []
    last = 0
    for block in _VTIMEZONE.finditer(text):
        new = zone(block)
        if new is not None:
            pieces += [text[last:block.start()], new]
            last = block.end()
    if pieces:  # only a feed with zones to rename is copied
        text = "".join([*pieces, text[last:]])

    def params(line: str) -> str:
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
        return ";".join(parts) + ":" + value if changed else line

    if renames or _DISPLAY_PARAM.search(text):
        text = _each(_TZID_PARAM_LINE, params, text)
    return text, {new: old for old, new in renames.items() if new.startswith("forwardd-")}


def quote_display_name(line: str) -> str:
    """``line`` with an unquoted TZID parameter that begins with an offset in parentheses quoted, as some
    exporters write a Windows display name (``DTSTART;TZID=(UTC-05:00) Eastern Time (US & Canada):2026...``):
    its colon would otherwise end the parameters. The value of such a line is what follows its last colon
    (a date, date-time or period has none)."""
    found = _UNQUOTED_OFFSET_TZID.search(line)
    if found is None or ":" not in line[found.end():]:
        return line
    head, value = line[:line.rindex(":")], line[line.rindex(":") + 1:]
    start = found.end() - 1  # the "("
    stop = head.find(";", start)
    stop = len(head) if stop < 0 else stop
    return f'{head[:start]}"{head[start:stop].strip()}"{head[stop:]}:{value}'


def date_without_zone(line: str) -> str:
    """``line`` without the TZID of its date value (``DTSTART;TZID=Europe/Paris;VALUE=DATE:20250716``, or
    Google's old ``DTSTART;TZID=America/Los_Angeles:20041225``): RFC 5545 3.2.19 says a TZID is not
    applied to a DATE, and a date is a whole day of the configured zone; icalendar would read it as
    midnight in that zone. The TZID is kept in an ``X-FORWARDD-DATE-TZID`` parameter, for a warning to
    name it (validity.py) and for the zones an all-day series' UTC values may be written in."""
    head, value = split_line(line)
    parts = split_params(head)
    if not _DATES.fullmatch(value) or parts[0].strip().upper() not in DATE_PROPS:
        return line
    tzids = [param_value(p.partition("=")[2]) for p in parts[1:] if p.partition("=")[0].strip().upper() == "TZID"]
    if not tzids:
        return line
    keep = [p for p in parts[1:] if p.partition("=")[0].strip().upper() not in ("TZID", "VALUE")]
    mark = tzids[0].replace('"', "'").replace("^", "")
    return ";".join([parts[0], *keep, "VALUE=DATE", f'{DATE_TZID}="{mark}"']) + ":" + value
