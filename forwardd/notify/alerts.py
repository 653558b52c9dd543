"""Alerts to the administrator, through the notifier (``[alerts] notify``, apprise URLs); every alert is
also logged and journalled (when the journal can take it: an alert never needs the journal). A standing
condition (same key) is re-sent no sooner than ``repeat_after``; when it clears, one recovery is sent,
saying what recovered and after how long. Which alerts stand is kept in the state directory, so a
restart does not send them all again.

Keys are structure (``keys.AlertKey``: a kind and the line, calendar or account concerned); messages
are sentences for people, and are the titles of what is sent."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any, Callable

import structlog

from ..config import AlertSettings
from ..core.words import duration
from ..files import atomic_write
from ..logs import redact
from ..store.ports import JournalStore
from .keys import AlertKey, Standing
from .notifier import Message, Notifier

log = structlog.get_logger("forwardd.alerts")
KEPT = 200  # alerts and recoveries remembered for the page and status


class Alerts:
    def __init__(self, settings: AlertSettings, journal: JournalStore | None, notifier: Notifier,
                 state_path: Path | None = None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.settings = settings
        self.journal = journal
        self.notifier = notifier
        self.state_path = state_path
        self.loop = loop
        self._lock = threading.Lock()
        self.active: dict[AlertKey, Standing] = self._load()
        self.sent: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEPT)  # raised or cleared lately

    def raise_(self, key: AlertKey, message: str, now: dt.datetime) -> None:
        """Say that ``key`` stands, in ``message`` (a sentence). Sent now unless it was sent less than
        ``repeat_after`` ago (the message shown is updated either way)."""
        message = redact(message)
        with self._lock:
            old = self.active.get(key)
            if old is not None and now - old.last_sent < self.settings.repeat_after:
                if old.message != message:
                    self.active[key] = Standing(key, message, old.since, old.last_sent)
                return
            self.active[key] = Standing(key, message, old.since if old else now, now)
        self._save()
        self._emit("alert", key, message, message, now)

    def clear(self, key: AlertKey, now: dt.datetime) -> None:
        """``key`` no longer stands: one recovery, saying after how long."""
        with self._lock:
            old = self.active.pop(key, None)
        if old is None:
            return
        self._save()
        subject = key.describe()
        title = f"{subject[:1].upper()}{subject[1:]} recovered after {duration((now - old.since).total_seconds())}"
        self._emit("recovery", key, title, f"{title}; it was: {old.message}", now)

    def tell(self, key: AlertKey, message: str, now: dt.datetime) -> None:
        """A one-off alert about an event (a leadership change): sent, logged and journalled each time,
        never standing (nothing to clear)."""
        message = redact(message)
        self._emit("alert", key, message, message, now)

    def tell_from_thread(self, key: AlertKey, message: str, now: dt.datetime) -> None:
        """``tell`` from another thread (the cluster lease's)."""
        self._on_loop(lambda: self.tell(key, message, now))

    def from_thread(self, key: AlertKey, message: str | None, now: dt.datetime) -> None:
        """Raise (``message``) or clear (None) an alert from another thread (the journal's writer)."""

        def act() -> None:
            if message is None:
                self.clear(key, now)
            else:
                self.raise_(key, message, now)

        self._on_loop(act)

    def _on_loop(self, act: Callable[[], None]) -> None:
        if self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(act)
                return
            except RuntimeError:
                pass
        act()

    def _load(self) -> dict[AlertKey, Standing]:
        out: dict[AlertKey, Standing] = {}
        try:
            data = json.loads(self.state_path.read_text()) if self.state_path else {}
            for text, value in data.items():
                key = AlertKey.parse(str(text))
                if key is None:
                    continue
                if isinstance(value, str):  # older versions kept only when it was last sent
                    at = dt.datetime.fromisoformat(value)
                    standing = Standing(key, key.describe(), at, at)
                else:
                    standing = Standing(key, str(value["message"]), dt.datetime.fromisoformat(value["since"]),
                                        dt.datetime.fromisoformat(value["last_sent"]))
                if standing.since.tzinfo is not None and standing.last_sent.tzinfo is not None:
                    out[key] = standing
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            return out
        return out

    def _save(self) -> None:
        if self.state_path is None:
            return
        with self._lock:
            data = json.dumps({k.text(): {"message": s.message, "since": s.since.isoformat(),
                                          "last_sent": s.last_sent.isoformat()} for k, s in self.active.items()})
        try:
            atomic_write(self.state_path, data)
        except OSError:
            pass  # a full disk: the alert still goes out; only a restart may repeat it

    def _emit(self, kind: str, key: AlertKey, title: str, message: str, now: dt.datetime) -> None:
        payload = {"kind": kind, "key": key, "message": message, "voipnumber": key.number, "at": now.isoformat()}
        self.sent.append(payload)
        log.warning(kind, alert=key.kind.value, voipnumber=key.number, calendar=key.calendar, account=key.account,
                    message=message)
        if self.journal is not None and key.kind.value != "journal":
            self.journal.record(kind, now, key.number, kind == "recovery", key=key.text(), alert=key.kind.value,
                                calendar=key.calendar, account=key.account, message=message)
        if not self.settings.notify:
            return
        note = Message(f"forwardd: {title}", message, "failure" if kind == "alert" else "success")
        try:
            self.notifier.send(self.settings.notify, note)
        except RuntimeError:  # no event loop (never in forwardd's own commands): logged and journalled only
            log.warning("alert_not_delivered", alert=key.kind.value, reason="no event loop")

    async def drain(self) -> None:
        """Wait (bounded) for deliveries in flight (at shutdown)."""
        await self.notifier.drain()
