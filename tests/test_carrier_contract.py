"""One contract for the carrier (``core.carrier.Carrier``), run against aql's carrier over both of its
stand-ins, as DESIGN.md promises: the simulated account (in process, through httpx's mock transport) and
the fake aql server (real HTTP on 127.0.0.1). Both answer through one account model (``aql.account``),
so what a test asks of one it asks of the other; the last test runs one script on both and compares
every answer."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import pytest

from forwardd.aql.account import Account
from forwardd.aql.carrier import MANAGED, AqlCarrier
from forwardd.aql.client import AqlClient
from forwardd.aql.fake import FakeAqlServer
from forwardd.aql.simulated import SIMULATED_URL, SimulatedTransport
from forwardd.core.carrier import Carrier, LineState, Reading
from forwardd.core.provider import Program
from forwardd.errors import AqlRejected, CarrierAuthError, CarrierError, CarrierRejected

from .conftest import PASSWORD

NUMBERS = ["606309", "606310", "700001"]
N = "606309"
ALICE, BOB = "07700900001", "07700900002"
T = TypeVar("T")


def hms(h: int, m: int = 0, s: int = 0) -> int:
    return h * 3600 + m * 60 + s


EVENING = Program(ALICE, True, hms(17, 30), hms(23, 59, 59))
NIGHT = Program(ALICE, True, 0, hms(8, 59, 59))
ALL_DAY = Program(BOB, True)
OFF = Program(None, False)


@dataclass
class StandIn:
    """An account and how to reach it: ``carrier(password)`` is aql's carrier on it (closed by ``run``)."""

    name: str
    account: Account
    url: str
    transport: Callable[[], Any]

    def carrier(self, password: str = PASSWORD) -> AqlCarrier:
        return AqlCarrier("aql", AqlClient(self.url, "acme", password, timeout=5, transport=self.transport()))

    def run(self, script: Callable[[Carrier], Awaitable[T]], password: str = PASSWORD) -> T:
        """``script(carrier)`` on a carrier of its own; returns what it returns, raises what it raises."""
        async def go() -> T:
            carrier = self.carrier(password)
            try:
                return await script(carrier)
            finally:
                await carrier.aclose()

        return asyncio.run(go())

    def received(self) -> list[dict[str, str]]:
        """What each changeuser the account took set, oldest first."""
        return [h.changed for h in self.account.history]


@contextlib.contextmanager
def stand_in(name: str) -> Iterator[StandIn]:
    account = Account.with_numbers("acme", PASSWORD, list(NUMBERS))
    if name == "simulated":
        yield StandIn(name, account, SIMULATED_URL, lambda: SimulatedTransport(account))
        return
    with FakeAqlServer(account) as server:
        yield StandIn(name, account, server.url, lambda: None)


@pytest.fixture(params=["simulated", "fake"])
def aql(request: pytest.FixtureRequest) -> Iterator[StandIn]:
    with stand_in(request.param) as s:
        yield s


def read(aql: StandIn, number: str = N) -> Reading:
    return aql.run(lambda c: c.read(number))


def write(aql: StandIn, program: Program, caller_id: bool = True, known: Reading | None = None,
          number: str = N) -> dict[str, str]:
    return aql.run(lambda c: c.write(number, program, caller_id, known))


def call(aql: StandIn, fn: Callable[[Carrier], T]) -> T:
    """``fn(carrier)`` for the carrier's methods that send nothing (``state_of``, ``native``)."""
    async def value(c: Carrier) -> T:
        return fn(c)

    return aql.run(value)


# ------------------------------------------------------------------------------------------ reading


def test_read_gives_the_state_the_managed_record_and_the_credit(aql: StandIn) -> None:
    reading = read(aql)
    assert reading.state == LineState(Program("01133203040", False, 0, hms(23, 59, 59)), caller_id=True)
    assert dict(reading.record) == {"forwardto": "01133203040", "forwardactive": "0", "forwardstart": "00:00:00",
                                    "forwardend": "23:59:59", "forwardcli": "1"}
    assert reading.credit == "3.42"
    assert call(aql, lambda c: c.state_of(reading.record)) == reading.state


def test_read_shows_a_change_made_by_hand(aql: StandIn) -> None:
    aql.account.set_fields(N, {"forwardto": BOB, "forwardactive": "1", "forwardstart": "09:00:00",
                               "forwardend": "17:00:00", "forwardcli": "0", "voicemailon": "0"})
    reading = read(aql)
    assert reading.state == LineState(Program(BOB, True, hms(9), hms(17)), caller_id=False)
    assert set(reading.record) == set(MANAGED)  # the managed fields only: voicemail is not ours
    assert read(aql, "606310").state.program.active is False  # the other lines as they were


def test_list_numbers_gives_the_accounts_lines(aql: StandIn) -> None:
    assert aql.run(lambda c: c.list_numbers()) == sorted(NUMBERS)


# ------------------------------------------------------------------------------------------ writing


@pytest.mark.parametrize(("program", "caller_id"), [
    (EVENING, True), (NIGHT, True), (ALL_DAY, False), (OFF, True), (OFF, False),
], ids=["evening", "night", "all-day-no-caller-id", "off", "off-no-caller-id"])
def test_a_written_program_is_held_when_read_back(aql: StandIn, program: Program, caller_id: bool) -> None:
    write(aql, EVENING if program == OFF else OFF, not caller_id)  # something else first
    sent = write(aql, program, caller_id)
    reading = read(aql)
    assert reading.state.holds(program, caller_id)
    assert not reading.state.holds(program, not caller_id)
    assert sent == call(aql, lambda c: c.native(program, caller_id))
    assert aql.received()[-1] == sent


def test_turning_forwarding_off_leaves_the_target_and_the_window(aql: StandIn) -> None:
    write(aql, EVENING)
    assert write(aql, OFF, known=read(aql)) == {"forwardactive": "0"}
    record = read(aql).record
    assert (record["forwardto"], record["forwardstart"], record["forwardend"]) == (ALICE, "17:30:00", "23:59:59")
    assert read(aql).state.holds(OFF, True) and not read(aql).state.holds(EVENING, True)


def test_a_number_in_international_digits_is_the_same_as_in_national_ones(aql: StandIn) -> None:
    international = Program("447700900001", True, hms(17, 30), hms(23, 59, 59))
    write(aql, international)
    assert read(aql).state.holds(EVENING, True)  # 447700900001 held is 07700900001 wanted
    aql.account.set_fields(N, {"forwardto": ALICE})  # the account gives it back in national digits
    reading = read(aql)
    assert reading.state.holds(international, True) and reading.state.effect() == LineState(EVENING).effect()
    later = Program("447700900001", True, hms(18), hms(23, 59, 59))
    assert write(aql, later, known=reading) == {"forwardstart": "18:00:00"}  # the number is not sent again
    assert aql.received()[-1] == {"forwardstart": "18:00:00"}


def test_a_write_with_a_known_reading_sends_only_what_differs(aql: StandIn) -> None:
    everything = write(aql, EVENING)  # nothing known: every managed field
    assert set(everything) == set(MANAGED) and aql.received() == [everything]
    steps = [
        (Program(ALICE, True, hms(18), hms(23, 59, 59)), True, {"forwardstart": "18:00:00"}),
        (Program(BOB, True, hms(18), hms(23, 59, 59)), True, {"forwardto": BOB}),
        (Program(BOB, True, hms(18), hms(23, 59, 59)), False, {"forwardcli": "0"}),
        (Program(ALICE, True, 0, hms(8, 59, 59)), False,
         {"forwardto": ALICE, "forwardstart": "00:00:00", "forwardend": "08:59:59"}),
        (OFF, False, {"forwardactive": "0"}),
        (Program(ALICE, True, 0, hms(8, 59, 59)), False, {"forwardactive": "1"}),
    ]
    for program, caller_id, expected in steps:
        sent = write(aql, program, caller_id, known=read(aql))
        assert sent == expected and aql.received()[-1] == expected
        assert read(aql).state.holds(program, caller_id)
    assert len(aql.received()) == 1 + len(steps)


def test_a_write_that_changes_nothing_is_sent_whole_when_asked(aql: StandIn) -> None:
    """The caller asks for a write only when it wants one (a read-back that disagreed, a line it has not
    confirmed): a known reading that already holds the program sends every managed field again."""
    first = write(aql, EVENING)
    assert write(aql, EVENING, known=read(aql)) == first
    assert aql.received() == [first, first]


def test_writes_to_one_line_leave_the_others_alone(aql: StandIn) -> None:
    before = {n: read(aql, n) for n in NUMBERS[1:]}
    write(aql, EVENING)
    assert {n: read(aql, n) for n in NUMBERS[1:]} == before


# ----------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("number", "message"), [("699999", "Invalid number"),
                                                 ("506309", "Invalid voipnumber format")])
def test_a_number_the_account_does_not_have_is_rejected_with_its_message(aql: StandIn, number: str,
                                                                         message: str) -> None:
    for script in (lambda c: c.read(number), lambda c: c.write(number, EVENING, True, None)):
        with pytest.raises(CarrierRejected) as caught:
            aql.run(script)
        assert caught.value.message == message and isinstance(caught.value, AqlRejected)
    assert aql.received() == []


def test_a_write_the_account_refuses_changes_nothing(aql: StandIn) -> None:
    aql.account.wraps = False  # an account that takes no window across midnight
    before = read(aql)
    with pytest.raises(CarrierRejected) as caught:
        write(aql, Program(ALICE, True, hms(22), hms(6)))
    assert caught.value.message == "forwardstart must not be later than forwardend"
    assert read(aql) == before and aql.received() == []


def test_a_wrong_password_is_an_auth_error_for_every_request(aql: StandIn) -> None:
    wrong = "not-the-" + PASSWORD
    scripts: list[Callable[[Carrier], Awaitable[object]]] = [
        lambda c: c.read(N), lambda c: c.write(N, EVENING, True, None), lambda c: c.list_numbers()]
    for script in scripts:
        with pytest.raises(CarrierAuthError) as caught:
            aql.run(script, password=wrong)
        assert wrong not in str(caught.value) and PASSWORD not in str(caught.value)
    assert aql.received() == []


def test_every_request_is_told_and_the_gate_can_refuse_one_before_it_is_sent(aql: StandIn) -> None:
    told: list[str] = []

    class Closed(Exception):
        pass

    def gate(action: str) -> None:
        if action == "changeuser":
            raise Closed(action)

    async def script(c: Carrier) -> None:
        c.on_request = told.append
        await c.read(N)
        await c.list_numbers()
        c.gate = gate
        await c.read(N)
        with pytest.raises(Closed):
            await c.write(N, EVENING, True, None)

    aql.run(script)
    assert told == ["getuser", "listusers", "getuser"]
    assert aql.received() == [] and aql.account.requests[(N, "changeuser")] == 0


# ------------------------------------------------------------------------------------ the two agree


def test_both_stand_ins_give_the_same_answers_to_the_same_script() -> None:
    async def script(c: Carrier) -> list[object]:
        out: list[object] = [await c.list_numbers(), await c.read(N)]
        for program, caller_id in ((EVENING, True), (NIGHT, False), (OFF, False), (ALL_DAY, True)):
            out.append(await c.write(N, program, caller_id, out[-1] if isinstance(out[-1], Reading) else None))
            out.append(await c.read(N))
        for attempt in (c.read("699999"), c.write("506309", OFF, True, None), c.read("606310")):
            try:
                out.append(await attempt)
            except CarrierError as err:
                out.append((type(err).__name__, str(err)))
        return out

    answers = {}
    for name in ("simulated", "fake"):
        with stand_in(name) as s:
            answers[name] = (s.run(script), s.received(), s.account.users)
    assert answers["simulated"] == answers["fake"]
    assert len(answers["fake"][1]) == 4 and ("AqlRejected", "aql rejected getuser: Invalid number") in answers["fake"][0]
