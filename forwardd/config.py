"""The configuration file: TOML, validated into typed, frozen objects.

Validation runs in two passes, as borgmatic does: the schema pass (types, formats, unknown keys)
and a logical pass (names that must refer to something defined). Every problem from both passes is
collected and reported at once, each at its key path, in one ConfigError.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import ipaddress
import os
import re
import socket
import stat
import tomllib
import warnings
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .core.phone import PhoneError, normalise
from .errors import ConfigError

SIMULATED = "simulated"
DEFAULT_URL = "https://gw.aql.com/reseller/voipapi.php"
CREDENTIAL_NAME = "aql-password"
DB_CREDENTIAL_NAME = "db-password"

# --------------------------------------------------------------------------------------------
# small value types


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


class Person(BaseModel):
    """Someone calls can go to: ``alice = "07700 900001"`` or
    ``alice = { phone = "07700 900001", notify = ["mailto://...", "ntfy://..."] }``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    phone: Phone = Field(description="the number calls are forwarded to")
    notify: list[str] = Field(default_factory=list, description="apprise URLs that get this person's notices")


def _person(value: Any) -> Any:
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


def _office_hours(value: Any) -> Any:
    if isinstance(value, str):
        return OfficeHours.parse(value)
    return value


# --------------------------------------------------------------------------------------------
# the schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AqlSettings(_Strict):
    """How to reach the aql account."""

    url: str = Field(SIMULATED, description="'simulated' for the built-in simulated account, else the voipapi.php URL")
    username: str = Field("simulated", min_length=1, description="aql account username")
    password: SecretStr | None = Field(None, description="inline password (prefer password_file)")
    password_file: Path | None = Field(None, description="file holding the password")
    password_env: str | None = Field(None, description="environment variable holding the password")
    allow_http: bool = Field(False, description="allow a plain http:// URL (the password travels in every request)")
    window_wraps_midnight: bool = Field(False, description="forwardstart > forwardend means an overnight window")
    min_slack: Duration = Field(dt.timedelta(minutes=5), description="smallest hand-over overlap worth having")
    timeout: Duration = Field(dt.timedelta(seconds=10), description="timeout of one request")
    concurrency: int = Field(20, ge=1, le=500, description="requests in flight at once")
    max_requests_per_minute: int = Field(120, ge=1, le=100_000,
                                         description="cap on background reads (drift checks); changes are never held")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v == SIMULATED or re.match(r"^https?://[^\s/]+", v):
            return v
        raise ValueError("expected 'simulated' or an http(s) URL such as " + DEFAULT_URL)

    @model_validator(mode="after")
    def _http(self) -> AqlSettings:
        if self.url.startswith("http://") and not self.allow_http and not is_loopback_url(self.url):
            raise ValueError("a plain http:// URL sends the password in clear; use https or set allow_http = true")
        return self


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


class CalendarSettings(_Strict):
    """One calendar: a file, an https feed, or a built-in holiday list."""

    source: str | None = Field(None, description="path (relative to the config file) or https URL")
    builtin: Literal["GB-ENG", "GB-SCT", "GB-NIR", "GB-WLS"] | None = Field(None, description="built-in bank holidays")
    refresh: Duration = Field(dt.timedelta(minutes=15), description="how often to re-read it")
    max_age: Duration = Field(dt.timedelta(days=2), description="alert when the last good copy is older")
    allow_http: bool = Field(False, description="allow a plain http:// feed")
    timeout: Duration = Field(dt.timedelta(seconds=20), description="how long one whole download may take")
    max_bytes: Size = Field(20 * 1024 * 1024, description="largest feed accepted, e.g. '20MB'")
    max_occurrences: int = Field(50_000, ge=1, le=1_000_000, description="most occurrences in the horizon")

    @model_validator(mode="after")
    def _one_kind(self) -> CalendarSettings:
        if (self.source is None) == (self.builtin is None):
            raise ValueError("give exactly one of 'source' or 'builtin'")
        if self.source and self.source.startswith("http://") and not (self.allow_http or is_loopback_url(self.source)):
            raise ValueError("plain http:// feeds need allow_http = true")
        return self

    @property
    def is_url(self) -> bool:
        return bool(self.source and re.match(r"^https?://", self.source))


class NumberSettings(_Strict):
    """One managed aql number and the policy that routes it."""

    voipnumber: str = Field(description="the aql VoIP number, 6 digits starting with 6 or 7")
    rota: str | None = Field(None, description="calendar whose events say who is on call")
    overrides: list[str] = Field(default_factory=list, description="calendars whose events win over the rota")
    holidays: list[str] = Field(default_factory=list, description="calendars whose days are out of hours all day")
    office_hours: list[Annotated[OfficeHours, BeforeValidator(_office_hours)]] = Field(
        default_factory=list, description="inside these, no forwarding; without any, follow the rota all day"
    )
    fallback: str = Field("none", description="a person, a number, or 'none': who gets calls no event covers")
    forwardcli: bool = Field(True, description="pass the caller's number through")
    on_drift: Literal["restore", "alert"] | None = Field(None, description="overrides the global on_drift")

    @field_validator("voipnumber", mode="before")
    @classmethod
    def _voip(cls, v: Any) -> str:
        v = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
        if not isinstance(v, str) or not re.fullmatch(r"[67]\d{5}", v):
            raise ValueError(f"{v!r} is not an aql VoIP number (6 digits beginning with 6 or 7)")
        return v

    name: str | None = Field(None, max_length=80, description="what people call this line ('Support line')")

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return "none" if isinstance(v, str) and v.strip().lower() == "none" else v

    @property
    def label(self) -> str:
        """How the line is shown: ``Support line (606309)``, or the bare number."""
        return f"{self.name} ({self.voipnumber})" if self.name else self.voipnumber


def _notify_url(v: str) -> str:
    from .notify.notifier import valid_url

    if not valid_url(v):
        raise ValueError(f"{_shown_url(v)!r} is not a notification URL apprise knows (json://, mailto://, ntfy://, "
                         "slack://, tgram://...)")
    return v


def _shown_url(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1*****@", url)


NotifyURL = Annotated[str, AfterValidator(_notify_url)]


class AlertSettings(_Strict):
    """Where the administrator hears of forwardd's own trouble."""

    notify: list[NotifyURL] = Field(default_factory=list, description="apprise URLs that get every alert")
    repeat_after: Duration = Field(dt.timedelta(hours=1), description="re-send a standing alert no sooner")
    gap_ahead: Duration = Field(dt.timedelta(hours=48), description="alert a coverage gap starting this soon")


def _at_least_a_minute(v: dt.timedelta) -> dt.timedelta:
    if v < dt.timedelta(minutes=1):
        raise ValueError("drift checks can be as often as every 1m, not more")
    return v


class NoticeSettings(_Strict):
    """Notices to the people going on call (those with ``notify`` URLs in [people])."""

    before: Duration = Field(dt.timedelta(hours=1), description="how long before a shift the first notice goes")


class DaemonSettings(_Strict):
    drift_check_every: Annotated[dt.timedelta, BeforeValidator(parse_duration), AfterValidator(_at_least_a_minute)] = (
        Field(dt.timedelta(hours=1), description="read each number this often for hand-made changes (1m at least)"))
    replan_every: Duration = Field(dt.timedelta(hours=6), description="re-plan at least this often")
    horizon: Duration = Field(dt.timedelta(days=14), description="how far ahead to plan")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Prometheus endpoint on 127.0.0.1")
    calendar_deadline: Duration = Field(dt.timedelta(seconds=60),
                                        description="longest a calendar may take to read before it is abandoned")


class WebSettings(_Strict):
    """The page (``/``, ``/status``, ``/history``, ``/metrics``, ``/healthz``) the daemon serves. It has no
    login: it listens on loopback unless ``allow_remote`` says that serving it to the network is meant."""

    port: int | None = Field(None, ge=1, le=65535, description="serve the page on this port (default: off)")
    allow_remote: bool = Field(False, description="allow a listen address other than loopback (unauthenticated!)")
    listen: str = Field("127.0.0.1", description="address to listen on: 127.0.0.1, ::1 or localhost unless "
                                                 "allow_remote = true")

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str, info: ValidationInfo) -> str:
        if v.lower() == "localhost":
            return v
        try:
            address = ipaddress.ip_address(v.strip("[]"))
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address such as 127.0.0.1 or ::1") from None
        if not address.is_loopback and not info.data.get("allow_remote"):
            raise ValueError(f"{v} is not a loopback address: the page has no login, so anyone who can reach "
                             f"{v} could read the rota and the journal; set allow_remote = true to mean it")
        return str(address)


def _positive(v: dt.timedelta) -> dt.timedelta:
    if v <= dt.timedelta(0):
        raise ValueError("must be longer than 0s")
    return v


Positive = Annotated[dt.timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class ClusterSettings(_Strict):
    """Two or more hosts sharing one PostgreSQL database: one of them (the leader, holding a lease in the
    database) sends to aql; the others (standbys) keep their plans ready and take over. The journal, the
    command-line overrides and the notices sent live in the database; the calendar cache stays local."""

    database: str = Field(description="postgresql://user@host:port/dbname (libpq URL; no password in it)")
    password_file: Path | None = Field(None, description="file holding the database password")
    password_env: str | None = Field(None, description="environment variable holding the database password")
    instance: str | None = Field(None, description="this instance's name, unique in the cluster (default: the "
                                                   "host name)")
    lease: Positive = Field(dt.timedelta(seconds=6),
                            description="how long the database keeps a silent leader's lease (its TCP user timeout "
                                        "and keepalives): the failover time after a host or network failure")
    check_every: Positive = Field(dt.timedelta(seconds=1),
                                  description="the leader re-confirms its lease, and a standby tries to take it, "
                                              "this often")
    fence: Positive = Field(dt.timedelta(seconds=3),
                            description="the leader sends only within this long of its last confirmation; a new "
                                        "leader waits this long before its first change")

    @field_validator("database")
    @classmethod
    def _database(cls, v: str) -> str:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        example = "expected a URL such as postgresql://forwardd@db.example/forwardd"
        if not re.match(r"^postgres(?:ql)?://", v):
            raise ValueError(example)
        try:  # libpq's own reading of it, so that what is refused here is what libpq would use
            params = conninfo_to_dict(v)
        except ProgrammingError:  # (its message may quote the URL: not shown)
            raise ValueError(f"{example}; libpq cannot read this one") from None
        secret = sorted(k for k in params if k in ("password", "sslpassword"))
        if secret:
            raise ValueError(f"the URL holds a {' and '.join(secret)}: put the password in password_file, "
                             f"password_env or the systemd credential '{DB_CREDENTIAL_NAME}' instead (the URL "
                             "is shown in logs and status)")
        return v

    @field_validator("instance")
    @classmethod
    def _instance(cls, v: str | None) -> str | None:
        if v is not None and not _INSTANCE.match(v):
            raise ValueError(f"{v!r} is not a name of letters, digits, '.', '_' and '-' (at most 63)")
        return v

    @model_validator(mode="after")
    def _timings(self) -> ClusterSettings:
        if not (2 * self.check_every < self.fence < self.lease):
            raise ValueError(f"the timings must be 2 × check_every < fence < lease (here {self.check_every.total_seconds():g}"
                             f" s, {self.fence.total_seconds():g} s, {self.lease.total_seconds():g} s): a leader must "
                             "confirm its lease twice per fence (a confirmation may take up to check_every itself), "
                             "and stop before the database may give the lease to another")
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give only one of password_file, password_env")
        return self

    def instance_name(self) -> str:
        """``instance``, else this host's name (each host of a cluster has its own)."""
        return self.instance or socket.gethostname().split(".")[0] or "forwardd"


def _prefix(v: str) -> str:
    if not re.fullmatch(r"!?\d{1,15}", v):
        raise ValueError(f"{v!r} is not a number prefix such as '07' or '!070'")
    return v


def _zone(v: str) -> str:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{v!r} is not an IANA time zone such as 'Europe/London'") from None
    return v


class Config(_Strict):
    """The whole configuration. ``base_dir`` is the folder of the config file (for relative paths)."""

    timezone: Annotated[str, AfterValidator(_zone)] = Field("Europe/London", description="the provider's wall clock")
    state_dir: Path | None = Field(None, description="journal and cache folder")
    on_drift: Literal["restore", "alert"] = Field("restore", description="what to do about a hand-made change")
    aql: AqlSettings = Field(default_factory=AqlSettings)  # type: ignore[arg-type]
    people: dict[str, Annotated[Person, BeforeValidator(_person)]] = Field(default_factory=dict)
    calendars: dict[str, CalendarSettings] = Field(default_factory=dict)
    numbers: list[NumberSettings] = Field(min_length=1)
    allowed_numbers: list[Annotated[str, AfterValidator(_prefix)]] = Field(
        default_factory=lambda: ["01", "02", "03", "07", "!070"],
        description="prefixes a number written in an event must match to get calls; '!' excludes")
    alerts: AlertSettings = Field(default_factory=AlertSettings)  # type: ignore[arg-type]
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)  # type: ignore[arg-type]
    notices: NoticeSettings = Field(default_factory=NoticeSettings)  # type: ignore[arg-type]
    web: WebSettings = Field(default_factory=WebSettings)  # type: ignore[arg-type]
    cluster: ClusterSettings | None = Field(None, description="share a PostgreSQL database with other hosts "
                                                              "(without it: SQLite, one host)")

    base_dir: Path = Field(Path("."), exclude=True)
    path: Path | None = Field(None, exclude=True)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def phones(self) -> dict[str, str]:
        """Each person's name and number, as the timeline needs them."""
        return {name: p.phone for name, p in self.people.items()}

    def person_named(self, text: str) -> str | None:
        """The [people] key that ``text`` names (any case), or None."""
        wanted = text.strip().lower()
        return next((name for name in self.people if name.lower() == wanted), None)

    def fallback_of(self, n: NumberSettings) -> tuple[str | None, str | None]:
        """A number's fallback as (phone, person's name or None); (None, None) for 'none'."""
        if n.fallback == "none":
            return None, None
        person = self.person_named(n.fallback)
        if person is not None:
            return self.people[person].phone, person
        return normalise(n.fallback), None

    def calendar_path(self, name: str) -> Path:
        src = self.calendars[name].source or ""
        return (self.base_dir / src).resolve()

    def resolve_state_dir(self) -> Path:
        """state_dir from the config, else $STATE_DIRECTORY (systemd), else the XDG state home."""
        if self.state_dir is not None:
            return (self.base_dir / self.state_dir).resolve()
        env = os.environ.get("STATE_DIRECTORY")
        if env:
            return Path(env.split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "forwardd"

    @functools.cached_property
    def _numbers_by_voip(self) -> dict[str, NumberSettings]:
        return {n.voipnumber: n for n in self.numbers}

    def number(self, voipnumber: str) -> NumberSettings:
        """A managed number's settings. Raises KeyError."""
        return self._numbers_by_voip[voipnumber]


# --------------------------------------------------------------------------------------------
# loading

# Keys that existed once: a config that still has one is told what replaced it.
REPLACED: dict[str, str] = {
    "daemon.reconcile_every": "replaced by daemon.drift_check_every (default 1h, at least 1m): each number is read "
                              "that often for hand-made changes, spread over the interval; changes go at their time",
    "alerts.webhook": "alerts now go to apprise URLs: notify = [\"json://host:port/path\"] (a JSON POST)",
    "alerts.email": "alerts now go to apprise URLs: notify = [\"mailto://host:port?from=...&to=...\"]",
}


class ConfigWarning(UserWarning):
    """Something in the config works but deserves a look (shown by every command)."""


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "literal[", "union[", "str", "int")) or "[" in str(part):
            continue  # pydantic's internal branch labels say nothing to a user
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose keys live at ``loc`` (for "did you mean"), following fields, lists and tables."""
    annotation: Any = Config
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        model = _inner_model(annotation)
        if isinstance(part, int) or model is None:
            if model is None:
                return None
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        if _is_table(annotation) and parts:
            parts.pop(0)  # the table's own key (a calendar's or a person's name)
    return _inner_model(annotation)


def _is_table(annotation: Any) -> bool:
    if get_origin(annotation) is dict:
        return True
    return any(_is_table(a) for a in get_args(annotation) if a is not type(None))


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside ``X``, ``X | None``, ``list[X]``, ``dict[str, X]``, ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _unknown_key_reason(loc: tuple[Any, ...]) -> str:
    path = _loc(loc)
    generic = re.sub(r"\[\d+\]", "", path)
    if path in REPLACED or generic in REPLACED:
        return f"is no longer a setting: {REPLACED.get(path) or REPLACED[generic]}"
    model = _model_at(loc[:-1])
    known = sorted(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else (f"; known keys: {', '.join(known)}" if known else "")
    return f"unknown key{hint}"


def _logical_problems(data: dict[str, Any], base_dir: Path) -> list[tuple[str, str]]:
    """Cross-field rules, checked on the raw document so that they are reported together with the
    schema's problems: names that must be defined, numbers that must be unique, files that must exist."""
    problems: list[tuple[str, str]] = []
    calendars: dict[str, Any] = data["calendars"] if isinstance(data.get("calendars"), dict) else {}
    people: dict[str, Any] = data["people"] if isinstance(data.get("people"), dict) else {}
    known = ", ".join(sorted(map(str, calendars))) or "none defined"
    numbers: list[Any] = data["numbers"] if isinstance(data.get("numbers"), list) else []
    seen: dict[str, int] = {}
    for i, n in enumerate(numbers):
        if not isinstance(n, dict):
            continue
        v = str(n.get("voipnumber"))
        if v in seen:
            problems.append((f"numbers[{i}].voipnumber", f"{v} is already configured at numbers[{seen[v]}]"))
        seen.setdefault(v, i)
        refs: list[tuple[str, Any]] = [("rota", n["rota"])] if n.get("rota") is not None else []
        for key in ("overrides", "holidays"):
            if isinstance(n.get(key), list):
                refs += [(f"{key}[{j}]", c) for j, c in enumerate(n[key])]
        for key, name in refs:
            if isinstance(name, str) and name not in calendars:
                close = difflib.get_close_matches(name, list(map(str, calendars)), n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f" ({known})"
                problems.append((f"numbers[{i}].{key}", f"calendar {name!r} is not defined in [calendars]{hint}"))
        fallback = n.get("fallback", "none")
        if isinstance(fallback, str) and fallback.strip().lower() not in ("none",):
            if not any(str(p).lower() == fallback.strip().lower() for p in people):
                try:
                    normalise(fallback)
                except PhoneError as err:
                    problems.append((f"numbers[{i}].fallback", f"{err}, nor a person in [people]"))
        has_rota = n.get("rota") is not None or bool(n.get("overrides"))
        if not has_rota and (not isinstance(fallback, str) or fallback.strip().lower() == "none"):
            problems.append((f"numbers[{i}]", "has no rota, no overrides and no fallback: it would never forward"))
    for name, c in calendars.items():
        if not isinstance(c, dict) or not isinstance(c.get("source"), str):
            continue
        src = c["source"]
        if not re.match(r"^https?://", src) and not (base_dir / src).resolve().is_file():
            problems.append((f"calendars.{name}.source", f"file {(base_dir / src).resolve()} does not exist"))
    for person in people:
        if not re.search(r"\w", str(person)):
            problems.append((f"people.{person}", "a person's name needs at least one letter or digit"))
    return problems


def _secret(cfg: Config, section: str, file: Path | None, env_name: str | None, credential: str,
            env: dict[str, str]) -> SecretStr | None:
    """A password from ``<section>.password_env``, ``<section>.password_file``, then the systemd credential
    ``credential``; None when none is given. Raises ConfigError naming the key and the reason."""
    where = str(cfg.path) if cfg.path else None
    if env_name is not None:
        if env_name not in env:
            raise ConfigError([(f"{section}.password_env", f"environment variable {env_name} is not set")], where)
        return SecretStr(env[env_name])
    if file is not None:
        path = cfg.base_dir / file
        try:
            return SecretStr(path.read_text().strip())
        except OSError as err:
            raise ConfigError([(f"{section}.password_file", f"cannot read {path}: {err.strerror}")], where) from None
    cred = env.get("CREDENTIALS_DIRECTORY")
    if cred and (Path(cred) / credential).is_file():
        return SecretStr((Path(cred) / credential).read_text().strip())
    return None


def aql_password(cfg: Config, env: dict[str, str] | None = None) -> SecretStr:
    """The aql password, for the commands that talk to aql (the others never need it).

    Looked for in ``aql.password``, ``aql.password_env``, ``aql.password_file``, then the systemd
    credential ``aql-password``. Raises ConfigError naming the key and the reason."""
    a = cfg.aql
    given = [k for k in ("password", "password_file", "password_env") if getattr(a, k) is not None]
    if len(given) > 1:
        raise ConfigError([("aql", f"give only one of {', '.join(given)}")], str(cfg.path) if cfg.path else None)
    if a.password is not None:
        return a.password
    found = _secret(cfg, "aql", a.password_file, a.password_env, CREDENTIAL_NAME,
                    dict(os.environ) if env is None else env)
    if found is not None:
        return found
    if a.url == SIMULATED:
        return SecretStr(SIMULATED)
    raise ConfigError(
        [("aql.password", "no password: set password_file, password_env, or a systemd credential 'aql-password'")],
        str(cfg.path) if cfg.path else None)


def db_password(cfg: Config, env: dict[str, str] | None = None) -> SecretStr | None:
    """The cluster database's password: ``cluster.password_env``, ``cluster.password_file``, then the systemd
    credential ``db-password``; None when none is given (libpq's own ways then apply: ~/.pgpass, peer
    authentication on a unix socket). Raises ConfigError naming the key and the reason."""
    c = cfg.cluster
    if c is None:
        return None
    return _secret(cfg, "cluster", c.password_file, c.password_env, DB_CREDENTIAL_NAME,
                   dict(os.environ) if env is None else env)


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file. Raises ConfigError listing every problem at its key path."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError([("", f"cannot read {path}: {err.strerror}")], str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError([("", f"not valid TOML: {err}")], str(path)) from None
    return config_from_dict(data, base_dir=path.parent.resolve(), path=path, env=env)


def config_from_dict(
    data: dict[str, Any], base_dir: Path = Path("."), path: Path | None = None, env: dict[str, str] | None = None
) -> Config:
    """Validate an already-parsed TOML document. Raises ConfigError with every problem at once.

    ``env`` is accepted for symmetry with ``aql_password``; validation itself reads no environment."""
    where = str(path) if path else None
    for reserved in ("base_dir", "path"):
        if reserved in data:
            raise ConfigError([(reserved, "unknown key")], where)
    problems: list[tuple[str, str]] = []
    cfg: Config | None = None
    try:
        cfg = Config.model_validate({**data, "base_dir": base_dir, "path": path})
    except ValidationError as err:
        for e in err.errors():
            if e["type"] == "extra_forbidden":
                problems.append((_loc(e["loc"]), _unknown_key_reason(e["loc"])))
            else:
                loc = e["loc"]
                if loc[:1] == ("people",) and loc[-1:] == ("phone",) and isinstance(
                        data.get("people", {}).get(loc[1]), (str, int)):
                    loc = loc[:-1]  # the short form: people.alice = "...", so the key is people.alice
                problems.append((_loc(loc), e["msg"].removeprefix("Value error, ")))
    problems += [p for p in _logical_problems(data, base_dir) if p not in problems]
    if problems or cfg is None:
        raise ConfigError(problems, where)
    if cfg.aql.password is not None and path is not None:
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.warn(
                f"{path} holds the aql password inline and can be read by other users; "
                f"use password_file or chmod 600 {path}",
                ConfigWarning,
                stacklevel=2,
            )
    return cfg
