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
