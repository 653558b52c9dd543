"""What every command shares: loading the config (its warnings on stderr), opening the services a
command needs, reading times from the command line, and people and times in words: local, with their
zone, never microseconds."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import warnings
from typing import Any, Awaitable, Callable, TypeVar

from ..clock import SystemClock
from ..config import Config, ConfigWarning, load_config, parse_duration
from ..config.location import HOW_TO_CHOOSE
from ..core.timeline import display_name
from ..core.words import day_time
from ..errors import ForwarddError
from ..service.services import Services
from ..store.statedir import give_back

DEFAULT_CONFIG = os.environ.get("FORWARDD_CONFIG", "/etc/forwardd/forwardd.toml")
T = TypeVar("T")


def now() -> dt.datetime:
    """The wall clock, to the second (for commands that read times before they open their services)."""
    return SystemClock().now().replace(microsecond=0)


def when(t: dt.datetime, cfg: Config, year: bool = False) -> str:
    """``Thu 3 Dec 07:28 GMT`` on the configured wall clock, with its zone (seconds when there are some)."""
    return f"{day_time(t, cfg.tz, year=year)} {t.astimezone(cfg.tz):%Z}"


def stamp(t: dt.datetime, cfg: Config, today: dt.datetime) -> str:
    """When something happened, to the second, with the year only when it is not this one:
    ``Thu 3 Dec 07:28:05 GMT``."""
    lt = t.astimezone(cfg.tz)
    year = lt.year != today.astimezone(cfg.tz).year
    return f"{lt:%a} {lt.day} {lt:%b}{lt.strftime(' %Y') if year else ''} {lt:%H:%M:%S %Z}"


def parse_when(text: str, cfg: Config, what: str, now: dt.datetime) -> dt.datetime:
    """An instant from the command line: ISO 8601 with an offset, a local ``YYYY-MM-DD HH:MM`` or a plain
    date (in the configured timezone), or ``+90m`` / ``+2h`` / ``+1d`` from ``now`` (``-2h``: before
    it). Raises ForwarddError saying every form that works."""
    text = text.strip()
    forms = (f"use 2026-12-01, '2026-12-01 18:00' (in {cfg.timezone}), 2026-12-01T18:00:00+00:00, or +2h "
             "(from now; -2h for two hours ago)")
    if text[:1] in "+-" and text[1:2].isdigit():
        try:
            delta = parse_duration(text[1:])
        except ValueError:
            raise ForwarddError(f"{what} {text!r} is not a time: {forms}") from None
        return now + delta if text[0] == "+" else now - delta
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ForwarddError(f"{what} {text!r} is not a date or time: {forms}") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=cfg.tz)


def load(args: argparse.Namespace) -> Config:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load_config(args.config)
    for w in caught:
        if issubclass(w.category, ConfigWarning):  # not the libraries' deprecation notes
            print(f"warning: {w.message}", file=sys.stderr)
    return cfg


def with_services(cfg: Config, body: Callable[[Services], Awaitable[T]], **needs: Any) -> T:
    """Open the services a command needs, run ``body`` with them, close them."""

    async def go() -> T:
        sv = await Services.open(cfg, **needs)
        try:
            return await body(sv)
        finally:
            await sv.close()
            if sv.state is not None:  # root on the service's state directory: leave it the service's
                give_back(sv.state.path)

    return asyncio.run(go())


def state_words(cfg: Config) -> str:
    """Why the state directory is the one it is, and how to choose another where nothing chose it:
    ``the default, ~/.local/state/forwardd; to use another, set state_dir ...``. Raises StateDirUnknown."""
    where = cfg.state_location
    return where.why if where.chosen else f"{where.why}; to use another, {HOW_TO_CHOOSE}"


def names(cfg: Config) -> dict[str, str]:
    """Each person's number -> their name, as shown."""
    return {p.phone: display_name(name) for name, p in cfg.people.items()}


def person_words(cfg: Config, number: str | None, person: str | None) -> str:
    if number is None:
        return "not forwarded"
    return f"{person} ({number})" if person and person != number else number


def line_label(cfg: Config, voipnumber: str) -> str:
    """A line as the commands show it: ``Support line (606309)``, and its account where there are several."""
    label = cfg.number(voipnumber).label
    return f"{label}, account {cfg.account_of(voipnumber)}" if len(cfg.account_names) > 1 else label
