"""Level-triggered reconciliation: make a line hold the program that should be in force now.

For one number: work out the program in force now (from the newest plan, again at every attempt, so
that a pass that outlives a re-plan or an outage never sends a stale program), read the line; if it
differs, write the change, then read back until the line holds it, with backoff and jitter. An exact
hand-over (a change of target while forwarding continues) is sent at its boundary without a read
first, then read back. A pass gives up after a few attempts, except while a planned change is inside
its send window (``keep_trying_until``), when it keeps going, through transient refusals too. An
authentication refusal stops this account's lines and, for a minute, every other line of the same
account: one probe at a time then finds out whether the credentials work again. Other accounts have
reconcilers of their own and are never held up.

The reconciler knows one carrier (``core.carrier.Carrier``), never a carrier's fields. Every request
and its result goes to the journal. Repeating a pass is always safe: a change means "make the line hold
program P". A difference from the state last confirmed, while that state is still the one due, is drift
(a hand-made change in the provider's portal): restored or only reported, per ``on_drift``; alerted
either way.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
import random
from dataclasses import dataclass, field
from typing import Callable

import structlog

from ..clock import Clock
from ..config import Config
from ..core.carrier import Carrier, LineState, Reading
from ..core.plan import NumberPlan, program_at
from ..core.provider import Program
from ..errors import CarrierAuthError, CarrierError, CarrierRejected, CarrierThrottled
from ..notify.alerts import Alerts
from ..notify.keys import AlertKey, AlertKind
from ..store.ports import EntryKind, JournalStore
from .budget import RequestBudget
from .due import next_apply_by, right_as_is

log = structlog.get_logger("forwardd.reconcile")

AUTH_COOLDOWN = dt.timedelta(seconds=60)
# Set in the one pass that may try the credentials again after a refusal (the probe).
_PROBE: contextvars.ContextVar[bool] = contextvars.ContextVar("forwardd_auth_probe", default=False)


class Failure(str, enum.Enum):
    """Why a pass did not confirm its line (for code: retries, alerts, logs)."""

    AUTH = "auth"  # the account refused the credentials
    AUTH_BLOCKED = "auth_blocked"  # not tried: the credentials were refused a moment ago
    REJECTED = "rejected"  # the carrier refused the request (its message is in ``error``)
    THROTTLED = "throttled"  # the carrier asked us to slow down
    TRANSPORT = "transport"  # no answer, or a garbled one
    MISMATCH = "mismatch"  # the read-back does not hold what was sent
    NO_PROGRAM = "no_program"  # nothing is planned for now (a calendar never loaded)
    FENCED = "fenced"  # a standby, or a leader that may have lost its lease: nothing sent
    RETIRED = "retired"  # the services are being replaced (a reload)


class AuthBlocked(CarrierError):
    """Not sent: the carrier refused the credentials a moment ago, and this pass is not the probe."""


class Fenced(CarrierError):
    """Not sent: this instance may not send now (a standby in a cluster, or a leader that may have lost
    its lease). The pass stops: a standby reads nothing either."""

    def __init__(self) -> None:
        super().__init__("not sending: this instance does not hold the cluster lease (a standby, or a leader "
                         "that may have lost it)")


class Retired(Exception):
    """The services this pass runs on are being replaced (a reload): stop at this safe point."""


@dataclass
class Outcome:
    voipnumber: str
    ok: bool
    changed: bool = False
    drift: bool = False
    attempts: int = 0
    error: str | None = None
    failure: Failure | None = None
    lateness_s: float | None = None  # for an exact hand-over: confirmation time minus the boundary
    skipped: bool = False  # not tried (credentials refused a moment ago, fenced, or retiring)
    program: Program | None = None

    def fail(self, failure: Failure, error: str, skipped: bool = False) -> None:
        self.failure, self.error = failure, error
        self.skipped = self.skipped or skipped


PlanSource = Callable[[], "NumberPlan | None"]
_SKIPPING = (Failure.AUTH_BLOCKED, Failure.FENCED, Failure.RETIRED)


@dataclass
class Reconciler:
    """Reconciles the lines of one account (``carrier``)."""

    cfg: Config
    carrier: Carrier
    journal: JournalStore | None
    alerts: Alerts | None
    clock: Clock
    attempts_per_pass: int = 5
    backoff_s: float = 0.5
    backoff_cap_s: float = 8.0
    rng: random.Random = field(default_factory=random.Random)
    confirmed: dict[str, Reading] = field(default_factory=dict)  # what each line was last confirmed to hold
    read_at: dict[str, dt.datetime] = field(default_factory=dict)  # the last read of each line
    retiring: bool = False
    auth_failed_at: dt.datetime | None = None
    # background reads (drift checks, the start-up read) wait for its tokens; 429/503 pause them
    budget: RequestBudget | None = None
    on_throttled: Callable[[], None] | None = None
    # called before each change: False means "do not send" (a standby, or a leader that may have lost its lease)
    may_send: Callable[[], bool] | None = None
    # last_confirmed may ask the journal for a line it does not know (False in a cluster: the daemon loads
    # every line's last confirmation from the shared journal at once, off the event loop)
    journal_lookups: bool = True
    # told of every reading (the credit watch)
    on_reading: Callable[[str, Reading, dt.datetime], None] | None = None

    @property
    def account(self) -> str:
        return self.carrier.name

    def fenced(self) -> bool:
        """True when this instance may not send now (a standby, or a leader cut off from the database)."""
        return self.may_send is not None and not self.may_send()

    def gate(self, action: str) -> None:
        """Called by the carrier's client just before each request goes out (after waiting for a free
        slot): once the credentials were refused, only the probe's requests go (else AuthBlocked), and no
        change goes once the fence has closed (Fenced): the wait for a slot may have outlasted it. (A
        read is let through: the daemon's own passes stop at the fence before reading, and ``status``
        may read the account from any host.)"""
        if action == "changeuser" and self.fenced():
            raise Fenced()
        if self.auth_failed_at is not None and not _PROBE.get():
            raise AuthBlocked(f"{action} not sent: the account refused the credentials a moment ago")

    def _journal(self, kind: EntryKind, voipnumber: str | None, ok: bool | None = None, **detail: object) -> None:
        if self.journal is not None:
            self.journal.record(kind.value, self.clock.now(), voipnumber, ok, account=self.account, **detail)

    def _alert(self, key: AlertKey, message: str) -> None:
        if self.alerts is None:
            log.warning("alert", alert=key.kind.value, voipnumber=key.number, message=message)
        else:  # Alerts logs it, rate-limited
            self.alerts.raise_(key, message, self.clock.now())

    def _clear(self, key: AlertKey) -> None:
        if self.alerts is not None:
            self.alerts.clear(key, self.clock.now())

    def _auth_key(self) -> AlertKey:
        return AlertKey(AlertKind.AUTH, account=self.account if len(self.cfg.account_names) > 1 else None)

    def last_confirmed(self, voipnumber: str, lookup: bool | None = None) -> Reading | None:
        """What the line was last confirmed to hold: in memory, else (once) from the journal, when
        ``journal_lookups`` allows it (``lookup`` says otherwise: ``status`` reads a cluster's journal)."""
        allowed = self.journal_lookups if lookup is None else lookup
        if voipnumber not in self.confirmed and self.journal is not None and allowed:
            record = self.journal.last_confirmed(voipnumber)
            if record:
                self.remember(voipnumber, record)
        return self.confirmed.get(voipnumber)

    def remember(self, voipnumber: str, record: dict[str, str]) -> None:
        """Take a journalled record of what the line was confirmed to hold (one that no longer reads is
        forgotten: the line is then treated as unknown)."""
        try:
            self.confirmed[voipnumber] = Reading(self.carrier.state_of(record), record)
        except (ValueError, KeyError, TypeError):
            self.confirmed.pop(voipnumber, None)

    async def reconcile(
        self, plan: NumberPlan | PlanSource, *, exact_at: dt.datetime | None = None,
        keep_trying_until: dt.datetime | None = None, background: bool = False, paced: bool = True,
        unread: bool = False,
    ) -> Outcome:
        """One pass for one line: at least ``attempts_per_pass`` tries, and on through failures until
        ``keep_trying_until`` (a hand-over due now should not wait for the next periodic pass). ``plan``
        may be a function giving the newest plan. Never raises for carrier trouble: the Outcome says
        what happened."""
        plan_of: PlanSource = plan if callable(plan) else (lambda: plan)  # type: ignore[assignment,return-value]
        first = plan_of()
        n = first.voipnumber if first is not None else "?"
        out = Outcome(n, ok=False)
        if self.retiring:
            out.fail(Failure.RETIRED, "services retiring (reload)", skipped=True)
            return out
        if self.fenced():  # a standby reads nothing and sends nothing
            out.fail(Failure.FENCED, str(Fenced()), skipped=True)
            return out
        if self.auth_failed_at is not None:
            if self.clock.now() - self.auth_failed_at < AUTH_COOLDOWN:
                out.fail(Failure.AUTH_BLOCKED, "the account refused the credentials a moment ago; not trying yet",
                         skipped=True)
                return out
            self.auth_failed_at = self.clock.now()  # this pass is the probe; the others keep waiting
            _PROBE.set(True)
        number = self.cfg.number(n) if n != "?" else None
        caller_id = number.forwardcli if number is not None else True
        on_drift = (number.on_drift if number is not None else None) or self.cfg.on_drift
        delay = self.backoff_s
        due_until: list[dt.datetime | None] = [None]  # set while the change for now is inside its send window

        def limit() -> dt.datetime | None:
            return max((t for t in (keep_trying_until, due_until[0]) if t is not None), default=None)

        def more() -> bool:
            if self.retiring or self.fenced():
                return False
            if out.attempts < self.attempts_per_pass:
                return True
            until = limit()
            return until is not None and self.clock.now() < until

        while more():
            out.attempts += 1
            current = plan_of()
            found = program_at(current.changes, self.clock.now()) if current is not None else None
            if current is None or current.error or found is None:
                out.fail(Failure.NO_PROGRAM, (current.error if current is not None else None) or
                         "no program planned for now")
                return out
            i, change = found
            program = out.program = change.program
            now = self.clock.now()
            by = next_apply_by(current, i)
            as_right = lambda state: right_as_is(self.cfg, current, state, now, by) >= by  # noqa: E731
            if change.apply_from <= self.clock.now() < change.apply_by:
                due_until[0] = change.apply_by  # inside its send window: keep going
            try:
                # at the boundary of this very exact hand-over (or a new line), and only on the first attempt
                exact_now = out.attempts == 1 and (unread or (change.exact and change.apply_from == exact_at))
                done = await self._attempt(n, program, caller_id, on_drift, out, exact_at, exact_now,
                                           background and out.attempts == 1, paced, as_right)
            except AuthBlocked as err:
                out.fail(Failure.AUTH_BLOCKED, str(err), skipped=True)
                return out
            except Fenced as err:
                out.fail(Failure.FENCED, str(err), skipped=True)
                return out
            except CarrierAuthError as err:
                out.fail(Failure.AUTH, str(err))
                self.auth_failed_at = self.clock.now()
                self._journal(EntryKind.ERROR, n, False, error=str(err), failure=Failure.AUTH.value)
                self._alert(self._auth_key(), str(err))
                return out
            except CarrierRejected as err:
                out.fail(Failure.REJECTED, str(err))
                self._journal(EntryKind.ERROR, n, False, error=str(err), failure=Failure.REJECTED.value)
                log.info("carrier_rejected", voipnumber=n, error=str(err), attempt=out.attempts)
                if limit() is None:
                    break  # nothing due: a later pass will try again
            except CarrierThrottled as err:
                out.fail(Failure.THROTTLED, str(err))
                self._journal(EntryKind.ERROR, n, False, error=str(err), failure=Failure.THROTTLED.value)
                pause = (self.budget.throttle(self.clock.now(), err.retry_after) if self.budget is not None
                         else err.retry_after or 0.0)
                if self.on_throttled is not None:
                    self.on_throttled()
                log.warning("carrier_throttled", voipnumber=n, error=str(err), background_pause_s=pause)
                # this pass: its own back-off, or Retry-After when longer, but never past a due change's window
                wait = max(delay * (0.5 + self.rng.random()), err.retry_after or 0.0)
                until = limit()
                if until is not None:
                    wait = min(wait, max(0.0, (until - self.clock.now()).total_seconds()))
                elif background or wait > 30:
                    break  # nothing due: the budget's pause and the retry queue take it from here
                if more():
                    await self.clock.sleep(wait)
                    delay = min(delay * 2, self.backoff_cap_s)
                continue
            except CarrierError as err:
                out.fail(Failure.TRANSPORT, str(err))
                self._journal(EntryKind.ERROR, n, False, error=str(err), failure=Failure.TRANSPORT.value)
                log.info("carrier_retry", voipnumber=n, error=str(err), attempt=out.attempts)
            else:
                if self.budget is not None:
                    self.budget.answered()
                if done:
                    break
            if more():
                await self.clock.sleep(delay * (0.5 + self.rng.random()))
                delay = min(delay * 2, self.backoff_cap_s)
        if not out.ok and self.fenced():  # stopped by the fence: not a failure of this line
            out.fail(Failure.FENCED, out.error or str(Fenced()), skipped=True)
        self._finish(n, out, plan_of)
        return out

    def _finish(self, n: str, out: Outcome, plan_of: PlanSource) -> None:
        now = self.clock.now()
        if out.ok:
            self.auth_failed_at = None
            for key in (self._auth_key(), AlertKey(AlertKind.REJECTED, n), AlertKey(AlertKind.LATE, n)):
                self._clear(key)
            return
        current = plan_of()
        found = program_at(current.changes, now) if current is not None else None
        if out.failure is Failure.REJECTED:
            self._alert(AlertKey(AlertKind.REJECTED, n), f"Line {n}: {out.error}")
        if found is not None and not out.drift and not out.skipped and now > found[1].apply_by:
            self._alert(AlertKey(AlertKind.LATE, n), f"Line {n}: {found[1].program.describe()} was not confirmed by "
                                                     f"{found[1].apply_by.isoformat(timespec='seconds')} "
                                                     f"({out.error or 'mismatch'})")

    async def _read(self, n: str, background: bool, paced: bool = True) -> Reading:
        if background and paced and self.budget is not None:
            await self.budget.take(self.clock)
        reading = await self.carrier.read(n)
        now = self.read_at[n] = self.clock.now()
        if self.on_reading is not None:
            self.on_reading(n, reading, now)
        return reading

    async def _send(self, n: str, program: Program, caller_id: bool, known: Reading | None) -> None:
        if self.retiring:
            raise Retired()
        if self.fenced():
            raise Fenced()
        want = self.carrier.native(program, caller_id)
        self._journal(EntryKind.CHANGE, n, None, fields=want, program=program.describe())
        try:
            await self.carrier.write(n, program, caller_id, known)
        except Fenced as err:  # the fence closed while it waited for a free slot: it never went out
            self._journal(EntryKind.ERROR, n, False, error=f"change not sent: {err}", failure=Failure.FENCED.value)
            raise

    async def _attempt(
        self, n: str, program: Program, caller_id: bool, on_drift: str, out: Outcome,
        exact_at: dt.datetime | None, exact_now: bool, background: bool, paced: bool = True,
        as_right: Callable[[LineState], bool] | None = None,
    ) -> bool:
        """One read, and if needed one change and its read-back. True when done for this pass."""
        known: Reading | None = None
        if not exact_now:  # (at the boundary: no read first)
            known = await self._read(n, background, paced)
            if known.state.holds(program, caller_id):
                self._confirm(n, known, out)
                return True
            last = self.last_confirmed(n)
            if (last is not None and known.state.effect() == last.state.effect() and not out.changed
                    and as_right is not None and as_right(known.state)):
                self._confirm(n, known, out)  # what it was confirmed to hold, as right as the plan's: no change
                return True
            if last is not None and not out.changed and known.state.effect() != last.state.effect():
                # the line is not what we last confirmed: someone changed it by hand
                out.drift = True
                planned = not last.state.holds(program, caller_id)  # a change of ours is due anyway
                message = (f"Line {n} was changed by hand: it holds {known.state.program.describe()}, the plan "
                           f"wants {program.describe()}; " + (
                               "a planned change replaces it" if planned else "restoring it" if on_drift == "restore"
                               else "left as it is (on_drift = alert)"))
                self._journal(EntryKind.DRIFT, n, False, found=dict(known.record),
                              wanted=self.carrier.native(program, caller_id), state=known.state.to_json())
                self._alert(AlertKey(AlertKind.DRIFT, n), message)
                if on_drift != "restore" and not planned:
                    return True
        try:
            await self._send(n, program, caller_id, known)
        except Retired:
            out.fail(Failure.RETIRED, "stopped for a reload before sending", skipped=True)
            return True
        except Fenced as err:
            out.fail(Failure.FENCED, str(err), skipped=True)
            return True
        out.changed = True
        if exact_at is not None and out.lateness_s is None:
            out.lateness_s = (self.clock.now() - exact_at).total_seconds()
        back = await self._read(n, False)
        if not back.state.holds(program, caller_id):
            self._journal(EntryKind.READBACK, n, False, fields=dict(back.record), state=back.state.to_json(),
                          wanted=self.carrier.native(program, caller_id))
            out.fail(Failure.MISMATCH, "read-back does not match what was sent")
            return False
        self._confirm(n, back, out)
        return True

    def _confirm(self, n: str, reading: Reading, out: Outcome) -> None:
        last = self.confirmed.get(n)
        if out.changed or last is None or dict(last.record) != dict(reading.record):
            self._journal(EntryKind.READBACK, n, True, fields=dict(reading.record), state=reading.state.to_json())
        self.confirmed[n] = reading
        if out.drift is False:
            self._clear(AlertKey(AlertKind.DRIFT, n))
        out.ok, out.error, out.failure = True, None, None
