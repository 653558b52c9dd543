"""``forwardd history``: the journal, as a table in words (``--json``: the entries as they are stored)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from ..config import Config
from ..service.services import JOURNAL, Services
from ..web.presentation import Names, entry_text
from .common import load, now, parse_when, stamp, state_words, with_services


def cmd_history(args: argparse.Namespace) -> int:
    cfg = load(args)
    today = now()
    since = parse_when(args.since, cfg, "--since", today) if args.since else None
    path = cfg.resolve_state_dir() / JOURNAL
    if cfg.cluster is None and not path.exists():
        print(f"no journal yet in {path.parent} (forwardd has not run with this state directory: {state_words(cfg)})")
        return 0

    async def body(sv: Services) -> list[dict[str, Any]]:
        assert sv.journal is not None
        return sv.journal.entries(voipnumber=args.number, since=since)

    rows = with_services(cfg, body, journal="read")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print_table(cfg, rows, today)
    return 0


def print_table(cfg: Config, rows: list[dict[str, Any]], today: dt.datetime) -> None:
    """The entries, oldest first: when (local, with its zone), the line, what happened in words."""
    names = Names(cfg)
    table = [("when", "line", "what", "")]
    for r in rows:
        try:
            at = stamp(dt.datetime.fromisoformat(r["at"]), cfg, today)
        except (TypeError, ValueError):
            at = str(r.get("at"))
        host = f"{r['instance']}: " if r.get("instance") else ""  # in a cluster, who wrote it
        failed = " (FAILED)" if r.get("ok") == 0 and r.get("kind") not in ("readback", "drift") else ""
        table.append((at, r.get("voipnumber") or "-", f"{host}{r.get('kind')}", entry_text(r, names, cfg.tz) + failed))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print(("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3]).rstrip())
