from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from forwardd.aql.account import Account
from forwardd.aql.fake import FakeAqlServer

ROOT = Path(__file__).resolve().parents[1]
SHARED_CALENDARS = ROOT.parent / "shared" / "calendars"
DATA = Path(__file__).resolve().parent / "data"
LONDON = ZoneInfo("Europe/London")
UTC = dt.timezone.utc
PASSWORD = "s3cr3t-Pa55word-xyzzy"


@pytest.fixture
def account() -> Account:
    return Account.with_numbers("acme", PASSWORD, ["606309", "606310", "700001"])


@pytest.fixture
def fake(account: Account):
    with FakeAqlServer(account) as srv:
        yield srv


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m forwardd`` as a process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "forwardd", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


def london(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


@pytest.fixture
def fake_proc(tmp_path: Path):
    """The fake aql server as a process of its own (``forwardd fake-aql``)."""
    from .e2e import FakeProc

    f = FakeProc(tmp_path)
    yield f
    f.stop()


def small_config(numbers: tuple[str, ...] = ("606309", "606310", "700001"), **extra: object):  # noqa: ANN201
    """A config holding ``numbers`` (each with a fallback, so no calendar is needed)."""
    from forwardd.config import config_from_dict

    return config_from_dict({"numbers": [{"voipnumber": n, "fallback": "07700 900999"} for n in numbers], **extra},
                            env={})


def make_reconciler(client, alerts=None, clock=None, journal=None, cfg=None, **kw):  # noqa: ANN001, ANN201
    """A Reconciler for an aql client (as aql's carrier) on a small config, a virtual clock (sleeping on it
    costs no real time) by default. The client's gate is the reconciler's, as the services wire it."""
    from forwardd.aql.carrier import AqlCarrier
    from forwardd.clock import VirtualClock
    from forwardd.service.reconcile import Reconciler

    carrier = client if isinstance(client, AqlCarrier) else AqlCarrier("aql", client)
    rec = Reconciler(cfg or small_config(), carrier, journal, alerts,
                     clock or VirtualClock(dt.datetime(2026, 12, 1, 12, tzinfo=UTC)), **kw)
    carrier.gate = rec.gate
    return rec


@pytest.fixture
def webhook():
    """A JSON webhook on 127.0.0.1: yields (apprise URL, the JSON bodies received)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"json://127.0.0.1:{srv.server_address[1]}/hook", received
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on 127.0.0.1: yields (port, the messages received, as text)."""
    import socket

    from aiosmtpd.controller import Controller

    messages: list[str] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
            messages.append(envelope.content.decode("utf-8", "replace"))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, messages
    controller.stop()


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The shipped example config (and its calendars), copied so that its state directory is the test's own."""
    import shutil

    shutil.copytree(ROOT / "config", tmp_path / "config")
    cfg = tmp_path / "config" / "example.toml"
    cfg.write_text(cfg.read_text().replace('state_dir = "../state"', f'state_dir = "{tmp_path / "state"}"'))
    return cfg


DB_PASSWORD = "db-Pa55word-plugh-42"


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server for the whole run (``tests/pgserver.py``). Skips where no server binaries
    are installed, except under CI=true, where the cluster tests must run."""
    from .pgserver import PgServer, find_bindir

    server = _pg_server(PgServer, find_bindir())
    yield server
    server.remove()


def _pg_server(cls, bindir):  # noqa: ANN001, ANN202
    import pwd

    missing = None
    if bindir is None:
        missing = "no PostgreSQL server binaries (initdb) on this machine; tests/run installs Debian's postgresql"
    elif os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing = "running as root, and there is no 'postgres' OS user to run the server as"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    return cls(bindir).init()


@pytest.fixture
def pg_own_server():
    """A PostgreSQL server of this test's own, for tests that stop and start it."""
    from .pgserver import PgServer, find_bindir

    server = _pg_server(PgServer, find_bindir())
    yield server
    server.remove()


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def pg_url(pg_server) -> str:  # noqa: ANN001
    """A fresh database on the session's server, owned by the role ``forwardd`` (password DB_PASSWORD)."""
    return pg_server.database(f"forwardd_{os.getpid()}_{next(_databases)}", "forwardd", DB_PASSWORD)
