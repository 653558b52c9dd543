"""A model of an aql account, as the API reference describes it: the fake server and the simulated
account both answer through ``Account.handle``, so what tests see over HTTP is what ``url = "simulated"``
does in process.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..clock import SystemClock
from ..config.types import is_voipnumber
from ..core.provider import parse_hms
from ..files import atomic_write
from .carrier import MANAGED

WRITABLE = frozenset(
    {
        *MANAGED,
        "voicemailon",
        "voicemaildelay",
        "voicemaildest",
        "faxenabled",
        "faxrecipient",
        "faxrecipientname",
        "sipendpoint",
        "smsaction",
        "smsdata",
        "callrecord",
    }
)
READ_ONLY = frozenset({"pstnnumber", "credit", "voipnumber"})
FLAGS = frozenset({"forwardactive", "forwardcli", "voicemailon", "faxenabled", "callrecord"})
FIELD_ORDER = (
    "voipnumber",
    "pstnnumber",
    "voicemailon",
    "voicemaildelay",
    "voicemaildest",
    "forwardto",
    "forwardstart",
    "forwardend",
    "forwardactive",
    "forwardcli",
    "faxenabled",
    "faxrecipient",
    "faxrecipientname",
    "sipendpoint",
    "callrecord",
    "credit",
)


def default_user(voipnumber: str) -> dict[str, str]:
    """A new number as aql's example shows one: forwarding off."""
    return {
        "voipnumber": voipnumber,
        "pstnnumber": "44113320" + voipnumber[-4:],
        "voicemailon": "1",
        "voicemaildelay": "30",
        "voicemaildest": "user@example.com",
        "forwardto": "01133203040",
        "forwardstart": "00:00:00",
        "forwardend": "23:59:59",
        "forwardactive": "0",
        "forwardcli": "1",
        "faxenabled": "0",
        "faxrecipient": "faxuser@example.com",
        "faxrecipientname": "Joe Bloggs",
        "sipendpoint": f"{voipnumber}@sip.aql.com",
        "callrecord": "0",
        "credit": "3.42",
    }


@dataclass
class HistoryEntry:
    at: dt.datetime
    voipnumber: str
    fields: dict[str, str]  # the full managed state after the change
    changed: dict[str, str]  # what this change set

    def as_json(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "voipnumber": self.voipnumber, "fields": self.fields, "changed": self.changed}


@dataclass
class Account:
    """One aql account: credentials, numbers with their fields, and the history of every change."""

    username: str
    password: str
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    wraps: bool = False  # whether a window with forwardstart > forwardend is accepted
    clock: Callable[[], dt.datetime] = field(default_factory=lambda: SystemClock().now)
    history: list[HistoryEntry] = field(default_factory=list)
    ignore_next_changes: int = 0  # fault: answer OK to changeuser but apply nothing
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    on_change: Callable[[], None] | None = None
    saver: Any = None  # the simulated account's file keeper (aql.simulated.Saver), when it has one
    requests: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)  # (number, action)

    @classmethod
    def with_numbers(cls, username: str, password: str, numbers: list[str], **kw: object) -> Account:
        acct = cls(username, password, **kw)  # type: ignore[arg-type]
        for n in numbers:
            acct.users[n] = default_user(n)
        return acct

    def handle(self, form: Mapping[str, str]) -> str:
        """Answer one API request (form fields) with the body aql would send."""
        with self.lock:
            action = form.get("action", "")
            self.requests[(form.get("voipnumber", ""), action)] += 1
            if form.get("username") != self.username or form.get("password") != self.password:
                return "ERR:Invalid username or password"
            if action == "listusers":
                return "\n".join(sorted(self.users))
            if action not in ("getuser", "changeuser"):
                return f"ERR:Unknown action {action}" if action else "ERR:No action given"
            number = form.get("voipnumber", "")
            if not is_voipnumber(number):
                return "ERR:Invalid voipnumber format"
            user = self.users.get(number)
            if user is None:
                return "ERR:Invalid number"
            if action == "getuser":
                return "\n".join(f"{k}:{user[k]}" for k in FIELD_ORDER if k in user) + "\n"
            return self._change(number, user, form)

    def _change(self, number: str, user: dict[str, str], form: Mapping[str, str]) -> str:
        updates = {k: v for k, v in form.items() if k not in ("username", "password", "action", "voipnumber")}
        if not updates:
            return "ERR:Nothing to change"
        for key, value in updates.items():
            problem = _field_problem(key, value)
            if problem:
                return "ERR:" + problem
        start = updates.get("forwardstart", user["forwardstart"])
        end = updates.get("forwardend", user["forwardend"])
        if parse_hms(start) > parse_hms(end) and not self.wraps:
            return "ERR:forwardstart must not be later than forwardend"
        if self.ignore_next_changes > 0:
            self.ignore_next_changes -= 1
            return "OK"
        user.update(updates)
        self.history.append(HistoryEntry(self.clock(), number, {k: user[k] for k in MANAGED}, dict(updates)))
        if self.on_change:
            self.on_change()
        return "OK"

    def add_numbers(self, numbers: list[str]) -> None:
        """Numbers a reloaded config adds to the simulated account, as new ones."""
        with self.lock:
            for n in numbers:
                self.users.setdefault(n, default_user(n))

    def set_fields(self, number: str, fields: Mapping[str, str]) -> None:
        """Change a number as the aql portal would (a hand-made change): recorded in the history."""
        with self.lock:
            self.users[number].update(fields)
            self.history.append(
                HistoryEntry(self.clock(), number, {k: self.users[number][k] for k in MANAGED}, dict(fields))
            )

    def set_credit(self, number: str, credit: str) -> None:
        """Set a number's credit as aql would see it change (calls paid, a top-up): read-only through the
        API, and no change of the number's settings, so not in the history."""
        with self.lock:
            self.users[number]["credit"] = credit

    # persistence for the simulated account, so that `run`, `status` and `apply` share one account
    def save(self, path: Path) -> None:
        with self.lock:
            data = {"users": self.users, "history": [h.as_json() for h in self.history[-5000:]]}
        atomic_write(path, json.dumps(data))

    def load(self, path: Path) -> None:
        """Take the saved state; a missing or unreadable file leaves the account as it is."""
        try:
            data = json.loads(path.read_text())
            users = {str(n): {str(k): str(v) for k, v in f.items()} for n, f in data.get("users", {}).items()}
            history = [
                HistoryEntry(dt.datetime.fromisoformat(h["at"]), h["voipnumber"], h["fields"], h["changed"])
                for h in data.get("history", [])
            ]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return
        with self.lock:
            for number, fields in users.items():
                if number in self.users:
                    self.users[number].update(fields)
            self.history = history


def _field_problem(key: str, value: str) -> str | None:
    if key in READ_ONLY:
        return f"{key} is read-only"
    if key not in WRITABLE:
        return f"Unknown field {key}"
    if key in FLAGS and value not in ("0", "1"):
        return f"{key} must be 0 or 1"
    if key in ("forwardstart", "forwardend"):
        try:
            parse_hms(value)
        except ValueError:
            return f"{key} must be HH:MM:SS"
    if key == "forwardto" and not re.fullmatch(r"\d{6,16}", value):
        return "Invalid forwardto number"
    if key == "voicemaildelay" and not value.isdigit():
        return "voicemaildelay must be a number of seconds"
    return None
