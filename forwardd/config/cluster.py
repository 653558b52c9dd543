"""The config's ``[cluster]`` table: two or more hosts sharing one PostgreSQL database."""

from __future__ import annotations

import datetime as dt
import re
import socket
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from .types import Positive, Strict

DB_CREDENTIAL_NAME = "db-password"


_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class ClusterSettings(Strict):
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
