"""Passwords, found without ever being written into the config: a file, an environment variable, or a
systemd credential (``$CREDENTIALS_DIRECTORY``), in that order after an inline one. Only the commands
that talk to aql (or to the cluster's database) ask for them; a private calendar feed's credentials are
asked for each time it is fetched (so a changed file is used at the next refresh).

A command typed in a shell on the service's config (``unit``) finds the credential where the unit's
``LoadCredential=`` has systemd read it (``/etc/forwardd/aql-password``), as systemd would: root can
read it, anyone else is told which file and why not."""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from ..errors import ConfigError
from .cluster import DB_CREDENTIAL_NAME
from .models import CREDENTIAL_NAME, DEFAULT_ACCOUNT, FEED_CREDENTIAL, SIMULATED, Config
from .unit import service_unit


def _secret(cfg: Config, section: str, file: Path | None, env_name: str | None, credential: str,
            env: dict[str, str]) -> SecretStr | None:
    """A password from ``<section>.password_env``, ``<section>.password_file``, then the systemd credential
    ``credential`` (handed over, or, outside the service, where its unit loads it from); None when none
    is given. Raises ConfigError naming the key and the reason."""
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
    if cred:
        return SecretStr((Path(cred) / credential).read_text().strip()) if (Path(cred) / credential).is_file() else None
    unit = service_unit(cfg.path, env) if cfg.path is not None else None
    if unit is None or credential not in unit.credentials:
        return None
    source = unit.credentials[credential]
    if source is None:
        raise ConfigError([(f"{section}.password", f"{unit.name} loads the credential '{credential}' from systemd's "
                                                   f"credential store (LoadCredential={credential}), and no store "
                                                   "here has it")], where)
    try:
        return SecretStr(source.read_text().strip())
    except OSError as err:
        raise ConfigError([(f"{section}.password", f"the service's credential '{credential}' is {source} "
                                                   f"(LoadCredential= in {unit.path}), which cannot be read here "
                                                   f"({err.strerror}); run this as root, as systemd reads it")],
                          where) from None


def credential_name(account: str) -> str:
    """The systemd credential an account's password is found in: ``aql-password`` for [aql],
    ``aql-password-NAME`` for [accounts.NAME]."""
    return CREDENTIAL_NAME if account == DEFAULT_ACCOUNT else f"{CREDENTIAL_NAME}-{account}"


def account_password(cfg: Config, account: str = DEFAULT_ACCOUNT, env: dict[str, str] | None = None) -> SecretStr:
    """An aql account's password, for the commands that talk to aql (the others never need it).

    Looked for in ``password``, ``password_env``, ``password_file``, then the systemd credential
    (``credential_name``). Raises ConfigError naming the key and the reason."""
    a = cfg.account(account)
    section = "aql" if account == DEFAULT_ACCOUNT and account not in cfg.accounts else f"accounts.{account}"
    where = str(cfg.path) if cfg.path else None
    given = [k for k in ("password", "password_file", "password_env") if getattr(a, k) is not None]
    if len(given) > 1:
        raise ConfigError([(section, f"give only one of {', '.join(given)}")], where)
    if a.password is not None:
        return a.password
    found = _secret(cfg, section, a.password_file, a.password_env, credential_name(account),
                    dict(os.environ) if env is None else env)
    if found is not None:
        return found
    if a.url == SIMULATED:
        return SecretStr(SIMULATED)
    raise ConfigError([(f"{section}.password", f"no password: set password_file, password_env, or a systemd "
                                               f"credential '{credential_name(account)}'")], where)


def aql_password(cfg: Config, env: dict[str, str] | None = None) -> SecretStr:
    """The [aql] account's password (``account_password`` of ``aql``). Raises ConfigError."""
    return account_password(cfg, DEFAULT_ACCOUNT, env)


def db_password(cfg: Config, env: dict[str, str] | None = None) -> SecretStr | None:
    """The cluster database's password: ``cluster.password_env``, ``cluster.password_file``, then the systemd
    credential ``db-password``; None when none is given (libpq's own ways then apply: ~/.pgpass, peer
    authentication on a unix socket). Raises ConfigError naming the key and the reason."""
    c = cfg.cluster
    if c is None:
        return None
    return _secret(cfg, "cluster", c.password_file, c.password_env, DB_CREDENTIAL_NAME,
                   dict(os.environ) if env is None else env)


@dataclass(frozen=True)
class FeedCredentials:
    """What a private feed's requests carry: ``Authorization: <scheme> <value>``. ``secrets`` are what must
    never be shown (the password, the token, and the header value made of them)."""

    scheme: str  # "Basic" or "Bearer"
    value: SecretStr
    secrets: tuple[SecretStr, ...] = ()

    def header(self) -> str:
        return f"{self.scheme} {self.value.get_secret_value()}"


_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")  # RFC 6750's b64token


def feed_credential_name(calendar: str) -> str:
    """The systemd credential a private feed's password is found in: ``calendar-NAME``."""
    return f"{FEED_CREDENTIAL}-{calendar}"


def calendar_credentials(cfg: Config, calendar: str, env: dict[str, str] | None = None) -> FeedCredentials | None:
    """A calendar's HTTP credentials (None for a public feed): Bearer from ``bearer_token_file``; Basic from
    ``username`` and ``password_env``, ``password_file`` or the systemd credential ``calendar-NAME``.
    Raises ConfigError naming the key and the reason (never the secret)."""
    c = cfg.calendars[calendar]
    section = f"calendars.{calendar}"
    where = str(cfg.path) if cfg.path else None
    if c.bearer_token_file is not None:
        path = cfg.base_dir / c.bearer_token_file
        try:
            token = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "not text"
            raise ConfigError([(f"{section}.bearer_token_file", f"cannot read {path}: {reason}")], where) from None
        if not _TOKEN.match(token):
            raise ConfigError([(f"{section}.bearer_token_file", f"{path} does not hold a token (one line of letters, "
                                                                "digits and -._~+/)")], where)
        return FeedCredentials("Bearer", SecretStr(token), (SecretStr(token),))
    if c.username is None:
        return None
    password = _secret(cfg, section, c.password_file, c.password_env, feed_credential_name(calendar),
                       dict(os.environ) if env is None else env)
    if password is None:
        raise ConfigError([(f"{section}.username", f"no password: set password_file, password_env, or a systemd "
                                                   f"credential '{feed_credential_name(calendar)}'")], where)
    basic = base64.b64encode(f"{c.username}:{password.get_secret_value()}".encode()).decode("ascii")
    return FeedCredentials("Basic", SecretStr(basic), (password, SecretStr(basic)))
