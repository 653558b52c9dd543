"""Who leads the cluster, as the database says, for ``status``, ``check`` and ``override add``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..config import Config
from ..errors import ForwarddError
from ..service.services import Services
from .common import when


async def cluster_status(sv: Services) -> dict[str, Any] | None:
    """Who leads the cluster and since when, as the database says (None without [cluster])."""
    if sv.db is None:
        return None
    doc: dict[str, Any] = {"instance": sv.db.instance, "database": sv.db.url, "problem": None}
    try:
        lead = await sv.leadership()
    except (ForwarddError, TimeoutError) as err:
        return {**doc, "leader": None, "since": None, "last_leader": None, "last_since": None,
                "problem": str(err) or "no answer from the cluster database"}
    assert lead is not None
    return {**doc, **lead.as_json()}


def cluster_line(cfg: Config, c: dict[str, Any]) -> str:
    here = f"this host: {c['instance']}"
    if c["leader"] is not None:
        role = "the leader" if c["leader"] == c["instance"] else "a standby"
        since = when(dt.datetime.fromisoformat(c["since"]), cfg, year=True)
        return f"cluster: {c['leader']} leads since {since} ({here}, {role})"
    if c["problem"]:
        return f"cluster: UNKNOWN who leads: {c['problem']} ({here})"
    last = (f"; {c['last_leader']} led from {when(dt.datetime.fromisoformat(c['last_since']), cfg, year=True)}"
            if c["last_leader"] else "")
    return f"cluster: NO LEADER: nothing is sent to aql{last} ({here})"


