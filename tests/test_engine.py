"""The daemon's engine on virtual time: the same jobs the daemon runs (start-up, changes at their second,
drift checks, retries, re-plans), against simulated accounts, minutes or days of daemon time in a
second or two. What is checked is what the simulated accounts received and held."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
import structlog
from structlog.testing import capture_logs

from forwardd.aql.account import Account
from forwardd.aql.carrier import program_of
from forwardd.aql.simulated import SIMULATED_CREDENTIAL
from forwardd.clock import VirtualClock
from forwardd.config import Config, config_from_dict
from forwardd.core.timeline import Segment
from forwardd.notify.keys import AlertKey, AlertKind
from forwardd.service.engine import Engine
from forwardd.service.metrics import Metrics
from forwardd.service.services import Services
from forwardd.service.simulate import misrouted_seconds

from .conftest import UTC
from .e2e import A, B, C, ics

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def config(tmp_path: Path, events: list[tuple[dt.datetime, dt.datetime, str]], numbers: int = 1,
           lines: list[dict[str, Any]] | None = None, **extra: Any) -> Config:
    (tmp_path / "rota.ics").write_text(ics(events))
    doc: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "aql": {"url": "simulated", "min_slack": "1s"},
        "people": {"alice": A, "bob": B, "carol": C},
        "calendars": {"rota": {"source": "rota.ics", "refresh": "1m"}},
        "numbers": lines or [{"voipnumber": str(606309 + i), "rota": "rota"} for i in range(numbers)],
    }
    for key, value in extra.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(doc, base_dir=tmp_path)


def fresh(cfg: Config, clock: VirtualClock, password: str = SIMULATED_CREDENTIAL) -> dict[str, Account]:
    return {name: Account.with_numbers(SIMULATED_CREDENTIAL, password, [n.voipnumber for n in cfg.numbers_of(name)],
                                       clock=clock.now) for name in cfg.account_names}


Body = Callable[[Engine, VirtualClock, dict[str, Account]], Awaitable[Any]]


def run(cfg: Config, body: Body, start: dt.datetime = T0, accounts: dict[str, Account] | None = None,
        metrics: bool = False) -> Any:
    """Services on simulated accounts and the engine on a driven virtual clock; ``body`` moves time."""
    async def go() -> Any:
        clock = VirtualClock(start, driven=True)
        held = accounts if accounts is not None else fresh(cfg, clock)
        for account in held.values():
            account.clock = clock.now
        sv = await Services.open(cfg, aql=True, journal="write", clock=clock, simulated_accounts=held)
        engine = Engine(sv, clock, metrics=Metrics(clock) if metrics else None)
        try:
            await engine.start()
            return await body(engine, clock, held)
        finally:
            engine.crash()
            await clock.settle()
            await sv.close()

    return asyncio.run(go())


def held_by(account: Account, number: str) -> list[tuple[dt.datetime, Any]]:
    return [(h.at, program_of(h.fields)) for h in account.history if h.voipnumber == number]


def test_a_fast_rota_is_followed_to_the_second_and_the_exact_hand_over_goes_without_a_read(tmp_path: Path) -> None:
    s = lambda n: T0 + dt.timedelta(seconds=n)  # noqa: E731
    events = [(s(60), s(120), "Alice"), (s(120), s(180), "Bob"), (s(240), s(300), "Carol")]
    cfg = config(tmp_path, events)

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> list[Any]:
        await clock.run_until(s(330))
        return held_by(accounts["aql"], "606309")

    held = run(cfg, body)
    timeline = [Segment(s(0), s(60), None, ""), Segment(s(60), s(120), A, ""), Segment(s(120), s(180), B, ""),
                Segment(s(180), s(240), None, ""), Segment(s(240), s(300), C, ""), Segment(s(300), s(330), None, "")]
    assert misrouted_seconds(held, timeline, cfg.tz, False) == 0
    to_bob = [t for t, p in held if p.active and p.target == B]
    assert to_bob and to_bob[0] == s(120)  # the exact hand-over at its second


def test_a_hand_made_change_is_seen_within_the_interval_and_restored_or_only_reported(tmp_path: Path) -> None:
    """606309 and 606310 restore a hand-made change; 606311 (on_drift = "alert") only reports it, and its
    alert stands while the change does."""
    lines = [{"voipnumber": "606309", "rota": "rota"}, {"voipnumber": "606310", "rota": "rota"},
             {"voipnumber": "606311", "rota": "rota", "on_drift": "alert"}]
    cfg = config(tmp_path, [(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=2), "Alice")], lines=lines,
                 daemon={"drift_check_every": "10m"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> list[dt.datetime]:
        await clock.run_until(T0 + dt.timedelta(minutes=33))
        hand = clock.now()
        for v in ("606309", "606310", "606311"):
            accounts["aql"].set_fields(v, {"forwardto": "07700900666"})
        await clock.run_until(T0 + dt.timedelta(hours=1))
        restored = [t for t, p in held_by(accounts["aql"], "606310") if t > hand and p.target == A]
        assert AlertKey(AlertKind.DRIFT, "606310") not in engine.sv.alerts.active  # cleared once restored
        assert accounts["aql"].users["606311"]["forwardto"] == "07700900666"  # only reported...
        assert AlertKey(AlertKind.DRIFT, "606311") in engine.sv.alerts.active  # ...and the alert stands
        drifts = {e["voipnumber"] for e in engine.sv.journal.entries(kind="drift")} if engine.sv.journal else set()
        assert drifts == {"606309", "606310", "606311"}
        return [t - hand for t in restored]

    after = run(cfg, body)
    assert after and dt.timedelta(0) < after[0] <= dt.timedelta(minutes=10)


def test_a_pass_that_does_not_confirm_is_retried_with_back_off_until_one_does(tmp_path: Path) -> None:
    cfg = config(tmp_path, [(T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(hours=3), "Alice")])

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> list[float]:
        await clock.run_until(T0 + dt.timedelta(minutes=1))
        accounts["aql"].ignore_next_changes = 12  # aql says OK and applies nothing, twelve times
        await clock.run_until(T0 + dt.timedelta(minutes=30))
        state = accounts["aql"].users["606309"]
        assert (state["forwardto"], state["forwardactive"]) == (A, "1")
        return [(e["at"]) for e in engine.sv.journal.entries(kind="change")] if engine.sv.journal else []

    run(cfg, body)


def test_a_refused_password_is_said_once_not_every_second(tmp_path: Path) -> None:
    """Issue 20 #8: aql asked once a minute, the alert once, and the log quiet in between."""
    cfg = config(tmp_path, [(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=2), "Alice")], numbers=5,
                 daemon={"drift_check_every": "1m"}, alerts={"repeat_after": "1h"})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> tuple[list[Any], int]:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
        with capture_logs() as logs:
            await clock.run_until(T0 + dt.timedelta(minutes=30))
        return logs, sum(accounts["aql"].requests.values())

    clock_accounts = fresh(cfg, VirtualClock(T0), password="not-the-password")
    logs, asked = run(cfg, body, accounts=clock_accounts)
    said = [e for e in logs if e["event"] == "pass" and e.get("failure") == "auth"]
    alerts = [e for e in logs if e["event"] == "alert" and e.get("alert") == "auth"]
    assert len(alerts) == 1 and len(said) <= 5  # each line said once (the first refusal), not every second
    assert asked <= 30 + 5 + 2  # one probe a minute, not a request per line per check
    assert len(logs) < 60, [e["event"] for e in logs]


def test_a_calendars_age_is_measured_when_scraped(tmp_path: Path) -> None:
    """Issue 20 #9: the age grows between refreshes; it was frozen at the last refresh."""
    cfg = config(tmp_path, [(T0, T0 + dt.timedelta(days=2), "Alice")],
                 calendars={"rota": {"source": "rota.ics", "refresh": "1d"}})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> tuple[float, float]:
        assert engine.metrics is not None

        def age() -> float:
            line = next(ln for ln in engine.metrics.text().decode().splitlines()
                        if ln.startswith('forwardd_calendar_age_seconds{calendar="rota"}'))
            return float(line.split()[-1])

        first = age()
        await clock.run_until(T0 + dt.timedelta(hours=2))
        return first, age()

    first, later = run(cfg, body, metrics=True)
    assert later - first == pytest.approx(7200, abs=1)


def test_a_wrong_password_on_one_account_never_delays_anothers_hand_overs(tmp_path: Path) -> None:
    s = lambda n: T0 + dt.timedelta(seconds=n)  # noqa: E731
    events = [(s(0), s(30), "Alice"), (s(30), s(60), "Bob"), (s(60), s(90), "Carol")]
    (tmp_path / "rota.ics").write_text(ics(events))
    cfg = config_from_dict({
        "state_dir": str(tmp_path / "state"),
        "accounts": {"north": {"url": "simulated", "min_slack": "1s"}, "south": {"url": "simulated"}},
        "people": {"alice": A, "bob": B, "carol": C},
        "calendars": {"rota": {"source": "rota.ics", "refresh": "1m"}},
        "numbers": [{"voipnumber": "606309", "rota": "rota", "account": "north"},
                    {"voipnumber": "606310", "rota": "rota", "account": "south"}],
    }, base_dir=tmp_path)

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> Any:
        await clock.run_until(s(120))
        return held_by(accounts["north"], "606309"), engine.sv.alerts.sent, accounts["south"].history

    accounts = {"north": Account.with_numbers(SIMULATED_CREDENTIAL, SIMULATED_CREDENTIAL, ["606309"]),
                "south": Account.with_numbers(SIMULATED_CREDENTIAL, "wrong", ["606310"])}
    held, sent, south = run(cfg, body, start=s(-5), accounts=accounts)
    timeline = [Segment(s(-5), s(0), None, ""), Segment(s(0), s(30), A, ""), Segment(s(30), s(60), B, ""),
                Segment(s(60), s(90), C, ""), Segment(s(90), s(120), None, "")]
    assert misrouted_seconds(held, timeline, cfg.tz, False) == 0
    assert [t for t, p in held if p.active and p.target in (B, C)][:2] == [s(30), s(60)]  # the exact ones, on time
    auth = [a for a in sent if a["key"].kind is AlertKind.AUTH]
    assert len(auth) == 1 and auth[0]["key"].account == "south" and south == []


@pytest.mark.parametrize(("numbers", "cap", "every", "bound"), [(1_000, 10, "1h", 100), (400, 120, "10m", 10)])
def test_every_line_is_read_within_the_interval_the_cap_allows(tmp_path: Path, numbers: int, cap: int, every: str,
                                                               bound: int) -> None:
    """Issue 18: at a size where the cap cannot read every line once per drift_check_every, each is read
    within numbers / cap minutes instead (here 100), none is forgotten, and the reads never beat the cap."""
    cfg = config(tmp_path, [(T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=2), "Alice")], numbers=numbers,
                 aql={"max_requests_per_minute": cap}, daemon={"drift_check_every": every})

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> tuple[Any, ...]:
        lane = engine.lanes["aql"]
        assert lane.grid.interval == dt.timedelta(minutes=bound)
        await clock.run_until(T0 + dt.timedelta(minutes=bound // 2))
        for v in list(accounts["aql"].users):
            accounts["aql"].set_fields(v, {"forwardto": "07700900666"})
        hand = clock.now()
        seen: dict[str, dt.datetime] = {}
        engine.on_outcome = lambda v, req, out, now: out.drift and seen.setdefault(v, now)
        await clock.run_until(hand + dt.timedelta(minutes=bound, seconds=30))
        return hand, seen

    hand, seen = run(cfg, body)
    assert len(seen) == numbers  # every line's hand-made change was seen...
    assert max(seen.values()) - hand <= dt.timedelta(minutes=bound, seconds=5)  # ...within the interval


def test_many_overlapping_events_are_one_summary_line_per_calendar_per_re_plan(tmp_path: Path) -> None:
    """Issue 22: a feed of hundreds of overlapping events logs one line for them, not one per overlap."""
    base = T0 - dt.timedelta(hours=1)
    events = [(base + dt.timedelta(minutes=7 * i), base + dt.timedelta(minutes=7 * i + 30), ("Alice", "Bob")[i % 2])
              for i in range(400)]
    cfg = config(tmp_path, events)

    async def body(engine: Engine, clock: VirtualClock, accounts: dict[str, Account]) -> list[Any]:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
        with capture_logs() as logs:
            await engine.replan()
        return [e for e in logs if e["event"] == "plan_warning"]

    said = run(cfg, body)
    overlaps = [e for e in said if e["kind"] == "overlap"]
    assert len(overlaps) == 1 and overlaps[0]["calendar"] == "rota" and overlaps[0]["count"] > 300
    assert overlaps[0]["message"].startswith(f"{overlaps[0]['count']:,} overlap findings; first: rota events overlap")


def test_reading_calendars_in_the_worker_process_takes_no_virtual_time(tmp_path: Path) -> None:
    """The calendar worker is a process apart: on a driven virtual clock, time stands still while it reads
    (else a re-plan "took" an hour of virtual time and the changes due meanwhile went out late)."""
    cfg = config(tmp_path, [(T0 + dt.timedelta(hours=h), T0 + dt.timedelta(hours=h + 1), "Alice") for h in range(300)])

    async def go() -> dt.datetime:
        clock = VirtualClock(T0, driven=True)
        sv = await Services.open(cfg, clock=clock)  # the daemon's expander: a worker process
        try:
            for s in range(1, 3600):  # something due every second, as a busy daemon has
                clock.call_at(T0 + dt.timedelta(seconds=s), lambda: None)
            done: list[dt.datetime] = []

            async def read_and_plan() -> None:
                await sv.refresh_calendars()
                await sv.make_plan()
                done.append(clock.now())

            task = asyncio.get_running_loop().create_task(read_and_plan())
            await clock.run_until(T0 + dt.timedelta(hours=1))
            await task
            return done[0]
        finally:
            await sv.close()

    assert asyncio.run(go()) == T0
