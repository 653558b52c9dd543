"""Each pass, said once: quiet when nothing changes, a failure once and then at most every
``alerts.repeat_after``, and in words a person watching the log reads (``said``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import structlog

from ..config import Config
from ..web.presentation import Names, now_and_next
from .lanes import PassRequest
from .reconcile import Outcome

if TYPE_CHECKING:
    from .engine import Engine

log = structlog.get_logger("forwardd.engine")


class PassLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._last_logged: dict[str, tuple[str | None, dt.datetime]] = {}  # per line: failure logged, when
        self._names: tuple[Config, Names] | None = None

    def said(self, v: str, req: PassRequest, out: Outcome, now: dt.datetime) -> None:
        """Quiet when nothing changes: a pass that changes something, finds drift or fails anew is said at
        info; the same failure again at most once every ``alerts.repeat_after``."""
        if out.skipped:
            log.debug("pass_skipped", voipnumber=v, failure=out.failure.value if out.failure else None)
            return  # not tried (a refused password a moment ago, fenced, a reload): nothing new to say
        last = self._last_logged.get(v)
        failure = out.failure.value if out.failure is not None and not out.ok else None
        if out.changed or out.drift:
            pass
        elif failure is None:
            self._last_logged.pop(v, None)
            if last is None:
                log.debug("pass", voipnumber=v, kind=req.kind.label, ok=True)
                return
        elif last is not None and last[0] == failure and now - last[1] < self.engine.cfg.alerts.repeat_after:
            return
        self._last_logged[v] = (failure, now)
        number = self.engine.cfg.number(v)
        log.info("pass", voipnumber=v, line=number.name, kind="start-up" if req.start_up else req.kind.label,
                 ok=out.ok, changed=out.changed, drift=out.drift, failure=failure, error=out.error,
                 program=out.program.describe() if out.program else None, account=self.engine.cfg.account_of(v),
                 said=self._said(v, out, now))

    def _said(self, v: str, out: Outcome, now: dt.datetime) -> str:
        """The pass in words, for a person watching the log: ``606309 Support line → Dave (07700900004) until
        09:00, confirmed``."""
        if self._names is None or self._names[0] is not self.engine.cfg:
            self._names = (self.engine.cfg, Names(self.engine.cfg))
        plan = self.engine.sv.number_plan(v)
        found = now_and_next(plan.segments, now, self._names[1]) if plan is not None else None
        who = "".join(found.parts(now, self.engine.cfg.tz)).split(", then ")[0] if found else "?"
        number = self.engine.cfg.number(v)
        outcome = ("confirmed" if not out.changed else "changed and confirmed") if out.ok \
            else f"not confirmed: {out.error or 'mismatch'}"
        drift = " (it had been changed by hand)" if out.drift else ""
        return f"{v}{' ' + number.name if number.name else ''} → {who}, {outcome}{drift}"
