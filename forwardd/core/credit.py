"""A line's credit, in numbers and in words. Pure: readings and instants are passed in.

Every forwarded call is paid from the line's credit; when it runs out, forwarding stops and nobody is
told. The carrier reports the credit as text (aql: ``credit:3.42``); ``parse_credit`` reads it.

**Days left** (``estimate``): the money spent over the last 7 days of readings (each fall between two
readings; a rise is a top-up and spends nothing), divided by the time those readings span, is the rate;
the credit now divided by that rate is the days left. Readings spanning less than a day give no estimate
(a day's pattern, night and day, is the least a rate should hold). Where the week's start falls between
two readings of a falling credit, the credit at that instant is interpolated, as if spent evenly.

**Compact readings** (``add_point``): a reading equal to the last one adds nothing (except one a day, so
that a long quiet spell is known to be quiet); within a 6-hour slot, a run falling (or rising) one way
keeps only its newest point, since the spend along a one-way run is its two ends' difference; points
older than the week are dropped except the newest of them (the credit at the week's start). A line
keeps a few dozen points at most, however often it is read.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Sequence

WINDOW = dt.timedelta(days=7)
MIN_SPAN = dt.timedelta(days=1)
ANCHOR = dt.timedelta(days=1)  # an unchanged credit is kept once a day
SLOT_S = 6 * 3600  # a one-way run keeps one point per slot
_AMOUNT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
SHOWN = 24  # a credit text is shown (and journalled) cut to this length


def parse_credit(text: str) -> Decimal:
    """The amount a carrier's credit text says (``"3.42"``, ``" 10 "``, ``"-0.50"``, ``"£3.42"``).
    Raises ValueError for anything else (``"n/a"``, ``""``, ``"NaN"``)."""
    t = text.strip().removeprefix("£").strip()
    if not _AMOUNT.match(t):
        raise ValueError(f"{shown(text)!r} is not an amount")
    try:
        return Decimal(t)
    except InvalidOperation:
        raise ValueError(f"{shown(text)!r} is not an amount") from None


def shown(text: str) -> str:
    """A carrier's credit text as it may be shown: printable, at most ``SHOWN`` characters."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= SHOWN else clean[: SHOWN - 1] + "…"


def _aware(t: dt.datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t!r}: pass an aware instant")


@dataclass(frozen=True, slots=True)
class CreditPoint:
    """One reading of a line's credit: when, and how much."""

    at: dt.datetime
    amount: Decimal


@dataclass(frozen=True)
class Estimate:
    """What the week's readings say: spent per day, the days the credit now lasts at that rate (None
    when nothing was spent), over how long a span of readings."""

    per_day: Decimal
    days_left: float | None
    span: dt.timedelta


def add_point(points: Sequence[CreditPoint], new: CreditPoint, window: dt.timedelta = WINDOW) -> tuple[CreditPoint, ...]:
    """``points`` (oldest first) with the reading ``new``, compacted as the module says; ``points`` itself
    (when a tuple) when the reading adds nothing. A reading older than the last one is ignored."""
    _aware(new.at)
    if points and (new.at <= points[-1].at or (new.amount == points[-1].amount and new.at - points[-1].at < ANCHOR)):
        return tuple(points)
    pts = list(points)
    if len(pts) >= 2:
        p, q = pts[-2], pts[-1]
        one_way = (p.amount > q.amount > new.amount) or (p.amount < q.amount < new.amount)
        if one_way and _slot(q.at) == _slot(new.at):
            pts.pop()  # q lay inside a run going one way: its ends say what it spent
    pts.append(new)
    start = new.at - window
    older = [i for i, p in enumerate(pts) if p.at <= start]
    if older:
        pts = pts[older[-1]:]  # the newest reading at or before the week's start stays: its credit then
    return tuple(pts)


def _slot(t: dt.datetime) -> int:
    return int(t.timestamp()) // SLOT_S


def estimate(points: Sequence[CreditPoint], now: dt.datetime, window: dt.timedelta = WINDOW,
             min_span: dt.timedelta = MIN_SPAN) -> Estimate | None:
    """The rate of spend over the week before ``now`` and the days the last reading's credit lasts at it;
    None when the readings span less than ``min_span``. Raises ValueError for a naive ``now``."""
    _aware(now)
    pts = sorted((p for p in points if p.at <= now), key=lambda p: p.at)
    if not pts:
        return None
    start = max(now - window, pts[0].at)
    span = now - start
    if span < min_span:
        return None
    before = [p for p in pts if p.at <= start][-1]
    after = [p for p in pts if p.at > start]
    value = before.amount
    if after and after[0].amount < before.amount and start > before.at:  # spent evenly between the two
        share = Decimal((start - before.at).total_seconds()) / Decimal((after[0].at - before.at).total_seconds())
        value = before.amount - (before.amount - after[0].amount) * share
    spent = Decimal(0)
    for p in after:
        if p.amount < value:
            spent += value - p.amount
        value = p.amount
    per_day = spent / Decimal(span.total_seconds() / 86400)
    current = pts[-1].amount
    if per_day <= 0:
        return Estimate(Decimal(0), None, span)
    return Estimate(per_day, max(0.0, float(current / per_day)), span)


@dataclass(frozen=True)
class CreditState:
    """A line's credit as last read: the carrier's text, its amount (None: unreadable), when, the week's
    estimate, and whether it is below the alert threshold (``below``: the threshold, when it is)."""

    text: str
    amount: Decimal | None
    at: dt.datetime
    estimate: Estimate | None = None
    below: Decimal | None = None
    soon: bool = False  # fewer days left than the alert's credit_days

    @property
    def readable(self) -> bool:
        return self.amount is not None

    @property
    def days_left(self) -> float | None:
        return self.estimate.days_left if self.estimate is not None else None

    @property
    def attention(self) -> bool:
        """Whether someone should look: unreadable, below the threshold, or running out soon."""
        return self.amount is None or self.below is not None or self.soon

    def as_json(self) -> dict[str, object]:
        """``{"credit", "amount", "at", "days_left", "per_day", "low", "soon"}`` (amounts as text)."""
        est = self.estimate
        return {"credit": shown(self.text), "amount": None if self.amount is None else str(self.amount),
                "at": self.at.isoformat(), "days_left": None if self.days_left is None else round(self.days_left, 1),
                "per_day": None if est is None else f"{est.per_day:.2f}", "low": self.below is not None,
                "soon": self.soon}


def days_words(days: float) -> str:
    """``less than a day``, ``about 1 day``, ``about 4 days``, ``more than 60 days``."""
    if days < 1:
        return "less than a day"
    if days > 60:
        return "more than 60 days"
    n = round(days)
    return f"about {n} day{'' if n == 1 else 's'}"


def estimate_words(est: Estimate | None) -> str:
    """What the week's readings say, for people: ``about 4 days left at this week's rate``."""
    if est is None:
        return "too few readings yet to tell how long it lasts"
    if est.days_left is None:
        return "nothing spent this week"
    return f"{days_words(est.days_left)} left at this week's rate"


def credit_words(state: CreditState | None) -> str:
    """A line's credit in words: ``credit 3.42, about 4 days left at this week's rate``; ``credit 1.20,
    below 2.00, about 1 day left ...``; ``credit unreadable ('n/a')``; ``credit not read yet``."""
    if state is None:
        return "credit not read yet"
    if state.amount is None:
        return f"credit unreadable ({shown(state.text)!r})"
    below = f", below {state.below}" if state.below is not None else ""
    return f"credit {state.amount}{below}, {estimate_words(state.estimate)}"
