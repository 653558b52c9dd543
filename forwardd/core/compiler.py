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


@dataclass(frozen=True)
class Change:
    """Send ``program`` at any instant of ``[apply_from, apply_by]`` (aware UTC datetimes)."""

    apply_from: dt.datetime
    apply_by: dt.datetime
    program: Program
    exact: bool

    @property
    def slack(self) -> dt.timedelta:
        return self.apply_by - self.apply_from


@dataclass(frozen=True)
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


def _runs(segs: Sequence[tuple[int, int, str | None]], want: str | None) -> Spans:
    """The merged stretches in which the timeline wants ``want``."""
    out: Spans = []
    for s, e, w in segs:
        if w == want:
            if out and out[-1][1] == s:
                out[-1] = (out[-1][0], e)
            else:
                out.append((s, e))
    return out


def _intersect(xs: Spans, ys: Sequence[tuple[int, int]]) -> Spans:
    out: Spans = []
    i = j = 0
    nx, ny = len(xs), len(ys)
    while i < nx and j < ny:
        (xa, xb), (ya, yb) = xs[i], ys[j]
        a = xa if xa > ya else ya
        b = xb if xb < yb else yb
        if a < b:
            out.append((a, b))
        if xb < yb:
            i += 1
        else:
            j += 1
    return out


def _subtract(xs: Spans, ys: Sequence[tuple[int, int]]) -> Spans:
    out: Spans = []
    j = 0
    for a, b in xs:
        cur = a
        while j < len(ys) and ys[j][1] <= cur:
            j += 1
        k = j
        while k < len(ys) and ys[k][0] < b:
            if ys[k][0] > cur:
                out.append((cur, ys[k][0]))
            cur = max(cur, ys[k][1])
            k += 1
        if cur < b:
            out.append((cur, b))
    return out


def _union(xs: Spans, ys: Spans) -> Spans:
    """Union of two sorted lists of disjoint spans, touching spans joined."""
    out: Spans = []
    for a, b in sorted(xs + ys):
        if out and out[-1][1] >= a:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


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
    segs = [(epoch(s.start), epoch(s.end), s.forwardto) for s in segments]
    for (_, e0, _), (s1, _, _) in zip(segs, segs[1:]):
        if e0 != s1:
            raise ValueError("timeline segments must be contiguous")
    h0, h1 = segs[0][0], segs[-1][1]
    pieces = offset_pieces(tz, h0, h1)

    # A program is right where the timeline wants its target and it forwards, or wants nothing and
    # it does not forward.
    nobody = _runs(segs, None)
    programs: list[Program] = [Program(None, False)]
    options = [(a, -b, 0) for a, b in nobody]  # (from, -until, program index): sorts natively
    wanted: dict[str, Spans] = {}
    quiet: dict[tuple[int, int], Spans] = {}  # where nobody is wanted and the window is shut
    for target, a, b in _candidates(segs, pieces, wraps):
        if target not in wanted:
            wanted[target] = _runs(segs, target)
        fwd = _forwarding(a, b, tz, h0, h1)
        if (a, b) not in quiet:
            quiet[(a, b)] = _subtract(nobody, fwd)
        right = _union(_intersect(wanted[target], fwd), quiet[(a, b)])
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
    last_target: str | None = next((o.program.forwardto for o in chain if o.program.active), None)
    for (a, b), o in zip(spans, chain):
        prog = o.program
        if prog.active:
            last_target = prog.forwardto
        else:  # off: leave forwardto as it was, so only forwardactive changes
            prog = Program(last_target, False)
        out.append(Change(from_epoch(a), from_epoch(b), prog, exact=(a == b and len(out) > 0)))
    return out
