"""Reading a feed's text with icalendar, VCALENDAR by VCALENDAR and component by component.

The text is cut at its BEGIN and END lines (one regular expression, not a Python loop per line) into
VCALENDARs ("frames"), their own properties and their components ("blocks"). Each frame's VTIMEZONEs are
read first (icalendar looks the zones of later components up by TZID), then its other components in
batches: a feed of 100,000 events is never held whole as icalendar components, and each batch is read
with icalendar's own parser. A batch icalendar cannot read is read again component by component, and
what cannot be read, or has no END, is skipped with a warning naming the feed, the component (its UID
or TZID, and line) and the reason, so one broken VTIMEZONE, VFREEBUSY or VEVENT never hides the rest.
Lines outside any VCALENDAR are ignored with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import icalendar

from .text import Text, text_value
from .values import clip

# Components that sit directly in a VCALENDAR; one of these cannot begin inside another.
_TOP_LEVEL = frozenset({"VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VTIMEZONE", "VAVAILABILITY"})
_MARK = re.compile(r"^[ \t]*(BEGIN|END)[ \t]*:[ \t]*([A-Za-z0-9-]{1,70})[ \t]*(?=\r?$)", re.M | re.I)
_LINES = re.compile(r"[^\r\n]+")
_LABEL = {kind: re.compile(rf"^{kind}[ \t]*(?:;[^\r\n]*)?:([^\r\n]*)", re.M | re.I) for kind in ("UID", "TZID")}
# components read by one call of icalendar's parser (and their text, at most, in characters)
_BATCH, _BATCH_CHARS = 500, 1 << 20


@dataclass(slots=True)
class Block:
    """One component of a VCALENDAR: its kind, where its text is (``start`` to ``end`` of the feed's
    text), the line it begins on, its place among the feed's components, and whether it was ended."""

    kind: str
    start: int
    end: int
    line: int
    index: int
    closed: bool = False

    def label(self, text: str) -> str:
        """The component as a warning names it: kind, UID (or TZID) and line."""
        found = _LABEL["TZID" if self.kind == "VTIMEZONE" else "UID"].search(text, self.start, self.end)
        if found is not None:
            return f"{self.kind} {text_value(found.group(1)).strip()!r} (line {self.line})"
        return f"{self.kind} at line {self.line}"


@dataclass
class Frame:
    """One VCALENDAR: its own properties (line number and text) and its components."""

    header: list[tuple[int, str]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


def frames(name: str, doc: Text, warnings: list[str]) -> list[Frame]:
    """The feed's VCALENDARs; each line outside them is ignored with a warning."""
    text = doc.text
    out: list[Frame] = []
    frame: Frame | None = None
    block: Block | None = None
    depth, index = 0, 0
    counted, newlines = 0, 0  # newlines are counted as far as ``counted``, once

    def line_at(offset: int) -> int:
        nonlocal counted, newlines
        newlines += text.count("\n", counted, offset)
        counted = offset
        return doc.line_of(newlines)

    def between(a: int, b: int) -> None:
        """The lines from ``a`` to ``b`` that are not BEGIN or END lines: a frame's properties, or strays."""
        if block is not None:
            return
        for found in _LINES.finditer(text, a, b):
            if not found.group(0).strip():
                continue
            number = line_at(found.start())
            if frame is None:
                warnings.append(f"calendar {name!r}: line {number} ({clip(found.group(0), 60)!r}) is outside any "
                                "VCALENDAR; ignored")
            else:
                frame.header.append((number, found.group(0)))

    pos = 0
    for mark in _MARK.finditer(text):
        between(pos, mark.start())
        pos = mark.end()
        kind = mark.group(2).upper()
        begin = kind if mark.group(1).upper() == "BEGIN" else None
        end = kind if begin is None else None
        if frame is None:
            if begin == "VCALENDAR":
                frame = Frame()
            else:
                between(mark.start(), mark.end())  # a stray END, or a BEGIN outside any VCALENDAR
            continue
        if block is not None and (end == "VCALENDAR" or (begin in _TOP_LEVEL and block.kind in _TOP_LEVEL)):
            block.end = mark.start()
            frame.blocks.append(block)  # left open: it is reported as such
            block = None
        if end == "VCALENDAR":
            out.append(frame)
            frame = None
        elif block is None:
            if begin is not None:
                block, depth = Block(begin, mark.start(), mark.end(), line_at(mark.start()), index), 1
                index += 1
            else:
                between(mark.start(), mark.end())  # an END of nothing: a line of the frame's own, unreadable
        else:
            depth += 1 if begin is not None else -1
            if end == block.kind or depth == 0:
                block.end, block.closed = mark.end(), end == block.kind
                frame.blocks.append(block)
                block = None
    between(pos, len(text))
    if frame is not None:
        if block is not None:
            block.end = len(text)
            frame.blocks.append(block)
        out.append(frame)
    return out


def _wrapped(body: str) -> str:
    return "BEGIN:VCALENDAR\r\n" + body + "\r\nEND:VCALENDAR\r\n"


def read_header(name: str, frame: Frame, warnings: list[str]) -> Any:
    """A Calendar holding the frame's own properties; each line that cannot be read is left out with a
    warning."""
    try:
        return icalendar.Calendar.from_ical(_wrapped("\r\n".join(text for _, text in frame.header)))
    except Exception:  # icalendar raises ValueError, KeyError, IndexError... on broken input
        pass
    header = []
    for number, text in frame.header:
        try:
            icalendar.Calendar.from_ical(_wrapped(text))
            header.append(text)
        except Exception as err:  # see above
            warnings.append(f"calendar {name!r}: line {number} ({clip(text, 60)!r}) cannot be read "
                            f"({clip(err)}); ignored")
    try:
        return icalendar.Calendar.from_ical(_wrapped("\r\n".join(header)))
    except Exception as err:  # lines readable one by one but not together
        warnings.append(f"calendar {name!r}: the VCALENDAR's own properties cannot be read ({clip(err)}); ignored")
        return icalendar.Calendar()


def read_timezones(name: str, doc: Text, frame: Frame, warnings: list[str]) -> list[Any]:
    """The frame's VTIMEZONEs that icalendar can read (each read alone, as icalendar caches each zone);
    each that cannot be read, or has no END, is left out with a warning."""
    read = (read_block(name, doc, b, warnings) for b in frame.blocks if b.kind == "VTIMEZONE")
    return [c for c in read if c is not None]


def read_components(name: str, doc: Text, frame: Frame, warnings: list[str]) -> Iterator[tuple[Block, Any]]:
    """The frame's other components that icalendar can read, each with its block, read batch by batch
    (runs of neighbouring components); each that cannot be read, or has no END, is left out with a
    warning."""
    batch: list[Block] = []
    for block in frame.blocks:
        if block.kind == "VTIMEZONE" or not block.closed:
            yield from _batch(name, doc, batch, warnings)
            batch = []
            if block.kind != "VTIMEZONE":
                read_block(name, doc, block, warnings)  # warns
            continue
        if batch and (len(batch) >= _BATCH or block.end - batch[0].start > _BATCH_CHARS):
            yield from _batch(name, doc, batch, warnings)
            batch = []
        batch.append(block)
    yield from _batch(name, doc, batch, warnings)


def read_block(name: str, doc: Text, block: Block, warnings: list[str]) -> Any | None:
    """One component read on its own, or None (with a warning) when it cannot be read or has no END."""
    if not block.closed:
        warnings.append(f"calendar {name!r}: {block.label(doc.text)} has no END:{block.kind}; skipped")
        return None
    try:
        parsed = icalendar.Calendar.from_ical(_wrapped(doc.text[block.start:block.end])).subcomponents
        if len(parsed) != 1:
            raise ValueError(f"{len(parsed)} components where one was expected")
    except Exception as err:  # see read_header
        warnings.append(f"calendar {name!r}: {block.label(doc.text)} cannot be read ({clip(err)}); skipped")
        return None
    return parsed[0]


def _batch(name: str, doc: Text, batch: list[Block], warnings: list[str]) -> Iterator[tuple[Block, Any]]:
    """The components of consecutive blocks read by one call of icalendar's parser; when it cannot read
    them all, one by one (read_block)."""
    if not batch:
        return
    if len(batch) > 1:
        try:
            parsed = icalendar.Calendar.from_ical(_wrapped(doc.text[batch[0].start:batch[-1].end])).subcomponents
        except Exception:  # see read_header: one of them is broken
            parsed = []
        if len(parsed) == len(batch) and all(c.name == b.kind for c, b in zip(parsed, batch)):
            yield from zip(batch, parsed)
            return
    for block in batch:
        component = read_block(name, doc, block, warnings)
        if component is not None:
            yield block, component
