"""The built-in simulated account (``url = "simulated"``): the fake server's account model, answered in
process through an httpx mock transport, so that the real client code runs against it. For trials and
tests; production code reaches it only through the composition root when the config asks for it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs

import httpx

from .account import Account

SIMULATED_URL = "http://simulated.invalid/reseller/voipapi.php"
SIMULATED_CREDENTIAL = "simulated"


class SimulatedTransport(httpx.MockTransport):
    def __init__(self, account: Account) -> None:
        self.account = account

        def handler(request: httpx.Request) -> httpx.Response:
            form = {k: v[-1] for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}
            return httpx.Response(200, text=account.handle(form))

        super().__init__(handler)


def simulated_account(
    numbers: list[str], *, wraps: bool, clock: Callable[[], dt.datetime], path: Path | None = None
) -> Account:
    """An account holding ``numbers``; kept in ``path`` (when given) so successive commands share it."""
    account = Account.with_numbers(SIMULATED_CREDENTIAL, SIMULATED_CREDENTIAL, numbers, wraps=wraps, clock=clock)
    if path is not None:
        account.load(path)
        account.on_change = lambda: account.save(path)
    return account


# ``forwardd init --url simulated``: an account as a new user's often is, its lines already forwarding
DEMO_LINES = {
    "606309": {"forwardto": "07700900001", "forwardactive": "1", "forwardstart": "00:00:00", "forwardend": "23:59:59"},
    "606310": {"forwardto": "07700900001", "forwardactive": "1", "forwardstart": "17:30:00", "forwardend": "23:59:59"},
    "606311": {"forwardto": "07700900002", "forwardactive": "1", "forwardstart": "09:00:00", "forwardend": "17:29:59",
               "forwardcli": "0"},
    "606312": {"forwardactive": "0"},
}


def demo_account(clock: Callable[[], dt.datetime] | None = None) -> Account:
    """A simulated account whose lines already forward: all day, in the evening, in office hours (the
    caller's number withheld), and one not at all. Not kept anywhere: ``init`` only reads it."""
    extra = {"clock": clock} if clock is not None else {}
    account = Account.with_numbers(SIMULATED_CREDENTIAL, SIMULATED_CREDENTIAL, list(DEMO_LINES), **extra)
    for number, fields in DEMO_LINES.items():
        account.users[number].update(fields)
    return account
