"""Calendars to events to timelines: golden files, real-world feeds' shapes, and every file in
../shared/calendars (which must load or fail with a message naming the file, never crash)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from forwardd.calendars.parse import parse_calendar
from forwardd.core.compiler import compile_timeline
from forwardd.core.timeline import Policy, build_timeline
from forwardd.errors import CalendarError

from .conftest import DATA, LONDON, SHARED_CALENDARS, UTC

PEOPLE = {"alice": "07700900001", "bob": "07700900002"}
GOLDEN = sorted((DATA / "golden").glob("*.ics"))


def timeline_of(path: Path, start: dt.datetime, days: float, people: dict[str, str] = PEOPLE):
    cal = parse_calendar(path.name, path.read_bytes(), LONDON)
    end = start + dt.timedelta(days=days)
    events, notes = cal.events_between(start, end)
    segments, warnings = build_timeline(start, end, LONDON, Policy(people), rota=events)
    return segments, [*cal.warnings, *notes, *map(str, warnings)]


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_calendar_gives_expected_timeline(path: Path) -> None:
    spec = json.loads(path.with_suffix(".json").read_text())
    start = dt.datetime.fromisoformat(spec["start"])
    segments, warnings = timeline_of(path, start, spec["days"])
    got = [(s.start, s.end, s.target) for s in segments if s.target]
    want = [
        (dt.datetime.fromisoformat(a).astimezone(UTC), dt.datetime.fromisoformat(b).astimezone(UTC), PEOPLE.get(who, who))
        for a, b, who in spec["expect"]
    ]
    assert got == want
    for expected in spec.get("warnings", []):
        assert any(expected in w for w in warnings), (expected, warnings)
    if not spec.get("warnings"):  # gaps are expected here: these golden files have no fallback
        assert [w for w in warnings if not w.startswith("gap:")] == []
    # contiguous over the horizon
    assert segments[0].start == start and segments[-1].end == start + dt.timedelta(days=spec["days"])
    assert all(a.end == b.start for a, b in zip(segments, segments[1:]))


def test_two_feeds_defining_the_same_custom_tzid_differently_do_not_collide() -> None:
    a = parse_calendar("a", (DATA / "golden" / "custom_tz_a.ics").read_bytes(), LONDON)
    b = parse_calendar("b", (DATA / "golden" / "custom_tz_b.ics").read_bytes(), LONDON)
    start = dt.datetime(2026, 12, 1, tzinfo=UTC)
    ea, _ = a.events_between(start, start + dt.timedelta(days=1))
    eb, _ = b.events_between(start, start + dt.timedelta(days=1))
    assert ea[0].start.hour == 11 and eb[0].start.hour == 17


def test_naive_bounds_are_refused() -> None:
    cal = parse_calendar("x", (DATA / "golden" / "rdate.ics").read_bytes(), LONDON)
    with pytest.raises(ValueError):
        cal.events_between(dt.datetime(2026, 12, 1), dt.datetime(2026, 12, 2))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x00\xff\x13garbage\x89PNG" * 50, "not iCalendar"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML page"),
        (b"BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nDTSTART:2026", "truncated"),
    ],
)
def test_bad_calendars_get_a_clear_message_naming_the_source(data: bytes, reason: str) -> None:
    with pytest.raises(CalendarError) as info:
        parse_calendar("team-rota", data, LONDON)
    assert "team-rota" in str(info.value) and reason in str(info.value)


def test_rrule_without_end_expands_only_within_the_horizon() -> None:
    text = (b"BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:x\nDTSTART;TZID=Europe/London:20200106T090000\n"
            b"DTEND;TZID=Europe/London:20200106T170000\nRRULE:FREQ=DAILY\nSUMMARY:alice\nEND:VEVENT\nEND:VCALENDAR\n")
    cal = parse_calendar("endless", text, LONDON)
    start = dt.datetime(2030, 1, 1, tzinfo=UTC)
    events, _ = cal.events_between(start, start + dt.timedelta(days=14))
    assert len(events) == 14


# -------------------------------------------------------------------------- the shared real-world set

REAL = sorted(SHARED_CALENDARS.glob("*/*.ics")) if SHARED_CALENDARS.is_dir() else []


@pytest.mark.skipif(not REAL, reason="../shared/calendars is not beside the project")
@pytest.mark.parametrize("path", REAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_calendar_loads_or_fails_clearly_and_gives_a_contiguous_timeline(path: Path) -> None:
    try:
        cal = parse_calendar(path.name, path.read_bytes(), LONDON)
    except CalendarError as err:
        assert path.name in str(err)
        return
    # a window around the file's own dates, so that its events are really expanded
    years = sorted({int(y) for y in __import__("re").findall(rb"DTSTART[^:\n]*:(\d{4})", path.read_bytes())})
    year = years[len(years) // 2] if years else 2026
    start = dt.datetime(max(year, 1971), 1, 1, tzinfo=UTC)
    end = start + dt.timedelta(days=366)
    try:
        events, _ = cal.events_between(start, end)
    except CalendarError as err:
        assert path.name in str(err)
        return
    people = {"alice": "07700900001"}
    segments, _ = build_timeline(start, end, LONDON, Policy(people), rota=events)
    assert segments[0].start == start and segments[-1].end == end
    assert all(a.end == b.start for a, b in zip(segments, segments[1:]))
    compile_timeline(segments, LONDON)


GOV = SHARED_CALENDARS / "gov-uk" / "england-and-wales.ics"


@pytest.mark.skipif(not GOV.is_file(), reason="GOV.UK calendar not present")
def test_gov_uk_bank_holidays_close_the_office_all_day() -> None:
    from forwardd.core.timeline import Event, OfficeRule

    cal = parse_calendar("bank-holidays", GOV.read_bytes(), LONDON)
    start = dt.datetime(2027, 12, 20, tzinfo=UTC)
    end = start + dt.timedelta(days=14)
    holidays, _ = cal.events_between(start, end)
    names = {h.start.astimezone(LONDON).date(): h.summary for h in holidays}
    assert dt.date(2027, 12, 27) in names and dt.date(2027, 12, 28) in names  # substitute days
    policy = Policy(PEOPLE, [OfficeRule(frozenset(range(5)), dt.time(9), dt.time(17, 30))])
    rota = [Event(start, end, "alice")]
    segments, _ = build_timeline(start, end, LONDON, policy, rota=rota, holidays=holidays)
    xmas = [s for s in segments if s.start <= dt.datetime(2027, 12, 27, 12, tzinfo=UTC) < s.end][0]
    assert xmas.target == PEOPLE["alice"] and xmas.reason.startswith("holiday:")
    normal = [s for s in segments if s.start <= dt.datetime(2027, 12, 29, 12, tzinfo=UTC) < s.end][0]
    assert normal.target is None and normal.reason == "office hours"


RIE = SHARED_CALENDARS / "recurring-ical-events"


@pytest.mark.skipif(not RIE.is_dir(), reason="recurring-ical-events calendars not present")
def test_cancelled_instances_are_dropped_real_feed() -> None:
    cal = parse_calendar("c", (RIE / "issue_18_cancel_status.ics").read_bytes(), LONDON)
    events, _ = cal.events_between(dt.datetime(2020, 1, 27, tzinfo=UTC), dt.datetime(2020, 2, 2, tzinfo=UTC))
    days = [e.start.date() for e in events]
    assert dt.date(2020, 1, 29) not in days and dt.date(2020, 1, 28) in days


@pytest.mark.skipif(not RIE.is_dir(), reason="recurring-ical-events calendars not present")
def test_x_wr_timezone_real_google_feed() -> None:
    cal = parse_calendar("g", (RIE / "issue_86_x_wr_timezone_without_time_zone_in_dt.ics").read_bytes(), LONDON)
    events, _ = cal.events_between(dt.datetime(2021, 9, 1, tzinfo=UTC), dt.datetime(2021, 10, 1, tzinfo=UTC))
    # 21:00 in Europe/Brussels (CEST, +02:00) is 19:00 UTC; read as London it would be 20:00 UTC
    assert events and events[0].start == dt.datetime(2021, 9, 16, 19, 0, tzinfo=UTC)


# ------------------------------------- the libraries' own behaviour that forwardd/calendars works around
# Each test pins what the library does today. When one fails, upstream has changed: check whether the
# workaround named in the message can go (and the test with it).

def _vcalendar(*lines: str) -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//forwardd tests//EN\r\nMETHOD:PUBLISH\r\n"
            + "".join(line + "\r\n" for line in lines) + "END:VCALENDAR\r\n").encode()


def test_upstream_rie_fails_the_whole_calendar_on_a_vevent_without_dtstart() -> None:
    import icalendar
    import recurring_ical_events

    cal = icalendar.Calendar.from_ical(_vcalendar(
        "BEGIN:VEVENT", "UID:ok", "DTSTART:20261201T100000Z", "DTEND:20261201T110000Z", "END:VEVENT",
        "BEGIN:VEVENT", "UID:no-start", "SUMMARY:x", "END:VEVENT"))
    try:
        recurring_ical_events.of(cal, skip_bad_series=True)
    except KeyError:
        return
    pytest.fail("recurring-ical-events now copes with a VEVENT without DTSTART (RFC 5545 3.6.1): "
                "validity._usable_event may leave such events to the library (keep the warning)")


def test_upstream_rie_gives_a_floating_series_the_zone_of_a_utc_exdate() -> None:
    import icalendar
    import recurring_ical_events

    cal = icalendar.Calendar.from_ical(_vcalendar(
        "BEGIN:VEVENT", "UID:s", "DTSTART:20260701T090000", "DTEND:20260701T170000", "RRULE:FREQ=DAILY;COUNT=2",
        "EXDATE:20260702T080000Z", "SUMMARY:x", "END:VEVENT"))
    found = recurring_ical_events.of(cal).between(dt.datetime(2026, 6, 30, tzinfo=UTC), dt.datetime(2026, 7, 3, tzinfo=UTC))
    starts = sorted(e["DTSTART"].dt for e in found)
    assert starts == [dt.datetime(2026, 7, 1, 9, tzinfo=UTC), dt.datetime(2026, 7, 2, 9, tzinfo=UTC)], (
        f"recurring-ical-events 3.8.2 put this floating series in UTC (the EXDATE's zone); now it gives {starts}: "
        "check whether series._anchor_series is still needed to make DTSTART's zone govern the series")


def test_upstream_rie_reads_a_floating_until_on_a_zoned_series_as_utc() -> None:
    import icalendar
    import recurring_ical_events

    cal = icalendar.Calendar.from_ical(_vcalendar(
        "BEGIN:VEVENT", "UID:s", "DTSTART;TZID=America/New_York:20230313T090000",
        "DTEND;TZID=America/New_York:20230313T170000", "RRULE:FREQ=DAILY;UNTIL=20230315T090000", "SUMMARY:x",
        "END:VEVENT"))
    found = recurring_ical_events.of(cal).between(dt.datetime(2023, 3, 12, tzinfo=UTC), dt.datetime(2023, 3, 17, tzinfo=UTC))
    days = sorted(e["DTSTART"].dt.day for e in found)
    assert days == [13, 14], (
        f"recurring-ical-events 3.8.2 read UNTIL=20230315T090000 as UTC and dropped the 15th; now it gives {days}: "
        "check whether series.fix_until still needs to put a floating UNTIL in the series' zone")


def test_upstream_rie_drops_the_last_day_of_an_all_day_series_ending_at_a_utc_local_midnight() -> None:
    import icalendar
    import recurring_ical_events

    def last_day(exdate: str) -> dt.date:
        cal = icalendar.Calendar.from_ical(_vcalendar(
            "BEGIN:VEVENT", "UID:s", "DTSTART;VALUE=DATE:20210630", "DTEND;VALUE=DATE:20210701",
            "RRULE:FREQ=WEEKLY;UNTIL=20210701T220000Z;BYDAY=WE,FR", *([exdate] if exdate else []), "SUMMARY:x",
            "END:VEVENT"))
        found = recurring_ical_events.of(cal).between(dt.date(2021, 6, 28), dt.date(2021, 7, 10))
        return max(e["DTSTART"].dt for e in found)

    got = (last_day(""), last_day("EXDATE;TZID=Europe/Berlin:20210625T000000"))
    assert got == (dt.date(2021, 6, 30), dt.date(2021, 7, 2)), (
        f"recurring-ical-events 3.8.2 ended this series on 30 June without a zoned EXDATE and on 2 July with one; "
        f"now {got}: check whether series._all_dates is still needed to make all-day series all dates")


def test_upstream_rie_adds_an_off_rule_dtstart_to_count_occurrences() -> None:
    import icalendar
    import recurring_ical_events

    cal = icalendar.Calendar.from_ical(_vcalendar(
        "BEGIN:VEVENT", "UID:s", "DTSTART:20261201T090000Z", "DTEND:20261201T170000Z",
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3", "SUMMARY:x", "END:VEVENT"))
    found = recurring_ical_events.of(cal).between(dt.datetime(2026, 11, 30, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
    days = sorted(e["DTSTART"].dt.day for e in found)
    assert days == [1, 7, 14, 21], (
        f"recurring-ical-events 3.8.2 added an off-rule DTSTART to COUNT=3 Mondays (4 occurrences); now it gives {days}: "
        "if it counts DTSTART as the first (RFC 5545 3.3.10), series._count_from_dtstart must stop lowering COUNT")


def test_upstream_rie_adds_elapsed_time_on_the_wall_clock_when_dtend_has_another_zone() -> None:
    import icalendar
    import recurring_ical_events

    cal = icalendar.Calendar.from_ical(_vcalendar(
        "BEGIN:VEVENT", "UID:a", "DTSTART;TZID=Europe/London:20260329T000000", "DTEND:20260329T030000Z", "SUMMARY:x",
        "END:VEVENT"))
    (found,) = recurring_ical_events.of(cal).between(dt.datetime(2026, 3, 28, tzinfo=UTC), dt.datetime(2026, 3, 30, tzinfo=UTC))
    end = found["DTEND"].dt.astimezone(UTC)
    assert end == dt.datetime(2026, 3, 29, 2, tzinfo=UTC), (
        f"recurring-ical-events 3.8.2 ended this event at 02:00Z, not at its DTEND (03:00Z); now {end}: check whether "
        "series._end_in_start_zone is still needed")


def test_saved_occurrences_keep_their_stamp_and_the_cache_is_keyed_by_the_expansion_rules() -> None:
    from forwardd.calendars.expand import expand
    from forwardd.calendars.expansion import EXPANSION, Expansion
    from forwardd.calendars.limits import Limits
    from forwardd.calendars.sources import cache_version

    data = (DATA / "golden" / "same_start_end.ics").read_bytes()
    start = dt.datetime(2026, 12, 1, tzinfo=UTC)
    got = expand("desk", data, LONDON, start, start + dt.timedelta(days=2), Limits())
    assert got.events and all(e.stamp is not None and e.stamp.tzinfo is not None for e in got.events)
    again = Expansion.from_json("desk", json.loads(json.dumps(got.to_json())))
    assert again.events == got.events
    # a copy saved by code that read feeds differently is not reused: the feed is expanded again
    assert f"expansion {EXPANSION}," in cache_version()


# ------------------------------------------------------------------------ the commands, as processes

def test_check_and_plan_name_each_skipped_component_and_keep_every_number_planned(tmp_path: Path,
                                                                                  example: Path) -> None:
    from .conftest import run_cli

    cfg = example
    overrides = tmp_path / "config" / "calendars" / "overrides.ics"
    overrides.write_text(overrides.read_text().replace("END:VCALENDAR", (
        "BEGIN:VEVENT\nUID:no-start-1@example.forwardd\nDTSTAMP:20260101T000000Z\nSUMMARY:Dave, some day\n"
        "END:VEVENT\n"
        "BEGIN:VEVENT\nUID:bad-rule-1@example.forwardd\nDTSTAMP:20260101T000000Z\n"
        "DTSTART;TZID=Europe/London:20261202T173000\nDTEND;TZID=Europe/London:20261203T090000\n"
        "RRULE:FREQ=FORTNIGHTLY\nSUMMARY:Dave\nEND:VEVENT\n"
        "END:VCALENDAR")))

    r = run_cli("check", "--config", str(cfg))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "calendar overrides: OK" in r.stdout and "calendar rota: OK" in r.stdout
    lines = r.stdout.splitlines()
    assert any(line.startswith("  warning: calendar 'overrides'") and "'no-start-1@example.forwardd'" in line
               and "has no DTSTART" in line for line in lines), r.stdout
    assert any(line.startswith("  warning: calendar 'overrides'") and "'bad-rule-1@example.forwardd'" in line
               and "RRULE cannot be read" in line and "FORTNIGHTLY" in line for line in lines), r.stdout

    r = run_cli("plan", "--config", str(cfg), "--start", "2026-11-30T00:00:00+00:00", "--days", "7", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    (number,) = doc["numbers"]
    assert {s["reason"] for s in number["timeline"]} >= {"rota: Bob", "override: Dave"}
    assert any("no-start-1@example.forwardd" in w["message"] for w in doc["warnings"])


@pytest.mark.parametrize(("zone", "start", "end", "day"), [
    # London in summer: 2 July is 23:00 UTC on the 1st to 23:00 UTC on the 2nd
    ("Europe/London", "2021-07-01T00:00:00+00:00", "2021-07-02T00:00:00+00:00", "2021-07-02"),
    # New York: 1 December runs until 05:00 UTC on the 2nd
    ("America/New_York", "2026-12-02T02:00:00+00:00", "2026-12-02T04:00:00+00:00", "2026-12-01"),
])
def test_an_all_day_event_overlapping_a_utc_horizon_by_hours_is_there(zone: str, start: str, end: str, day: str) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    d = dt.date.fromisoformat(day)
    cal = parse_calendar("x", _vcalendar("BEGIN:VEVENT", "UID:d", f"DTSTART;VALUE=DATE:{d:%Y%m%d}", "SUMMARY:alice",
                                         "END:VEVENT"), tz)
    events, _ = cal.events_between(dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))
    assert [(e.start, e.end) for e in events] == [(dt.datetime.combine(d, dt.time(), tz).astimezone(UTC),
                                                   dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), tz).astimezone(UTC))]


@pytest.mark.parametrize("zone", ["Europe/London", "Europe/Berlin", "America/New_York", "Asia/Tokyo"])
def test_utc_values_of_an_all_day_series_stand_for_the_day_they_start_or_end(zone: str) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    cal = parse_calendar("x", _vcalendar(
        # the last second of 23 March in UTC ends the series; a moved day is named by its UTC midnight
        "BEGIN:VEVENT", "UID:s", "DTSTART;VALUE=DATE:20080320", "DTEND;VALUE=DATE:20080321",
        "RRULE:FREQ=DAILY;UNTIL=20080323T235959Z", "SUMMARY:alice", "END:VEVENT",
        "BEGIN:VEVENT", "UID:s", "RECURRENCE-ID:20080321T000000Z", "DTSTART;VALUE=DATE:20080325",
        "DTEND;VALUE=DATE:20080326", "SUMMARY:alice moved", "END:VEVENT"), tz)
    events, _ = cal.events_between(dt.datetime(2008, 3, 1, tzinfo=UTC), dt.datetime(2008, 4, 1, tzinfo=UTC))
    days = [(e.start.astimezone(tz).date().day, e.summary) for e in events]
    assert days == [(20, "alice"), (22, "alice"), (23, "alice"), (25, "alice moved")]


@pytest.mark.parametrize(("module", "step", "rule"), [
    ("series", "fix_until", ["RRULE:FREQ=DAILY;COUNT=2"]),  # a series
    ("plain", "forwards", []),  # a one-off event
])
def test_an_event_that_trips_over_something_unforeseen_is_skipped_alone(monkeypatch: pytest.MonkeyPatch, module: str,
                                                                        step: str, rule: list[str]) -> None:
    import importlib

    where = importlib.import_module(f"forwardd.calendars.{module}")
    real = getattr(where, step)

    def fragile(*args: object) -> object:
        ev = next(a for a in args if hasattr(a, "get") and a.get("UID"))  # type: ignore[attr-defined]
        if str(ev["UID"]) == "boom":  # type: ignore[index]
            raise RuntimeError("something nobody foresaw")
        return real(*args)

    monkeypatch.setattr(where, step, fragile)
    cal = parse_calendar("team", _vcalendar(
        "BEGIN:VEVENT", "UID:boom", "DTSTART:20261201T090000Z", "DTEND:20261201T100000Z", *rule, "SUMMARY:bob",
        "END:VEVENT",
        "BEGIN:VEVENT", "UID:fine", "DTSTART:20261201T100000Z", "DTEND:20261201T110000Z", *rule, "SUMMARY:alice",
        "END:VEVENT"), LONDON)
    events, _ = cal.events_between(dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2026, 12, 2, tzinfo=UTC))
    assert [e.uid for e in events] == ["fine"]
    assert any("'team'" in w and "'boom'" in w and "something nobody foresaw" in w for w in cal.warnings)


@pytest.mark.parametrize(("defined", "used"), [
    ('"Lotus Zone"', '"Lotus Zone"'),  # a quoted TZID value in the VTIMEZONE
    ("Lotus Zone ", "Lotus Zone"),  # trailing space on one side
    ("Lotus\\, Zone", '"Lotus, Zone"'),  # TEXT escape against a quoted parameter
])
def test_a_custom_zone_is_found_however_its_name_is_written(defined: str, used: str) -> None:
    cal = parse_calendar("x", _vcalendar(
        "BEGIN:VTIMEZONE", f"TZID:{defined}", "BEGIN:STANDARD", "DTSTART:16010101T000000", "TZOFFSETFROM:+0300",
        "TZOFFSETTO:+0300", "END:STANDARD", "END:VTIMEZONE",
        "BEGIN:VEVENT", "UID:e", f"DTSTART;TZID={used}:20261201T120000", f"DTEND;TZID={used}:20261201T130000",
        "SUMMARY:alice", "END:VEVENT"), LONDON)
    events, _ = cal.events_between(dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2026, 12, 2, tzinfo=UTC))
    assert [e.start for e in events] == [dt.datetime(2026, 12, 1, 9, tzinfo=UTC)] and cal.warnings == []


def test_upstream_rie_reads_an_all_day_date_in_the_query_bounds_own_zone() -> None:
    import icalendar
    import recurring_ical_events

    cal = icalendar.Calendar.from_ical(_vcalendar(
        "BEGIN:VEVENT", "UID:d", "DTSTART;VALUE=DATE:20261201", "SUMMARY:x", "END:VEVENT"))
    # 1 December in New York runs until 05:00 UTC on the 2nd
    found = recurring_ical_events.of(cal).between(dt.datetime(2026, 12, 2, 2, tzinfo=UTC),
                                                  dt.datetime(2026, 12, 2, 4, tzinfo=UTC))
    assert found == [], (
        "recurring-ical-events 3.8.2 compared all-day dates with UTC bounds as UTC days; now it does not: "
        "check whether the day of slack in occurrences.ParsedCalendar.events_between is still needed")


def test_upstream_rie_swaps_the_start_and_end_of_an_event_that_ends_before_it_starts() -> None:
    import icalendar
    import recurring_ical_events

    cal = icalendar.Calendar.from_ical(_vcalendar(
        "BEGIN:VEVENT", "UID:b", "DTSTART:20261201T120000Z", "DTEND:20261201T100000Z", "SUMMARY:x", "END:VEVENT"))
    (found,) = recurring_ical_events.of(cal).between(dt.datetime(2026, 12, 1, tzinfo=UTC),
                                                     dt.datetime(2026, 12, 2, tzinfo=UTC))
    assert (found["DTSTART"].dt.hour, found["DTEND"].dt.hour) == (10, 12), (
        "recurring-ical-events 3.8.2 swapped a backwards event's start and end; now it does not: validity.forwards "
        "still decides what such events mean, but its reason (the silent swap) has changed")


# Each shape that was read silently wrong, or silently dropped, and what `forwardd check` now says of it.
SILENT_CASES = {
    "allday_tzid_value_date": ["'paris-day@forwardd.test'", "TZID 'Europe/Paris' is ignored for a date"],
    "allday_tzid_eight_digits": ["'la-days@forwardd.test'", "TZID 'America/Los_Angeles' is ignored for a date"],
    "allday_tzid_moved": ["'tokyo-week@forwardd.test'", "TZID '/example.org/20070129_1/Asia/Tokyo' is ignored"],
    "unknown_zone_series": ["unknown time zone 'Customized Time Zone 7'", "'mixed@forwardd.test'"],
    "duplicate_uid": ["'dup-file-order@forwardd.test' has 2 VEVENTs without RECURRENCE-ID", "later in the file"],
    "count_dtstart_off_rule": ["'off-rule@forwardd.test'", "it is counted as the first of COUNT=3 occurrences"],
}


def test_check_lists_the_warning_of_each_shape_read_by_policy(tmp_path: Path) -> None:
    from .conftest import run_cli

    names = list(SILENT_CASES)
    calendars = "\n".join(f'{n} = {{ source = "{DATA / "golden" / f"{n}.ics"}" }}' for n in names)
    cfg = tmp_path / "forwardd.toml"
    cfg.write_text(f'timezone = "Europe/London"\nstate_dir = "{tmp_path / "state"}"\n[aql]\nurl = "simulated"\n'
                   f'username = "acme"\n[people]\nalice = "07700 900001"\nbob = "07700 900002"\n[calendars]\n{calendars}\n'
                   f'[[numbers]]\nvoipnumber = "606309"\nrota = "{names[0]}"\noverrides = {json.dumps(names[1:])}\n'
                   'fallback = "07700 900999"\n')
    r = run_cli("check", "--config", str(cfg))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for name, says in SILENT_CASES.items():
        assert f"calendar {name}: OK" in r.stdout, r.stdout
        assert any(line.startswith(f"  warning: calendar '{name}'") and all(s in line for s in says) for line in lines), (
            name, r.stdout)
