"""aql's rule for its own numbers, in one place: a VoIP number is 6 digits beginning with 6 or 7."""

from __future__ import annotations

import re

VOIPNUMBER = re.compile(r"^[67]\d{5}$")
RULE = "6 digits beginning with 6 or 7"


def is_voipnumber(text: str) -> bool:
    """Whether ``text`` is an aql VoIP number (``606309``)."""
    return bool(VOIPNUMBER.match(text))
