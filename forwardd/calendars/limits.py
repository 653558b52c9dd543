"""Bounds on the work a calendar may cause, checked before any occurrence is generated.

A hostile or broken feed can ask for ``RRULE:FREQ=SECONDLY`` without an end: the expander would walk
every second from DTSTART to the horizon, holding what it made. So every recurrence rule is first
costed from its own parts: how many occurrences it can have inside the window, and how many steps the
expander must take from DTSTART to reach the window's end. A rule over either bound is refused, naming
the feed and the event; the feed then keeps its last good copy. The occurrence count of the whole feed
is bounded again after expansion (events listed one by one count too).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from ..errors import CalendarError

_PERIOD_S = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 7 * 86400,
             "MONTHLY": 28 * 86400, "YEARLY": 365 * 86400}
# Most values a BYxxx part can add per period of each frequency (a BYDAY of a monthly rule can match
# each weekday up to five times; of a weekly rule once).
_EXPANDS = {
    "BYSECOND": {"MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"},
    "BYMINUTE": {"HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"},
    "BYHOUR": {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"},
    "BYDAY": {"WEEKLY", "MONTHLY", "YEARLY"},
    "BYMONTHDAY": {"MONTHLY", "YEARLY"},
    "BYYEARDAY": {"YEARLY"},
    "BYWEEKNO": {"YEARLY"},
    "BYMONTH": {"YEARLY"},
}


@dataclass(frozen=True)
class Limits:
    """``max_occurrences`` in the window per feed; ``max_steps`` an expander may take for one rule."""

    max_occurrences: int = 50_000
    max_steps: int = 2_000_000


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.timezone.utc)
    return None


def _per_period(rule: Any, freq: str) -> int:
    factor = 1
    for part, freqs in _EXPANDS.items():
        values = rule.get(part)
        if values and freq in freqs:
            n = len(values) if isinstance(values, list) else 1
            if part == "BYDAY" and freq in ("MONTHLY", "YEARLY"):
                n *= 5 if freq == "MONTHLY" else 53
            factor *= n
    return factor


def check_rules(name: str, components: list[Any], start: dt.datetime, end: dt.datetime, limits: Limits) -> None:
    """Refuse (CalendarError naming the feed and UID) any recurrence rule of ``components`` that would
    make more than ``limits.max_occurrences`` occurrences in ``[start, end)`` or need more than
    ``limits.max_steps`` steps to expand."""
    for cal in components:
        for ev in cal.walk("VEVENT"):
            rules = ev.get("RRULE")
            if rules is None:
                continue
            for rule in rules if isinstance(rules, list) else [rules]:
                _check_rule(name, ev, rule, start, end, limits)


def _check_rule(name: str, ev: Any, rule: Any, start: dt.datetime, end: dt.datetime, limits: Limits) -> None:
    freq_values = rule.get("FREQ") or []
    freq = str(freq_values[0] if isinstance(freq_values, list) and freq_values else freq_values).upper()
    period = _PERIOD_S.get(freq)
    if period is None:
        return  # the expander rejects or skips a rule it cannot read
    interval_values = rule.get("INTERVAL") or [1]
    try:
        interval = max(1, int(interval_values[0] if isinstance(interval_values, list) else interval_values))
    except (TypeError, ValueError):
        interval = 1
    step = period * interval
    per_period = _per_period(rule, freq)
    dtstart = _as_datetime(ev["DTSTART"].dt) if ev.get("DTSTART") is not None else None
    if dtstart is None:
        return
    until_values = rule.get("UNTIL")
    until = _as_datetime(until_values[0] if isinstance(until_values, list) and until_values else until_values)
    count_values = rule.get("COUNT")
    count = int(count_values[0] if isinstance(count_values, list) and count_values else count_values or 0) or None
    last = min(t for t in (end, until) if t is not None)
    if last < start or last < dtstart:
        return  # ends before the window: nothing to make
    in_window = (last - max(start, dtstart)).total_seconds() / step * per_period
    steps = (last - dtstart).total_seconds() / step * per_period
    if count is not None:
        in_window, steps = min(in_window, count), min(steps, count)
    uid = str(ev.get("UID", "") or "?")
    if in_window > limits.max_occurrences:
        raise CalendarError(name, f"event {uid!r} repeats {freq.lower()} (about {math.ceil(in_window):,} times "
                                  f"in the horizon), more than the {limits.max_occurrences:,} forwardd accepts")
    if steps > limits.max_steps:
        raise CalendarError(name, f"event {uid!r} repeats {freq.lower()} from {dtstart:%Y-%m-%d}: about "
                                  f"{math.ceil(steps):,} repetitions to expand, more than the "
                                  f"{limits.max_steps:,} forwardd accepts")
