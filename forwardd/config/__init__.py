"""The configuration file: TOML, validated into typed, frozen objects.

- ``types``: the small value types (durations, sizes, phone numbers, office hours, zones);
- ``models``: the schema, one strict model per table;
- ``load``: reading a file, both validation passes, every problem at once at its key path;
- ``secrets``: passwords, from a file, the environment or a systemd credential.
"""

from __future__ import annotations

from .cluster import DB_CREDENTIAL_NAME
from .load import REPLACED, ConfigWarning, config_from_dict, load_config
from .models import (
    CREDENTIAL_NAME,
    DEFAULT_ACCOUNT,
    DEFAULT_URL,
    SIMULATED,
    AlertSettings,
    AqlSettings,
    CalendarSettings,
    ClusterSettings,
    Config,
    DaemonSettings,
    NoticeSettings,
    NumberSettings,
    OverrideSettings,
    WebSettings,
)
from .secrets import (
    FeedCredentials,
    account_password,
    aql_password,
    calendar_credentials,
    credential_name,
    db_password,
    feed_credential_name,
)
from .types import OfficeHours, Person, is_loopback_url, parse_duration, parse_size

__all__ = [
    "CREDENTIAL_NAME", "DB_CREDENTIAL_NAME", "DEFAULT_ACCOUNT", "DEFAULT_URL", "REPLACED", "SIMULATED",
    "AlertSettings", "AqlSettings", "CalendarSettings", "ClusterSettings", "Config", "ConfigWarning",
    "DaemonSettings", "FeedCredentials", "NoticeSettings", "NumberSettings", "OfficeHours", "OverrideSettings",
    "Person", "WebSettings", "account_password", "aql_password", "calendar_credentials", "config_from_dict",
    "credential_name", "db_password", "feed_credential_name", "is_loopback_url",
    "load_config", "parse_duration", "parse_size",
]
