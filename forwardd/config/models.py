"""The config's schema: one strict model per table (unknown keys are errors), a description per key.
Cross-field rules that need the whole document live in ``load``; passwords are found in ``secrets``."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import re
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..core.phone import normalise
from .cluster import ClusterSettings
from .location import StateLocation, locate
from .types import (
    Amount,
    DriftEvery,
    Duration,
    NotifyURL,
    OfficeHours,
    Person,
    Positive,
    Prefix,
    Size,
    Strict,
    Zone,
    is_loopback_url,
    office_hours_form,
    person_form,
    voipnumber,
)

SIMULATED = "simulated"
DEFAULT_URL = "https://gw.aql.com/reseller/voipapi.php"
CREDENTIAL_NAME = "aql-password"  # the systemd credential of the [aql] account; aql-password-NAME for [accounts.NAME]

FEED_CREDENTIAL = "calendar"  # a private feed's password: the systemd credential calendar-NAME
DEFAULT_ACCOUNT = "aql"  # the account of the [aql] table

class AqlSettings(Strict):
    """How to reach one aql account: the ``[aql]`` table, or one of ``[accounts.NAME]``."""

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


class CalendarSettings(Strict):
    """One calendar: a file, an https feed, or a built-in holiday list."""

    source: str | None = Field(None, description="path (relative to the config file) or https URL")
    builtin: Literal["GB-ENG", "GB-SCT", "GB-NIR", "GB-WLS"] | None = Field(None, description="built-in bank holidays")
    refresh: Duration = Field(dt.timedelta(minutes=15), description="how often to re-read it")
    max_age: Duration = Field(dt.timedelta(days=2), description="alert when the last good copy is older")
    allow_http: bool = Field(False, description="allow a plain http:// feed")
    timeout: Duration = Field(dt.timedelta(seconds=20), description="how long one whole download may take")
    max_bytes: Size = Field(20 * 1024 * 1024, description="largest feed accepted, e.g. '20MB'")
    max_occurrences: int = Field(50_000, ge=1, le=1_000_000, description="most occurrences in the horizon")
    username: str | None = Field(None, description="HTTP Basic: the user name; the password comes from password_file, "
                                                   f"password_env or the systemd credential {FEED_CREDENTIAL}-NAME")
    password_file: Path | None = Field(None, description="HTTP Basic: file holding the password")
    password_env: str | None = Field(None, description="HTTP Basic: environment variable holding the password")
    bearer_token_file: Path | None = Field(None, description="HTTP Bearer: file holding the token")

    @field_validator("source")
    @classmethod
    def _no_password_in_url(cls, v: str | None) -> str | None:
        if v and re.match(r"^https?://[^/?#]*:[^/?#]*@", v, re.IGNORECASE):
            raise ValueError("the URL holds a password: give username and password_file (or password_env) instead "
                             "(the URL is shown in logs, status and the page)")
        return v

    @field_validator("username", "bearer_token_file")
    @classmethod
    def _private_feed(cls, v: object, info: ValidationInfo) -> object:
        if v is None:
            return v
        source = info.data.get("source")
        if not (isinstance(source, str) and (source.lower().startswith("https://") or (
                source.lower().startswith("http://") and is_loopback_url(source)))):
            raise ValueError("credentials are sent only to an https:// feed (or plain http on 127.0.0.1), and "
                             "this calendar's source is not one")
        if info.field_name == "username" and (":" in str(v) or not str(v).strip()):
            raise ValueError("an HTTP Basic user name cannot be empty or hold ':'")
        if info.field_name == "bearer_token_file" and info.data.get("username") is not None:
            raise ValueError("give either username (HTTP Basic) or bearer_token_file (HTTP Bearer), not both")
        return v

    @field_validator("password_file", "password_env")
    @classmethod
    def _basic(cls, v: object, info: ValidationInfo) -> object:
        if v is None:
            return v
        if info.data.get("username") is None:
            raise ValueError("a password is for HTTP Basic, which needs username too")
        if info.field_name == "password_env" and info.data.get("password_file") is not None:
            raise ValueError("give only one of password_file, password_env")
        return v

    @property
    def private(self) -> bool:
        """Whether fetching it sends credentials (HTTP Basic or Bearer)."""
        return self.username is not None or self.bearer_token_file is not None

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


class NumberSettings(Strict):
    """One managed aql number and the policy that routes it."""

    voipnumber: str = Field(description="the aql VoIP number, 6 digits starting with 6 or 7")
    rota: str | None = Field(None, description="calendar whose events say who is on call")
    overrides: list[str] = Field(default_factory=list, description="calendars whose events win over the rota")
    holidays: list[str] = Field(default_factory=list, description="calendars whose days are out of hours all day")
    office_hours: list[Annotated[OfficeHours, BeforeValidator(office_hours_form)]] = Field(
        default_factory=list, description="inside these, no forwarding; without any, follow the rota all day"
    )
    fallback: str = Field("none", description="a person, a number, or 'none': who gets calls no event covers")
    forwardcli: bool = Field(True, description="pass the caller's number through")
    on_drift: Literal["restore", "alert"] | None = Field(None, description="overrides the global on_drift")
    account: str | None = Field(None, description="the account in [accounts] this number belongs to (default: [aql])")

    @field_validator("voipnumber", mode="before")
    @classmethod
    def _voip(cls, v: object) -> str:
        return voipnumber(v)

    name: str | None = Field(None, max_length=80, description="what people call this line ('Support line')")

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback(cls, v: object) -> object:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return "none" if isinstance(v, str) and v.strip().lower() == "none" else v

    @property
    def label(self) -> str:
        """How the line is shown: ``Support line (606309)``, or the bare number."""
        return f"{self.name} ({self.voipnumber})" if self.name else self.voipnumber


class AlertSettings(Strict):
    """Where the administrator hears of forwardd's own trouble."""

    notify: list[NotifyURL] = Field(default_factory=list, description="apprise URLs that get every alert")
    repeat_after: Duration = Field(dt.timedelta(hours=1), description="re-send a standing alert no sooner")
    gap_ahead: Duration = Field(dt.timedelta(hours=48), description="alert a coverage gap starting this soon")
    credit_below: Amount = Field(Decimal("2.00"), description="alert when a line's credit falls below this ('0': never)")
    credit_days: float = Field(3.0, ge=0, le=365, description="alert when a line's credit lasts fewer days than this at "
                                                            "the last 7 days' rate (0: never)")


class NoticeSettings(Strict):
    """Notices to the people going on call (those with ``notify`` URLs in [people])."""

    before: Duration = Field(dt.timedelta(hours=1), description="how long before a shift the first notice goes")


class OverrideSettings(Strict):
    """Command-line overrides (``forwardd override add``): what protects the tired from a typo."""

    max_length: Positive = Field(dt.timedelta(days=7), description="longest an override may last without --long "
                                                                   "(a typo in the year would otherwise win for a year)")


class DaemonSettings(Strict):
    drift_check_every: DriftEvery = (
        Field(dt.timedelta(hours=1), description="read each number this often for hand-made changes (1m at least)"))
    replan_every: Duration = Field(dt.timedelta(hours=6), description="re-plan at least this often")
    wait_for_drift_slot: bool = Field(True, description="a planned change waits for its line's drift slot when that "
                                                        "comes in the first half of its window (one read for both)")
    horizon: Duration = Field(dt.timedelta(days=14), description="how far ahead to plan")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Prometheus endpoint on 127.0.0.1")
    calendar_deadline: Duration = Field(dt.timedelta(seconds=60),
                                        description="longest a calendar may take to read before it is abandoned")


class WebSettings(Strict):
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


class Config(Strict):
    """The whole configuration. ``base_dir`` is the folder of the config file (for relative paths)."""

    timezone: Zone = Field("Europe/London", description="the provider's wall clock")
    state_dir: Path | None = Field(None, description="journal and cache folder")
    on_drift: Literal["restore", "alert"] = Field("restore", description="what to do about a hand-made change")
    aql: AqlSettings = Field(default_factory=AqlSettings)  # type: ignore[arg-type]
    accounts: dict[str, AqlSettings] = Field(default_factory=dict,
                                             description="more aql accounts, by name; a number names its account")
    people: dict[str, Annotated[Person, BeforeValidator(person_form)]] = Field(default_factory=dict)
    calendars: dict[str, CalendarSettings] = Field(default_factory=dict)
    numbers: list[NumberSettings] = Field(min_length=1)
    allowed_numbers: list[Prefix] = Field(
        default_factory=lambda: ["01", "02", "03", "07", "!070"],
        description="prefixes a number written in an event must match to get calls; '!' excludes")
    alerts: AlertSettings = Field(default_factory=AlertSettings)  # type: ignore[arg-type]
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)  # type: ignore[arg-type]
    notices: NoticeSettings = Field(default_factory=NoticeSettings)  # type: ignore[arg-type]
    overrides: OverrideSettings = Field(default_factory=OverrideSettings)  # type: ignore[arg-type]
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
        """The state directory, decided once, the same way by the daemon and every command (``location``):
        state_dir from the config, else $STATE_DIRECTORY (systemd), else the one a forwardd running on this
        config holds, else the StateDirectory= of the unit that runs this config, else the XDG state home.
        Raises StateDirUnknown (forwardd runs on this config in two places)."""
        return self.state_location.path

    @functools.cached_property
    def state_location(self) -> StateLocation:
        """``resolve_state_dir`` and why it is that one. Raises StateDirUnknown."""
        return locate(self.state_dir, self.base_dir, self.path, os.environ)

    @functools.cached_property
    def _numbers_by_voip(self) -> dict[str, NumberSettings]:
        return {n.voipnumber: n for n in self.numbers}

    def number(self, voipnumber: str) -> NumberSettings:
        """A managed number's settings. Raises KeyError."""
        return self._numbers_by_voip[voipnumber]

    def account(self, name: str) -> AqlSettings:
        """An account's settings by name (``aql`` is the [aql] table). Raises KeyError."""
        return self.aql if name == DEFAULT_ACCOUNT and name not in self.accounts else self.accounts[name]

    def account_of(self, voipnumber: str) -> str:
        """The name of the account a number belongs to."""
        return self.number(voipnumber).account or DEFAULT_ACCOUNT

    @functools.cached_property
    def account_names(self) -> tuple[str, ...]:
        """The accounts the numbers use, in the order they first appear."""
        return tuple(dict.fromkeys(n.account or DEFAULT_ACCOUNT for n in self.numbers))

    def numbers_of(self, account: str) -> list[NumberSettings]:
        """The numbers of one account, in the config's order."""
        return [n for n in self.numbers if (n.account or DEFAULT_ACCOUNT) == account]

    def settings_of(self, voipnumber: str) -> AqlSettings:
        """The account settings that govern a number (its window rules, its requests)."""
        return self.account(self.account_of(voipnumber))


