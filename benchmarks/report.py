"""Write the table of figures in benchmarks/README.md from one run of ``run.py`` (benchmarks/latest.json),
so that every figure there is one that run printed.

    .venv/bin/python benchmarks/run.py && .venv/bin/python benchmarks/report.py

The table goes between the README's ``<!-- figures -->`` and ``<!-- /figures -->`` lines; the rest of
the README is left as it is. A benchmark missing from the run (or failed) is said so in its row."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
START, END = "<!-- figures -->", "<!-- /figures -->"
Row = tuple[str, str, str]


def r(s: dict[str, float], unit: str = "", digits: int | None = None) -> str:
    """'median (min-max)' of a spread."""
    def f(x: float) -> str:
        return f"{x:,.{digits}f}" if digits is not None else f"{x:,}"
    return f"{f(s['median'])}{unit} ({f(s['min'])}-{f(s['max'])}{unit})"


def mb(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f} MB"


def plan(d: dict[str, Any]) -> list[Row]:
    p = d["bare_parse_s"]
    c = d["corpus"]
    return [
        (f"**plan at scale** ({c['numbers']:,} numbers, {c['calendars']} calendars, {c['events']:,} VEVENTs, "
         f"{c['horizon_days']} days; `bench_plan.py`)", f"bare icalendar parse of the corpus in a fresh process: "
         f"**{p} s** (the floor every ratio below is taken against)", "the floor"),
        ("", f"cold full plan as the daemon makes it, fresh process: {d['cold_full_plan_s']} s = "
         f"**{d['cold_plan_over_parse']} x** the {p} s parse", "<= 1.3 x"),
        ("", f"peak RSS of that process: {mb(d['cold_plan_peak_rss_mb_daemon_process'])}; of its calendar worker: "
         f"{mb(d.get('cold_plan_peak_rss_mb_calendar_worker'))} (each its own VmHWM)", ""),
        ("", f"restart with unchanged feeds: {d['restart_unchanged_feeds_s']} s = {d['restart_over_parse']} x "
         f"the {p} s parse", "avoid the parse"),
        ("", f"warm re-plan for a new horizon, 1,000 numbers sharing 200 plans: **{d['warm_replan_new_horizon_s']} s**; "
         f"the same horizon again: {d['warm_replan_same_horizon_s']} s", "<= 0.5 s"),
        ("", f"warm re-plan for a new horizon, {d['distinct_plans']['numbers']:,} numbers with "
         f"{d['distinct_plans']['distinct_fallbacks']:,} distinct plans: **{d['distinct_plans']['warm_replan_new_horizon_s']}"
         f" s** ({d['distinct_plans']['min_s']}-{d['distinct_plans']['max_s']} s)", "<= 0.5 s"),
        ("", f"re-plan after one calendar changes: **{d['replan_after_one_calendar_changed_s']} s**", "<= 0.2 s"),
    ]


def storm(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for key, s in d.items():
        if not key.startswith("concurrency_"):
            continue
        lo, hi = min(s["runs_s"]), max(s["runs_s"])
        rows.append(("" if rows else f"**hand-over storm** ({s['numbers']:,} numbers at once, {s['latency_s'] * 1000:g} ms "
                     "a request, getuser + changeuser + getuser each; `bench_storm.py`)",
                     f"{s['concurrency']} in flight: {s['median_s']} s ({lo}-{hi} s) against a {s['floor_s']} s floor = "
                     f"**{s['over_floor']} x**; left unconfirmed: {s['unconfirmed_max']}", "<= 1.5 x, 0 unconfirmed"))
    return rows


def resilience(d: dict[str, Any]) -> list[Row]:
    runs = d["runs"]
    naive = sorted(x["naive"]["misrouted_s"] for x in runs)
    return [
        (f"**resilience vs naive** (a month of `config/example.toml` on the engine, outages "
         f"{d['outage_share']:.0%} of the time in {d['piece_minutes']}-minute pieces, {len(runs)} seeds; "
         "`bench_resilience.py`)", f"forwardd: **{d['median_forwardd_misrouted_s']:,}** misrouted seconds (median; "
         f"worst seed {max(x['forwardd']['misrouted_s'] for x in runs):,}), {d['median_forwardd_calls']} calls",
         "0 where slack allowed"),
        ("", f"naive (one change at each transition, at its second): median **{d['median_naive_misrouted_s']:,}** "
         f"misrouted seconds ({naive[0]:,}-{naive[-1]:,}), {d['median_naive_calls']} calls; exact hand-overs an "
         f"outage hit: {sorted(x['exact_handovers_hit'] for x in runs)}", ""),
    ]


def footprint(d: dict[str, Any]) -> list[Row]:
    q = d["requests_in_a_simulated_day"]
    second = d.get("requests_on_the_second_day")
    live = d["live_daemon"]
    worker = live["calendar_worker_rss_mb"]
    return [
        (f"**footprint and politeness** ({d['numbers']:,} numbers, simulated account, defaults; "
         f"`bench_footprint.py`, median of {d.get('runs', 1)})", f"requests to aql in one simulated day from a "
         f"fresh account: **{sum(q.values()):,}** ({q['getuser']:,} getuser, {q['changeuser']:,} changeuser; median "
         f"{d['requests_per_number_per_day_median']} a number)" + (
             f"; on the second day: **{sum(second.values()):,}** ({second['getuser']:,} getuser, "
             f"{second['changeuser']:,} changeuser)" if second else "") + f"; misrouted seconds: {d['misrouted_s']}",
         "<= 30,000"),
        ("", f"CPU per simulated day (a day's run minus an hour's, both cold, scaled to 24 h): "
         f"**{r(d['cpu_s_per_simulated_day'], ' s', 1)}**; the first hour with start-up: "
         f"{r(d['cpu_s_first_hour_incl_startup'], ' s', 1)}", "<= 20 s"),
        ("", f"the simulator's own peak RSS: {r(d['simulate_1h_peak_rss_mb'], ' MB', 0)} for an hour, "
         f"{r(d['simulate_1d_peak_rss_mb'], ' MB', 0)} for a day", ""),
        ("", f"a real `forwardd run`, started cold, once every line is confirmed: {mb(live['rss_after_first_pass_mb'])}; "
         f"{live['idle_seconds']:g} s later: {mb(live['rss_after_idle_mb'])}; after {live.get('page_requests', 0)} "
         f"page requests: **{mb(live.get('rss_after_pages_mb'))}** (peak {mb(live.get('peak_rss_mb'))}); its "
         f"calendar worker: " + (mb(worker) if worker else "gone (it leaves when idle)"), "<= 80 MB"),
    ]


def events(d: dict[str, Any]) -> list[Row]:
    sizes = d["sizes"]
    return [(f"**planning against events** (one number, {d['horizon_days']} days; `bench_events.py`)",
             " / ".join(f"{s['events']:,}" for s in sizes) + " events: "
             + " / ".join(f"{s['median_s']}" for s in sizes) + f" s; growth per doubling {d['growth_per_doubling']}",
             "10,000 in <= 2 s")]


def page(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for s in d["sizes"]:
        home, status = s["pages"]["/"], s["pages"]["/status"]
        rows.append(("" if rows else f"**the page** (the corpus, median of {d['runs']}; `bench_page.py`)",
                     f"{s['numbers']:,} numbers: `/` {home['bytes'] / 1e3:,.0f} KB ({home['bytes_gzip'] / 1e3:,.0f} KB "
                     f"gzipped) in {r(home['cold_ms'], ' ms', 0)} cold; `/status` {status['bytes'] / 1e3:,.0f} KB "
                     f"({status['bytes_gzip'] / 1e3:,.0f} KB gzipped) in {r(status['cold_ms'], ' ms', 0)}",
                     "< 1 MB, < 500 ms"))
    return rows


def failover(d: dict[str, Any]) -> list[Row]:
    s = d["settings"]
    return [
        (f"**failover** (two `forwardd run` on one PostgreSQL, kill -9 of the leader {d['kills']} times, lease "
         f"{s['lease_s']:g} s, fence {s['fence_s']:g} s; `bench_failover.py`)",
         f"kill to the standby allowed to send: median **{d['median_failover_s']} s**, worst {d['worst_failover_s']} s; "
         f"detection: median {d['median_detect_s']} s; first request to aql: median {d['median_first_request_s']} s",
         "< 30 s"),
        ("", f"spans in which two instances talked to aql at once: **{d['overlapping_spans']}**", "0"),
    ]


def scale(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for s in d["sizes"]:
        sim, up, term = s["simulate_day"], s["start_up"], s["sigterm_during_start_up"]
        rows.append(("" if rows else f"**scale** (the corpus on one account, median of {d['runs']}; "
                     f"`bench_scale.py`; the fake aql at {d['latency_s'] * 1000:g} ms a request)",
                     f"**{s['numbers']:,} numbers**. A simulated day with every line changed by hand at noon: never "
                     f"seen {sim['never_seen_max']}, worst {sim['worst_detected_after_s_max']:,.0f} s against a bound of "
                     f"{sim['bound_s']:,} s; {sum(sim['requests'].values()):,} requests; CPU {r(sim['cpu_s'], ' s', 1)}; "
                     f"peak RSS {r(sim['peak_rss_mb'], ' MB', 0)}. A live start-up: `/healthz` worst "
                     f"{r(up['healthz_worst_s'], ' s', 2)}; {r(up['numbers_per_s'], '/s', 0)} numbers programmed = "
                     f"{up['share_of_storm_rate']} x the storm's {d['storm_numbers_per_s_at_1000']}/s; healthy after "
                     f"{r(up['healthy_after_s'], ' s', 1)}. SIGTERM a third of the way: exit in "
                     f"{r(term['exit_s'], ' s', 2)}, code {term['exit_codes']}, journal {term['journal']}. `/` "
                     f"{s['page']['/']['bytes'] / 1e3:,.0f} KB, `/status` {s['page']['/status']['bytes'] / 1e3:,.0f} KB",
                     "never seen 0; `/healthz` < 1 s; SIGTERM < 5 s; >= 0.7 x the storm"))
    g = d.get("growth_smallest_to_largest")
    if g:
        rows.append(("", f"from the smallest size to the largest ({g['numbers']} x the numbers): simulate CPU "
                     f"{g['simulate_cpu_s']} x, its peak RSS {g['simulate_peak_rss_mb']} x, requests {g['requests']} x, "
                     f"time to healthy {g['healthy_after_s']} x, start-up rate {g['numbers_per_s']} x, `/` bytes "
                     f"{g['page_bytes']} x (pages of 200 lines), `/status` bytes {g['status_bytes']} x", "linear or less"))
    return rows


def feeds(d: dict[str, Any]) -> list[Row]:
    p = d["bare_parse_s"]
    big = d["big_feed"]
    workers = d["workers_corpus_s"]
    best = min(workers, key=lambda k: workers[k]["median"])
    return [
        (f"**feeds** (the corpus, then one feed of {big['events']:,} events, {big['bytes'] / 1e6:.0f} MB; "
         f"`bench_feed_memory.py`, {d['runs']} runs)", f"expansion of the corpus (parse and occurrences) "
         f"{r(d['expansion_s'], ' s', 2)} = **{d['expansion_over_parse']['of_medians']} x** the bare parse "
         f"{r(p, ' s', 2)}", "<= 1.3 x"),
        ("", f"{big['events']:,} events: the worker's peak RSS {r(d['worker_peak_rss_mb_100k'], ' MB', 0)}, the "
         f"daemon's side {r(d['parent_peak_rss_mb_100k'], ' MB', 0)}; read in {r(d['worker_read_s_100k'], ' s', 1)}",
         "worker + daemon < 400 MB"),
        ("", "the corpus with 1 / 2 / 3 / 4 worker processes: " + " / ".join(
            f"{workers[k]['median']}" for k in ("1", "2", "3", "4") if k in workers) + f" s; fastest here: {best}",
         "the fastest as default"),
    ]


SECTIONS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "plan": plan, "storm": storm, "resilience": resilience, "footprint": footprint, "events": events,
    "page": page, "failover": failover, "scale": scale, "feeds": feeds}


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [f"{m['date']}, {m['machine']}, {m['cores']} cores, Python {m['python']}: one run of "
             f"`benchmarks/run.py` (BENCH_RUNS={m['runs']}), written by `benchmarks/report.py` from "
             "`benchmarks/latest.json`. Spreads are median (min-max) of the runs.", "",
             "| benchmark | figure | target |", "| --- | --- | --- |"]
    for name, render in SECTIONS.items():
        d = results.get(name)
        if d is None or "error" in d:
            lines.append(f"| **{name}** | not in this run{': ' + ' '.join(d['error']) if d else ''} | |")
            continue
        lines.extend(f"| {a} | {b} | {c} |" for a, b, c in render(d))
    return "\n".join(lines)


def main(path: Path = HERE / "latest.json", readme: Path = HERE / "README.md") -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        sys.exit(f"{readme}: no {START} ... {END} lines to write the figures between")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table(json.loads(path.read_text()))}\n{END}{tail}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "latest.json")
