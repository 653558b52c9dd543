"""Which lines a page shows, and together: lines whose plans are the same (the same rota, hours and
holidays give the same week) form one group, shown once with its numbers; a search (``?q=``) keeps the
lines whose number, name or account holds the words; pages (``?page=``) hold at most ``PER_PAGE`` lines,
and at most ``GROUPS_PER_PAGE`` different plans (a page of 200 different weeks would be megabytes).

Lines are ordered group by group (the groups in the order of their first line in the config), so that a
page holds whole groups where it can; a group larger than what is left of a page goes on over the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..config import Config, NumberSettings
from ..core.plan import NumberPlan, Plan

PER_PAGE = 200
PICK_LIMIT = 50  # lines listed in a drop-down; with more, a search box finds them
GROUPS_PER_PAGE = 50


@dataclass(frozen=True)
class Member:
    """One line of a group: its number, its name and label, and its account when there are several."""

    voipnumber: str
    name: str | None
    label: str  # "Support line (606309)", or "606309"
    account: str | None  # None when the config has one account


@dataclass(frozen=True)
class Group:
    """Lines that share one plan (``plan``, the first line's; None before there is a plan)."""

    plan: NumberPlan | None
    members: tuple[Member, ...]  # on this page
    size: int  # lines of the group that match, on every page

    @property
    def first(self) -> Member:
        return self.members[0]


@dataclass(frozen=True)
class Selection:
    """The groups on one page, and where that page is among all the lines that match."""

    groups: tuple[Group, ...]
    page: int  # 0-based
    pages: int
    per_page: int | None  # None: one page of every line
    matched: int  # lines that match ``q``
    total: int  # lines in the config
    first: int  # 1-based number of the page's first line among those that match (0 when none)
    last: int
    q: str | None

    @property
    def lines(self) -> int:
        return self.last - self.first + 1 if self.first else 0


class PageOutOfRange(ValueError):
    """``page=`` past the last page."""


def _key(n: NumberPlan | None, by_id: dict[tuple[int, int], Any]) -> Any:
    """What makes two lines' plans the same: their segments and the changes compiled from them (the
    planner shares one list between lines of one policy, so most are compared by identity)."""
    if n is None:
        return None
    if n.error:
        return ("error", n.error)
    ids = (id(n.segments), id(n.changes))
    key = by_id.get(ids)
    if key is None:
        key = (tuple(n.segments), tuple((c.apply_from, c.exact) for c in n.changes))
        by_id[ids] = key
    return key


def matcher(q: str | None) -> Callable[[NumberSettings], bool]:
    """Whether a line matches the search ``q``: every word of it is in the line's number, name or account
    (case ignored). No ``q`` matches every line."""
    words = (q or "").lower().split()
    if not words:
        return lambda n: True

    def match(n: NumberSettings) -> bool:
        hay = f"{n.voipnumber} {n.name or ''} {n.account or ''}".lower()
        return all(w in hay for w in words)

    return match


def select(cfg: Config, plan: Plan | None, q: str | None = None, page: int = 0, per_page: int | None = PER_PAGE,
           keep: Callable[[NumberSettings], bool] | None = None) -> Selection:
    """The page ``page`` of the lines that match ``q`` (and ``keep``), grouped by their plans. Raises
    PageOutOfRange when ``page`` is past the last page (page 0 always exists, if empty)."""
    plans = {n.voipnumber: n for n in plan.numbers} if plan is not None else {}
    accounts = len(cfg.account_names) > 1
    match = matcher(q)
    by_id: dict[tuple[int, int], Any] = {}
    order: dict[Any, tuple[NumberPlan | None, list[NumberSettings]]] = {}
    for n in cfg.numbers:
        if not match(n) or (keep is not None and not keep(n)):
            continue
        np_ = plans.get(n.voipnumber)
        key = _key(np_, by_id) if plan is not None else n.voipnumber  # no plan: nothing is shared yet
        order.setdefault(key, (np_, []))[1].append(n)
    flat = [(key, n) for key, (_, lines) in order.items() for n in lines]
    matched = len(flat)
    starts = _pages(flat, per_page) if per_page else [0]
    pages = len(starts)
    if page >= pages:
        raise PageOutOfRange(f"page= takes 1 to {pages}: {matched:,} line(s) match, at most {per_page} a page")
    lo, hi = starts[page], starts[page + 1] if page + 1 < pages else matched
    groups: list[Group] = []
    run: list[NumberSettings] = []
    for i in range(lo, hi):
        key, n = flat[i]
        run.append(n)
        if i + 1 == hi or flat[i + 1][0] != key:
            np_, lines = order[key]
            groups.append(Group(np_, tuple(_member(cfg, m, accounts) for m in run), len(lines)))
            run = []
    return Selection(tuple(groups), page, pages, per_page, matched, len(cfg.numbers), lo + 1 if hi > lo else 0, hi,
                     q or None)


def _pages(flat: list[tuple[Any, NumberSettings]], per_page: int) -> list[int]:
    """Where each page starts in ``flat`` (lines in group order): a page ends after ``per_page`` lines or
    ``GROUPS_PER_PAGE`` groups, whichever comes first."""
    starts, lines, groups = [0], 0, 0
    for i, (key, _) in enumerate(flat):
        new_group = lines == 0 or flat[i - 1][0] != key
        if lines == per_page or (new_group and groups == GROUPS_PER_PAGE):
            starts.append(i)
            lines, groups = 0, 0
            new_group = True
        lines += 1
        groups += new_group
    return starts


def one(cfg: Config, plan: Plan | None, voipnumber: str) -> Selection:
    """A selection of the one line ``voipnumber``. Raises KeyError for a number not in the config."""
    n = cfg.number(voipnumber)
    np_ = next((p for p in plan.numbers if p.voipnumber == voipnumber), None) if plan is not None else None
    group = Group(np_, (_member(cfg, n, len(cfg.account_names) > 1),), 1)
    return Selection((group,), 0, 1, None, 1, len(cfg.numbers), 1, 1, None)


def _member(cfg: Config, n: NumberSettings, accounts: bool) -> Member:
    return Member(n.voipnumber, n.name, n.label, cfg.account_of(n.voipnumber) if accounts else None)


def members_words(members: Sequence[Member], size: int) -> str:
    """A group's lines in words: ``Support line (606309)``, ``Support line (606309) and 49 more lines``."""
    more = size - 1
    return members[0].label + (f" and {more:,} more line{'' if more == 1 else 's'}" if more > 0 else "")
