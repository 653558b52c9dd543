"""The cluster's part of the services (``[cluster]``): leadership changes journalled and alerted, the
lease started once a plan is ready, ``apply`` waiting for the lease, who leads, and what every line was
last confirmed to hold on any instance (the shared journal)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..aio import off_loop
from ..clock import Clock
from ..errors import ForwarddError
from ..notify.alerts import Alerts
from ..notify.keys import AlertKey, AlertKind
from ..store.ports import EntryKind, JournalStore

if TYPE_CHECKING:  # (PostgreSQL is loaded only in a cluster)
    from ..store.pg_lease import Leadership
    from ..store.postgres import Database
    from .lease import Lease, LeaseEvent


class ClusterPart:
    """Mixed into ``Services``: what it needs of them is declared here."""

    clock: Clock
    alerts: Alerts
    journal: JournalStore | None
    db: Database | None
    lease: Lease | None

    def _lease_event(self, event: LeaseEvent) -> None:
        """A leadership change (called from the lease's thread): journalled (kind ``leader``) and alerted."""
        now = self.clock.now()
        if event.kind == "acquired":
            message = (f"forwardd {event.instance} now leads the cluster (took over from {event.previous})"
                       if event.previous and event.previous != event.instance
                       else f"forwardd {event.instance} now leads the cluster")
            detail = {"since": event.since.isoformat() if event.since else None, "previous": event.previous,
                      "sending_from": event.sending_from.isoformat() if event.sending_from else None}
        else:
            message = (f"forwardd {event.instance} lost the cluster lease and stopped sending to aql "
                       f"({event.reason}); a standby takes over")
            detail = {"reason": event.reason, "since": event.since.isoformat() if event.since else None}
        if self.journal is not None:
            self.journal.record(EntryKind.LEADER.value, now, None, event.kind == "acquired", event=event.kind,
                                instance=event.instance, **detail)
        self.alerts.tell_from_thread(AlertKey(AlertKind.LEADER), message, now)

    def _lease_trouble(self, message: str | None) -> None:
        """The cluster database became unreachable for the lease (a message) or reachable again (None)."""
        text = None if message is None else f"{message}: this instance cannot lead (if it led, it stopped sending)"
        self.alerts.from_thread(AlertKey(AlertKind.CLUSTER), text, self.clock.now())

    def start_lease(self) -> None:
        """Start competing for the cluster lease (the daemon does once it has a plan, so that an instance
        still reading its calendars never holds the lease while a standby is ready)."""
        if self.lease is not None:
            self.lease.start()

    async def wait_for_lease(self, timeout: float = 30.0) -> None:
        """For ``apply`` in a cluster: take the lease and wait until this instance may send. Raises
        ForwarddError when another instance leads (its daemon applies the plan) or the database is away."""
        lease = self.lease
        if lease is None:
            return
        lease.start()
        await off_loop(lease.first_look.wait, timeout, timeout=timeout + 1, name="forwardd-lease-wait")
        status = lease.status()
        if not status.leading:
            if status.leader is not None:
                since = f" since {status.since.isoformat(timespec='seconds')}" if status.since else ""
                raise ForwarddError(f"forwardd {status.leader} leads the cluster{since}: its daemon applies the plan; "
                                    "apply sends nothing while another instance leads")
            raise ForwarddError(f"cannot take the cluster lease: {status.problem or 'no answer from the database'}")
        ready = lease.ready_in() or 0.0
        await self.clock.sleep(ready + 0.05)
        if not lease.may_send():
            raise ForwarddError(f"lost the cluster lease while waiting to send: {lease.status().problem}")

    async def leadership(self) -> Leadership | None:
        """Who leads the cluster now, read from the database (None without [cluster]). Raises ForwarddError."""
        if self.db is None:
            return None
        from ..store.pg_lease import read_leader

        return await off_loop(read_leader, self.db, timeout=15, name="forwardd-leader")

    async def refresh_confirmed(self) -> dict[str, dict[str, str]]:
        """What every number was last confirmed to hold, on any instance (the shared journal). Raises
        ForwarddError (the journal cannot be read), TimeoutError."""
        if self.journal is None:
            return {}
        return await off_loop(self.journal.confirmed_all, timeout=15, name="forwardd-confirmed")
