"""View models -> HTML, through Jinja2 with autoescape on for every template: everything that comes from a
calendar (titles, names, holiday names) is untrusted text. The stylesheet is inlined in each page and no
page fetches anything or runs any script, so a page is whole on its own (``plan --html`` writes one)."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from pathlib import Path
from typing import Any, Sequence

import jinja2

from ..config import Config
from ..core.plan import Plan
from .history import HistoryView
from .lines import PICK_LIMIT
from .status import StatusView
from .week import WeekView, plan_warnings, week_count, week_view, when

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # every template, whatever its name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def link(path: str, **params: object) -> str:
    """``path`` with the query of ``params`` that have a value: ``/?week=1&q=sales``."""
    query = {k: v for k, v in params.items() if v is not None and v != ""}
    return path + ("?" + urllib.parse.urlencode(query) if query else "")


_ENV.globals["link"] = link


def render(template: str, **context: Any) -> str:
    """The template rendered with ``context`` (every value escaped unless the template says otherwise)."""
    return _ENV.get_template(template).render(**context)


def _numbers(cfg: Config) -> list[tuple[str, str]]:
    """(number, label) of each line for a drop-down, or none when there are too many for one."""
    return [(n.voipnumber, n.label) for n in cfg.numbers] if len(cfg.numbers) <= PICK_LIMIT else []


def week_page(cfg: Config, views: Sequence[WeekView], plan: Plan, *, served: bool,
              warnings: Sequence[str] = (), starting: str | None = None) -> str:
    """The week view page: ``views`` one after the other (the server shows one week, the file all)."""
    one = views[0].number if views else None
    title = cfg.number(one).label if one else "the week"
    return render("week.html", views=views, served=served, warnings=list(warnings), numbers=_numbers(cfg),
                  title=f"{title}, {views[0].title}" if views else title, subtitle="who takes the calls",
                  page="week", refresh=60 if served else None, plan_span=f"{when(plan.start, cfg.tz)} - "
                  f"{when(plan.end, cfg.tz)}", zone=cfg.timezone, starting=starting)


def plan_page(cfg: Config, plan: Plan, warnings: Sequence[str] = (), now: dt.datetime | None = None) -> str:
    """One self-contained page of the whole plan, week after week, every line (``forwardd plan --html``)."""
    views = [week_view(cfg, plan, k, now=now, per_page=None) for k in range(week_count(plan, cfg.tz))]
    return week_page(cfg, views, plan, served=False, warnings=[*warnings, *plan_warnings(plan, cfg)])


def status_page(view: StatusView) -> str:
    return render("status.html", v=view, served=True, page="status", title="status", subtitle="status",
                  refresh=30)


def history_page(cfg: Config, view: HistoryView) -> str:
    label = next((n.label for n in cfg.numbers if n.voipnumber == view.number), view.number)
    return render("history.html", v=view, served=True, page="history", title="history", subtitle="history",
                  label=label, refresh=None)


def error_page(status: str, message: str) -> str:
    return render("error.html", status=status, message=message, served=True, page="", title=status,
                  subtitle=None, refresh=None)
