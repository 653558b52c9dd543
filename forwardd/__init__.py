"""forwardd: keep aql VoIP numbers forwarded as on-call rota and holiday calendars say."""

from .errors import (
    AqlAuthError,
    AqlError,
    AqlProtocolError,
    AqlRejected,
    AqlThrottled,
    AqlTransportError,
    CalendarError,
    ConfigError,
    ForwarddError,
)

__all__ = [
    "AqlAuthError",
    "AqlError",
    "AqlProtocolError",
    "AqlRejected",
    "AqlThrottled",
    "AqlTransportError",
    "CalendarError",
    "ConfigError",
    "ForwarddError",
]
__version__ = "0.1.0"
