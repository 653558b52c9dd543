"""How a stretch of a plan is marked on the page: each person's colour, a block's label by the kind of
its segment, and the rows of the hand-over times above a lane, so that no two time labels overlap at
any width of a desk's window (the phone shows a list instead: no rows there).
"""

from __future__ import annotations

import math

from ..config import Config
from ..core.timeline import Kind, Segment, display_name
from .presentation import Names

PALETTE = 12  # person colours p0..p11 in the stylesheet

# A hand-over's time label, in px ("17:30", and "EXACT 17:30" with its padding), measured in Debian's
# chromium (DejaVu Sans, the widest of the usual fonts) and rounded up; and the width of the week's
# track at the narrowest window of each desk layout (stylesheet: the media queries on .ho), less the
# page's margins and the line's header (main padding, .lane grid): 761 px, 960 px and 1200 px.
LABEL_PX = (40.0, 92.0)
TRACK_PX = {"b": 535.0, "c": 734.0, "a": 974.0}  # class prefix -> track width
ROWS = 2  # label rows above the blocks; a label with no room in either is not shown (its line and title stay)


class Colours:
    """Each person keeps one colour on every row: people in the order of [people], others after."""

    def __init__(self, cfg: Config) -> None:
        self._index = {display_name(name): i for i, name in enumerate(cfg.people)}

    def css(self, person: str | None) -> str:
        """The person's colour class, ``p0`` .. ``p11``; ``fallback`` for None."""
        if person is None:
            return "fallback"
        i = self._index.get(person)
        if i is None:
            i = len(self._index) + sum(map(ord, person))  # stable for a number nobody named
            self._index[person] = i
        return f"p{i % PALETTE}"


_TAGS = {Kind.OVERRIDE: "override", Kind.FALLBACK: "fallback", Kind.MANUAL: "manual override"}


def label(seg: Segment, names: Names, colours: Colours) -> tuple[str, str | None, str | None, str]:
    """(name, number, tag, css) for a segment's block, by its kind."""
    holiday = f"holiday: {seg.holiday}" if seg.holiday else None
    if seg.kind is Kind.OFFICE_HOURS:
        return "office hours", None, holiday, "office"
    if seg.kind is Kind.GAP:
        return "GAP", None, "nobody on call" + (f"; {holiday}" if holiday else ""), "gap"
    kind_tag = _TAGS.get(seg.kind)
    if seg.target is None:  # a manual override that turns forwarding off
        return "not forwarded", None, kind_tag, "office"
    tag = f"{holiday} ({kind_tag})" if holiday and kind_tag else holiday or kind_tag
    person = seg.person if seg.person and seg.person != seg.target else names.name(seg.target)
    if person is not None:
        return person, seg.target, tag, colours.css(person)
    if seg.kind is Kind.FALLBACK:  # a fallback number that is nobody's in [people]
        return "fallback", seg.target, holiday, "fallback"
    return seg.target, seg.target, tag, colours.css(seg.target)


def _rows(marks: list[tuple[float, bool]], track_px: float) -> list[tuple[int, bool]]:
    """For each mark (``x`` in % of the track, ascending, and whether it is exact): the row of its label
    (0 or 1; ``ROWS``: no room, not shown) and whether the label goes to the left of its line (it would
    run past the track's right end)."""
    out: list[tuple[int, bool]] = []
    ends = [-math.inf] * ROWS  # where each row's last label ends, in %
    for x, exact in marks:
        width = 100 * LABEL_PX[exact] / track_px
        left = x + width > 100
        x0, x1 = (x - width, x) if left else (x, x + width)
        row = next((r for r in range(ROWS) if x0 >= ends[r]), ROWS)
        if row < ROWS:
            ends[row] = x1
        out.append((row, left))
    return out


def label_classes(marks: list[tuple[float, bool]]) -> list[str]:
    """Each mark's classes for its label row in each layout: ``a0 b1``, ``a1 bl b2`` (``l``: to the left)."""
    per = {prefix: _rows(marks, px) for prefix, px in TRACK_PX.items()}
    out = []
    for i in range(len(marks)):
        bits = []
        for prefix, rows in per.items():
            row, left = rows[i]
            bits.append(f"{prefix}{row}")
            if left:
                bits.append(f"{prefix}l")
        out.append(" ".join(bits))
    return out
