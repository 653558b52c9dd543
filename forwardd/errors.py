"""The exception tree: every error forwardd raises on purpose.

    ForwarddError                   root; its message is meant for the user, not a traceback
    ├── ConfigError                 a bad config file; carries every problem at its key path
    ├── CalendarError               a calendar that cannot be fetched or parsed; names the source
    └── CarrierError                anything that went wrong talking to a carrier (what the reconciler catches)
        ├── CarrierAuthError        the account refused our credentials
        ├── CarrierRejected         the carrier refused the request; ``.message`` is its text
        ├── CarrierProtocolError    an answer we cannot understand
        ├── CarrierTransportError   the request did not complete (timeout, reset, HTTP 5xx)
        │   └── CarrierThrottled    slow down (HTTP 429 or 503); ``retry_after`` seconds
        └── AqlError                the same, said by aql (each Aql* error is also its Carrier* kind):
            ├── AqlAuthError        (CarrierAuthError)
            ├── AqlRejected         (CarrierRejected) an ``ERR:`` answer; ``.message`` is aql's text
            ├── AqlProtocolError    (CarrierProtocolError) not OK/ERR, missing fields
            └── AqlTransportError   (CarrierTransportError)
                └── AqlThrottled    (CarrierThrottled)

Third-party exceptions are wrapped at the edge (``raise ... from err``). Code decides on the class,
never on the message.
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


class CarrierError(ForwarddError):
    """A failure talking to a carrier. ``retryable`` says whether repeating the call is safe and useful."""

    retryable = False


class CarrierAuthError(CarrierError):
    """The account refused the username or password."""


class CarrierRejected(CarrierError):
    """The carrier refused the request with a message of its own."""

    def __init__(self, message: str, action: str = "", carrier: str = "the carrier") -> None:
        self.message = message
        self.action = action
        super().__init__(f"{carrier} rejected {action or 'the request'}: {message}")


class CarrierProtocolError(CarrierError):
    """An answer that is not what the carrier's API says it answers."""

    retryable = True


class CarrierTransportError(CarrierError):
    """The request did not complete: timeout, connection reset, HTTP 5xx."""

    retryable = True


class CarrierThrottled(CarrierTransportError):
    """The carrier asked us to slow down, for ``retry_after`` seconds when it said (else None)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class AqlError(CarrierError):
    """A failure talking to aql."""


class AqlAuthError(AqlError, CarrierAuthError):
    """aql refused the username or password."""


class AqlRejected(AqlError, CarrierRejected):
    """aql answered ``ERR:<message>``."""

    def __init__(self, message: str, action: str = "") -> None:
        CarrierRejected.__init__(self, message, action, "aql")


class AqlProtocolError(AqlError, CarrierProtocolError):
    """aql answered something that is neither ``OK`` nor ``ERR:`` nor a field list."""


class AqlTransportError(AqlError, CarrierTransportError):
    """The request did not complete: timeout, connection reset, HTTP 5xx."""


class AqlThrottled(AqlTransportError, CarrierThrottled):
    """aql answered HTTP 429 or 503: slow down, for ``retry_after`` seconds when it said (else None)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        CarrierThrottled.__init__(self, message, retry_after)
