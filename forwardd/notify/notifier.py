"""One way out for every message to a person: apprise (email, SMS gateways, Slack, Teams, Telegram, ntfy,
JSON webhooks... each an apprise URL). Deliveries run as background tasks, in order per destination,
retried with backoff when they fail; nothing here is ever awaited on the way to aql.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import dataclass
from typing import Callable

import structlog

from ..logs import register_secret

log = structlog.get_logger("forwardd.notify")


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    kind: str = "info"  # info, success, warning, failure (apprise's notify types)


def register_url_secrets(urls: list[str]) -> None:
    """A password in a notification URL (``mailto://user:secret@host``) is a secret like aql's."""
    for url in urls:
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError:
            continue
        if parts.password:
            register_secret(urllib.parse.unquote(parts.password))


class Notifier:
    """``send(urls, message, ...)`` schedules a delivery and returns at once. ``attempts`` tries in all,
    waiting ``backoff_s`` and then twice as long each time (at most ``backoff_cap_s``)."""

    def __init__(self, attempts: int = 6, backoff_s: float = 2.0, backoff_cap_s: float = 300.0,
                 sleep: Callable[[float], object] | None = None) -> None:
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self._tasks: set[asyncio.Task[bool]] = set()
        self._lanes: dict[tuple[str, ...], asyncio.Lock] = {}
        self.delivered = 0
        self.failed = 0

    def send(self, urls: list[str], message: Message,
             done: Callable[[bool], None] | None = None) -> list[asyncio.Task[bool]]:
        """Deliver ``message`` to each of ``urls`` in the background, each on its own (a destination that
        is down is retried alone; the others get the message once). ``done(ok)`` is called once per
        destination, when delivered or finally failed. Returns the tasks."""
        loop = asyncio.get_running_loop()
        tasks = []
        for url in dict.fromkeys(urls):
            task = loop.create_task(self._deliver((url,), message, done))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            tasks.append(task)
        return tasks

    async def _deliver(self, urls: tuple[str, ...], message: Message, done: Callable[[bool], None] | None) -> bool:
        lane = self._lanes.setdefault(urls, asyncio.Lock())  # in order: a recovery never overtakes its alert
        delay = self.backoff_s
        async with lane:
            for attempt in range(1, self.attempts + 1):
                ok = await self._once(urls, message)
                if ok:
                    self.delivered += 1
                    break
                log.warning("notify_failed", title=message.title, attempt=attempt, of=self.attempts,
                            destinations=len(urls))
                if attempt < self.attempts:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.backoff_cap_s)
            else:
                ok = False
                self.failed += 1
        if done is not None:
            done(ok)
        return ok

    @staticmethod
    async def _once(urls: tuple[str, ...], message: Message) -> bool:
        import apprise

        sender = apprise.Apprise()
        for url in urls:
            sender.add(url)
        try:
            result = await sender.async_notify(body=message.body, title=message.title, notify_type=message.kind)
        except Exception as err:  # noqa: BLE001 - a plugin's surprise is a failed delivery, not a crash
            log.warning("notify_error", error=f"{type(err).__name__}: {err}")
            return False
        return bool(result)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for deliveries in flight; those still retrying are left behind at shutdown."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
