"""The history view: the newest journal entries, newest first, each in words."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..config import Config
from .lines import PICK_LIMIT
from .presentation import Names, entry_text, when
from .snapshot import JournalReader

HISTORY_LIMIT = 200


@dataclass(frozen=True)
class HistoryRow:
    at: str
    kind: str
    voipnumber: str | None
    label: str | None
    ok: bool | None
    text: str
    instance: str | None = None  # in a cluster: which host wrote it


@dataclass(frozen=True)
class HistoryView:
    rows: tuple[HistoryRow, ...]
    number: str | None
    numbers: tuple[tuple[str, str], ...]  # (voipnumber, label) to filter by, when few enough for a drop-down
    error: str | None
    limit: int


def history_view(cfg: Config, journal: JournalReader | None, number: str | None = None,
                 limit: int = HISTORY_LIMIT) -> HistoryView:
    """The newest ``limit`` journal entries (of ``number`` only, when given), newest first, each in words
    with people by name beside their numbers."""
    names = Names(cfg)
    labels = {n.voipnumber: n.label for n in cfg.numbers}
    numbers = tuple(labels.items()) if len(labels) <= PICK_LIMIT else ()
    if journal is None:
        return HistoryView((), number, numbers, "there is no journal yet", limit)
    try:
        entries = journal.entries(voipnumber=number, limit=limit)
    except Exception as err:  # noqa: BLE001 - JournalError (or a broken file): shown, not raised
        return HistoryView((), number, numbers, str(err), limit)
    tz = cfg.tz
    rows = []
    for e in reversed(entries):
        try:
            at = when(dt.datetime.fromisoformat(str(e.get("at"))), tz, seconds=True)
        except ValueError:
            at = str(e.get("at"))
        v = e.get("voipnumber")
        rows.append(HistoryRow(at, str(e.get("kind")), v, labels.get(v, v) if v else None, e.get("ok"),
                               entry_text(e, names, cfg.tz), e.get("instance")))
    return HistoryView(tuple(rows), number, numbers, None, limit)

