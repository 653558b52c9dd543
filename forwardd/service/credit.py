"""The credit watch: every read of a line (the reconciler's ``on_reading``) carries its credit, so
watching it costs no request. One watch per set of services.

For each line it keeps the credit last read and a week of compact readings (``core.credit``), and:
- journals the credit when it changes (kind ``credit``: a change, not every read);
- alerts, one alert per line (``AlertKind.CREDIT``, keyed by the number), when the credit falls below
  ``alerts.credit_below`` or lasts fewer than ``alerts.credit_days`` days at the week's rate, and
  recovers when topped up (back at or above the threshold, and a day more than ``credit_days`` left);
- reports a credit it cannot read as an alert of its own (``detail="unreadable"``), never a crash.

The readings survive a restart in a small state file, ``credit.json`` beside the journal, written at
most every few minutes and when the services close (by the sets that write the journal: ``run``,
``apply``). A file rather than the journal: reading a line's week back from the journal at start-up
would scan every credit entry ever written (the journal is append-only and has no "latest per line"
query), where the file holds exactly the compact week, costs one read whatever the journal's size,
and works while the journal is degraded. The journal stays the record of the changes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from ..config import Config
from ..core.carrier import Reading
from ..core.credit import CreditPoint, CreditState, add_point, credit_words, estimate, parse_credit, shown
from ..files import atomic_write
from ..notify.alerts import Alerts
from ..notify.keys import AlertKey, AlertKind
from ..store.ports import EntryKind, JournalStore

log = structlog.get_logger("forwardd.credit")
STATE_FILE = "credit.json"
SAVE_EVERY = dt.timedelta(minutes=5)
RECOVERY_MARGIN_DAYS = 1.0  # a "runs out soon" alert clears only with a day more than credit_days left
UNREADABLE = "unreadable"
REJUDGE = dt.timedelta(hours=1)  # an unchanged credit's estimate (it drifts as the week moves on) is redone this often


class _Line:
    __slots__ = ("text", "points", "state")

    def __init__(self, text: str, points: tuple[CreditPoint, ...] = (), state: CreditState | None = None) -> None:
        self.text, self.points, self.state = text, points, state


class CreditWatch:
    """Each line's credit, from the reads the reconcilers make anyway."""

    def __init__(self, cfg: Config, journal: JournalStore | None, alerts: Alerts | None, path: Path | None,
                 write: bool = False) -> None:
        self.cfg = cfg
        self.journal = journal
        self.alerts = alerts
        self.path = path
        self.write = write
        self.lines: dict[str, _Line] = {}
        self.dirty = False
        self.saved_at: dt.datetime | None = None
        self._load()

    # ------------------------------------------------------------------------------------ readings

    def observe(self, number: str, reading: Reading, now: dt.datetime) -> None:
        """A read of ``number`` (the reconciler's ``on_reading``): note its credit, journal a change,
        raise or clear the line's credit alerts. Never raises for what the carrier wrote."""
        text = reading.credit
        if text is None:
            return  # this carrier says nothing of credit
        line = self.lines.get(number)
        if line is None or line.text != text:
            self._journal(number, text, now)
        if line is None:
            line = self.lines[number] = _Line(text)
        line.text = text
        try:
            amount = parse_credit(text)
        except ValueError:
            line.state = CreditState(text, None, now)
            self._raise(AlertKey(AlertKind.CREDIT, number, detail=UNREADABLE),
                        f"{self._label(number)}: aql gave its credit as {shown(text)!r}, which is not an amount; "
                        "its credit is not watched until it is", now)
            self._changed(now)
            return
        points = add_point(line.points, CreditPoint(now, amount))  # (the same tuple when nothing is new)
        last = line.state
        if points is line.points and last is not None and last.amount == amount and now - last.at < REJUDGE:
            return  # the same credit, judged lately: nothing to do (most reads)
        if last is None or last.amount is None:
            self._clear(AlertKey(AlertKind.CREDIT, number, detail=UNREADABLE), now)
        line.points = points
        line.state = self._judge(text, amount, points, now)
        self._alert(number, line.state, now)
        self._changed(now)

    def _judge(self, text: str, amount: Decimal, points: tuple[CreditPoint, ...], now: dt.datetime) -> CreditState:
        s = self.cfg.alerts
        est = estimate(points, now)
        below = s.credit_below if s.credit_below > 0 and amount < s.credit_below else None
        days = est.days_left if est is not None else None
        soon = bool(s.credit_days) and days is not None and days < s.credit_days
        return CreditState(text, amount, now, est, below, soon)

    def _alert(self, number: str, st: CreditState, now: dt.datetime) -> None:
        key = AlertKey(AlertKind.CREDIT, number)
        s = self.cfg.alerts
        if st.below is not None or st.soon:
            est = st.estimate
            rate = (f"{math.floor(est.days_left * 10) / 10:.1f} days at this week's rate of {est.per_day:.2f} a day"
                    if est is not None and est.days_left is not None else None)
            what = (f"its credit is {st.amount}, below {st.below}" + (f" ({rate})" if rate else "")
                    if st.below is not None else f"its credit of {st.amount} lasts {rate}")
            self._raise(key, f"{self._label(number)}: {what}. Calls stop being forwarded when it runs out: top it "
                             "up in aql's portal", now)
            return
        days = st.days_left
        standing = self.alerts is not None and key in self.alerts.active
        if standing and s.credit_days and days is not None and days < s.credit_days + RECOVERY_MARGIN_DAYS:
            return  # only just over credit_days: not yet recovered (an estimate wavering about it stays quiet)
        self._clear(key, now)

    def _changed(self, now: dt.datetime) -> None:
        self.dirty = True
        if self.saved_at is None or now - self.saved_at >= SAVE_EVERY:
            self.save(now)

    # -------------------------------------------------------------------------------------- queries

    def state(self, number: str) -> CreditState | None:
        """The line's credit as last read (None: never read)."""
        line = self.lines.get(number)
        return line.state if line is not None else None

    def states(self) -> dict[str, CreditState]:
        """Every line's credit as last read (a copy: the page and the metrics read it from their threads)."""
        return {n: line.state for n, line in list(self.lines.items()) if line.state is not None}

    def current(self, number: str, now: dt.datetime, live: str | None = None) -> CreditState | None:
        """The line's credit now: ``live`` (a credit just read, by ``forwardd status``) judged against the
        week kept, without noting it; else the last reading kept."""
        line = self.lines.get(number)
        if live is None:
            return line.state if line is not None else None
        try:
            amount = parse_credit(live)
        except ValueError:
            return CreditState(live, None, now)
        points = add_point(line.points if line is not None else (), CreditPoint(now, amount))
        return self._judge(live, amount, points, now)

    def in_words(self, number: str, now: dt.datetime, live: str | None = None) -> str:
        """The line's credit in words (``credit 3.42, about 4 days left at this week's rate``), as
        ``forwardd status`` shows it beside the line; ``live`` is the credit its own read found."""
        return credit_words(self.current(number, now, live))

    def as_json(self, number: str, now: dt.datetime, live: str | None = None) -> dict[str, Any] | None:
        """``status --json``'s ``credit`` of a line (``CreditState.as_json`` plus ``words``), or None."""
        st = self.current(number, now, live)
        return None if st is None else {**st.as_json(), "words": credit_words(st)}

    def adopt(self, old: CreditWatch) -> None:
        """Take ``old``'s readings (a reload: the running set's are at least as new as the file's)."""
        self.lines.update(old.lines)
        self.dirty = self.dirty or old.dirty
        self.saved_at = old.saved_at

    # ------------------------------------------------------------------------------------ the edges

    def _label(self, number: str) -> str:
        try:
            return self.cfg.number(number).label
        except KeyError:
            return number

    def _journal(self, number: str, text: str, now: dt.datetime) -> None:
        if self.journal is not None:
            try:
                account = self.cfg.account_of(number)
            except KeyError:
                account = None
            self.journal.record(EntryKind.CREDIT.value, now, number, None, credit=shown(text), account=account)

    def _raise(self, key: AlertKey, message: str, now: dt.datetime) -> None:
        if self.alerts is not None:
            self.alerts.raise_(key, message, now)
        else:
            log.warning("credit", voipnumber=key.number, message=message)

    def _clear(self, key: AlertKey, now: dt.datetime) -> None:
        if self.alerts is not None:
            self.alerts.clear(key, now)

    def save(self, now: dt.datetime | None = None) -> None:
        """Write the readings to the state file (a set that writes, when something changed)."""
        if not self.write or self.path is None or not self.dirty:
            return
        data = {"version": 1, "lines": {
            n: {"credit": line.text, "at": line.state.at.isoformat(),
                "points": [[p.at.isoformat(), str(p.amount)] for p in line.points]}
            for n, line in self.lines.items() if line.state is not None}}
        try:
            atomic_write(self.path, json.dumps(data, separators=(",", ":")))
        except OSError as err:  # a full disk: the credit is still watched; a restart forgets a few readings
            log.warning("credit_not_saved", path=str(self.path), error=err.strerror or str(err))
            return
        self.dirty, self.saved_at = False, now or self.saved_at

    def _load(self) -> None:
        """The readings a previous run kept; a missing or unreadable file starts afresh."""
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text())
            for number, entry in data["lines"].items():
                at = dt.datetime.fromisoformat(entry["at"])
                points = tuple(CreditPoint(dt.datetime.fromisoformat(t), Decimal(amount)) for t, amount in entry["points"])
                if at.tzinfo is None or any(p.at.tzinfo is None for p in points):
                    continue
                line = self.lines[str(number)] = _Line(str(entry["credit"]), points)
                try:
                    amount = parse_credit(line.text)
                except ValueError:
                    line.state = CreditState(line.text, None, at)
                    continue
                line.state = self._judge(line.text, amount, points, at)
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as err:
            log.warning("credit_state_unreadable", path=str(self.path), error=str(err))
