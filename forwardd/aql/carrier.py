"""aql as a carrier (``core.carrier.Carrier``): the one place that knows aql's field names and rules.

A program is written in aql's fields as ``forwardto``, ``forwardactive`` (1/0), ``forwardstart`` and
``forwardend`` (HH:MM:SS, end second included); ``forwardcli`` says whether the caller's number is
passed through. A program that is off leaves ``forwardto`` and the window as they are, so turning
forwarding off changes one field. Numbers are compared by number, not by spelling (``447700900001``
read back is ``07700900001`` sent).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..config.types import is_voipnumber
from ..core.carrier import LineState, Reading
from ..core.phone import same_number
from ..core.provider import Program, hms, parse_hms
from .client import AqlClient

# The fields forwardd owns on a number; every other field (voicemail, fax, SIP...) is left as it is.
MANAGED = ("forwardto", "forwardactive", "forwardstart", "forwardend", "forwardcli")


def fields_of(program: Program, caller_id: bool = True) -> dict[str, str]:
    """The managed fields that express ``program``; one that is off leaves target and window alone."""
    out = {"forwardactive": "1" if program.active else "0", "forwardcli": "1" if caller_id else "0"}
    if program.active:
        out.update(forwardto=str(program.target), forwardstart=hms(program.start), forwardend=hms(program.end))
    return out


def settings_of(program: Program) -> dict[str, str | None]:
    """The four window fields of ``program`` as aql would hold them (``plan --json``'s ``settings``)."""
    return {"forwardto": program.target, "forwardactive": "1" if program.active else "0",
            "forwardstart": hms(program.start), "forwardend": hms(program.end)}


def program_of(fields: Mapping[str, Any]) -> Program:
    """The program aql's fields hold. Raises ValueError on a malformed field."""
    active = fields.get("forwardactive")
    if active not in ("0", "1"):
        raise ValueError(f"forwardactive is {active!r}, not 0 or 1")
    return Program(target=str(fields.get("forwardto") or "") or None,
                   active=active == "1" and bool(fields.get("forwardto")),
                   start=parse_hms(str(fields.get("forwardstart") or "00:00:00")),
                   end=parse_hms(str(fields.get("forwardend") or "23:59:59")))


def state_of(fields: Mapping[str, Any]) -> LineState:
    """A line's state from aql's fields (a getuser answer, or a journalled record). Raises ValueError."""
    return LineState(program_of(fields), str(fields.get("forwardcli", "1")) != "0")


def differing(have: Mapping[str, str], want: Mapping[str, str]) -> dict[str, str]:
    """The fields of ``want`` that ``have`` does not already hold (numbers compared as numbers)."""
    out = {}
    for key, value in want.items():
        held = have.get(key)
        if not (same_number(held, value) if key == "forwardto" else held == value):
            out[key] = value
    return out


class AqlCarrier:
    """One aql account through its client (``name``: the account's name in the config)."""

    def __init__(self, name: str, client: AqlClient) -> None:
        self.name = name
        self.client = client

    @property
    def on_request(self) -> Callable[[str], None] | None:
        return self.client.on_request

    @on_request.setter
    def on_request(self, fn: Callable[[str], None] | None) -> None:
        self.client.on_request = fn

    @property
    def gate(self) -> Callable[[str], None] | None:
        return self.client.gate

    @gate.setter
    def gate(self, fn: Callable[[str], None] | None) -> None:
        self.client.gate = fn

    async def read(self, number: str) -> Reading:
        """getuser: the line's state, its managed fields as they came, and its credit. Raises AqlError."""
        fields = await self.client.getuser(number)
        try:
            state = state_of(fields)
        except ValueError as err:
            from ..errors import AqlProtocolError

            raise AqlProtocolError(f"getuser {number}: {err}") from None
        return Reading(state, {k: fields.get(k, "") for k in MANAGED}, fields.get("credit"))

    async def write(self, number: str, program: Program, caller_id: bool, known: Reading | None) -> dict[str, str]:
        """changeuser with what differs from the ``known`` reading (every managed field when there is none,
        or when nothing differs: then the caller wants it sent anyway). Raises AqlError."""
        want = fields_of(program, caller_id)
        sent = (differing(known.record, want) if known is not None else want) or want
        await self.client.changeuser(number, sent)
        return sent

    async def list_numbers(self) -> list[str]:
        return await self.client.listusers()

    def state_of(self, record: Mapping[str, Any]) -> LineState:
        return state_of(record)

    def native(self, program: Program, caller_id: bool = True) -> dict[str, str]:
        return fields_of(program, caller_id)

    @staticmethod
    def valid_number(number: str) -> bool:
        return is_voipnumber(number)

    async def aclose(self) -> None:
        await self.client.aclose()
