"""structlog set-up, once, in ``main``: JSON lines off a terminal (journald), pretty on one; secrets
redacted by a processor wherever they would appear."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, MutableMapping

import structlog

_SECRETS: set[str] = set()
_SECRET_KEYS = re.compile(r"pass(word)?|secret|token", re.IGNORECASE)


def register_secret(value: str) -> None:
    """Never print ``value``: any log line containing it shows ``**********`` instead."""
    if value and len(value) >= 3:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for s in _SECRETS:
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
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # httpx logs every request at INFO; the URL carries no secret, but keep the journal to our lines
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
