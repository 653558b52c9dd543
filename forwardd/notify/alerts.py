"""Alerts to the administrator, through the notifier (``[alerts] notify``, apprise URLs); every alert is
also logged and journalled (when the journal can take it: an alert never needs the journal). A standing
condition (same key) is re-sent no sooner than ``repeat_after``; when it clears, one recovery is sent.
Which alerts stand is kept in the state directory, so a restart does not send them all again."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any, Callable, Protocol

import structlog

from ..config import AlertSettings
from ..files import atomic_write
from ..logs import redact
from .notifier import Message, Notifier

log = structlog.get_logger("forwardd.alerts")


class _Journal(Protocol):
    def record(self, kind: str, at: dt.datetime, voipnumber: str | None = None, ok: bool | None = None,
               **detail: object) -> None: ...


class Alerts:
    def __init__(self, settings: AlertSettings, journal: _Journal | None, notifier: Notifier,
                 state_path: Path | None = None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.settings = settings
        self.journal = journal
        self.notifier = notifier
        self.state_path = state_path
        self.loop = loop
        self._lock = threading.Lock()
        self.active: dict[str, dt.datetime] = self._load()  # key -> when last sent
        self.sent: list[dict[str, Any]] = []  # what was raised or cleared (status, the page, tests)

    def raise_(self, key: str, message: str, now: dt.datetime, voipnumber: str | None = None) -> None:
        with self._lock:
            last = self.active.get(key)
            if last is not None and now - last < self.settings.repeat_after:
                return
            self.active[key] = now
        self._save()
        self._emit({"kind": "alert", "key": key, "message": redact(message), "voipnumber": voipnumber,
                    "at": now.isoformat()}, now)

    def clear(self, key: str, now: dt.datetime) -> None:
        with self._lock:
            if key not in self.active:
                return
            del self.active[key]
        self._save()
        self._emit({"kind": "recovery", "key": key, "message": f"recovered: {key}", "at": now.isoformat()}, now)

    def tell(self, key: str, message: str, now: dt.datetime) -> None:
        """A one-off alert about an event (a leadership change): sent, logged and journalled each time,
        never standing (nothing to clear)."""
        self._emit({"kind": "alert", "key": key, "message": redact(message), "voipnumber": None,
                    "at": now.isoformat()}, now)

    def tell_from_thread(self, key: str, message: str, now: dt.datetime) -> None:
        """``tell`` from another thread (the cluster lease's)."""
        self._on_loop(lambda: self.tell(key, message, now))

    def from_thread(self, key: str, message: str | None, now: dt.datetime) -> None:
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

    def _load(self) -> dict[str, dt.datetime]:
        try:
            data = json.loads(self.state_path.read_text()) if self.state_path else {}
            loaded = {str(k): dt.datetime.fromisoformat(v) for k, v in data.items()}
            return {k: v for k, v in loaded.items() if v.tzinfo is not None}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _save(self) -> None:
        if self.state_path is None:
            return
        with self._lock:
            data = json.dumps({k: v.isoformat() for k, v in self.active.items()})
        try:
            atomic_write(self.state_path, data)
        except OSError:
            pass  # a full disk: the alert still goes out; only a restart may repeat it

    def _emit(self, payload: dict[str, Any], now: dt.datetime) -> None:
        self.sent.append(payload)
        log.warning(payload["kind"], key=payload["key"], message=payload["message"])
        if self.journal is not None and payload["key"] != "journal":
            self.journal.record(payload["kind"], now, payload.get("voipnumber"), payload["kind"] == "recovery",
                                key=payload["key"], message=payload["message"])
        if not self.settings.notify:
            return
        kind = "failure" if payload["kind"] == "alert" else "success"
        message = Message(f"forwardd {payload['kind']}: {payload['key']}", payload["message"], kind)
        try:
            self.notifier.send(self.settings.notify, message)
        except RuntimeError:  # no event loop (never in forwardd's own commands): logged and journalled only
            log.warning("alert_not_delivered", key=payload["key"], reason="no event loop")

    async def drain(self) -> None:
        """Wait (bounded) for deliveries in flight (at shutdown)."""
        await self.notifier.drain()
