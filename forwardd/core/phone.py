"""Phone numbers: validation, normalisation to the form aql takes, and comparison.

aql's example ``forwardto`` is UK national digits (``01133203040``) and ``pstnnumber`` is international
digits without ``+``. We send UK numbers as national digits and other countries' numbers as ``00`` +
E.164 digits (international dialling from the UK); read-backs are compared by E.164, so either form
coming back from the account counts as the same number.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

_REGION = "GB"

# Ofcom reserves these ranges for drama; phonenumbers calls them invalid, but they are the right
# numbers for examples and tests, so they are accepted (they can never reach a real person).
_DRAMA = [
    re.compile(p)
    for p in (
        r"^447700900\d{3}$",
        r"^441134960\d{3}$",
        r"^441144960\d{3}$",
        r"^441154960\d{3}$",
        r"^441164960\d{3}$",
        r"^441174960\d{3}$",
        r"^441184960\d{3}$",
        r"^441214960\d{3}$",
        r"^441314960\d{3}$",
        r"^441414960\d{3}$",
        r"^441514960\d{3}$",
        r"^441614960\d{3}$",
        r"^44207946\d{4}$",
        r"^44289018\d{4}$",
        r"^44292018\d{4}$",
        r"^441632960\d{3}$",
        r"^44808157\d{4}$",
        r"^44909879\d{4}$",
    )
]


class PhoneError(ValueError):
    """Not a phone number we can forward to."""


def _parse(text: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(text, _REGION)
    except phonenumbers.NumberParseException as err:
        raise PhoneError(f"{text!r} is not a phone number ({err})") from None


def _e164_digits(num: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


@functools.lru_cache(maxsize=16384)
def normalise(text: str) -> str:
    """Return ``text`` as the digits aql is sent. Raises PhoneError if it is not a valid number.
    (Cached: the same few numbers are normalised for every number of every plan.)"""
    num = _parse(str(text))
    digits = _e164_digits(num)
    if not (phonenumbers.is_valid_number(num) or any(p.match(digits) for p in _DRAMA)):
        raise PhoneError(f"{text!r} is not a valid phone number")
    if num.country_code == 44:
        return "0" + phonenumbers.national_significant_number(num)
    return "00" + digits


def same_number(a: str | None, b: str | None) -> bool:
    """Whether two renderings name the same number (``0113...``, ``44113...``, ``+44 113...``)."""
    if not a or not b:
        return (a or "") == (b or "")
    return canonical(a) == canonical(b)


@functools.lru_cache(maxsize=16384)
def canonical(text: str) -> str:
    """E.164 digits of ``text`` where it parses, else its bare digits (never raises)."""
    raw = str(text).strip()
    if raw.isdigit() and raw.startswith("44") and not raw.startswith("0"):
        raw = "+" + raw
    elif raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        return _e164_digits(phonenumbers.parse(raw, _REGION))
    except phonenumbers.NumberParseException:
        return re.sub(r"\D", "", raw)


def find_numbers(text: str) -> list[str]:
    """Every valid phone number written in free text, normalised, in order of appearance, unique."""
    found: list[str] = []
    for match in phonenumbers.PhoneNumberMatcher(text, _REGION, leniency=phonenumbers.Leniency.POSSIBLE):
        try:
            n = normalise(match.raw_string)
        except PhoneError:
            continue
        if n not in found:
            found.append(n)
    return found


def number_allowed(number: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether a normalised number (``07700900001``, ``0033...``) may receive calls: it starts with one
    of ``patterns`` and with none of the ``!``-prefixed ones. The default, ``01 02 03 07 !070``, is UK
    geographic, non-geographic 03 and mobile numbers, but not 070 personal numbers; premium rate (09),
    08 and international numbers are never reached by a number someone merely typed into an event."""
    digits = re.sub(r"\D", "", number)
    if any(p.startswith("!") and digits.startswith(p[1:]) for p in patterns):
        return False
    return any(not p.startswith("!") and digits.startswith(p) for p in patterns)
