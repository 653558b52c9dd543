"""Reading a feed whose whole text icalendar cannot read: VCALENDAR by VCALENDAR, component by
component, skipping (with a warning naming the feed, the component and the reason) what cannot be read,
so that one broken VTIMEZONE, VFREEBUSY or VEVENT never hides the rest of the feed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import icalendar

from .text import split_line, split_params, tag, text_value
from .values import clip

# Components that sit directly in a VCALENDAR; one of these cannot begin inside another.
_TOP_LEVEL = frozenset({"VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VTIMEZONE", "VAVAILABILITY"})


@dataclass
class _Block:
    """One component of a VCALENDAR, as text, to be read on its own when the whole feed cannot be."""

    kind: str
    line: int
    lines: list[str] = field(default_factory=list)
    closed: bool = False

    def label(self) -> str:
        key = "TZID" if self.kind == "VTIMEZONE" else "UID"
        for text in self.lines:
            head, value = split_line(text)
            if split_params(head)[0].strip().upper() == key:
                return f"{self.kind} {text_value(value).strip()!r} (line {self.line})"
        return f"{self.kind} at line {self.line}"


@dataclass
class _Frame:
    """One VCALENDAR as text: its own properties and its components."""

    header: list[tuple[int, str]] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)


def _frames(lines: list[tuple[int, str]]) -> tuple[list[_Frame], list[tuple[int, str]]]:
    """Split the feed into VCALENDARs and their components; also return the lines outside any VCALENDAR."""
    frames: list[_Frame] = []
    stray: list[tuple[int, str]] = []
    frame: _Frame | None = None
    block: _Block | None = None
    depth = 0
    for number, line in lines:
        key = tag(line)
        begin = key[6:] if key.startswith("BEGIN:") else None
        end = key[4:] if key.startswith("END:") else None
        if frame is None:
            if begin == "VCALENDAR":
                frame = _Frame()
            elif line.strip():
                stray.append((number, line))
            continue
        if block is not None and (end == "VCALENDAR" or (begin in _TOP_LEVEL and block.kind in _TOP_LEVEL)):
            frame.blocks.append(block)  # left open: it is reported as such
            block = None
        if end == "VCALENDAR":
            frames.append(frame)
            frame = None
        elif block is None:
            if begin is not None:
                block, depth = _Block(begin, number, [line]), 1
            elif line.strip():
                frame.header.append((number, line))
        else:
            block.lines.append(line)
            depth += 1 if begin is not None else -1 if end is not None else 0
            if end == block.kind or depth == 0:
                block.closed = end == block.kind
                frame.blocks.append(block)
                block = None
    if frame is not None:
        if block is not None:
            frame.blocks.append(block)
        frames.append(frame)
    return frames, stray


def _wrapped(lines: list[str]) -> str:
    return "BEGIN:VCALENDAR\r\n" + "".join(line + "\r\n" for line in lines) + "END:VCALENDAR\r\n"


def read_calendars(name: str, lines: list[tuple[int, str]], warnings: list[str]) -> list[Any]:
    """The feed's VCALENDARs. When icalendar cannot read the whole feed, each component is read on its
    own and those it cannot read are skipped with a warning naming the feed, the component and why.
    Each VEVENT is given the line it begins on (``forwardd_line``), for warnings to name."""
    try:
        cals = list(icalendar.Calendar.from_ical("\r\n".join(text for _, text in lines) + "\r\n", multiple=True))
    except Exception:  # icalendar raises ValueError, KeyError, IndexError... on broken input
        pass
    else:
        events: list[Any] = [ev for cal in cals for ev in cal.walk("VEVENT")]  # in the order of the text
        begins = [number for number, text in lines if tag(text) == "BEGIN:VEVENT"]
        if len(events) == len(begins):
            for ev, number in zip(events, begins):
                ev.forwardd_line = number
        return cals
    frames, stray = _frames(lines)
    for number, text in stray:
        warnings.append(f"calendar {name!r}: line {number} ({clip(text, 60)!r}) is outside any VCALENDAR; ignored")
    return [_read_frame(name, frame, warnings) for frame in frames]


def _read_frame(name: str, frame: _Frame, warnings: list[str]) -> Any:
    header = []
    for number, text in frame.header:
        try:
            icalendar.Calendar.from_ical(_wrapped([text]))
            header.append(text)
        except Exception as err:  # see read_calendars
            warnings.append(f"calendar {name!r}: line {number} ({clip(text, 60)!r}) cannot be read "
                            f"({clip(err)}); ignored")
    try:
        cal = icalendar.Calendar.from_ical(_wrapped(header))
    except Exception as err:  # lines readable one by one but not together
        warnings.append(f"calendar {name!r}: the VCALENDAR's own properties cannot be read ({clip(err)}); ignored")
        cal = icalendar.Calendar()
    # VTIMEZONEs first: icalendar looks the zones of later components up by TZID
    for block in sorted(frame.blocks, key=lambda b: b.kind != "VTIMEZONE"):
        if not block.closed:
            warnings.append(f"calendar {name!r}: {block.label()} has no END:{block.kind}; skipped")
            continue
        try:
            parsed = icalendar.Calendar.from_ical(_wrapped(block.lines)).subcomponents
            if len(parsed) != 1:
                raise ValueError(f"{len(parsed)} components where one was expected")
        except Exception as err:  # see read_calendars
            warnings.append(f"calendar {name!r}: {block.label()} cannot be read ({clip(err)}); skipped")
            continue
        component: Any = parsed[0]
        component.forwardd_line = block.line
        cal.add_component(component)
    return cal
