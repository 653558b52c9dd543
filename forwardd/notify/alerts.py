"""Alerts: a webhook (JSON POST) and email (SMTP), each optional; every alert is also logged and
journalled. A standing condition (same key) is re-sent no sooner than ``repeat_after``; when it clears,
a recovery is announced once."""

from __future__ import annotations

import asyncio
import datetime as dt
import smtplib
import threading
from email.message import EmailMessage
from typing import Any

import httpx
import structlog

from ..config import AlertSettings
from ..logs import redact
from ..store.journal import Journal

log = structlog.get_logger("forwardd.alerts")


class Alerts:
    def __init__(self, settings: AlertSettings, journal: Journal | None, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.journal = journal
        self.env = env or {}
        self.active: dict[str, dt.datetime] = {}  # key -> when last sent
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
        self._emit({"kind": "alert", "key": key, "message": redact(message), "voipnumber": voipnumber,
                    "at": now.isoformat()}, now)

    def clear(self, key: str, now: dt.datetime) -> None:
        with self._lock:
            if key not in self.active:
                return
            del self.active[key]
        self._emit({"kind": "recovery", "key": key, "message": f"recovered: {key}", "at": now.isoformat()}, now)

    def _emit(self, payload: dict[str, Any], now: dt.datetime) -> None:
        self.sent.append(payload)
        log.warning(payload["kind"], key=payload["key"], message=payload["message"])
        if self.journal is not None:
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
