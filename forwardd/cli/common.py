"""What every command shares: loading the config (its warnings on stderr), opening the services a
command needs, reading times from the command line, and people and times in words."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import warnings
from typing import Any, Awaitable, Callable, TypeVar

from ..config import Config, ConfigWarning, load_config, parse_duration
from ..core.timeline import display_name
from ..errors import ForwarddError
from ..service.services import Services

DEFAULT_CONFIG = os.environ.get("FORWARDD_CONFIG", "/etc/forwardd/forwardd.toml")
T = TypeVar("T")


def when(t: dt.datetime, cfg: Config, year: bool = False) -> str:
    return t.astimezone(cfg.tz).strftime("%a %d %b %Y %H:%M" if year else "%a %d %b %H:%M:%S")


def parse_when(text: str, cfg: Config, what: str, now: dt.datetime | None = None) -> dt.datetime:
    """An instant from the command line: ISO 8601 with an offset, a local ``YYYY-MM-DD HH:MM`` or a plain
    date (in the configured timezone), or ``+90m`` / ``+2h`` / ``+1d`` from ``now``. Raises ForwarddError."""
    text = text.strip()
    if text.startswith("+") and now is not None:
        try:
            return now + parse_duration(text[1:])
        except ValueError:
            raise ForwarddError(f"{what} {text!r} is not a time such as +90m or +2h") from None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ForwarddError(f"{what} {text!r} is not a date or time: use 2026-12-01, '2026-12-01 18:00' "
                            f"(in {cfg.timezone}) or 2026-12-01T18:00:00+00:00") from None
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

    return asyncio.run(go())


def names(cfg: Config) -> dict[str, str]:
    """Each person's number -> their name, as shown."""
    return {p.phone: display_name(name) for name, p in cfg.people.items()}


def person_words(cfg: Config, number: str | None, person: str | None) -> str:
    if number is None:
        return "not forwarded"
    return f"{person} ({number})" if person and person != number else number

