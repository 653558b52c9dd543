"""Planning by shape (issue 22: a warm re-plan of 1,000 lines with a fallback each): lines that differ
only in their fallback share one timeline and one compilation, and each still gets exactly the plan it
would get alone. Checked against planning every line on its own, on generated rotas."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest

from forwardd.config import config_from_dict
from forwardd.core.plan import CalendarEvents, Planner
from forwardd.core.timeline import Event
from forwardd.service.lines import line_specs

UTC = dt.timezone.utc
START = dt.datetime(2026, 12, 7, tzinfo=UTC)
PEOPLE = {"alice": "07700900001", "bob": "07700900002", "carol": "07700900003"}


def _events(seed: int) -> CalendarEvents:
    rng = random.Random(seed)
    evs = []
    t = START - dt.timedelta(hours=6)
    for i in range(60):
        t += dt.timedelta(minutes=rng.choice([30, 90, 240, 600]))
        text = rng.choice(["On call: Alice", "Bob", "carol covers bob", "call 07700 900777", "call 07000 900123",
                           "nobody", "Alice and Bob"])
        evs.append(Event(t, t + dt.timedelta(minutes=rng.choice([45, 120, 480, 900])), text, uid=f"e{i}",
                         calendar="rota"))
    return CalendarEvents("rota", f"v{seed}", tuple(sorted(evs, key=lambda e: e.start)))


@pytest.mark.parametrize("seed", range(6))
def test_lines_that_share_a_shape_get_exactly_their_own_plan(seed: int) -> None:
    fallbacks = ["07700 900101", "07700 900102", "alice", "none", "07000 900555", "07700 900777", "0113 496 0000"]
    cfg = config_from_dict({
        "people": PEOPLE,
        "calendars": {"rota": {"builtin": "GB-ENG"}},  # (the events are handed in below)
        "numbers": [{"voipnumber": str(606309 + i), "rota": "rota", "fallback": fb,
                     "office_hours": ["Mon-Fri 09:00-17:30"] if i % 2 else []}
                    for i, fb in enumerate(fallbacks * 2)],
    }, env={})
    cals = {"rota": _events(seed)}
    end = START + dt.timedelta(days=4)
    specs = line_specs(cfg)
    assert sum(s.shape_key is not None for s in specs) == 10  # 'none' and the 070 number plan alone
    shaped = Planner(specs, cfg.tz).plan(cals, START, end)
    alone = Planner([dataclasses.replace(s, shape_key=None, shape_policy=None) for s in specs], cfg.tz).plan(
        cals, START, end)
    for a, b in zip(shaped.numbers, alone.numbers):
        assert a.segments == b.segments, a.voipnumber
        assert a.changes == b.changes, a.voipnumber
    assert [str(w) for _, w in shaped.warnings] == [str(w) for _, w in alone.warnings]
