"""The configuration file: TOML, validated into typed, frozen objects.

Validation runs in two passes, as borgmatic does: the schema pass (types, formats, unknown keys)
and a logical pass (names that must refer to something defined). Every problem from both passes is
collected and reported at once, each at its key path, in one ConfigError.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import tomllib
import warnings
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .core.phone import PhoneError, normalise
from .errors import ConfigError

SIMULATED = "simulated"
DEFAULT_URL = "https://gw.aql.com/reseller/voipapi.php"
CREDENTIAL_NAME = "aql-password"

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

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v == SIMULATED or re.match(r"^https?://[^\s/]+", v):
            return v
        raise ValueError("expected 'simulated' or an http(s) URL such as " + DEFAULT_URL)

    @model_validator(mode="after")
    def _http(self) -> AqlSettings:
        if self.url.startswith("http://") and not self.allow_http and not _is_loopback(self.url):
            raise ValueError("a plain http:// URL sends the password in clear; use https or set allow_http = true")
        return self


def _is_loopback(url: str) -> bool:
    return bool(re.match(r"^https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(/|$)", url))


class CalendarSettings(_Strict):
    """One calendar: a file, an https feed, or a built-in holiday list."""

    source: str | None = Field(None, description="path (relative to the config file) or https URL")
    builtin: Literal["GB-ENG", "GB-SCT", "GB-NIR", "GB-WLS"] | None = Field(None, description="built-in bank holidays")
    refresh: Duration = Field(dt.timedelta(minutes=15), description="how often to re-read it")
    max_age: Duration = Field(dt.timedelta(days=2), description="alert when the last good copy is older")
    allow_http: bool = Field(False, description="allow a plain http:// feed")
    timeout: Duration = Field(dt.timedelta(seconds=20), description="how long one fetch may take")

    @model_validator(mode="after")
    def _one_kind(self) -> CalendarSettings:
        if (self.source is None) == (self.builtin is None):
            raise ValueError("give exactly one of 'source' or 'builtin'")
        if self.source and self.source.startswith("http://") and not (self.allow_http or _is_loopback(self.source)):
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
    fallback: Phone | Literal["none"] = Field("none", description="number when no event covers an instant, or 'none'")
    forwardcli: bool = Field(True, description="pass the caller's number through")
    on_drift: Literal["restore", "alert"] | None = Field(None, description="overrides the global on_drift")

    @field_validator("voipnumber", mode="before")
    @classmethod
    def _voip(cls, v: Any) -> str:
        v = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
        if not isinstance(v, str) or not re.fullmatch(r"[67]\d{5}", v):
            raise ValueError(f"{v!r} is not an aql VoIP number (6 digits beginning with 6 or 7)")
        return v

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback(cls, v: Any) -> Any:
        return "none" if isinstance(v, str) and v.strip().lower() == "none" else v

    @property
    def fallback_number(self) -> str | None:
        return None if self.fallback == "none" else self.fallback


class EmailSettings(_Strict):
    host: str
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None
    sender: str = Field(alias="from")
    to: list[str]


class AlertSettings(_Strict):
    webhook: str | None = Field(None, description="URL that receives a JSON POST per alert")
    email: EmailSettings | None = None
    repeat_after: Duration = Field(dt.timedelta(hours=1), description="re-send a standing alert no sooner")


class DaemonSettings(_Strict):
    reconcile_every: Duration = Field(dt.timedelta(minutes=5), description="periodic reconcile interval")
    replan_every: Duration = Field(dt.timedelta(hours=6), description="re-plan at least this often")
    horizon: Duration = Field(dt.timedelta(days=14), description="how far ahead to plan")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Prometheus endpoint on 127.0.0.1")


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
    people: dict[str, Phone] = Field(default_factory=dict)
    calendars: dict[str, CalendarSettings] = Field(default_factory=dict)
    numbers: list[NumberSettings] = Field(min_length=1)
    alerts: AlertSettings = Field(default_factory=AlertSettings)  # type: ignore[arg-type]
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)  # type: ignore[arg-type]

    base_dir: Path = Field(Path("."), exclude=True)
    path: Path | None = Field(None, exclude=True)
    resolved_password: SecretStr = Field(SecretStr(""), exclude=True, repr=False)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

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

    def number(self, voipnumber: str) -> NumberSettings:
        for n in self.numbers:
            if n.voipnumber == voipnumber:
                return n
        raise KeyError(voipnumber)


# --------------------------------------------------------------------------------------------
# loading


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


def _logical_problems(cfg: Config) -> list[tuple[str, str]]:
    """Cross-field rules: names that must be defined, numbers that must be unique."""
    problems: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for i, n in enumerate(cfg.numbers):
        if n.voipnumber in seen:
            problems.append((f"numbers[{i}].voipnumber", f"{n.voipnumber} is already configured at numbers[{seen[n.voipnumber]}]"))
        seen.setdefault(n.voipnumber, i)
        refs = [("rota", n.rota)] if n.rota else []
        refs += [(f"overrides[{j}]", c) for j, c in enumerate(n.overrides)]
        refs += [(f"holidays[{j}]", c) for j, c in enumerate(n.holidays)]
        for key, name in refs:
            if name not in cfg.calendars:
                known = ", ".join(sorted(cfg.calendars)) or "none defined"
                problems.append((f"numbers[{i}].{key}", f"calendar {name!r} is not defined in [calendars] ({known})"))
        if n.rota is None and not n.overrides and n.fallback == "none":
            problems.append((f"numbers[{i}]", "has no rota, no overrides and no fallback: it would never forward"))
    for name, c in cfg.calendars.items():
        if c.source and not c.is_url and not cfg.calendar_path(name).is_file():
            problems.append((f"calendars.{name}.source", f"file {cfg.calendar_path(name)} does not exist"))
    for person in cfg.people:
        if not re.search(r"\w", person):
            problems.append((f"people.{person}", "a person's name needs at least one letter or digit"))
    return problems


def _resolve_password(cfg: Config, env: dict[str, str]) -> tuple[SecretStr | None, list[tuple[str, str]]]:
    a = cfg.aql
    given = [k for k in ("password", "password_file", "password_env") if getattr(a, k) is not None]
    if len(given) > 1:
        return None, [("aql", f"give only one of {', '.join(given)}")]
    if a.password is not None:
        return a.password, []
    if a.password_env is not None:
        if a.password_env not in env:
            return None, [("aql.password_env", f"environment variable {a.password_env} is not set")]
        return SecretStr(env[a.password_env]), []
    if a.password_file is not None:
        path = cfg.base_dir / a.password_file
        try:
            return SecretStr(path.read_text().strip()), []
        except OSError as err:
            return None, [("aql.password_file", f"cannot read {path}: {err.strerror}")]
    cred = env.get("CREDENTIALS_DIRECTORY")
    if cred and (Path(cred) / CREDENTIAL_NAME).is_file():
        return SecretStr((Path(cred) / CREDENTIAL_NAME).read_text().strip()), []
    if a.url == SIMULATED:
        return SecretStr("simulated"), []
    return None, [("aql.password", "no password: set password_file, password_env, or a systemd credential 'aql-password'")]


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file. Raises ConfigError listing every problem at its key path."""
    path = Path(path)
    env = dict(os.environ) if env is None else env
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
    """Validate an already-parsed TOML document. Raises ConfigError."""
    env = dict(os.environ) if env is None else env
    for reserved in ("base_dir", "path", "resolved_password"):
        if reserved in data:
            raise ConfigError([(reserved, "extra inputs are not permitted")], str(path) if path else None)
    try:
        cfg = Config.model_validate({**data, "base_dir": base_dir, "path": path})
    except ValidationError as err:
        problems = [(_loc(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in err.errors()]
        raise ConfigError(problems, str(path) if path else None) from None
    problems = _logical_problems(cfg)
    password, pw_problems = _resolve_password(cfg, env)
    problems += pw_problems
    if problems:
        raise ConfigError(problems, str(path) if path else None)
    if cfg.aql.password is not None and path is not None:
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.warn(
                f"{path} holds the aql password inline and can be read by other users; "
                f"use password_file or chmod 600 {path}",
                stacklevel=2,
            )
    return cfg.model_copy(update={"resolved_password": password})
