"""The provider model: what the provider does with one forwarding setting. Pure.

A *program* is one full setting of a line's forwarding: a target, on or off, and a daily window. Under
it the provider forwards to ``target`` whenever forwarding is on and the local wall-clock time (of the
configured zone) lies inside ``[start, end]``, end second included, so 00:00:00-23:59:59 is the whole
day (a carrier writes this in its own fields: ``aql.fields``). On the repeated hour of an autumn
change the wall clock decides (both 01:30s are in a window that contains 01:30); the skipped hour of a
spring change simply never happens.
A window whose start is after its end is an overnight window only on accounts where ``wraps`` is true;
elsewhere such a program is never sent, and the model refuses it.

Two views of the same rule: ``target_at`` (one instant, via datetime) and ``forwarding_intervals``
(every forwarded stretch of a span, in integer epoch seconds, built from the zone's UTC-offset pieces).
The compiler plans with the second; tests check one against the other.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Mapping
from zoneinfo import ZoneInfo

DAY = 86400
ALL_DAY = (0, DAY - 1)
_HMS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d):([0-5]\d)$")


def hms(seconds: int) -> str:
    """Seconds of the day -> 'HH:MM:SS'."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def parse_hms(text: str) -> int:
    """'HH:MM:SS' -> seconds of the day. Raises ValueError for anything else."""
    m = _HMS.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a time HH:MM:SS")
    h, mi, s = (int(g) for g in m.groups())
    return h * 3600 + mi * 60 + s


@dataclass(frozen=True, order=True, slots=True)
class Program:
    """One full forwarding setting. ``start``/``end`` are seconds of the local day, end inclusive."""

    target: str | None
    active: bool
    start: int = 0
    end: int = DAY - 1

    def __post_init__(self) -> None:
        if not (0 <= self.start < DAY and 0 <= self.end < DAY):
            raise ValueError("window times must lie within the day")
        if self.active and not self.target:
            raise ValueError("an active program needs a target number")

    @property
    def wraps(self) -> bool:
        return self.active and self.start > self.end

    def describe(self, names: Mapping[str, str] | None = None) -> str:
        """``07700900001 17:30:00-23:59:59``; with ``names`` (number -> name), ``Alice (07700900001) ...``."""
        if not self.active:
            return "no forwarding"
        name = names.get(self.target) if names and self.target else None
        who = f"{name} ({self.target})" if name else self.target
        if (self.start, self.end) == ALL_DAY:
            return f"{who} all day"
        return f"{who} {hms(self.start)}-{hms(self.end)}"


OFF = Program(target=None, active=False)


def _check_wrap(program: Program, wraps: bool) -> None:
    if program.wraps and not wraps:
        raise ValueError(
            f"window {hms(program.start)}-{hms(program.end)} ends before it starts; "
            "this account is not configured with window_wraps_midnight"
        )


def in_window(program: Program, second_of_day: int) -> bool:
    """Whether the wall-clock second lies inside the program's daily window."""
    if program.start <= program.end:
        return program.start <= second_of_day <= program.end
    return second_of_day >= program.start or second_of_day <= program.end


def target_at(program: Program, instant: dt.datetime, tz: ZoneInfo, wraps: bool = False) -> str | None:
    """Where a call at ``instant`` (aware) goes under ``program``: a number, or None (not forwarded)."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    _check_wrap(program, wraps)
    if not program.active:
        return None
    local = instant.astimezone(tz)
    sod = local.hour * 3600 + local.minute * 60 + local.second
    return program.target if in_window(program, sod) else None


@functools.lru_cache(maxsize=256)
def offset_pieces(tz: ZoneInfo, start: int, end: int) -> tuple[tuple[int, int, int], ...]:
    """Split epoch seconds [start, end) into pieces of constant UTC offset: (from, to, offset_s)."""

    def off(t: int) -> int:
        u = dt.datetime.fromtimestamp(t, dt.timezone.utc).astimezone(tz).utcoffset()
        return int(u.total_seconds()) if u is not None else 0

    pieces: list[tuple[int, int, int]] = []
    step = 3600
    p0, o0 = start, off(start)
    t = start
    while t < end:
        nxt = min(t + step, end)
        if nxt < end and off(nxt) != o0 or nxt == end and off(end - 1) != o0:
            lo, hi = t, nxt  # offset is o0 at lo, differs by hi: find the first differing second
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if off(mid) == o0:
                    lo = mid
                else:
                    hi = mid
            pieces.append((p0, hi, o0))
            p0, o0 = hi, off(hi)
            t = hi
            continue
        t = nxt
    pieces.append((p0, end, o0))
    return tuple(pieces)


def forwarding_intervals(
    program: Program, tz: ZoneInfo, start: int, end: int, wraps: bool = False
) -> list[tuple[int, int]]:
    """Every maximal stretch [a, b) of epoch seconds within [start, end) in which ``program`` forwards."""
    _check_wrap(program, wraps)
    if not program.active or end <= start:
        return []
    if program.start <= program.end:
        spans = [(program.start, program.end + 1)]
    else:
        spans = [(0, program.end + 1), (program.start, DAY)]
    out: list[tuple[int, int]] = []
    for p0, p1, off in offset_pieces(tz, start, end):
        w0, w1 = p0 + off, p1 + off  # the piece in local "wall epoch" seconds
        for day in range(w0 // DAY, (w1 - 1) // DAY + 1):
            for a, b in spans:
                lo = max(day * DAY + a, w0) - off
                hi = min(day * DAY + b, w1) - off
                if lo < hi:
                    if out and out[-1][1] >= lo:
                        out[-1] = (out[-1][0], max(out[-1][1], hi))
                    else:
                        out.append((lo, hi))
    return out
