"""Which lines have a change due, and the planned changes that wait for their line's drift slot.

A line has a change due when what it was last confirmed to hold (nothing, for a new line) is not the
plan's program for now, and would not route calls right until the next change's ``apply_by`` either (a
re-plan may choose another program for now than the one the line holds, equally right: no change for
that). While the line's program still routes calls right (the program *before* the due change, say),
the line is pending, not wrong, until the instant it would not (``right_until``).

A planned change may be sent at any instant of its window. Sent at its ``apply_from`` it costs a read
of its own and moves the line's drift checks; when the line's drift slot comes within the first half of
the window (``HOLD_WITHIN``) and the line is pending, the change waits for that slot instead: the
check's read is the change's, the drift checks go on unmoved, and half the window at least stays for
retries. Nothing here reads a clock: instants are passed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Config
from ..core.carrier import LineState
from ..core.compiler import Change
from ..core.plan import NumberPlan, program_at, right_until

if TYPE_CHECKING:
    from .services import Services

HOLD_WITHIN = 0.5  # the share of its window a change may wait for its line's drift slot


@dataclass(frozen=True)
class Due:
    """A line whose last confirmed program is not the plan's for now."""

    voipnumber: str
    change: Change  # the change in force now
    right_until: dt.datetime | None  # until when the line, holding what it was last confirmed to, is right


def right_as_is(cfg: Config, n: NumberPlan, state: LineState, start: dt.datetime, limit: dt.datetime) -> dt.datetime:
    """Until when a line holding ``state`` routes calls as line ``n``'s timeline wants, from ``start`` (at
    most ``limit``; ``start`` itself when it is wrong at once)."""
    if state.caller_id != cfg.number(n.voipnumber).forwardcli:
        return start
    return right_until(state.program, n.segments, cfg.tz, start, limit, cfg.settings_of(n.voipnumber).window_wraps_midnight)


def next_apply_by(n: NumberPlan, i: int) -> dt.datetime:
    """When the change after ``n.changes[i]`` must be in (the plan's end after the last)."""
    return n.changes[i + 1].apply_by if i + 1 < len(n.changes) else n.segments[-1].end if n.segments else n.changes[i].apply_by


@dataclass(frozen=True)
class _Answer:
    segments: object  # the plan's list itself (compared by identity: a new plan asks afresh)
    state: LineState
    settings: tuple[bool, bool]
    limit: dt.datetime
    start: dt.datetime
    until: dt.datetime


class Rightness:
    """``right_as_is`` for each line, remembered: the first wrong instant does not move as time goes on
    towards it, so the answer holds until then, for the same plan, state and limit. The engine keeps
    one for its life, so publishing the page (once a second in a storm) asks again only what changed."""

    def __init__(self) -> None:
        self._answers: dict[str, _Answer] = {}

    def __call__(self, cfg: Config, n: NumberPlan, state: LineState, start: dt.datetime,
                 limit: dt.datetime) -> dt.datetime:
        v = n.voipnumber
        settings = (cfg.number(v).forwardcli, cfg.settings_of(v).window_wraps_midnight)
        old = self._answers.get(v)
        if (old is not None and old.segments is n.segments and old.state == state and old.settings == settings
                and old.limit == limit and old.start <= start < old.until):
            return old.until
        until = right_as_is(cfg, n, state, start, limit)
        self._answers[v] = _Answer(n.segments, state, settings, limit, start, until)
        return until


def due(sv: Services, n: NumberPlan, now: dt.datetime, right: Rightness | None = None) -> Due | None:
    """Line ``n``'s change due at ``now``; None when the line holds its program for now, or one that routes
    calls right until the next change's ``apply_by`` (``right`` remembers answers)."""
    found = program_at(n.changes, now)
    if found is None:
        return None
    i, change = found
    rec = sv.edges_of(n.voipnumber).reconciler
    last = rec.last_confirmed(n.voipnumber)
    caller_id = sv.cfg.number(n.voipnumber).forwardcli
    if last is None:
        return Due(n.voipnumber, change, None)
    if last.state.holds(change.program, caller_id):
        return None
    limit = next_apply_by(n, i)
    until = (right or Rightness())(sv.cfg, n, last.state, now, limit)
    if until >= limit:
        return None  # another program than the plan's, as right until the next change must be in
    return Due(n.voipnumber, change, until if until > now else None)


def all_due(sv: Services, now: dt.datetime, right: Rightness | None = None) -> list[Due]:
    if sv.plan is None or not sv.accounts:
        return []
    right = right or Rightness()
    return [d for n in sv.plan.numbers if (d := due(sv, n, now, right)) is not None]


def pending(sv: Services, now: dt.datetime, right: Rightness | None = None) -> tuple[list[str], dict[str, dt.datetime]]:
    """Lines with a change due, in two kinds: those not confirmed to route calls right now, and those
    whose program routes calls right until the due change's ``apply_by`` (with that instant)."""
    wrong: list[str] = []
    right_until: dict[str, dt.datetime] = {}
    for d in all_due(sv, now, right):
        if d.right_until is not None and now < d.right_until:
            right_until[d.voipnumber] = d.right_until
        else:
            wrong.append(d.voipnumber)
    return wrong, right_until


@dataclass(frozen=True)
class Held:
    """A planned change that waits for its line's drift slot (``slot``), so one read serves both: from
    ``since`` (when it fell due) while the line sends calls right until ``until``."""

    since: dt.datetime
    until: dt.datetime
    slot: dt.datetime


class Holds:
    """The planned changes waiting for their lines' drift slots."""

    def __init__(self, right: Rightness) -> None:
        self._held: dict[str, Held] = {}
        self.right = right

    def _may_wait(self, sv: Services, v: str, slot: dt.datetime | None, now: dt.datetime,
                  since: dt.datetime) -> Held | None:
        """The wait for ``slot`` of the change due on ``v`` (due since ``since``), when it may: the line
        sends calls right until a moment (``Due.right_until``: the change's ``apply_by``, as a rule) and the
        slot comes in the first half of the time from ``since`` to it. A re-plan may bring that moment
        nearer; the plan's own first change (at its start, on the hour) says nothing of it."""
        plan = sv.number_plan(v)
        d = due(sv, plan, now, self.right) if plan is not None else None
        if d is None or slot is None or d.right_until is None:
            return None
        if not now < slot <= since + (d.right_until - since) * HOLD_WITHIN:
            return None
        return Held(since, d.right_until, slot)

    def hold(self, sv: Services, v: str, slot: dt.datetime | None, now: dt.datetime) -> bool:
        """Let the change due now on ``v`` wait for the line's next drift slot (``slot``) when it may. True
        when it waits."""
        if not sv.cfg.daemon.wait_for_drift_slot:
            return False
        held = self._may_wait(sv, v, slot, now, now)
        if held is not None:
            self._held[v] = held
        return held is not None

    def waiting(self, sv: Services, v: str, slot: dt.datetime | None, now: dt.datetime) -> bool:
        """Whether ``v``'s due change still waits for its slot: the line's next drift check is still that
        slot, and the change due now (a re-plan may have changed it) may still wait for it."""
        held = self._held.get(v)
        if held is None:
            return False
        again = self._may_wait(sv, v, slot, now, held.since) if slot == held.slot else None
        if again is None:
            del self._held[v]
            return False
        self._held[v] = again
        return True

    def take(self, v: str, now: dt.datetime) -> Held | None:
        """The change waiting for ``v``'s slot, when that slot has come (it is no longer held)."""
        held = self._held.pop(v, None)
        return held if held is not None and held.slot <= now else None

    def drop(self, v: str) -> Held | None:
        return self._held.pop(v, None)

    def clear(self) -> None:
        self._held.clear()
