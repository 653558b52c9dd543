"""The text both stores keep, whichever backend: what SQLite and PostgreSQL can both hold, made the same
way for both, so that an entry, an override or a notice comes back the same from either.

NUL characters are dropped (PostgreSQL's text and jsonb cannot hold them); a lone surrogate (from
bytes that were not UTF-8, decoded with ``surrogateescape``) becomes U+FFFD (neither UTF-8 nor jsonb
can hold one); and in a journal entry's detail, what JSON cannot say is kept as its text: NaN and the
infinities, objects, a structure that holds itself, and what lies deeper than ``DEPTH``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, overload

DEPTH = 64  # a detail nested deeper than this is kept as text from there on

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` as both stores keep it: without NUL characters, each lone surrogate made U+FFFD (a pair
    of surrogates joined into its character)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _key(key: object) -> str:
    """A detail's key as JSON writes it (``1`` -> ``"1"``, None -> ``"null"``), or its text."""
    if isinstance(key, str):
        return clean_text(key)
    if key is None or isinstance(key, (bool, int)) or (isinstance(key, float) and math.isfinite(key)):
        return json.dumps(key)
    return clean_text(str(key))


def plain(value: object, depth: int = 0, within: frozenset[int] = frozenset()) -> Any:
    """``value`` as JSON can hold it: text cleaned (``clean_text``), tuples as lists, non-finite numbers
    and any other object as text (``str``, as ``json.dumps(default=str)`` would), a container found
    within itself and what lies deeper than ``DEPTH`` as text too. Raises nothing but what ``str`` of an
    object may raise."""
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list, tuple)):
        if id(value) in within or depth >= DEPTH:
            return "{...}" if isinstance(value, dict) else "[...]"
        inner = within | {id(value)}
        if isinstance(value, dict):
            return {_key(k): plain(v, depth + 1, inner) for k, v in value.items()}
        return [plain(v, depth + 1, inner) for v in value]
    return clean_text(str(value))


def detail_json(detail: dict[str, Any]) -> str:
    """An entry's detail as the JSON text both stores keep (``plain``). Raises what ``plain`` raises."""
    return json.dumps(plain(detail), allow_nan=False)


@overload
def clean(text: str) -> str: ...


@overload
def clean(text: None) -> None: ...


def clean(text: str | None) -> str | None:
    """``clean_text`` of ``text``, None kept as None."""
    return None if text is None else clean_text(text)
