"""Getting a feed's bytes: a file, or an https feed. An edge.

A feed is fetched with a conditional request (ETag / Last-Modified) under one deadline for the whole
download (not per read), at most ``max_bytes``, following at most a few redirects and only to URLs the
feed's own rules allow (no https -> http unless ``allow_http``). A file is read only when it changed
since the last read (its size and modification time), at most ``max_bytes`` of it. Every failure is a
CalendarError naming the calendar and the reason.

A private feed's credentials (HTTP Basic or Bearer) go only to the feed's own origin (scheme, host and
port): a redirect elsewhere is followed without them. A 401 or 403 to credentials sent is "the server
refused the credentials". No message says the secret (and each is redacted besides).
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..aio import off_loop
from ..clock import outside_world
from ..config import CalendarSettings, FeedCredentials, is_loopback_url
from ..errors import CalendarError
from ..logs import redact

MAX_REDIRECTS = 5


@dataclass
class Fetched:
    """What a fetch brought: the bytes (None: not modified since the copy we hold) and what to ask with
    next time."""

    data: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    stat: tuple[int, int, int] | None = None  # a file's (size, mtime_ns, inode) when read


def size_text(n: int) -> str:
    return f"{n / 1048576:.0f} MB" if n >= 1048576 else f"{n / 1024:.0f} KB"


async def read_file(name: str, settings: CalendarSettings, path: Path,
                    known: tuple[int, int, int] | None) -> Fetched:
    """A calendar file's bytes, or ``Fetched(None)`` when its size and modification time are those of the
    read that gave ``known``. Raises CalendarError."""
    limit = settings.max_bytes

    def read() -> Fetched:
        st = os.stat(path)
        stat = (st.st_size, st.st_mtime_ns, st.st_ino)
        if known is not None and stat == known:
            return Fetched(None, stat=stat)
        if st.st_size > limit:
            raise CalendarError(name, f"the file is larger than max_bytes ({size_text(limit)})")
        with path.open("rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise CalendarError(name, f"the file is larger than max_bytes ({size_text(limit)})")
        return Fetched(data, stat=stat)

    try:
        return await off_loop(read, timeout=settings.timeout.total_seconds())
    except TimeoutError:
        raise CalendarError(name, f"reading {path} took longer than {settings.timeout.total_seconds():g} s") from None
    except OSError as err:
        raise CalendarError(name, f"cannot read {path}: {err.strerror or err}") from None


async def download(name: str, settings: CalendarSettings, etag: str | None, last_modified: str | None,
                   transport: httpx.AsyncBaseTransport | None = None, auth: FeedCredentials | None = None) -> Fetched:
    """An https feed's bytes, under one deadline for the whole download; ``Fetched(None)`` on 304 Not
    Modified (when ``etag`` or ``last_modified`` was given). ``auth``: the credentials of a private feed,
    sent to its own origin only. Raises CalendarError."""
    try:
        with outside_world():  # (a driven virtual clock stands still while the feed downloads)
            async with asyncio.timeout(settings.timeout.total_seconds()):
                return await _download(name, settings, etag, last_modified, transport, auth)
    except TimeoutError:
        raise CalendarError(name, f"the feed did not finish within {settings.timeout.total_seconds():g} s "
                                  "(timeout, for the whole download)") from None
    except httpx.HTTPError as err:
        raise CalendarError(name, redact(f"cannot fetch the feed: {type(err).__name__}: {err}")) from None


def origin(url: str) -> tuple[str, str, int | None]:
    """A URL's origin: scheme, host and port (the default port of the scheme when none is written)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme)


def _refused(name: str, status: int, url: str, home: tuple[str, str, int | None], sent: bool,
             auth: FeedCredentials | None) -> CalendarError:
    if sent:
        return CalendarError(name, f"the server refused the credentials (HTTP {status})")
    if auth is not None:
        return CalendarError(name, f"the feed redirected to another host ({origin(url)[1]}), which answered HTTP "
                                   f"{status}; forwardd sends the credentials only to the feed's own host ({home[1]})")
    return CalendarError(name, f"the feed answered HTTP {status}: it needs credentials (username and password_file, "
                               "or bearer_token_file)")


async def _download(name: str, s: CalendarSettings, etag: str | None, last_modified: str | None,
                    transport: httpx.AsyncBaseTransport | None, auth: FeedCredentials | None) -> Fetched:
    headers = {"Accept": "text/calendar, */*;q=0.5", "User-Agent": "forwardd"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    url = str(s.source)
    home = origin(url)
    async with httpx.AsyncClient(transport=transport, follow_redirects=False,
                                 timeout=s.timeout.total_seconds()) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            sent = auth is not None and origin(url) == home  # never to another origin a redirect names
            hop = {**headers, "Authorization": auth.header()} if sent and auth is not None else headers
            async with client.stream("GET", url, headers=hop) as resp:
                if resp.status_code in (301, 302, 303, 307, 308):
                    url = redirect_target(name, s, url, resp.headers.get("location", ""))
                    continue
                if resp.status_code == 304 and (etag or last_modified):
                    return Fetched(None)
                if resp.status_code == 401 or (resp.status_code == 403 and auth is not None):
                    raise _refused(name, resp.status_code, url, home, sent, auth)
                if resp.status_code != 200:
                    raise CalendarError(name, f"the feed answered HTTP {resp.status_code}")
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > s.max_bytes:
                    raise CalendarError(name, f"the feed is {size_text(int(declared))}, larger than max_bytes "
                                              f"({size_text(s.max_bytes)})")
                chunks, total = [], 0
                async for chunk in resp.aiter_bytes():
                    total += len(chunk)
                    if total > s.max_bytes:
                        raise CalendarError(name, f"the feed sent more than max_bytes ({size_text(s.max_bytes)}); "
                                                  "stopped reading")
                    chunks.append(chunk)
                return Fetched(b"".join(chunks), resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
    raise CalendarError(name, f"the feed redirected more than {MAX_REDIRECTS} times")


def redirect_target(name: str, settings: CalendarSettings, url: str, location: str) -> str:
    """Where a redirect may take the feed: https, or plain http where its settings allow. Raises
    CalendarError."""
    if not location:
        raise CalendarError(name, "the feed redirected without saying where")
    target = urllib.parse.urljoin(url, location)
    scheme = urllib.parse.urlsplit(target).scheme.lower()
    if scheme == "https":
        return target
    if scheme == "http" and (settings.allow_http or is_loopback_url(target)):
        return target
    shown = target if len(target) < 120 else target[:117] + "..."
    raise CalendarError(name, f"the feed redirected to {shown}, which its settings do not allow "
                              "(plain http needs allow_http = true)")
