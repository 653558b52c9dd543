"""Notices to the people going on call: the rules are in ``core.notices``; this claims each notice in the
store before it is sent (so it goes out once, across restarts), delivers it through the notifier in the
background (retried with back-off, never on the way to aql), and journals it. If the store cannot be
written (a full disk), notices still go out, remembered in memory for this run; except in a cluster
(``claims_required``), where another host may send the same notice: there a notice waits until its claim
is recorded in the shared database."""

from __future__ import annotations

import asyncio
import datetime as dt

import structlog

from ..config import Config
from ..core import notices as rules
from ..core.plan import Plan
from ..core.timeline import display_name
from ..errors import ForwarddError
from ..store.ports import JournalStore, OverrideStore
from .notifier import Message, Notifier

log = structlog.get_logger("forwardd.notices")


class Notices:
    def __init__(self, cfg: Config, store: OverrideStore | None, notifier: Notifier, journal: JournalStore | None,
                 claims_required: bool = False) -> None:
        self.cfg = cfg
        self.claims_required = claims_required
        self.store = store
        self.notifier = notifier
        self.journal = journal
        self._made: set[str] = set()  # claimed in this run (all of them, when the store is failing)
        self.on_outcome: list[tuple[str, bool]] = []  # (key, delivered), for the metrics and tests

    @property
    def people(self) -> dict[str, str]:
        """The people who asked for notices: name -> phone."""
        return {name: p.phone for name, p in self.cfg.people.items() if p.notify}

    def pending(self, plan: Plan, now: dt.datetime) -> list[rules.Notice]:
        """The notices to send now that were never sent before (each claimed as it is returned). Blocking
        (the store): run it off the event loop."""
        people = self.people
        if not people:
            return []
        shifts = rules.shifts(plan.numbers, people, (plan.start, plan.end))
        labels = {n.voipnumber: n.label for n in self.cfg.numbers}
        tz = self.cfg.tz
        try:
            told = self.store.told(now) if self.store is not None else []
        except ForwarddError as err:
            log.warning("notices_store_failing", error=str(err))
            told = []
        candidates = rules.due(shifts, now, self.cfg.notices.before, labels, tz) + rules.changes(
            told, shifts, now, labels, tz)
        out = []
        for notice in candidates:
            if notice.key in self._made:
                continue
            first = True
            if self.store is not None:
                try:
                    s = notice.shift
                    first = self.store.record_notice(notice.key, notice.person, notice.voipnumber, notice.kind,
                                                     s.start, s.end, s.open_end, now)
                except ForwarddError as err:
                    log.warning("notices_store_failing", error=str(err))
                    if self.claims_required:
                        continue  # not claimed: tried again next time, never sent twice by two hosts
            self._made.add(notice.key)
            if first:
                out.append(notice)
        return out

    def send(self, notice: rules.Notice, now: dt.datetime) -> None:
        """Deliver in the background; the outcome is journalled when known."""
        urls = self.cfg.people[notice.person].notify
        who = display_name(notice.person)

        def outcome(ok: bool) -> None:
            try:
                self.store.notice_outcome(notice.key, "sent" if ok else "failed")  # type: ignore[union-attr]
            except ForwarddError as err:
                log.warning("notices_store_failing", error=str(err))

        def done(ok: bool) -> None:  # on the event loop: the store (a database, perhaps away) is written off it
            self.on_outcome.append((notice.key, ok))
            if self.store is not None:
                asyncio.get_running_loop().run_in_executor(None, outcome, ok)
            if self.journal is not None:
                self.journal.record("notice", now, notice.voipnumber, ok, person=who, notice=notice.kind,
                                    message=notice.body)
            (log.info if ok else log.warning)("notice", person=who, voipnumber=notice.voipnumber, kind=notice.kind,
                                              delivered=ok)

        self.notifier.send(urls, Message(notice.title, notice.body), done=done)
