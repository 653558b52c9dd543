"""The config's small value types: durations, sizes, phone numbers, office hours, time zones, number
prefixes, notification URLs. Each parses what a person writes in TOML and says plainly what is wrong."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..core.credit import parse_credit
from ..core.phone import PhoneError, normalise

_MAX_DURATION_S = 400 * 86400
_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")


def parse_duration(value: Any) -> dt.timedelta:
    """'90s', '5m', '1h30m', '2d', a number of seconds, or a timedelta -> timedelta (>= 0)."""
    seconds: float | None = None
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            d, h, mi, s = (int(g or 0) for g in m.groups())
            seconds = float(d * 86400 + h * 3600 + mi * 60 + s)
    if seconds is None or seconds != seconds:  # not a duration, or NaN
        raise ValueError(f"{value!r} is not a duration such as '5m', '1h30m' or '2d'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > _MAX_DURATION_S:
        raise ValueError(f"{value!r} is longer than the 400 days forwardd accepts")
    return dt.timedelta(seconds=seconds)


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]


def _phone(value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError("expected a phone number as a string")
    try:
        return normalise(str(value))
    except PhoneError as err:
        raise ValueError(str(err)) from None


Phone = Annotated[str, BeforeValidator(_phone)]


def valid_url(url: str) -> bool:
    """Whether apprise knows how to deliver to ``url`` (a config check; no network)."""
    import apprise  # loaded where used: a daemon with nobody to tell never carries it

    return bool(apprise.Apprise().add(url))


def notify_url(v: str) -> str:
    if not valid_url(v):
        raise ValueError(f"{shown_url(v)!r} is not a notification URL apprise knows (json://, mailto://, ntfy://, "
                         "slack://, tgram://...)")
    return v


def shown_url(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1*****@", url)


NotifyURL = Annotated[str, AfterValidator(notify_url)]


class Person(BaseModel):
    """Someone calls can go to: ``alice = "07700 900001"`` or
    ``alice = { phone = "07700 900001", notify = ["mailto://...", "ntfy://..."] }``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    phone: Phone = Field(description="the number calls are forwarded to")
    notify: list[NotifyURL] = Field(default_factory=list, description="apprise URLs that get this person's notices")


def person_form(value: Any) -> Any:
    return {"phone": value} if isinstance(value, (str, int)) and not isinstance(value, bool) else value

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HOURS = re.compile(r"^\s*([A-Za-z,\- ]+?)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class OfficeHours(BaseModel):
    """One office-hours rule: on these weekdays, between these local times, nobody is forwarded to."""

    model_config = ConfigDict(frozen=True)
    weekdays: frozenset[int]  # 0 = Monday
    start: dt.time
    end: dt.time | None  # None = midnight at the end of the day ("24:00")
    text: str

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        """Parse 'Mon-Fri 09:00-17:30', 'Sat,Sun 10:00-12:00', 'Daily 08:00-24:00'."""
        m = _HOURS.match(text)
        if not m:
            raise ValueError(f"{text!r} is not like 'Mon-Fri 09:00-17:30'")
        days_text, h1, m1, h2, m2 = m.groups()
        days: set[int] = set()
        for part in days_text.lower().replace(" ", "").split(","):
            if part in ("daily", "everyday"):
                days.update(range(7))
                continue
            ends = part.split("-")
            try:
                idx = [_DAYS.index(e[:3]) for e in ends if e]
            except ValueError:
                raise ValueError(f"{part!r} is not a weekday (Mon..Sun) or range such as Mon-Fri") from None
            if len(idx) == 1:
                days.add(idx[0])
            elif len(idx) == 2:
                a, b = idx
                days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
            else:
                raise ValueError(f"{part!r} is not a weekday range")
        if int(h1) > 23 or int(m1) > 59 or int(m2) > 59 or int(h2) > 24 or (int(h2) == 24 and int(m2)):
            raise ValueError(f"{text!r} has a time that does not exist")
        start = dt.time(int(h1), int(m1))
        end = None if int(h2) == 24 else dt.time(int(h2), int(m2))
        if end is not None and end <= start:
            raise ValueError(f"{text!r}: office hours must end after they start on the same day")
        return cls(weekdays=frozenset(days), start=start, end=end, text=text)


def office_hours_form(value: Any) -> Any:
    if isinstance(value, str):
        return OfficeHours.parse(value)
    return value


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (127.x, localhost, ::1): plain http is fine there."""
    return bool(re.match(r"^https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(/|$)", url, re.IGNORECASE))


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB)?\s*$", re.IGNORECASE)


def parse_size(value: Any) -> int:
    """'20MB', '500 KB', '1GB' or a number of bytes -> bytes (> 0)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = _SIZE.match(value) if isinstance(value, str) else None
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a size such as '20MB' or '500KB'")
    return int(m.group(1)) * {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[(m.group(2) or "B").upper()]


Size = Annotated[int, BeforeValidator(parse_size)]


def parse_amount(value: Any) -> Decimal:
    """'2.00', '5', 2 or 2.5 -> a Decimal amount of credit (>= 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    try:
        amount = parse_credit(value) if isinstance(value, str) else None
    except ValueError:
        amount = None
    if amount is None or not amount.is_finite():
        raise ValueError(f"{value!r} is not an amount such as '2.00'")
    if amount < 0:
        raise ValueError("an amount of credit cannot be negative")
    return amount


Amount = Annotated[Decimal, BeforeValidator(parse_amount)]


def at_least_a_minute(v: dt.timedelta) -> dt.timedelta:
    if v < dt.timedelta(minutes=1):
        raise ValueError("drift checks can be as often as every 1m, not more")
    return v


def positive(v: dt.timedelta) -> dt.timedelta:
    if v <= dt.timedelta(0):
        raise ValueError("must be longer than 0s")
    return v


Positive = Annotated[dt.timedelta, BeforeValidator(parse_duration), AfterValidator(positive)]


DriftEvery = Annotated[dt.timedelta, BeforeValidator(parse_duration), AfterValidator(at_least_a_minute)]


def prefix(v: str) -> str:
    if not re.fullmatch(r"!?\d{1,15}", v):
        raise ValueError(f"{v!r} is not a number prefix such as '07' or '!070'")
    return v


def zone(v: str) -> str:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{v!r} is not an IANA time zone such as 'Europe/London'") from None
    return v


Zone = Annotated[str, AfterValidator(zone)]
Prefix = Annotated[str, AfterValidator(prefix)]


# aql's rule for its own numbers, in one place (the config, the page and the fake account use it)
VOIPNUMBER = re.compile(r"^[67]\d{5}$")
RULE = "6 digits beginning with 6 or 7"


def is_voipnumber(text: str) -> bool:
    """Whether ``text`` is an aql VoIP number (``606309``)."""
    return bool(VOIPNUMBER.match(text))


def voipnumber(v: Any) -> str:
    """A number from the config, by aql's rule. Raises ValueError."""
    v = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
    if not isinstance(v, str) or not is_voipnumber(v):
        raise ValueError(f"{v!r} is not an aql VoIP number ({RULE})")
    return v


class Strict(BaseModel):
    """A table of the config: unknown keys are errors, values frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
