"""What forwardd needs of a carrier (a telephone provider's API), and what a line's state is, in the
provider-neutral terms of the core: a program (a target and a daily window) and whether the caller's
number is passed through. Pure: the interface and values only; the edges implement it (``aql.carrier``
is the one implementation). The reconciler talks to nothing else, so a second carrier is a new module
beside ``aql/``, not a change to the core or the services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from .phone import canonical
from .provider import Program, hms, parse_hms


@dataclass(frozen=True)
class LineState:
    """A line's forwarding as the carrier holds it: a program, and whether the caller's number shows."""

    program: Program
    caller_id: bool = True

    def effect(self) -> tuple[object, ...]:
        """What the state does (target and window matter only while forwarding is on), comparable across
        spellings of one number."""
        p = self.program
        if not p.active:
            return (False, self.caller_id)
        return (True, canonical(p.target or ""), p.start, p.end, self.caller_id)

    def holds(self, program: Program, caller_id: bool) -> bool:
        """Whether this state does what ``program`` (with ``caller_id``) asks."""
        return self.effect() == LineState(program, caller_id).effect()

    def to_json(self) -> dict[str, Any]:
        """The journal's provider-neutral form: ``{"to", "active", "from", "until", "caller_id"}``."""
        p = self.program
        return {"to": p.target, "active": p.active, "from": hms(p.start), "until": hms(p.end),
                "caller_id": self.caller_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LineState:
        """Read ``to_json`` back. Raises ValueError, KeyError, TypeError on anything else."""
        active = bool(data["active"]) and bool(data.get("to"))
        program = Program(str(data["to"]) if data.get("to") else None, active, parse_hms(str(data["from"])),
                          parse_hms(str(data["until"])))
        return cls(program, bool(data.get("caller_id", True)))


@dataclass(frozen=True)
class Reading:
    """One read of a line: its state, the carrier's own record of it (journalled as it came), and what
    else the carrier told (the line's credit, as the carrier wrote it)."""

    state: LineState
    record: Mapping[str, str] = field(default_factory=dict)
    credit: str | None = None


class Carrier(Protocol):
    """One account at one carrier. Raises the ``CarrierError`` tree (``forwardd.errors``): refused
    credentials, a rejected request (with the carrier's message), a throttle, an unreachable or
    garbled answer."""

    name: str  # the account's name (``aql`` for the [aql] table)
    on_request: Callable[[str], None] | None  # told the action of every request sent (metrics)
    gate: Callable[[str], None] | None  # may refuse a request at the last moment (raises)

    async def read(self, number: str) -> Reading: ...

    async def write(self, number: str, program: Program, caller_id: bool, known: Reading | None) -> dict[str, str]:
        """Make the line hold ``program``: only what differs from the ``known`` reading when there is one,
        else all of it. Returns what was sent (journalled)."""
        ...

    async def list_numbers(self) -> list[str]: ...

    def state_of(self, record: Mapping[str, Any]) -> LineState:
        """A journalled record of this carrier read back as a state. Raises ValueError."""
        ...

    def native(self, program: Program, caller_id: bool = True) -> dict[str, str]:
        """The carrier's own settings for ``program`` (shown by ``plan --json``)."""
        ...

    async def aclose(self) -> None: ...

