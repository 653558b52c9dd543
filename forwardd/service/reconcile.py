"""Level-triggered reconciliation: make the account hold the program that should be in force now.

For one number: work out the program in force now (from the plan), read the account (getuser); if it
differs, send changeuser with the fields that differ, then read back until the account matches, with
backoff and jitter, a bounded number of times per pass (the next pass carries on). Every request and
its result goes to the journal. Repeating a pass is always safe: a change means "set the account to
program P".

A difference from the program we last confirmed, while that program is still the one due, is drift (a
hand-made change in the aql portal): restored or only reported, per ``on_drift``; alerted either way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, Protocol

import structlog

from ..aql.account import MANAGED
from ..core.phone import same_number
from ..core.plan import NumberPlan, program_at
from ..core.provider import Program
from ..errors import AqlAuthError, AqlError, AqlRejected
from ..store.journal import Journal

log = structlog.get_logger("forwardd.reconcile")


class _Client(Protocol):
    async def getuser(self, voipnumber: str) -> dict[str, str]: ...
    async def changeuser(self, voipnumber: str, fields: Mapping[str, str]) -> str | None: ...


class _Alerts(Protocol):
    def raise_(self, key: str, message: str, now: dt.datetime, voipnumber: str | None = None) -> None: ...
    def clear(self, key: str, now: dt.datetime) -> None: ...


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


@dataclass
class Reconciler:
    client: _Client
    journal: Journal | None
    alerts: _Alerts | None
    clock: Callable[[], dt.datetime]
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    attempts_per_pass: int = 5
    backoff_s: float = 0.5
    backoff_cap_s: float = 8.0
    rng: random.Random = field(default_factory=random.Random)
    confirmed: dict[str, dict[str, str]] = field(default_factory=dict)

    def _journal(self, kind: str, voipnumber: str | None, ok: bool | None = None, **detail: object) -> None:
        if self.journal is not None:
            self.journal.record(kind, self.clock(), voipnumber, ok, **detail)

    def _alert(self, key: str, message: str, voipnumber: str | None = None) -> None:
        if self.alerts is None:
            log.warning("alert", key=key, message=message, voipnumber=voipnumber)
        else:  # Alerts logs it, rate-limited
            self.alerts.raise_(key, message, self.clock(), voipnumber)

    def _clear(self, key: str) -> None:
        if self.alerts is not None:
            self.alerts.clear(key, self.clock())

    def _last_confirmed(self, voipnumber: str) -> dict[str, str] | None:
        if voipnumber not in self.confirmed and self.journal is not None:
            last = self.journal.last_confirmed(voipnumber)
            if last:
                self.confirmed[voipnumber] = last
        return self.confirmed.get(voipnumber)

    async def reconcile(
        self, plan: NumberPlan, forwardcli: bool, on_drift: str = "restore", *, exact_at: dt.datetime | None = None,
        keep_trying_until: dt.datetime | None = None,
    ) -> Outcome:
        """One pass for one number: at least ``attempts_per_pass`` tries, and on through retryable
        failures until ``keep_trying_until`` (a hand-over due now should not wait for the next periodic
        pass). Never raises for aql trouble: the Outcome says what happened."""
        n = plan.voipnumber
        now = self.clock()
        found = program_at(plan.changes, now)
        if plan.error or found is None:
            return Outcome(n, ok=False, error=plan.error or "no program planned for now")
        _, change = found
        program = change.program
        out = Outcome(n, ok=False)
        delay = self.backoff_s
        def more() -> bool:
            if out.attempts < self.attempts_per_pass:
                return True
            return keep_trying_until is not None and self.clock() < keep_trying_until

        while more():
            out.attempts += 1
            try:
                done = await self._attempt(n, program, forwardcli, on_drift, out, exact_at)
            except AqlAuthError as err:
                out.error = str(err)
                self._alert("auth", str(err))
                return out
            except AqlRejected as err:
                out.error = str(err)
                self._journal("error", n, False, error=str(err))
                self._alert(f"rejected:{n}", f"{n}: {err}", n)
                return out
            except AqlError as err:
                out.error = str(err)
                self._journal("error", n, False, error=str(err))
                log.info("aql_retry", voipnumber=n, error=str(err), attempt=out.attempts)
            else:
                if done:
                    break
            if more():
                await self.sleep(delay * (0.5 + self.rng.random()))
                delay = min(delay * 2, self.backoff_cap_s)
        if out.ok:
            self._clear("auth")
            self._clear(f"rejected:{n}")
            self._clear(f"late:{n}")
        elif not out.drift and self.clock() > change.apply_by:
            self._alert(
                f"late:{n}",
                f"{n}: {program.describe()} not confirmed by {change.apply_by.isoformat()} ({out.error or 'mismatch'})",
                n,
            )
        emit = log.info if (out.changed or not out.ok) else log.debug  # one line per pass that did something
        emit(
            "reconcile", voipnumber=n, ok=out.ok, changed=out.changed, drift=out.drift, attempts=out.attempts,
            program=program.describe(), error=out.error, lateness_s=out.lateness_s,
        )
        return out

    async def _attempt(
        self, n: str, program: Program, forwardcli: bool, on_drift: str, out: Outcome, exact_at: dt.datetime | None
    ) -> bool:
        """One read, and if needed one change and its read-back. True when done for this pass."""
        account = await self.client.getuser(n)
        diff = differing(account, program, forwardcli)
        if not diff:
            self._confirm(n, account, out)
            return True
        last = self._last_confirmed(n)
        if last is not None and not out.changed and not differing(last, program, forwardcli):
            out.drift = True
            message = f"{n}: the account was changed by hand ({_describe(diff, account)}); " + (
                "restoring it" if on_drift == "restore" else "left as it is (on_drift = alert)"
            )
            self._journal("drift", n, False, found={k: account.get(k) for k in MANAGED}, wanted=diff)
            self._alert(f"drift:{n}", message, n)
            if on_drift != "restore":
                return True
        self._journal("change", n, None, fields=diff, program=program.describe())
        await self.client.changeuser(n, diff)
        out.changed = True
        if exact_at is not None:
            out.lateness_s = (self.clock() - exact_at).total_seconds()
        account = await self.client.getuser(n)
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
            self._clear(f"drift:{n}")
        out.ok, out.error = True, None


def _describe(diff: Mapping[str, str], account: Mapping[str, str]) -> str:
    return ", ".join(f"{k} {account.get(k)!r} instead of {v!r}" for k, v in diff.items())
