"""``forwardd history``: the journal."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..service.services import Services
from .common import load, parse_when, with_services


def cmd_history(args: argparse.Namespace) -> int:
    cfg = load(args)
    since = parse_when(args.since, cfg, "--since") if args.since else None
    path = cfg.resolve_state_dir() / "journal.sqlite"
    if cfg.cluster is None and not path.exists():
        print(f"no journal yet in {path.parent} (forwardd has not run with this state directory)")
        return 0

    async def body(sv: Services) -> list[dict[str, Any]]:
        assert sv.journal is not None
        return sv.journal.entries(voipnumber=args.number, since=since)

    rows = with_services(cfg, body, journal="read")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    names = {p.phone: name for name, p in cfg.people.items()}
    for r in rows:
        extra = {k: v for k, v in r.items() if k not in ("id", "at", "kind", "voipnumber", "ok")}
        ok = "" if r["ok"] is None else (" ok" if r["ok"] else " FAILED")
        fields = extra.get("fields")
        who = names.get(str(fields.get("forwardto", ""))) if isinstance(fields, dict) else None
        host = f"{extra.pop('instance')}: " if "instance" in extra else ""  # in a cluster, who wrote it
        print(f"{r['at']} {host}{r['kind']:<9} {r['voipnumber'] or '-':<7}{ok}{' [' + who + ']' if who else ''} "
              f"{json.dumps(extra)}")
    return 0


