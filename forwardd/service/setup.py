"""``forwardd init``: read an aql account as it is, and write a config on which starting forwardd changes
nothing.

A new user's numbers already forward somewhere; a config written by hand that gets one of them wrong
re-routes a live line at the first start. So the account is read (``listusers``, then ``getuser`` per
number under the account's request cap, through the services' own carrier: ``read_account``), and
``config_text``, a pure function of those readings, writes every number with today's forwarding as its
``fallback``, the people it forwards to as ``person1``..., and office hours where a number forwards only
within its daily window:

- forwarding all day: ``fallback`` the target, nothing else;
- forwarding within a window (17:30:00-23:59:59): the rest of the day is office hours
  (``Daily 00:00-17:30``), in which forwardd forwards nothing; an overnight window (start after end) is
  reproduced the same way, with ``window_wraps_midnight = true`` so that forwardd may keep it as it is;
- not forwarding: ``fallback = "none"`` with office hours all day, every day (a gap would be alerted).
Office hours are whole minutes: a window whose edges are not is written to the nearest minute, and its
comment says so. A number forwarding to something that is not a phone number is left out (commented),
since forwardd leaves a number it does not manage as it is. ``plan_differences`` then checks, with
forwardd's own planner, that the plan keeps each number as it is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..config import DEFAULT_ACCOUNT, SIMULATED, Config, config_from_dict
from ..config.types import is_voipnumber
from ..core.carrier import Reading
from ..core.credit import shown
from ..core.phone import PhoneError, canonical, normalise
from ..core.plan import Plan, program_at
from ..core.provider import DAY, hms
from ..errors import CarrierAuthError, CarrierError, CarrierThrottled
from .services import Services

PROBE_NUMBER = "600000"  # the minimal config's one number: never asked for
ALL_DAY_OFFICE = "Daily 00:00-24:00"
TIMEZONE = "Europe/London"  # aql's windows are UK wall-clock times (aql-voipapi.md, "Unknowns")


@dataclass(frozen=True)
class Origin:
    """Where the account was read, as the config will name it: the URL, the user name, and where the
    password is (``password_file`` or ``password_env``, and the path or the variable), never the password."""

    url: str
    username: str | None = None
    password_key: str | None = None
    password_ref: str | None = None
    allow_http: bool = False


@dataclass(frozen=True)
class LineRead:
    """One number as read: its reading, or why it could not be read."""

    voipnumber: str
    reading: Reading | None
    error: str | None = None


@dataclass(frozen=True)
class AccountRead:
    lines: tuple[LineRead, ...]
    other: tuple[str, ...] = ()  # what listusers gave that is not an aql VoIP number


def probe_config(origin: Origin, state_dir: Path, numbers: Sequence[str] = (PROBE_NUMBER,),
                 max_requests_per_minute: int | None = None) -> Config:
    """The least config that reaches the account (its one number is never asked for). Raises ConfigError."""
    aql: dict[str, object] = {"url": origin.url, "allow_http": origin.allow_http}
    if origin.url != SIMULATED:
        aql["username"] = origin.username
        if origin.password_key is not None:
            aql[origin.password_key] = origin.password_ref
    if max_requests_per_minute is not None:
        aql["max_requests_per_minute"] = max_requests_per_minute
    return config_from_dict({"state_dir": str(state_dir), "aql": aql,
                             "numbers": [{"voipnumber": n, "fallback": "07700900000"} for n in numbers]}, env={})


async def read_account(sv: Services, progress: Callable[[int, int], None] | None = None) -> AccountRead:
    """``listusers``, then ``getuser`` for each number, all under the account's request cap (the reads
    of a thousand numbers take minutes at the default 120 a minute). A read that fails is tried twice
    more; one that still fails is reported in its line. Raises CarrierError when listusers fails or the
    account refuses the credentials."""
    edges = sv.accounts[DEFAULT_ACCOUNT]
    carrier, budget, clock = edges.carrier, edges.budget, sv.clock
    await budget.take(clock)
    listed = await carrier.list_numbers()
    numbers = [n for n in dict.fromkeys(listed) if is_voipnumber(n)]
    done = [0]

    async def one(number: str) -> LineRead:
        reading: Reading | None = None
        error = "not read"
        for _ in range(3):
            await budget.take(clock)
            try:
                reading = await carrier.read(number)
                break
            except CarrierAuthError:
                raise
            except CarrierThrottled as err:
                budget.throttle(clock.now(), err.retry_after)
                error = str(err)
            except CarrierError as err:
                error = str(err)
                if not err.retryable:
                    break
        done[0] += 1
        if progress is not None:
            progress(done[0], len(numbers))
        return LineRead(number, reading, None if reading is not None else error)

    lines = await asyncio.gather(*(one(n) for n in numbers))
    return AccountRead(tuple(lines), tuple(n for n in listed if not is_voipnumber(n)))


# ---------------------------------------------------------------------------------- the config text


@dataclass(frozen=True)
class LinePolicy:
    """How a config reproduces one number's forwarding."""

    target: str | None  # who gets its calls when it forwards (as aql holds it)
    office_hours: tuple[str, ...]
    today: str  # what it does today, in words
    notes: tuple[str, ...] = ()  # what the config cannot reproduce exactly
    wraps: bool = False
    managed: bool = True


def _minute(s: int) -> int:
    return (s + 30) // 60 * 60


def _hm(s: int) -> str:
    return "24:00" if s >= DAY else f"{s // 3600:02d}:{s // 60 % 60:02d}"


def policy_of(reading: Reading) -> LinePolicy:
    """What reproduces ``reading``'s forwarding: its target as the fallback, and office hours over the
    rest of the day (or the whole week when it does not forward)."""
    program = reading.state.program
    if not program.active or not program.target:
        held = f" (aql holds forwardto {program.target}, switched off)" if program.target else ""
        return LinePolicy(None, (ALL_DAY_OFFICE,), f"not forwarding{held}")
    target = program.target
    try:
        normalise(target)
    except PhoneError:
        return LinePolicy(target, (), f"forwards to {target!r}", (
            f"it forwards to {target!r}, which forwardd cannot read as a phone number, so it is left out: "
            "forwardd leaves a number it does not manage exactly as it is",), managed=False)
    start, end = program.start, program.end
    on = [(start, end + 1)] if start <= end else [(start, DAY), (0, end + 1)]
    window = "all day" if (start, end) == (0, DAY - 1) else f"{hms(start)}-{hms(end)} each day" + (
        " (overnight)" if start > end else "")
    today = f"forwards to {target} {window}"
    off, cursor = [], 0
    for a, b in sorted(on):
        if a > cursor:
            off.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < DAY:
        off.append((cursor, DAY))
    rounded = [(_minute(a), _minute(b)) for a, b in off]
    notes = []
    if rounded != off:
        kept = [(a, b) for a, b in rounded if b > a]
        if sum(b - a for a, b in kept) >= DAY:
            return LinePolicy(target, (), today, (
                "its window is shorter than a minute, which office hours (whole minutes) cannot say, so it is "
                "left out: forwardd leaves a number it does not manage exactly as it is",), managed=False)
        notes.append("office hours are whole minutes, so forwardd will move the window's edges to the nearest "
                     "minute (a change of a few seconds)")
        rounded = kept
    return LinePolicy(target, tuple(f"Daily {_hm(a)}-{_hm(b)}" for a, b in rounded), today, tuple(notes),
                      wraps=start > end)


def _q(text: str) -> str:
    """A TOML basic string."""
    return json.dumps(text, ensure_ascii=False)


def config_text(account: AccountRead, origin: Origin, now: dt.datetime, output: str) -> str:
    """The config reproducing ``account`` as read at ``now`` (``output``: where it will be written, for the
    next steps' commands). Pure."""
    policies = {line.voipnumber: policy_of(line.reading) for line in account.lines if line.reading is not None}
    managed = [v for v, p in policies.items() if p.managed]
    people: dict[str, tuple[str, list[str]]] = {}  # canonical number -> (name, the numbers forwarding there)
    for v in managed:
        target = policies[v].target
        if target is not None:
            people.setdefault(canonical(target), (f"person{len(people) + 1}", []))[1].append(v)
    forwarding = sum(1 for v in managed if policies[v].target is not None)
    where = "the built-in simulated account" if origin.url == SIMULATED else \
        f"the aql account {origin.username!r} ({origin.url})"
    out = [
        f"# forwardd configuration, written by `forwardd init` on {now.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"# from {where}: {len(managed)} number(s), {forwarding} forwarding today.",
        "#",
        "# Starting forwardd on this file changes nothing: each number keeps today's forwarding as its",
        "# `fallback` (with office hours where it forwards only part of the day), and no rota is in use yet.",
        "# Every key is described in the README, under Configuration.",
        "#",
        "# Next steps:",
        "#   1. Rename person1, person2... in [people] to who they are (and the fallbacks naming them), and",
        "#      give each number a `name`.",
        "#   2. Add your rota calendar under [calendars] and uncomment `rota = \"rota\"` on each number it",
        "#      should route: the rota then decides, and the fallback takes the calls no event covers.",
        "#   3. Check it, see what forwardd would do, then start it:",
        f"#        forwardd check --config {output}",
        f"#        forwardd plan --config {output}",
        f"#        forwardd run --config {output}",
        "",
        f"timezone = {_q(TIMEZONE)}   # aql's forwarding windows are UK wall-clock times",
        "",
        "[aql]",
    ]
    if origin.url == SIMULATED:
        out += [f"url = {_q(SIMULATED)}   # for a real account: its voipapi.php URL, username and password_file"]
    else:
        out += [f"url = {_q(origin.url)}", f"username = {_q(origin.username or '')}"]
        if origin.password_key is not None and origin.password_ref is not None:
            out.append(f"{origin.password_key} = {_q(origin.password_ref)}   # where the password is; "
                       "this file never holds it")
        if origin.allow_http:
            out.append("allow_http = true   # the password travels in clear over plain http")
    wrapping = [v for v in managed if policies[v].wraps]
    if wrapping:
        out += [f"# {', '.join(wrapping)}: a window that starts after it ends (overnight) is held today, so aql is",
                "# taken to run such windows past midnight; if it does not, remove this line and check those lines.",
                "window_wraps_midnight = true"]
    out += ["", "[people]"]
    if people:
        out.append("# Rename each to who it is (and the fallbacks that name them, below).")
    else:
        out.append("# nobody yet: no number forwards today. Add people as name = \"07700 900001\".")
    for name, numbers in people.values():
        target = next(policies[v].target for v in numbers)
        who = numbers[0] + " forwards" if len(numbers) == 1 else f"{', '.join(numbers[:-1])} and {numbers[-1]} forward"
        out.append(f"{name} = {_q(target or '')}   # {who} here today")
    out += ["", "# Your rota: events whose title names a person above (\"On call: person1\") route the numbers",
            "# that use it. A private feed takes username and password_file, or bearer_token_file.",
            "# [calendars]", "# rota = { source = \"https://calendar.example.com/on-call.ics\" }",
            "# bank-holidays = { builtin = \"GB-ENG\" }"]
    by_number = {line.voipnumber: line for line in account.lines}
    for v in by_number:
        line, policy = by_number[v], policies.get(v)
        out.append("")
        if policy is None or not policy.managed:
            why = f"could not be read ({line.error})" if policy is None else "; ".join(policy.notes)
            out += [f"# {v} is left out: {why}.", "# [[numbers]]", f"# voipnumber = {_q(v)}"]
            continue
        person = people[canonical(policy.target)][0] if policy.target is not None else "none"
        credit = f"; credit {shown(line.reading.credit)}" if line.reading is not None and line.reading.credit else ""
        out += ["[[numbers]]", f"voipnumber = {_q(v)}", "# name = \"...\"   # what people call this line",
                f"fallback = {_q(person)}   # today: {policy.today}{credit}"]
        if policy.office_hours:
            why = ("not forwarding: remove this when a rota should route it" if policy.target is None
                   else "no forwarding inside them: today's window")
            out.append(f"office_hours = [{', '.join(_q(h) for h in policy.office_hours)}]   # {why}")
        if line.reading is not None and not line.reading.state.caller_id:
            out.append("forwardcli = false   # the caller's number is not passed through today")
        out += [f"# note: {note}" for note in policy.notes]
        out.append("# rota = \"rota\"")
    if account.other:
        out += ["", f"# listusers also gave {', '.join(_q(o) for o in account.other)}: not aql VoIP numbers, left out."]
    return "\n".join(out) + "\n"


def plan_differences(plan: Plan, account: AccountRead, now: dt.datetime) -> list[str]:
    """Where forwardd's plan would not keep a number as it was read: it changes it now, or later within
    the plan (empty: starting forwardd changes nothing)."""
    read = {line.voipnumber: line.reading for line in account.lines if line.reading is not None}
    out = []
    for n in plan.numbers:
        reading = read.get(n.voipnumber)
        if reading is None:
            continue
        found = program_at(n.changes, now)
        if n.error or found is None:
            out.append(f"{n.voipnumber}: no plan ({n.error or 'nothing planned for now'})")
        elif not reading.state.holds(found[1].program, reading.state.caller_id):
            out.append(f"{n.voipnumber}: forwardd would send {found[1].program.describe()} now")
        elif len(n.changes) > found[0] + 1:
            later = n.changes[found[0] + 1]
            out.append(f"{n.voipnumber}: forwardd would send {later.program.describe()} from "
                       f"{later.apply_from.isoformat(timespec='minutes')}")
    return out
