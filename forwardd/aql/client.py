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
import urllib.parse
from typing import Callable, Mapping

import certifi
import httpx
from pydantic import SecretStr

from ..clock import Clock, SystemClock
from ..errors import AqlAuthError, AqlProtocolError, AqlRejected, AqlThrottled, AqlTransportError
from ..logs import redact, secret_forms

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
        clock: Clock | None = None,
    ) -> None:
        self.url = url
        self._clock: Clock = clock or SystemClock()  # a virtual one stands still while a request is out
        self.on_request = on_request  # told the action of every request sent (for the metrics)
        self.gate: Callable[[str], None] | None = None  # may refuse a request at the last moment (raises)
        self.username = username
        self._password = password if isinstance(password, SecretStr) else SecretStr(password)
        self._secret_forms = _Hidden(secret_forms(self._password.get_secret_value()))
        self._limit = asyncio.Semaphore(concurrency)
        # httpx's connection pool slows down sharply with many connections in one pool (measured against
        # the fake server: 50 connections in one client, ~150 requests/s; 50 of one connection each,
        # ~700/s). So requests are spread over one-connection transports ("shards"), sharing one TLS
        # context. An injected transport (the simulated account) needs only one. Requests go straight to
        # the transport, built once in the shape aql needs: a form POST with fixed headers, no cookies,
        # no redirects (the password travels in the body: never to another place), no auth flows.
        shards = 1 if transport is not None else concurrency
        tls = ssl.create_default_context(cafile=certifi.where())  # the CA bundle httpx itself would use
        self._shards: list[httpx.AsyncBaseTransport] = [
            transport if transport is not None else httpx.AsyncHTTPTransport(
                verify=tls, limits=httpx.Limits(max_connections=max(1, concurrency // shards),
                                                max_keepalive_connections=1))
            for _ in range(shards)
        ]
        self._busy = [0] * shards
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._url = httpx.URL(url)  # parsed once
        self._headers = [(b"User-Agent", b"forwardd"), (b"Content-Type", b"application/x-www-form-urlencoded"),
                         *([(b"X-Forwardd-Instance", instance.encode())] if instance else [])]
        # the credentials' part of every body, encoded once; a getuser's whole body, once per number
        self._credentials = _Hidden({urllib.parse.urlencode({"username": username,
                                                             "password": self._password.get_secret_value()})})
        self._bodies: dict[tuple[str, str], bytes] = {}

    def __repr__(self) -> str:
        return f"AqlClient(url={self.url!r}, username={self.username!r}, password=**********)"

    async def __aenter__(self) -> AqlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()

    def _body(self, action: str, extra: Mapping[str, str]) -> bytes:
        """The form body: the credentials, the action and its fields (a getuser's kept per number)."""
        key = (action, extra.get("voipnumber", "")) if len(extra) <= 1 else None
        body = self._bodies.get(key) if key is not None else None
        if body is None:
            (credentials,) = self._credentials.value
            body = f"{credentials}&{urllib.parse.urlencode({'action': action, **extra})}".encode()
            if key is not None and len(self._bodies) < 100_000:
                self._bodies[key] = body
        return body

    async def _send(self, shard: httpx.AsyncBaseTransport, body: bytes) -> httpx.Response:
        request = httpx.Request("POST", self._url, headers=self._headers, content=body,
                                extensions={"timeout": self._timeout})
        response = await shard.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _post(self, action: str, extra: Mapping[str, str]) -> str:
        body = self._body(action, extra)
        async with self._limit:
            if self.gate is not None:
                self.gate(action)
            if self.on_request is not None:
                self.on_request(action)
            i = min(range(len(self._shards)), key=self._busy.__getitem__)  # a shard with a free connection
            self._busy[i] += 1
            try:
                with self._clock.outside():
                    resp = await self._send(self._shards[i], body)
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
        # aql answers in ASCII (UTF-8 to be safe); an echo of the request must not leak, in any encoding
        text = redact(resp.content.decode("utf-8", errors="replace"), self._secret_forms.value)
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
