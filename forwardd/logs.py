"""structlog set-up, once, in ``main``: JSON lines off a terminal (journald), stamped in ISO 8601 UTC for
machines; pretty on one, stamped with the local time of day to the second, for people; secrets
redacted by a processor wherever they would appear."""

from __future__ import annotations

import json
import logging
import re
import sys
import urllib.parse
from typing import Any, MutableMapping

import structlog

_SECRETS: set[str] = set()
_SECRET_KEYS = re.compile(r"pass(word)?|secret|token", re.IGNORECASE)


def secret_forms(value: str) -> set[str]:
    """``value`` as forwardd itself may have written it: plain, form- and URL-encoded (how it travels to
    aql), JSON-escaped (how it would sit in the journal or a webhook)."""
    forms = {value, urllib.parse.quote_plus(value), urllib.parse.quote(value, safe=""),
             json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {f for f in forms if f and len(f) >= 3}


def register_secret(value: str) -> None:
    """Never print ``value``, in any of its encodings: a log line holding one shows ``**********``."""
    if value and len(value) >= 3:
        _SECRETS.update(secret_forms(value))


def redact(text: str, secrets: set[str] | None = None) -> str:
    """``text`` with every registered secret (or those given) replaced, longest first."""
    for s in sorted(secrets if secrets is not None else _SECRETS, key=len, reverse=True):
        if s in text:
            text = text.replace(s, "**********")
    return text


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and value is not None:
            event[key] = "**********"
        elif isinstance(value, str):
            event[key] = redact(value)
        elif isinstance(value, (dict, list, tuple)):
            event[key] = _walk(value)
    return event


def _walk(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: ("**********" if _SECRET_KEYS.search(str(k)) else _walk(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v) for v in value]
    return value


def configure(level: str = "info", json_lines: bool | None = None, stream: Any = None) -> None:
    stream = stream or sys.stdout
    if json_lines is None:
        json_lines = not stream.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    stamper = (structlog.processors.TimeStamper(fmt="iso", utc=True) if json_lines
               else structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamper,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # The libraries' own records (APScheduler's missed-job warnings, asyncio's errors) go through the same
    # processors: JSON lines like ours, redacted, never a bare traceback on stderr.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.processors.add_log_level, stamper, _redact],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info if json_lines else _keep, renderer],
    ))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # httpx logs every request at INFO; the URL carries no secret, but keep the journal to our lines
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("apprise").setLevel(logging.WARNING)


def _keep(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event
