"""Private calendar feeds: HTTP Basic (username with password_file, password_env or the systemd credential
calendar-NAME) and Bearer (bearer_token_file), served on 127.0.0.1. A refusal is "the server refused the
credentials", alerted, with the last good copy kept; a redirect to another origin goes without the
credentials; and the secret is in no output: logs, journal, errors, the page."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import sqlite3
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from forwardd.calendars.fetch import download
from forwardd.calendars.sources import Sources
from forwardd.calendars.worker import InProcessExpander
from forwardd.config import FeedCredentials, calendar_credentials, config_from_dict
from forwardd.errors import CalendarError, ConfigError
from forwardd.logs import register_secret

from .conftest import UTC, run_cli
from .e2e import PASSWORD as AQL_PASSWORD
from .e2e import FakeProc, start_daemon, stop

FEED_PASSWORD = "feed-Pa55-quux-93"
TOKEN = "tok3n.Bearer-xyzzy_77"
ICS = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\n"
       b"DTSTART:20260101T000000Z\r\nDTEND:20360101T000000Z\r\nSUMMARY:On call: Alice\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
T0 = dt.datetime(2026, 11, 30, 12, tzinfo=UTC)


class Server:
    """A feed on 127.0.0.1 that answers only requests carrying ``expected`` (an Authorization value), or,
    with ``redirect``, sends every request there; records each request's Authorization header."""

    def __init__(self, expected: str | None = None, redirect: str | None = None) -> None:
        self.expected, self.redirect = expected, redirect
        self.seen: list[str | None] = []
        server = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                server.seen.append(self.headers.get("Authorization"))
                if server.redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", server.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.expected is not None and self.headers.get("Authorization") != server.expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="team"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("Content-Length", str(len(ICS)))
                self.end_headers()
                self.wfile.write(ICS)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/team.ics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def basic_feed():
    srv = Server("Basic " + base64.b64encode(f"alice:{FEED_PASSWORD}".encode()).decode())
    yield srv
    srv.close()


def basic() -> str:
    return "Basic " + base64.b64encode(f"alice:{FEED_PASSWORD}".encode()).decode()


def sources(tmp_path: Path, calendar: dict[str, Any], env: dict[str, str] | None = None, state: str = "state"
            ) -> Sources:
    cfg = config_from_dict({"calendars": {"team": {"timeout": "2s", **calendar}},
                            "numbers": [{"voipnumber": "606309", "rota": "team", "fallback": "07700900001"}]},
                           base_dir=tmp_path, env={})
    return Sources(cfg, tmp_path / state, InProcessExpander(), env=env or {})


# --------------------------------------------------------------------------------------- config


def problems(calendar: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"calendars": {"team": calendar},
                          "numbers": [{"voipnumber": "606309", "rota": "team"}]}, env={})
    return str(err.value)


def test_credentials_are_keys_of_https_feeds_checked_at_their_path() -> None:
    assert "At 'calendars.team.username': credentials are sent only to an https:// feed (or plain http on " \
           "127.0.0.1)" in problems({"source": "http://cal.example.com/a.ics", "allow_http": True, "username": "a",
                                     "password_env": "P"})
    assert "At 'calendars.team.bearer_token_file': credentials are sent only" in problems(
        {"builtin": "GB-ENG", "bearer_token_file": "t"})
    assert "At 'calendars.team.password_file': a password is for HTTP Basic, which needs username too" in problems(
        {"source": "https://cal.example.com/a.ics", "password_file": "pw"})
    assert "At 'calendars.team.bearer_token_file': give either username (HTTP Basic) or bearer_token_file" in \
        problems({"source": "https://cal.example.com/a.ics", "username": "a", "bearer_token_file": "t"})
    assert "At 'calendars.team.password_env': give only one of password_file, password_env" in problems(
        {"source": "https://cal.example.com/a.ics", "username": "a", "password_file": "f", "password_env": "P"})
    text = problems({"source": f"https://alice:{FEED_PASSWORD}@cal.example.com/a.ics"})
    assert "At 'calendars.team.source': the URL holds a password" in text and FEED_PASSWORD not in text
    assert "At 'calendars.team.username': an HTTP Basic user name cannot be empty or hold ':'" in problems(
        {"source": "https://cal.example.com/a.ics", "username": "a:b", "password_env": "P"})


def test_the_password_comes_from_a_file_the_environment_or_a_systemd_credential(tmp_path: Path) -> None:
    def cfg(**keys: Any):  # noqa: ANN202
        return config_from_dict({"calendars": {"team": {"source": "https://cal.example.com/a.ics", **keys}},
                                 "numbers": [{"voipnumber": "606309", "rota": "team"}]}, base_dir=tmp_path, env={})

    (tmp_path / "pw").write_text(FEED_PASSWORD + "\n")
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "calendar-team").write_text(FEED_PASSWORD)
    for c, env in ((cfg(username="alice", password_file="pw"), {}), (cfg(username="alice", password_env="P"),
                                                                     {"P": FEED_PASSWORD}),
                   (cfg(username="alice"), {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})):
        auth = calendar_credentials(c, "team", env)
        assert auth is not None and auth.header() == basic() and FEED_PASSWORD not in repr(auth)
    with pytest.raises(ConfigError) as err:
        calendar_credentials(cfg(username="alice"), "team", {})
    assert "At 'calendars.team.username': no password: set password_file, password_env, or a systemd credential " \
           "'calendar-team'" in str(err.value)
    (tmp_path / "token").write_text(TOKEN + "\n")
    auth = calendar_credentials(cfg(bearer_token_file="token"), "team", {})
    assert auth is not None and auth.header() == f"Bearer {TOKEN}"
    (tmp_path / "token").write_text("two\nlines")
    with pytest.raises(ConfigError, match="does not hold a token"):
        calendar_credentials(cfg(bearer_token_file="token"), "team", {})
    assert calendar_credentials(cfg(), "team", {}) is None


# ------------------------------------------------------------------------------------- fetching


def test_basic_auth_a_wrong_password_is_refused_the_right_one_loads(tmp_path: Path, basic_feed: Server) -> None:
    (tmp_path / "pw").write_text("not-the-password")

    async def go() -> None:
        src = sources(tmp_path, {"source": basic_feed.url, "username": "alice", "password_file": "pw"})
        assert await src.refresh("team", T0) is False
        st = src["team"]
        assert st.error == "the server refused the credentials (HTTP 401)" and not st.loaded
        (tmp_path / "pw").write_text(FEED_PASSWORD)  # read again at the next fetch
        assert await src.refresh("team", T0) is True and src["team"].error is None
        (tmp_path / "pw").write_text("changed-on-the-server-side")
        assert await src.refresh("team", T0 + dt.timedelta(hours=1)) is False
        assert src["team"].loaded and "refused the credentials" in (src["team"].error or "")  # last good copy kept
        (tmp_path / "pw").unlink()
        await src.refresh("team", T0 + dt.timedelta(hours=2))
        assert src["team"].error is not None and src["team"].error.startswith(
            "calendars.team.password_file: cannot read ")

    asyncio.run(go())
    assert basic_feed.seen[1] == basic()


def test_bearer_token_and_a_feed_that_asks_for_credentials(tmp_path: Path) -> None:
    srv = Server(f"Bearer {TOKEN}")
    (tmp_path / "token").write_text(TOKEN)

    async def go() -> None:
        src = sources(tmp_path, {"source": srv.url, "bearer_token_file": "token"})
        assert await src.refresh("team", T0) is True
        public = sources(tmp_path, {"source": srv.url}, state="other")  # (no cached copy to fall back on)
        assert await public.refresh("team", T0) is False
        assert public["team"].error == ("the feed answered HTTP 401: it needs credentials (username and password_file, "
                                        "or bearer_token_file)")

    try:
        asyncio.run(go())
    finally:
        srv.close()
    assert srv.seen == [f"Bearer {TOKEN}", None]


def test_a_redirect_to_another_origin_drops_the_credentials(tmp_path: Path, basic_feed: Server) -> None:
    """127.0.0.1 on another port is another origin: the feed's redirect there goes without Authorization
    (and the server there, which wants them, is said to be another host). (A redirect on the feed's own
    origin keeps them: the next test.)"""
    (tmp_path / "pw").write_text(FEED_PASSWORD)
    away = Server(redirect=basic_feed.url)

    async def go() -> None:
        src = sources(tmp_path, {"source": away.url, "username": "alice", "password_file": "pw"})
        assert await src.refresh("team", T0) is False
        assert src["team"].error is not None and "forwardd sends the credentials only to the feed's own host" in \
            src["team"].error

    try:
        asyncio.run(go())
    finally:
        away.close()
    assert away.seen == [basic()] and basic_feed.seen == [None]


def test_credentials_follow_redirects_on_their_origin_only() -> None:
    """Through a mock transport: https://cal.example.com redirects on its own host (credentials kept), then
    to https://cdn.example.net (dropped), which serves the feed."""
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Authorization")))
        if request.url.host == "cal.example.com" and request.url.path == "/team.ics":
            return httpx.Response(301, headers={"Location": "/moved/team.ics"})
        if request.url.host == "cal.example.com":
            return httpx.Response(302, headers={"Location": "https://cdn.example.net/team.ics"})
        return httpx.Response(200, content=ICS)

    cfg = config_from_dict({"calendars": {"team": {"source": "https://cal.example.com/team.ics", "username": "alice",
                                                   "password_env": "P"}},
                            "numbers": [{"voipnumber": "606309", "rota": "team"}]}, env={})
    auth = calendar_credentials(cfg, "team", {"P": FEED_PASSWORD})
    got = asyncio.run(download("team", cfg.calendars["team"], None, None, httpx.MockTransport(handler), auth))
    assert got.data == ICS
    assert seen == [("https://cal.example.com/team.ics", basic()), ("https://cal.example.com/moved/team.ics", basic()),
                    ("https://cdn.example.net/team.ics", None)]


def test_an_error_never_says_the_secret() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"boom {request.headers.get('Authorization')}")

    cfg = config_from_dict({"calendars": {"team": {"source": "https://cal.example.com/team.ics",
                                                   "bearer_token_file": "t"}},
                            "numbers": [{"voipnumber": "606309", "rota": "team"}]}, env={})
    register_secret(TOKEN)
    with pytest.raises(CalendarError) as err:
        asyncio.run(download("team", cfg.calendars["team"], None, None, httpx.MockTransport(handler),
                             FeedCredentials("Bearer", SecretStr(TOKEN), (SecretStr(TOKEN),))))
    assert TOKEN not in str(err.value) and "**********" in str(err.value)


# --------------------------------------------------------------------------------- as processes


def test_a_private_feed_end_to_end_the_password_in_no_output(tmp_path: Path, basic_feed: Server,
                                                             fake_proc: FakeProc) -> None:
    """``check`` says the server refused the credentials; the daemon alerts it, then loads the feed once
    the password file is right; the password (and the header made of it) is in no log line, journal entry,
    error, command output or page."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "team-password").write_text("wrong-" + FEED_PASSWORD[::-1])
    cfg = tmp_path / "forwardd.toml"
    cfg.write_text(f"""
state_dir = "{tmp_path / 'state'}"
[aql]
url = "{fake_proc.url}"
username = "acme"
password_env = "AQL_PW"
[people]
alice = "07700900001"
[calendars]
team = {{ source = "{basic_feed.url}", username = "alice", password_file = "team-password", refresh = "1s" }}
[[numbers]]
voipnumber = "606309"
rota = "team"
fallback = "07700900002"
[web]
port = {port}
""")
    checked = run_cli("check", "--config", str(cfg))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "calendar team: ERROR the server refused the credentials (HTTP 401)" in checked.stdout
    outputs = [checked.stdout, checked.stderr]
    proc = start_daemon(cfg, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        journal = tmp_path / "state" / "journal.sqlite"
        wait(lambda: any(r["kind"] == "alert" and r.get("calendar") == "team" for r in rows(journal)))
        outputs.append(get(f"{base}/status"))
        (tmp_path / "team-password").write_text(FEED_PASSWORD)
        wait(lambda: any(r["kind"] == "recovery" and r.get("calendar") == "team" for r in rows(journal)))
        outputs += [get(f"{base}/status"), get(f"{base}/healthz"), get(f"{base}/history"), get(f"{base}/")]
        assert "Alice" in outputs[-1]
    finally:
        assert stop(proc) == 0
    outputs += [(tmp_path / "daemon.log").read_text(), json.dumps(rows(journal))]
    history = run_cli("history", "--config", str(cfg))
    outputs += [history.stdout, history.stderr]
    alert = next(r for r in rows(journal) if r["kind"] == "alert" and r.get("calendar") == "team")
    assert alert["message"].startswith("Calendar 'team' is failing: the server refused the credentials (HTTP 401)")
    for text in outputs:
        for secret in (FEED_PASSWORD, basic().split()[1], AQL_PASSWORD):
            assert secret not in text
    state_files = [p for p in (tmp_path / "state").rglob("*") if p.is_file() and p.suffix != ".sqlite"]
    assert not [p for p in state_files if FEED_PASSWORD.encode() in p.read_bytes()]


def rows(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return [{"kind": k, "at": at, **json.loads(d)} for k, at, d in
                db.execute("SELECT kind, at, detail FROM entries ORDER BY id")]
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except urllib.error.HTTPError as err:  # /healthz answers 503 while something is wrong
        return err.read().decode()


def wait(cond: Any, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")
