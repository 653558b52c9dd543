"""The aql voipapi client (httpx, async): getuser, changeuser, listusers. An edge: no policy here.

Every request is a form POST carrying username, password and action. Answers are judged by the body,
not the HTTP status: ``OK`` / ``OK:<id>`` succeed, ``ERR:<message>`` is AqlRejected (AqlAuthError when
the message is about the credentials), anything else is AqlProtocolError; a timeout, reset or 5xx is
AqlTransportError. The password is held as a SecretStr and never appears in a message, log or repr.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import ssl
from typing import Callable, Mapping

import certifi
import httpx
from pydantic import SecretStr

from ..clock import SystemClock
from ..errors import AqlAuthError, AqlProtocolError, AqlRejected, AqlThrottled, AqlTransportError
from ..logs import redact, secret_forms

# The fields forwardd owns on a number; every other field (voicemail, fax, SIP...) is left as it is.
MANAGED = ("forwardto", "forwardactive", "forwardstart", "forwardend", "forwardcli")
REQUIRED_FIELDS = ("forwardto", "forwardactive", "forwardstart", "forwardend")
_AUTH = re.compile(r"password|username|auth|login|credential", re.IGNORECASE)
_FIELD_LINE = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_status(body: str, action: str) -> str | None:
    """Parse an ``OK`` / ``OK:id`` / ``ERR:msg`` answer; returns the id or None. Raises AqlError."""
    text = body.strip()
    if text == "OK":
        return None
    if text.startswith("OK:"):
        return text[3:].strip() or None
    _raise_if_err(text, action)
    raise AqlProtocolError(f"unexpected answer to {action}: {_excerpt(text)}")


def parse_fields(body: str, action: str = "getuser") -> dict[str, str]:
    """Parse a getuser answer (``name:value`` lines, split at the first colon). Raises AqlError."""
    text = body.strip()
    _raise_if_err(text, action)
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not _FIELD_LINE.match(name.strip()):
            raise AqlProtocolError(f"unexpected line in the {action} answer: {_excerpt(line)}")
        fields[name.strip()] = value.strip()
    missing = [f for f in REQUIRED_FIELDS if f not in fields]
    if missing:
        raise AqlProtocolError(f"{action} answer lacks {', '.join(missing)}: {_excerpt(text)}")
    return fields


def parse_numbers(body: str) -> list[str]:
    """Parse a listusers answer (one number a line). Raises AqlError."""
    text = body.strip()
    _raise_if_err(text, "listusers")
    numbers = [line.strip() for line in text.splitlines() if line.strip()]
    bad = [n for n in numbers if not n.isdigit()]
    if bad:
        raise AqlProtocolError(f"unexpected line in the listusers answer: {_excerpt(bad[0])}")
    return numbers


def _raise_if_err(text: str, action: str) -> None:
    if text.startswith("ERR"):
        message = text[4:].strip() if text[3:4] == ":" else text[3:].strip()
        if _AUTH.search(message):
            raise AqlAuthError(f"aql refused the credentials: {message}")
        raise AqlRejected(message or "(no message)", action)


def retry_after(value: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now, within [0, 1 h]; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), 3600.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, min((when - SystemClock().now()).total_seconds(), 3600.0))


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return repr(text[:120] + ("..." if len(text) > 120 else ""))


class _Hidden:
    """A value that never shows in a repr (the password's encodings, kept for redaction)."""

    __slots__ = ("value",)

    def __init__(self, value: set[str]) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "**********"


class AqlClient:
    """Async client for one aql account. Use ``async with``; bounded to ``concurrency`` requests."""

    def __init__(
        self,
        url: str,
        username: str,
        password: SecretStr | str,
        *,
        timeout: float = 10.0,
        concurrency: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
        instance: str | None = None,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.on_request = on_request  # told the action of every request sent (for the metrics)
        self.gate: Callable[[str], None] | None = None  # may refuse a request at the last moment (raises)
        self.username = username
        self._password = password if isinstance(password, SecretStr) else SecretStr(password)
        self._secret_forms = _Hidden(secret_forms(self._password.get_secret_value()))
        self._limit = asyncio.Semaphore(concurrency)
        # httpx's connection pool slows down sharply with many connections in one client (measured
        # against the fake server: 50 connections in one client, ~150 requests/s; 50 clients of one
        # connection each, ~700/s). So requests are spread over one-connection clients ("shards"),
        # sharing one TLS context. An injected transport (the simulated account) needs only one.
        shards = 1 if transport is not None else concurrency
        tls = ssl.create_default_context(cafile=certifi.where())  # the CA bundle httpx itself would use
        self._shards = [
            httpx.AsyncClient(
                timeout=httpx.Timeout(timeout),
                transport=transport,
                verify=tls,
                limits=httpx.Limits(max_connections=max(1, concurrency // shards), max_keepalive_connections=1),
                headers={"User-Agent": "forwardd", **({"X-Forwardd-Instance": instance} if instance else {})},
                follow_redirects=False,  # the password travels in the body: never to another place
            )
            for _ in range(shards)
        ]
        self._busy = [0] * shards

    def __repr__(self) -> str:
        return f"AqlClient(url={self.url!r}, username={self.username!r}, password=**********)"

    async def __aenter__(self) -> AqlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()

    async def _post(self, action: str, extra: Mapping[str, str]) -> str:
        form = {"username": self.username, "password": self._password.get_secret_value(), "action": action, **extra}
        async with self._limit:
            if self.gate is not None:
                self.gate(action)
            if self.on_request is not None:
                self.on_request(action)
            i = min(range(len(self._shards)), key=self._busy.__getitem__)  # a shard with a free connection
            self._busy[i] += 1
            try:
                resp = await self._shards[i].post(self.url, data=form)
            except httpx.TimeoutException as err:
                raise AqlTransportError(f"{action}: aql did not answer in time ({type(err).__name__})") from None
            except httpx.HTTPError as err:
                raise AqlTransportError(f"{action}: request failed ({type(err).__name__})") from None
            finally:
                self._busy[i] -= 1
        if resp.status_code in (429, 503):
            wait = retry_after(resp.headers.get("retry-after"))
            raise AqlThrottled(f"{action}: aql answered HTTP {resp.status_code}"
                               + (f" (retry after {wait:g} s)" if wait is not None else ""), wait)
        if resp.status_code >= 500:
            raise AqlTransportError(f"{action}: aql answered HTTP {resp.status_code}")
        if 300 <= resp.status_code < 400:
            raise AqlProtocolError(f"{action}: aql answered HTTP {resp.status_code}, a redirect to "
                                   f"{_excerpt(resp.headers.get('location', '?'))}; forwardd does not follow "
                                   "redirects with the password (check aql.url)")
        text = redact(resp.text, self._secret_forms.value)  # an echo of the request must not leak, in any encoding
        if resp.status_code >= 400 and not text.lstrip().startswith(("OK", "ERR")):
            raise AqlProtocolError(f"{action}: aql answered HTTP {resp.status_code}: {_excerpt(text)}")
        return text

    async def getuser(self, voipnumber: str) -> dict[str, str]:
        """All fields of one number. Raises AqlError."""
        return parse_fields(await self._post("getuser", {"voipnumber": voipnumber}))

    async def changeuser(self, voipnumber: str, fields: Mapping[str, str]) -> str | None:
        """Set writable fields of one number; returns aql's id if it gave one. Raises AqlError."""
        if not fields:
            raise ValueError("changeuser needs at least one field")
        return parse_status(await self._post("changeuser", {"voipnumber": voipnumber, **fields}), "changeuser")

    async def listusers(self) -> list[str]:
        """The account's VoIP numbers. Raises AqlError."""
        return parse_numbers(await self._post("listusers", {}))
