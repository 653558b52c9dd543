"""Who an event names: a person of ``[people]`` by name (a whole word of the summary, any case; a swap
written "Alice covers Bob" is Alice's), or failing that the one phone number it carries, allowed by
``allowed_numbers``. Pure."""

from __future__ import annotations

import functools
import re

from .events import Event, Finding, FindingKind, Policy, name_pattern
from .phone import find_numbers, number_allowed


def display_name(name: str) -> str:
    return name.title() if name.islower() else name


def resolve_person(event: Event, policy: Policy) -> tuple[str | None, str | None, Finding | None]:
    """Who an event names: (number, label, finding). A finding means the event counts as naming nobody."""
    known = tuple(policy.people.items())
    extra = tuple(n for n in (policy.fallback,) if n)
    return _resolve(event.summary, event.location, event.description, known, policy.allowed, extra)


# "Alice covers Bob", "Alice covering Bob", "Alice for Bob", "Swap: Alice covers Bob": the shift is Alice's.
_COVERS = re.compile(r"^\W*(?:swap\W+)?(?P<a>.+?)\s+(?:covers|covering|for)\s+(?P<b>.+?)\W*$", re.IGNORECASE)


@functools.lru_cache(maxsize=65536)
def _resolve(
    summary: str, location: str, description: str, people_items: tuple[tuple[str, str], ...],
    allowed: tuple[str, ...], always_allowed: tuple[str, ...],
) -> tuple[str | None, str | None, Finding | None]:
    people = dict(people_items)
    names = [n for n in people if name_pattern(n).search(summary)]
    if len(names) == 2:
        m = _COVERS.match(summary)
        if m:
            first = [n for n in names if name_pattern(n).search(m.group("a"))]
            second = [n for n in names if name_pattern(n).search(m.group("b"))]
            if len(first) == 1 and len(second) == 1 and first != second:
                return people[first[0]], display_name(first[0]), None
    if len(names) == 1:
        return people[names[0]], display_name(names[0]), None
    if len(names) > 1:
        listed = ", ".join(map(display_name, names))
        return None, None, Finding(FindingKind.TWO_NAMES, f"names more than one person ({listed}) and is not written "
                                   "'A covers B'")
    numbers: list[str] = []
    for text in (summary, location, description):
        for n in find_numbers(text or ""):
            if n not in numbers:
                numbers.append(n)
    if len(numbers) > 1:
        return None, None, Finding(FindingKind.TWO_NAMES, f"carries more than one phone number ({', '.join(numbers)})")
    if len(numbers) == 1:
        number = numbers[0]
        by_number = {v: k for k, v in people.items()}
        if number in by_number:
            return number, display_name(by_number[number]), None
        if number not in always_allowed and not number_allowed(number, allowed):
            return None, None, Finding(FindingKind.DISALLOWED, f"carries {number}, which is not in [people] and does not "
                                       "match allowed_numbers; calls are never sent there")
        return number, number, None
    return None, None, Finding(FindingKind.UNNAMED, "names nobody in [people] and carries no phone number")


