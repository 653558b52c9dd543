"""Level-triggered reconciliation: make the account hold the program that should be in force now.

For one number: work out the program in force now (from the newest plan, again at every attempt, so
that a pass that outlives a re-plan or an outage never sends a stale program), read the account
(getuser); if it differs, send changeuser with the fields that differ, then read back until the account
matches, with backoff and jitter. An exact hand-over (a change of target while forwarding continues)
is sent at its boundary without a read first, then read back. A pass gives up after a few attempts,
except while a planned change is inside its send window (``keep_trying_until``), when it keeps going,
through transient ``ERR:`` answers too. An authentication refusal stops this number and, for a
minute, every other: one probe at a time then finds out whether the credentials work again.

Every request and its result goes to the journal. Repeating a pass is always safe: a change means
"set the account to program P". A difference from the program last confirmed, while that program is
still the one due, is drift (a hand-made change in the aql portal): restored or only reported, per
``on_drift``; alerted either way.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import structlog

from ..aql.client import MANAGED
from ..clock import Clock
from ..config import Config
from ..core.phone import canonical, same_number
from ..core.plan import NumberPlan, program_at
from ..core.provider import Program
from ..errors import AqlAuthError, AqlError, AqlRejected, AqlThrottled
from ..notify.keys import AlertKey, AlertKind
from .budget import RequestBudget

log = structlog.get_logger("forwardd.reconcile")

AUTH_COOLDOWN = dt.timedelta(seconds=60)
# Set in the one pass that may try the credentials again after a refusal (the probe).
_PROBE: contextvars.ContextVar[bool] = contextvars.ContextVar("forwardd_auth_probe", default=False)


class AuthBlocked(AqlError):
    """Not sent: aql refused the credentials a moment ago, and this pass is not the probe."""


class _Client(Protocol):
    async def getuser(self, voipnumber: str) -> dict[str, str]: ...
    async def changeuser(self, voipnumber: str, fields: Mapping[str, str]) -> str | None: ...


class _Journal(Protocol):
    def record(self, kind: str, at: dt.datetime, voipnumber: str | None = None, ok: bool | None = None,
               **detail: object) -> None: ...

    def last_confirmed(self, voipnumber: str) -> dict[str, str] | None: ...


class _Alerts(Protocol):
    def raise_(self, key: AlertKey, message: str, now: dt.datetime) -> None: ...
    def clear(self, key: AlertKey, now: dt.datetime) -> None: ...


def wanted_fields(program: Program, forwardcli: bool) -> dict[str, str]:
    """The managed fields that express ``program``; an inactive one leaves target and window alone."""
    out = {"forwardactive": "1" if program.active else "0", "forwardcli": "1" if forwardcli else "0"}
    if program.active:
        s = program.settings()
        out.update(forwardto=str(s["forwardto"]), forwardstart=str(s["forwardstart"]), forwardend=str(s["forwardend"]))
    return out


def differing(account: Mapping[str, str], program: Program, forwardcli: bool) -> dict[str, str]:
    """The fields to send so that ``account`` holds ``program`` (empty when it already does)."""
    out = {}
    for key, want in wanted_fields(program, forwardcli).items():
        have = account.get(key)
        same = same_number(have, want) if key == "forwardto" else have == want
        if not same:
            out[key] = want
    return out


@dataclass
class Outcome:
    voipnumber: str
    ok: bool
    changed: bool = False
    drift: bool = False
    attempts: int = 0
    error: str | None = None
    lateness_s: float | None = None  # for an exact hand-over: confirmation time minus the boundary
    skipped: bool = False  # not tried (credentials refused a moment ago, or the services are retiring)
    program: Program | None = None


class Retired(Exception):
    """The services this pass runs on are being replaced (a reload): stop at this safe point."""


class Fenced(AqlError):
    """Not sent: this instance may not send now (a standby in a cluster, or a leader that may have lost
    its lease). The pass stops: a standby reads nothing either."""

    def __init__(self) -> None:
        super().__init__("not sending: this instance does not hold the cluster lease (a standby, or a leader "
                         "that may have lost it)")


PlanSource = Callable[[], "NumberPlan | None"]


@dataclass
class Reconciler:
    cfg: Config
    client: _Client
    journal: _Journal | None
    alerts: _Alerts | None
    clock: Clock
    attempts_per_pass: int = 5
    backoff_s: float = 0.5
    backoff_cap_s: float = 8.0
    rng: random.Random = field(default_factory=random.Random)
    confirmed: dict[str, dict[str, str]] = field(default_factory=dict)
    read_at: dict[str, dt.datetime] = field(default_factory=dict)  # last getuser per number
    read_for_change_at: dict[str, dt.datetime] = field(default_factory=dict)  # ... of those in a pass for a change
    retiring: bool = False
    auth_failed_at: dt.datetime | None = None
    # background reads (drift checks, the start-up read) wait for its tokens; 429/503 pause them
    budget: RequestBudget | None = None
    on_throttled: Callable[[], None] | None = None
    # called before each changeuser: False means "do not send" (a standby, or a leader that may have lost its lease)
    may_send: Callable[[], bool] | None = None
    # last_confirmed may ask the journal for a number it does not know (False in a cluster: the daemon loads
    # every number's last confirmation from the shared journal at once, off the event loop)
    journal_lookups: bool = True

    def fenced(self) -> bool:
        """True when this instance may not send now (a standby, or a leader cut off from the database)."""
        return self.may_send is not None and not self.may_send()

    def gate(self, action: str) -> None:
        """Called by the client just before each request goes out (after waiting for a free slot):
        once aql has refused the credentials, only the probe's requests go (else AuthBlocked), and no
        change goes once the fence has closed (Fenced): the wait for a slot may have outlasted it. (A
        read is let through: the daemon's own passes stop at the fence before reading, and ``status``
        may read the account from any host.)"""
        if action == "changeuser" and self.fenced():
            raise Fenced()
        if self.auth_failed_at is not None and not _PROBE.get():
            raise AuthBlocked(f"{action} not sent: aql refused the credentials a moment ago")

    def _journal(self, kind: str, voipnumber: str | None, ok: bool | None = None, **detail: object) -> None:
        if self.journal is not None:
            self.journal.record(kind, self.clock.now(), voipnumber, ok, **detail)

    def _alert(self, key: AlertKey, message: str) -> None:
        if self.alerts is None:
            log.warning("alert", alert=key.kind.value, voipnumber=key.number, message=message)
        else:  # Alerts logs it, rate-limited
            self.alerts.raise_(key, message, self.clock.now())

    def _clear(self, key: AlertKey) -> None:
        if self.alerts is not None:
            self.alerts.clear(key, self.clock.now())

    def last_confirmed(self, voipnumber: str) -> dict[str, str] | None:
        if voipnumber not in self.confirmed and self.journal is not None and self.journal_lookups:
            last = self.journal.last_confirmed(voipnumber)
            if last:
                self.confirmed[voipnumber] = last
        return self.confirmed.get(voipnumber)

    async def reconcile(
        self, plan: NumberPlan | PlanSource, *, exact_at: dt.datetime | None = None,
        keep_trying_until: dt.datetime | None = None, background: bool = False, paced: bool = True,
        unread: bool = False,
    ) -> Outcome:
        """One pass for one number: at least ``attempts_per_pass`` tries, and on through failures until
        ``keep_trying_until`` (a hand-over due now should not wait for the next periodic pass). ``plan``
        may be a function giving the newest plan. Never raises for aql trouble: the Outcome says what
        happened."""
        plan_of: PlanSource = plan if callable(plan) else (lambda: plan)  # type: ignore[assignment,return-value]
        first = plan_of()
        n = first.voipnumber if first is not None else "?"
        out = Outcome(n, ok=False)
        if self.retiring:
            out.skipped, out.error = True, "services retiring (reload)"
            return out
        if self.fenced():  # a standby reads nothing and sends nothing
            out.skipped, out.error = True, str(Fenced())
            return out
        if self.auth_failed_at is not None:
            if self.clock.now() - self.auth_failed_at < AUTH_COOLDOWN:
                out.skipped, out.error = True, "aql refused the credentials a moment ago; not trying yet"
                return out
            self.auth_failed_at = self.clock.now()  # this pass is the probe; the others keep waiting
            _PROBE.set(True)
        number = self.cfg.number(n) if n != "?" else None
        forwardcli = number.forwardcli if number is not None else True
        on_drift = (number.on_drift if number is not None else None) or self.cfg.on_drift
        delay = self.backoff_s
        change_due_until: dt.datetime | None = None

        def more() -> bool:
            if self.retiring or self.fenced():
                return False
            if out.attempts < self.attempts_per_pass:
                return True
            limit = max((t for t in (keep_trying_until, change_due_until) if t is not None), default=None)
            return limit is not None and self.clock.now() < limit

        while more():
            out.attempts += 1
            current = plan_of()
            found = program_at(current.changes, self.clock.now()) if current is not None else None
            if current is None or current.error or found is None:
                out.error = (current.error if current is not None else None) or "no program planned for now"
                return out
            _, change = found
            program = out.program = change.program
            if change.apply_by > self.clock.now() and change.apply_from <= self.clock.now():
                change_due_until = change.apply_by  # inside its send window: keep going
            try:
                # at the boundary of this very exact hand-over (or a new number), and only on the first attempt
                exact_now = out.attempts == 1 and (unread or (change.exact and change.apply_from == exact_at))
                done = await self._attempt(n, program, forwardcli, on_drift, out, exact_at, exact_now,
                                           background and out.attempts == 1, paced)
            except (AuthBlocked, Fenced) as err:
                out.skipped, out.error = True, str(err)
                return out
            except AqlAuthError as err:
                out.error = str(err)
                self.auth_failed_at = self.clock.now()
                self._journal("error", n, False, error=str(err))
                self._alert(AlertKey(AlertKind.AUTH), str(err))
                return out
            except AqlRejected as err:
                out.error = str(err)
                self._journal("error", n, False, error=str(err))
                log.info("aql_rejected", voipnumber=n, error=str(err), attempt=out.attempts)
                if not (change_due_until or keep_trying_until):
                    break  # nothing due: a periodic pass will try again
            except AqlThrottled as err:
                out.error = str(err)
                self._journal("error", n, False, error=str(err))
                pause = (self.budget.throttle(self.clock.now(), err.retry_after) if self.budget is not None
                         else err.retry_after or 0.0)
                if self.on_throttled is not None:
                    self.on_throttled()
                log.warning("aql_throttled", voipnumber=n, error=str(err), background_pause_s=pause)
                # this pass: its own back-off, or Retry-After when longer, but never past a due change's window
                wait = max(delay * (0.5 + self.rng.random()), err.retry_after or 0.0)
                limit = max((x for x in (keep_trying_until, change_due_until) if x is not None), default=None)
                if limit is not None:
                    wait = min(wait, max(0.0, (limit - self.clock.now()).total_seconds()))
                elif background or wait > 30:
                    break  # nothing due: the budget's pause and the retry queue take it from here
                if more():
                    await self.clock.sleep(wait)
                    delay = min(delay * 2, self.backoff_cap_s)
                continue
            except AqlError as err:
                out.error = str(err)
                self._journal("error", n, False, error=str(err))
                log.info("aql_retry", voipnumber=n, error=str(err), attempt=out.attempts)
            else:
                if self.budget is not None:
                    self.budget.answered()
                if done:
                    break
            if more():
                await self.clock.sleep(delay * (0.5 + self.rng.random()))
                delay = min(delay * 2, self.backoff_cap_s)
        if not out.ok and self.fenced():  # stopped by the fence: not a failure of this number
            out.skipped, out.error = True, out.error or str(Fenced())
        self._finish(n, out, plan_of)
        return out

    def _finish(self, n: str, out: Outcome, plan_of: PlanSource) -> None:
        now = self.clock.now()
        if out.ok:
            self.auth_failed_at = None
            for key in (AlertKey(AlertKind.AUTH), AlertKey(AlertKind.REJECTED, n), AlertKey(AlertKind.LATE, n)):
                self._clear(key)
        else:
            current = plan_of()
            found = program_at(current.changes, now) if current is not None else None
            if out.error and "aql rejected" in out.error:
                self._alert(AlertKey(AlertKind.REJECTED, n), f"{n}: {out.error}")
            if found is not None and not out.drift and not out.skipped and now > found[1].apply_by:
                self._alert(AlertKey(AlertKind.LATE, n), f"{n}: {found[1].program.describe()} not confirmed by "
                            f"{found[1].apply_by.isoformat()} ({out.error or 'mismatch'})")
        emit = log.info if (out.changed or not out.ok) and not out.skipped else log.debug
        emit("reconcile", voipnumber=n, ok=out.ok, changed=out.changed, drift=out.drift, attempts=out.attempts,
             program=out.program.describe() if out.program else None, error=out.error, lateness_s=out.lateness_s)

    async def _read(self, n: str, background: bool, paced: bool = True) -> dict[str, str]:
        if background and paced and self.budget is not None:
            await self.budget.take(self.clock)
        account = await self.client.getuser(n)
        self.read_at[n] = self.clock.now()
        if not background:
            self.read_for_change_at[n] = self.read_at[n]
        return account

    async def _send(self, n: str, fields: Mapping[str, str], program: Program) -> None:
        if self.retiring:
            raise Retired()
        if self.fenced():
            raise Fenced()
        self._journal("change", n, None, fields=dict(fields), program=program.describe())
        try:
            await self.client.changeuser(n, fields)
        except Fenced as err:  # the fence closed while it waited for a free slot: it never went out
            self._journal("error", n, False, error=f"change not sent: {err}")
            raise

    async def _attempt(
        self, n: str, program: Program, forwardcli: bool, on_drift: str, out: Outcome,
        exact_at: dt.datetime | None, exact_now: bool, background: bool, paced: bool = True,
    ) -> bool:
        """One read, and if needed one change and its read-back. True when done for this pass."""
        if exact_now:  # at the boundary: no read first
            diff = wanted_fields(program, forwardcli)
        else:
            account = await self._read(n, background, paced)
            diff = differing(account, program, forwardcli)
            if not diff:
                self._confirm(n, account, out)
                return True
            last = self.last_confirmed(n)
            if last is not None and not out.changed and _effective(account) != _effective(last):
                # the account is not what we last confirmed: someone changed it by hand
                out.drift = True
                planned = bool(differing(last, program, forwardcli))  # a change of ours is due anyway
                message = f"{n}: the account was changed by hand ({_describe(diff, account)}); " + (
                    "a planned change replaces it" if planned else "restoring it" if on_drift == "restore"
                    else "left as it is (on_drift = alert)"
                )
                self._journal("drift", n, False, found={k: account.get(k) for k in MANAGED}, wanted=diff)
                self._alert(AlertKey(AlertKind.DRIFT, n), message)
                if on_drift != "restore" and not planned:
                    return True
        try:
            await self._send(n, diff, program)
        except Retired:
            out.error, out.skipped = "stopped for a reload before sending", True
            return True
        except Fenced as err:
            out.error, out.skipped = str(err), True
            return True
        out.changed = True
        if exact_at is not None and out.lateness_s is None:
            out.lateness_s = (self.clock.now() - exact_at).total_seconds()
        account = await self._read(n, False)
        if differing(account, program, forwardcli):
            self._journal("readback", n, False, fields={k: account.get(k, "") for k in MANAGED}, wanted=diff)
            out.error = "read-back does not match what was sent"
            return False
        self._confirm(n, account, out)
        return True

    def _confirm(self, n: str, account: Mapping[str, str], out: Outcome) -> None:
        fields = {k: account.get(k, "") for k in MANAGED}
        if out.changed or self.confirmed.get(n) != fields:
            self._journal("readback", n, True, fields=fields)
        self.confirmed[n] = fields
        if out.drift is False:
            self._clear(AlertKey(AlertKind.DRIFT, n))
        out.ok, out.error = True, None


def _effective(fields: Mapping[str, str]) -> tuple[object, ...]:
    """What a number's managed fields do (forwardto and the window only matter while active)."""
    active = fields.get("forwardactive") == "1"
    if not active:
        return (False, fields.get("forwardcli"))
    return (True, canonical(fields.get("forwardto") or ""), fields.get("forwardstart"), fields.get("forwardend"),
            fields.get("forwardcli"))


def _describe(diff: Mapping[str, str], account: Mapping[str, str]) -> str:
    return ", ".join(f"{k} {account.get(k)!r} instead of {v!r}" for k, v in diff.items())
