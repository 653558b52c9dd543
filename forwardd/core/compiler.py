"""The window compiler: reproduce a timeline through aql's one daily window. Pure.

Given the desired state as contiguous segments, choose a sequence of programs (see ``provider``) and,
for each, the span ``[apply_from, apply_by]`` in which sending it keeps every second right:
``apply_from`` is when the new program starts doing what the timeline wants, ``apply_by`` is when
the program before it stops doing so. The provider's own window then performs the transitions
inside each program, to the second, whatever the daemon is doing.

How: every candidate program (off, and for each target every window whose edges are the wall-clock
times at which that target starts or stops, or midnight) is run through the provider model over the
horizon, giving the maximal stretches in which it is *correct*. Each stretch is an option; an option
inside another is never better, so it is dropped, leaving options ordered by both ends. A dynamic
programme then picks the chain of overlapping options that covers the horizon and is best by, in order:

1. fewest exact hand-overs (no overlap: only a change of target while forwarding continues needs one),
2. fewest hand-overs with less than ``min_slack`` of overlap,
3. fewest calls,
4. the largest smallest slack.

Where two consecutive hand-over spans would overlap they are split at the middle, so that each change
can be applied at any instant of its span, independently, in order.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from dataclasses import dataclass
from typing import Sequence
from zoneinfo import ZoneInfo

from .provider import ALL_DAY, DAY, Program, forwarding_intervals, offset_pieces
from .timeline import Segment, epoch, from_epoch


@dataclass(frozen=True, slots=True)
class Change:
    """Send ``program`` at any instant of ``[apply_from, apply_by]`` (aware UTC datetimes)."""

    apply_from: dt.datetime
    apply_by: dt.datetime
    program: Program
    exact: bool

    @property
    def slack(self) -> dt.timedelta:
        return self.apply_by - self.apply_from


@dataclass(frozen=True, slots=True)
class _Option:
    f: int  # correct from (epoch s)
    u: int  # correct until (exclusive)
    program: Program


def _wall_sod(t: int, pieces: Sequence[tuple[int, int, int]]) -> int:
    for p0, p1, off in pieces:
        if p0 <= t < p1:
            return (t + off) % DAY
    return (t + pieces[-1][2]) % DAY


Spans = list[tuple[int, int]]


def _by_target(segs: Sequence[tuple[int, int, str | None]]) -> list[tuple[int, int, str | None]]:
    """The timeline with neighbours that want the same target joined: targets alternate."""
    out: list[tuple[int, int, str | None]] = []
    for s, e, w in segs:
        if out and out[-1][2] == w:
            out[-1] = (out[-1][0], e, w)
        else:
            out.append((s, e, w))
    return out


class _Window:
    """When one window forwards over the horizon (sorted, disjoint, never touching stretches), with the
    lookups a walk along the timeline needs: each O(log k)."""

    def __init__(self, fwd: Sequence[tuple[int, int]]) -> None:
        self.fwd = fwd
        self.starts = [a for a, _ in fwd]

    def _at(self, t: int) -> int:
        """Index of the stretch holding ``t``, or -1."""
        i = bisect.bisect_right(self.starts, t) - 1
        return i if i >= 0 and t < self.fwd[i][1] else -1

    def first(self, s: int, e: int, forwarding: bool) -> int | None:
        """The first instant of [s, e) at which the window forwards (or, ``forwarding`` False, is shut)."""
        i = self._at(s)
        if forwarding:
            if i >= 0:
                return s
            j = bisect.bisect_right(self.starts, s)
            return self.starts[j] if j < len(self.starts) and self.starts[j] < e else None
        if i < 0:
            return s
        return self.fwd[i][1] if self.fwd[i][1] < e else None

    def last(self, s: int, e: int, forwarding: bool) -> int | None:
        """The last instant of [s, e) at which the window forwards (or, ``forwarding`` False, is shut)."""
        t = e - 1
        i = self._at(t)
        if forwarding:
            if i >= 0:
                return t
            j = bisect.bisect_left(self.starts, e) - 1
            return self.fwd[j][1] - 1 if j >= 0 and self.fwd[j][1] - 1 >= s else None
        if i < 0:
            return t
        return self.fwd[i][0] - 1 if self.fwd[i][0] - 1 >= s else None

    def clip(self, s: int, e: int) -> Spans:
        """Where the window forwards within [s, e)."""
        out = []
        j = max(0, bisect.bisect_right(self.starts, s) - 1)
        while j < len(self.fwd) and self.fwd[j][0] < e:
            a, b = max(self.fwd[j][0], s), min(self.fwd[j][1], e)
            if a < b:
                out.append((a, b))
            j += 1
        return out


def _stretches(tl: Sequence[tuple[int, int, str | None]], seeds: Sequence[int], target: str, w: _Window) -> Spans:
    """The maximal stretches in which the program (``target`` in window ``w``) is correct and that hold
    a part of one of the ``seeds`` (indices of ``target``'s runs in ``tl``). A program is correct where
    the timeline wants its target and it forwards, or wants nobody and it does not forward; a stretch
    is found by walking out from the run, along the timeline, until the program is first wrong."""

    def left(i: int) -> int:
        j = i - 1
        while j >= 0:
            s, e, want = tl[j]
            if want is not None and want != target:
                return e
            wrong = w.last(s, e, forwarding=want is None)  # forwarding while nobody is wanted, or shut for target
            if wrong is not None:
                return wrong + 1
            j -= 1
        return tl[0][0]

    def right(i: int) -> int:
        j = i + 1
        while j < len(tl):
            s, e, want = tl[j]
            if want is not None and want != target:
                return s
            wrong = w.first(s, e, forwarding=want is None)
            if wrong is not None:
                return wrong
            j += 1
        return tl[-1][1]

    found: set[tuple[int, int]] = set()
    for i in seeds:
        s, e, _ = tl[i]
        for x, y in w.clip(s, e):
            found.add((x if x > s else left(i), y if y < e else right(i)))
    return sorted(found)


@functools.lru_cache(maxsize=8192)
def _forwarding(a: int, b: int, tz: ZoneInfo, h0: int, h1: int) -> tuple[tuple[int, int], ...]:
    """When a window (a, b) forwards within [h0, h1): shared by every number planned over one horizon."""
    return tuple(forwarding_intervals(Program("x", True, a, b), tz, h0, h1, wraps=True))


def _candidates(
    segs: Sequence[tuple[int, int, str | None]], pieces: Sequence[tuple[int, int, int]], wraps: bool
) -> list[tuple[str, int, int]]:
    """Windows worth trying, per target: each edge where the target starts or stops, paired with
    midnight on the other side; each stretch's own start and end paired together; and each edge
    paired with the time half a day away. Why half a day: a window must not fire on the day before
    a start (or after an end), so a pre-armed start at 00:00 is best ended near noon, and a stop at
    09:00 best started near 21:00 the day before; the hand-overs either side then share the day,
    instead of one of them having to land exactly at the boundary. Linear in the stretches, not
    quadratic in the distinct times, and the plain all-day window is always among them, so a chain
    of correct programs always exists."""
    half = DAY // 2
    h0, h1 = segs[0][0], segs[-1][1]
    windows: dict[str, set[tuple[int, int]]] = {}
    for s, e, want in segs:
        if want is None:
            continue
        w = windows.setdefault(want, {ALL_DAY})
        # The horizon's own ends are not transitions: a window edge there would only tie the plan to
        # when it was made (and change the program at every re-plan).
        if s > h0:
            a = _wall_sod(s, pieces)
            w.update(((a, DAY - 1), (a, (a - 1 + half) % DAY)))
        if e < h1:
            b = _wall_sod(e - 1, pieces)
            w.update(((0, b), ((b + 1 + half) % DAY, b)))
        if s > h0 and e < h1:
            w.add((a, b))
    out = []
    for target in sorted(windows):
        usable = sorted(w for w in windows[target] if w[0] <= w[1] or wraps)
        usable.sort(key=lambda w: w != ALL_DAY)  # the plainest window first on ties
        out += [(target, a, b) for a, b in usable]
    return out


def compile_timeline(
    segments: Sequence[Segment],
    tz: ZoneInfo,
    *,
    wraps: bool = False,
    min_slack: dt.timedelta = dt.timedelta(minutes=5),
) -> list[Change]:
    """Plan the changes that reproduce ``segments`` (contiguous, aware) exactly.

    Returns the changes in order; the first is the program to be in force at the first segment's start
    (its span is that one instant). Raises ValueError if the segments are empty or not contiguous.
    """
    if not segments:
        raise ValueError("nothing to compile: the timeline is empty")
    segs = [(epoch(s.start), epoch(s.end), s.target) for s in segments]
    for (_, e0, _), (s1, _, _) in zip(segs, segs[1:]):
        if e0 != s1:
            raise ValueError("timeline segments must be contiguous")
    h0, h1 = segs[0][0], segs[-1][1]
    pieces = offset_pieces(tz, h0, h1)

    # Options: the stretches in which each candidate program is correct. Forwarding off is correct on
    # every stretch that wants nobody. A window can only carry a run of its target on into the quiet
    # time around it where it starts forwarding exactly as the run starts, or stops exactly as the run
    # ends (else it would forward while nobody is wanted, or be shut while the target is): at its
    # opening time, or where the wall clock jumps into or out of it on a DST day. So each window is
    # walked out from the runs that begin or end where one of its forwarding stretches does; any other
    # stretch of it lies inside an option of the all-day window (the run alone) or of forwarding off
    # (the quiet alone), which the filter below drops anyway. That keeps this near-linear in the number
    # of runs instead of quadratic, with the same options.
    tl = _by_target(segs)
    runs: dict[str, list[int]] = {}
    run_from: dict[tuple[str, int], int] = {}
    run_until: dict[tuple[str, int], int] = {}
    for i, (s, e, want) in enumerate(tl):
        if want is None:
            continue
        runs.setdefault(want, []).append(i)
        run_from[(want, s)] = i
        run_until[(want, e)] = i
    programs: list[Program] = [Program(None, False)]
    options = [(a, -b, 0) for a, b, want in tl if want is None]  # (from, -until, program index): sorts natively
    for target, a, b in _candidates(segs, pieces, wraps):
        fwd = _forwarding(a, b, tz, h0, h1)
        if (a, b) == ALL_DAY:
            seeds = runs[target]
        else:
            seeds = sorted({i for x, y in fwd for i in (run_from.get((target, x)), run_until.get((target, y)))
                            if i is not None})
        if not seeds:
            continue
        right = _stretches(tl, seeds, target, _Window(fwd))
        if right:
            k = len(programs)
            programs.append(Program(target, True, a, b))
            options += [(f, -u, k) for f, u in right]

    # Drop every option lying inside another; what is left is ordered by both f and u. On a tie the
    # earlier candidate (off, then the plainest window) is kept.
    options.sort()
    kept: list[_Option] = []
    for f, neg_u, k in options:
        if not kept or -neg_u > kept[-1].u:
            if kept and kept[-1].f == f:
                continue  # same start, shorter: inside the one kept
            kept.append(_Option(f, -neg_u, programs[k]))
    chain = _best_chain(kept, h0, h1, int(min_slack.total_seconds()))
    return _changes(chain, h0)


_INF = 1 << 62


def _best_chain(opts: list[_Option], h0: int, h1: int, min_slack: int) -> list[_Option]:
    ends = [o.u for o in opts]
    best: list[tuple[int, int, int, int] | None] = [None] * len(opts)
    parent: list[int] = [-1] * len(opts)
    for j, o in enumerate(opts):
        if o.f <= h0:
            best[j] = (0, 0, 1, -_INF)
            continue
        for i in range(bisect.bisect_left(ends, o.f), j):
            bi = best[i]
            if bi is None:
                continue
            slack = opts[i].u - o.f
            cost = (
                bi[0] + (slack == 0),
                bi[1] + (0 < slack < min_slack),
                bi[2] + 1,
                max(bi[3], -slack),
            )
            if best[j] is None or cost < best[j]:  # type: ignore[operator]
                best[j], parent[j] = cost, i
    finals = [j for j, o in enumerate(opts) if o.u >= h1 and best[j] is not None]
    if not finals:  # cannot happen for a contiguous timeline: every instant has a correct program
        raise AssertionError("no chain of programs covers the horizon")
    j = min(finals, key=lambda k: (best[k], k))
    chain = []
    while j >= 0:
        chain.append(opts[j])
        j = parent[j]
    return chain[::-1]


def _changes(chain: list[_Option], h0: int) -> list[Change]:
    spans = [(h0, h0)] + [(chain[i].f, chain[i - 1].u) for i in range(1, len(chain))]
    for i in range(1, len(spans) - 1):  # keep the spans disjoint and in order
        (a0, b0), (a1, b1) = spans[i], spans[i + 1]
        if b0 > a1:  # touching is fine: both sent at that instant, the later wins at once
            mid = (a1 + b0) // 2
            spans[i], spans[i + 1] = (a0, mid), (mid, b1)
    out: list[Change] = []
    last_target: str | None = next((o.program.target for o in chain if o.program.active), None)
    for (a, b), o in zip(spans, chain):
        prog = o.program
        if prog.active:
            last_target = prog.target
        else:  # off: leave forwardto as it was, so only forwardactive changes
            prog = Program(last_target, False)
        out.append(Change(from_epoch(a), from_epoch(b), prog, exact=(a == b and len(out) > 0)))
    return out
