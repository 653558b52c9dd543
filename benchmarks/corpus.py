"""Generate the benchmark corpus: rota calendars of a year of weekly RRULEs with EXDATEs and moved
instances, and a config of N numbers sharing them (plus built-in bank holidays)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

PEOPLE = [f"person{i:02d}" for i in range(40)]


def rota_ics(index: int, year_start: dt.date, rng: random.Random) -> str:
    """About 28 KB and 128 VEVENTs: 8 weekly series (a year each, 3 EXDATEs apiece) and 120 moved
    instances, in the shape Outlook and Google export (TZID'd local times, UIDs, DTSTAMPs)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:-//forwardd benchmark//rota {index}//EN",
             f"X-WR-CALNAME:Rota {index}", "X-WR-TIMEZONE:Europe/London"]
    monday = year_start - dt.timedelta(days=year_start.weekday())
    masters = []
    for m in range(8):
        who = PEOPLE[(index + m) % len(PEOPLE)]
        first = monday + dt.timedelta(weeks=m % 4)
        start_hour = 9 if m < 4 else 17
        uid = f"rota{index}-series{m}@bench.forwardd"
        ex = sorted(rng.sample(range(1, 13), 3))
        exdates = ",".join(f"{first + dt.timedelta(weeks=4 * k):%Y%m%d}T{start_hour:02d}0000" for k in ex)
        end = first + dt.timedelta(days=7 if m < 4 else 1)
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z",
                  f"DTSTART;TZID=Europe/London:{first:%Y%m%d}T{start_hour:02d}0000",
                  f"DTEND;TZID=Europe/London:{end:%Y%m%d}T{9 if m < 4 else 23:02d}0000",
                  f"RRULE:FREQ=WEEKLY;INTERVAL=4;UNTIL={first + dt.timedelta(days=364):%Y%m%d}T235959Z",
                  f"EXDATE;TZID=Europe/London:{exdates}",
                  f"SUMMARY:On call: {who}", "DESCRIPTION:Weekly on-call shift. Hand over at the start of the shift.",
                  "END:VEVENT"]
        masters.append((uid, first, start_hour, m, ex))
    for k in range(120):
        uid, first, start_hour, m, ex = masters[k % 8]
        week = [w for w in range(13) if w not in ex][k // 8 % 10]
        rid = first + dt.timedelta(weeks=4 * week)
        shift = rng.randint(-3, 3)
        new_start = dt.datetime.combine(rid, dt.time(start_hour)) + dt.timedelta(hours=shift)
        new_end = new_start + (dt.timedelta(days=7) if m < 4 else dt.timedelta(hours=6))
        who = PEOPLE[(index + m + k) % len(PEOPLE)]
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z",
                  f"RECURRENCE-ID;TZID=Europe/London:{rid:%Y%m%d}T{start_hour:02d}0000",
                  f"DTSTART;TZID=Europe/London:{new_start:%Y%m%dT%H%M%S}",
                  f"DTEND;TZID=Europe/London:{new_end:%Y%m%dT%H%M%S}",
                  f"SUMMARY:On call: {who} (swapped)", "SEQUENCE:1",
                  "DESCRIPTION:Moved by the rota coordinator after a swap request; see the team channel.",
                  "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


def write_corpus(folder: Path, numbers: int = 1000, calendars: int = 50, seed: int = 1,
                 year_start: dt.date = dt.date(2026, 11, 2), url: str = "simulated", distinct: bool = False) -> Path:
    """Write ``calendars`` rota files and a config of ``numbers`` numbers into ``folder``; returns the config.

    The numbers share 200 plans (50 rotas x 4 office hours, one fallback); with ``distinct`` each has a
    fallback of its own, so no two plans are alike (the planner can share nothing)."""
    rng = random.Random(seed)
    (folder / "calendars").mkdir(parents=True, exist_ok=True)
    for i in range(calendars):
        (folder / "calendars" / f"rota{i:02d}.ics").write_text(rota_ics(i, year_start, rng))
    people = "\n".join(f'{p} = "07700 900{100 + i:03d}"' for i, p in enumerate(PEOPLE))
    cals = "\n".join(f'rota{i:02d} = {{ source = "calendars/rota{i:02d}.ics" }}' for i in range(calendars))
    hours = ['["Mon-Fri 09:00-17:30"]', '["Mon-Fri 08:00-18:00"]', "[]", '["Mon-Fri 09:00-12:30", "Mon-Fri 13:30-17:30"]']
    nums = "\n".join(
        f'[[numbers]]\nvoipnumber = "{600000 + n}"\nrota = "rota{n % calendars:02d}"\nholidays = ["bank-holidays"]\n'
        f'office_hours = {hours[n // calendars % len(hours)]}\n'
        f'fallback = "{f"07700 9{n:05d}" if distinct else "07700 900999"}"\n'
        for n in range(numbers)
    )
    cfg = folder / "forwardd.toml"
    cfg.write_text(f'timezone = "Europe/London"\nstate_dir = "state"\n[aql]\nurl = "{url}"\nusername = "acme"\n'
                   f'password_env = "BENCH_AQL_PASSWORD"\nconcurrency = 50\n[people]\n{people}\n[calendars]\n{cals}\n'
                   f'bank-holidays = {{ builtin = "GB-ENG" }}\n{nums}')
    return cfg
