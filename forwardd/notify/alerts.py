"""Alerts: a webhook (JSON POST) and email (SMTP), each optional; every alert is also logged and
journalled (when the journal can take it: an alert never needs the journal). A standing condition (same
key) is re-sent no sooner than ``repeat_after``; when it clears, a recovery is announced once. Which
alerts stand is kept in the state directory, so a restart does not send them all again."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import smtplib
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import structlog

from ..config import AlertSettings
from ..files import atomic_write
from ..logs import redact
from ..store.journal import Journal

log = structlog.get_logger("forwardd.alerts")


class Alerts:
    def __init__(self, settings: AlertSettings, journal: Journal | None, env: dict[str, str] | None = None,
                 state_path: Path | None = None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.settings = settings
        self.journal = journal
        self.env = env or {}
        self.state_path = state_path
        self.loop = loop
        self.active: dict[str, dt.datetime] = self._load()  # key -> when last sent
        self.sent: list[dict[str, Any]] = []  # what was delivered (or attempted), for status and tests
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._in_order: asyncio.Lock | None = None

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

    def from_thread(self, key: str, message: str | None, now: dt.datetime) -> None:
        """Raise (``message``) or clear (None) an alert from another thread (the journal's writer)."""

        def act() -> None:
            if message is None:
                self.clear(key, now)
            else:
                self.raise_(key, message, now)

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
            return {str(k): dt.datetime.fromisoformat(v) for k, v in data.items()}
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
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            task = loop.create_task(self._deliver(payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:  # no event loop (a one-shot command): deliver now, in order by construction
            asyncio.run(self._send(payload))

    async def _deliver(self, payload: dict[str, Any]) -> None:
        if self._in_order is None:
            self._in_order = asyncio.Lock()  # FIFO: a recovery never overtakes its alert
        async with self._in_order:
            await self._send(payload)

    async def _send(self, payload: dict[str, Any]) -> None:
        if self.settings.webhook:
            try:
                async with httpx.AsyncClient(timeout=10) as c:
                    resp = await c.post(self.settings.webhook, json={"source": "forwardd", **payload})
                    resp.raise_for_status()
            except httpx.HTTPError as err:
                log.error("alert_webhook_failed", error=f"{type(err).__name__}: {err}")
        if self.settings.email:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._send_email, payload)
            except (OSError, smtplib.SMTPException) as err:
                log.error("alert_email_failed", error=f"{type(err).__name__}: {err}")

    def _send_email(self, payload: dict[str, Any]) -> None:
        e = self.settings.email
        assert e is not None
        msg = EmailMessage()
        msg["Subject"] = f"forwardd {payload['kind']}: {payload['key']}"
        msg["From"] = e.sender
        msg["To"] = ", ".join(e.to)
        msg.set_content(payload["message"])
        with smtplib.SMTP(e.host, e.port, timeout=15) as smtp:
            if e.starttls:
                smtp.starttls()
            if e.username:
                smtp.login(e.username, self.env.get(e.password_env or "", ""))
            smtp.send_message(msg)

    async def drain(self) -> None:
        """Wait for deliveries in flight (used at shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
