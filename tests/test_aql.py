"""The aql client against the fake aql server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.request

import httpx
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from forwardd.aql.account import Account
from forwardd.aql.client import AqlClient, parse_fields, parse_numbers, parse_status
from forwardd.aql.fake import FakeAqlServer
from forwardd.clock import VirtualClock
from forwardd.core.compiler import Change
from forwardd.core.plan import NumberPlan
from forwardd.core.provider import Program
from forwardd.errors import (
    AqlAuthError,
    AqlError,
    AqlProtocolError,
    AqlRejected,
    AqlTransportError,
)
from forwardd.logs import configure, register_secret

from .conftest import PASSWORD, UTC, make_reconciler


def client_for(fake: FakeAqlServer, password: str = PASSWORD, timeout: float = 5.0) -> AqlClient:
    return AqlClient(fake.url, "acme", password, timeout=timeout, concurrency=8)


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


async def _get(fake: FakeAqlServer, number: str = "606309") -> dict[str, str]:
    async with client_for(fake) as c:
        return await c.getuser(number)


def test_getuser_splits_each_line_at_the_first_colon_only(fake: FakeAqlServer) -> None:
    fields = run(_get(fake))
    assert fields["forwardstart"] == "00:00:00" and fields["forwardend"] == "23:59:59"
    assert fields["voipnumber"] == "606309" and fields["credit"] == "3.42"


def test_changeuser_ok_changes_state_and_is_recorded_with_time(fake: FakeAqlServer, account: Account) -> None:
    async def go() -> dict[str, str]:
        async with client_for(fake) as c:
            assert await c.changeuser("606309", {"forwardto": "07700900001", "forwardactive": "1",
                                                 "forwardstart": "17:30:00"}) is None
            return await c.getuser("606309")

    before = time.time()
    fields = run(go())
    assert fields["forwardto"] == "07700900001" and fields["forwardactive"] == "1"
    assert fields["forwardstart"] == "17:30:00"
    assert len(account.history) == 1 and account.history[0].at.timestamp() >= before - 1
    with urllib.request.urlopen(fake.url.rsplit("/", 2)[0] + "/_fake/history") as resp:
        hist = json.load(resp)
    assert hist[0]["changed"]["forwardstart"] == "17:30:00"


def test_ok_with_id_is_returned() -> None:
    assert parse_status("OK:22", "changeuser") == "22"
    assert parse_status("OK\n", "changeuser") is None


def test_listusers(fake: FakeAqlServer) -> None:
    async def go() -> list[str]:
        async with client_for(fake) as c:
            return await c.listusers()

    assert run(go()) == ["606309", "606310", "700001"]


def test_wrong_password_is_an_auth_error_without_the_password(fake: FakeAqlServer) -> None:
    async def go() -> None:
        async with client_for(fake, password="wrong-password-123") as c:
            await c.getuser("606309")

    with pytest.raises(AqlAuthError) as info:
        run(go())
    assert "wrong-password-123" not in str(info.value) and PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"forwardactive": "2"}, "forwardactive must be 0 or 1"),
        ({"forwardstart": "9:00"}, "forwardstart must be HH:MM:SS"),
        ({"forwardstart": "18:00:00", "forwardend": "09:00:00"}, "forwardstart must not be later"),
        ({"credit": "100"}, "credit is read-only"),
        ({"pstnnumber": "441"}, "pstnnumber is read-only"),
        ({"colour": "red"}, "Unknown field colour"),
        ({"forwardto": "call bob"}, "Invalid forwardto"),
    ],
)
def test_invalid_fields_are_rejected_with_aqls_message(fake: FakeAqlServer, fields: dict, message: str) -> None:
    async def go() -> None:
        async with client_for(fake) as c:
            await c.changeuser("606309", fields)

    with pytest.raises(AqlRejected) as info:
        run(go())
    assert message in info.value.message


@pytest.mark.parametrize(("number", "message"), [("506309", "Invalid voipnumber format"), ("699999", "Invalid number")])
def test_bad_or_unknown_voipnumber(fake: FakeAqlServer, number: str, message: str) -> None:
    with pytest.raises(AqlRejected) as info:
        run(_get(fake, number))
    assert info.value.message == message


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "http5xx", "status": 503}, AqlTransportError),
        ({"kind": "http5xx", "status": 500}, AqlTransportError),
        ({"kind": "drop"}, AqlTransportError),
        ({"kind": "delay", "seconds": 1.5}, AqlTransportError),
        ({"kind": "err", "message": "Service busy"}, AqlRejected),
        ({"kind": "body", "body": ""}, AqlProtocolError),
        ({"kind": "body", "body": "<html><body>Oops</body></html>"}, AqlProtocolError),
        ({"kind": "body", "body": "voipnumber:606309\nforwardto:0770"}, AqlProtocolError),
    ],
)
def test_each_fault_kind_gives_its_typed_error(fake: FakeAqlServer, fault: dict, error: type) -> None:
    fake.add_fault(**fault)

    async def go() -> None:
        async with client_for(fake, timeout=0.5) as c:
            await c.getuser("606309")

    with pytest.raises(error):
        run(go())
    assert issubclass(error, AqlError)
    # the fault was one-shot: the next request succeeds
    assert run(_get(fake))["voipnumber"] == "606309"


def test_getuser_with_extra_fields_is_fine(fake: FakeAqlServer) -> None:
    body = "\n".join(f"{k}:{v}" for k, v in {**fake.account.users["606309"], "newfield": "x:y"}.items())
    fake.add_fault("body", body=body)
    assert run(_get(fake))["newfield"] == "x:y"


def test_read_back_that_disagrees_is_detected_and_retried(fake: FakeAqlServer, account: Account) -> None:
    """The fake answers OK but applies nothing once: the reconciler sees the read-back differ and resends."""
    fake.add_fault("ignore", action="changeuser")
    program = Program("07700900001", True, 17 * 3600 + 1800, 86399)
    now = __import__("datetime").datetime.now(UTC)
    plan = NumberPlan("606309", [], [Change(now, now, program, False)])

    async def go():  # noqa: ANN202
        async with client_for(fake) as c:
            rec = make_reconciler(c, clock=VirtualClock(now))
            return await rec.reconcile(plan)

    out = run(go())
    assert out.ok and out.changed and out.attempts == 2
    assert account.users["606309"]["forwardstart"] == "17:30:00"
    assert len(account.history) == 1  # the ignored change left no trace in the account


def test_concurrency_is_bounded(account: Account) -> None:
    with FakeAqlServer(account) as fake:
        fake.faults.latency = 0.2

        async def go() -> float:
            async with AqlClient(fake.url, "acme", PASSWORD, concurrency=5) as c:
                t = time.perf_counter()
                await asyncio.gather(*(c.getuser("606309") for _ in range(10)))
                return time.perf_counter() - t

        took = run(go())
    # 10 requests, 5 at a time, 0.2 s each: two rounds, never one
    assert took >= 0.39


def test_password_never_in_repr_errors_or_logs(fake: FakeAqlServer) -> None:
    stream = io.StringIO()
    configure("debug", json_lines=True, stream=stream)
    register_secret(PASSWORD)
    c = client_for(fake)
    assert PASSWORD not in repr(c) and PASSWORD not in str(vars(c))
    messages = []
    for fault in ({"kind": "err", "message": f"bad password {PASSWORD}"}, {"kind": "http5xx"}, {"kind": "drop"},
                  {"kind": "body", "body": f"junk {PASSWORD}"}):
        fake.add_fault(**fault)

        async def go() -> None:
            async with client_for(fake) as cl:
                await cl.getuser("606309")

        try:
            run(go())
        except AqlError as err:
            messages.append(str(err))
            structlog.get_logger().error("aql failed", error=str(err), password=PASSWORD, detail={"pw": PASSWORD})
    assert len(messages) == 4
    log_text = stream.getvalue()
    assert "aql failed" in log_text
    assert PASSWORD not in log_text
    # even an ERR text or a junk answer that echoes the password is redacted by the client
    assert all(PASSWORD not in m for m in messages)
    assert "**********" in messages[0]


@settings(max_examples=300, deadline=None)
@given(body=st.text(max_size=300))
def test_answer_parsers_raise_only_our_errors(body: str) -> None:
    for parse in (lambda b: parse_status(b, "changeuser"), parse_fields, parse_numbers):
        try:
            parse(body)
        except AqlError:
            pass


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.tuples(st.sampled_from(["forwardto", "forwardactive", "forwardstart", "forwardend", "x", ""]),
                                st.text(max_size=20)), max_size=8))
def test_getuser_parser_on_field_like_answers(lines: list[tuple[str, str]]) -> None:
    body = "\n".join(f"{k}:{v}" for k, v in lines)
    try:
        fields = parse_fields(body)
    except AqlError:
        return
    assert {"forwardto", "forwardactive", "forwardstart", "forwardend"} <= set(fields)


def test_transport_errors_from_httpx_are_wrapped() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def go() -> None:
        async with AqlClient("https://x.invalid/", "u", PASSWORD, transport=httpx.MockTransport(boom)) as c:
            await c.getuser("606309")

    with pytest.raises(AqlTransportError) as info:
        run(go())
    assert PASSWORD not in str(info.value)
