"""The exception tree: every error forwardd raises on purpose.

    ForwarddError                 root; its message is meant for the user, not a traceback
    ├── ConfigError               a bad config file; carries every problem at its key path
    ├── CalendarError             a calendar that cannot be fetched or parsed; names the source
    └── AqlError                  anything that went wrong talking to aql
        ├── AqlAuthError          the account refused our credentials
        ├── AqlRejected           an ``ERR:`` answer; ``.message`` is aql's text
        ├── AqlProtocolError      an answer we cannot understand (not OK/ERR, missing fields)
        └── AqlTransportError     the request did not complete (timeout, reset, HTTP 5xx)
            └── AqlThrottled      aql asked us to slow down (HTTP 429 or 503); ``retry_after`` seconds

Third-party exceptions are wrapped at the edge (``raise ... from err``).
"""

from __future__ import annotations


class ForwarddError(Exception):
    """Root of forwardd's errors. ``str(err)`` is an actionable message."""


class ConfigError(ForwarddError):
    """One or more problems in the configuration, each as ``(path, reason)``."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"At '{path}': {reason}" if path else reason for path, reason in problems]
        super().__init__(f"{len(problems)} configuration error(s){where}:\n  " + "\n  ".join(lines))


class CalendarError(ForwarddError):
    """A calendar source could not be fetched or parsed."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"calendar {source!r}: {reason}")


class AqlError(ForwarddError):
    """A failure talking to aql. ``retryable`` says whether repeating the call is safe and useful."""

    retryable = False


class AqlAuthError(AqlError):
    """aql refused the username or password."""


class AqlRejected(AqlError):
    """aql answered ``ERR:<message>``."""

    def __init__(self, message: str, action: str = "") -> None:
        self.message = message
        self.action = action
        super().__init__(f"aql rejected {action or 'the request'}: {message}")


class AqlProtocolError(AqlError):
    """aql answered something that is neither ``OK`` nor ``ERR:`` nor a field list."""

    retryable = True


class AqlTransportError(AqlError):
    """The request did not complete: timeout, connection reset, HTTP 5xx."""

    retryable = True


class AqlThrottled(AqlTransportError):
    """aql answered HTTP 429 or 503: slow down, for ``retry_after`` seconds when it said (else None)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)
