"""A fake aql voipapi.php: a real HTTP server on 127.0.0.1 around ``account.Account``, with fault
injection. Used by the tests, the benchmarks and ``forwardd fake-aql``.

Control endpoints (JSON), for tests in other processes:
- ``GET  /_fake/state``    every number's fields
- ``GET  /_fake/history``  every recorded change, with its time
- ``POST /_fake/faults``   ``{"faults": [{"kind": ..., "count": N, ...}]}`` queued in order; kinds:
  ``delay`` (``seconds``), ``http5xx`` (``status``), ``drop`` (close without answering), ``err``
  (``message``), ``ignore`` (answer OK to a changeuser but apply nothing), ``body`` (answer ``body``
  verbatim), each optionally limited to one ``action``.
- ``POST /_fake/latency``  ``{"seconds": x}`` added to every API request
- ``POST /_fake/set``      ``{"voipnumber": ..., "fields": {...}}`` a hand-made change (drift)
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .account import Account


@dataclass
class Fault:
    kind: str
    count: int = 1
    action: str | None = None
    seconds: float = 0.0
    status: int = 503
    message: str = "Temporary failure"
    body: str = ""


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    latency: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, action: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.action in (None, action):
                    f.count -= 1
                    if f.count <= 0:
                        self.faults.remove(f)
                    return f
        return None


class _Handler(BaseHTTPRequestHandler):
    server: FakeAqlServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the requests carry passwords
        pass

    def _send(self, status: int, body: str, ctype: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        acct = self.server.account
        if self.path == "/_fake/state":
            with acct.lock:
                self._send(200, json.dumps(acct.users), "application/json")
        elif self.path == "/_fake/history":
            with acct.lock:
                self._send(200, json.dumps([h.as_json() for h in acct.history]), "application/json")
        else:
            self._send(404, "not found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        if self.path.startswith("/_fake/"):
            self._control(self.path, json.loads(raw or "{}"))
            return
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        self.server.requests += 1
        plan = self.server.faults
        if plan.latency:
            time.sleep(plan.latency)
        fault = plan.take(form.get("action", ""))
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "http5xx":
                self._send(fault.status, "<html><body>Service Unavailable</body></html>", "text/html")
                return
            elif fault.kind == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            elif fault.kind == "err":
                self._send(200, "ERR:" + fault.message)
                return
            elif fault.kind == "body":
                self._send(200, fault.body)
                return
            elif fault.kind == "ignore":
                with self.server.account.lock:
                    self.server.account.ignore_next_changes += 1
        self._send(200, self.server.account.handle(form))

    def _control(self, path: str, data: dict[str, Any]) -> None:
        srv = self.server
        if path == "/_fake/faults":
            with srv.faults.lock:
                srv.faults.faults.extend(Fault(**f) for f in data.get("faults", []))
        elif path == "/_fake/latency":
            srv.faults.latency = float(data.get("seconds", 0))
        elif path == "/_fake/set":
            srv.account.set_fields(data["voipnumber"], data["fields"])
        else:
            self._send(404, "not found")
            return
        self._send(200, "{}", "application/json")


class FakeAqlServer(ThreadingHTTPServer):
    """``with FakeAqlServer(account) as srv: srv.url`` serves on 127.0.0.1 from a background thread."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, account: Account, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.account = account
        self.faults = FaultPlan()
        self.requests = 0
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/reseller/voipapi.php"

    def add_fault(self, kind: str, **kw: Any) -> None:
        with self.faults.lock:
            self.faults.faults.append(Fault(kind, **kw))

    def start(self) -> FakeAqlServer:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-aql", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> FakeAqlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
