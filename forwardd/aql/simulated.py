"""The built-in simulated account (``url = "simulated"``): the fake server's account model, answered in
process through an httpx mock transport, so that the real client code runs against it. For trials and
tests; production code reaches it only through the composition root when the config asks for it."""

from __future__ import annotations

import datetime as dt
import threading
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


class Saver:
    """Keeps the simulated account in its file: at most once a second while it changes (a thread writes
    it; ten thousand lines written on every change would stall the daemon), and at once on ``flush``."""

    def __init__(self, account: Account, path: Path, delay_s: float = 1.0) -> None:
        self.account = account
        self.path = path
        self.delay_s = delay_s
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def changed(self) -> None:
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(self.delay_s, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        try:
            self.account.save(self.path)
        except OSError:
            pass  # a full disk: the account lives on in memory; the next command sees an older one


def simulated_account(
    numbers: list[str], *, wraps: bool, clock: Callable[[], dt.datetime], path: Path | None = None
) -> Account:
    """An account holding ``numbers``; kept in ``path`` (when given) so successive commands share it
    (``account.saver.flush()`` writes it at once)."""
    account = Account.with_numbers(SIMULATED_CREDENTIAL, SIMULATED_CREDENTIAL, numbers, wraps=wraps, clock=clock)
    if path is not None:
        account.load(path)
        saver = Saver(account, path)
        account.on_change = saver.changed
        account.saver = saver
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
