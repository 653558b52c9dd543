"""A fake aql voipapi.php: a real HTTP server on 127.0.0.1 around ``account.Account``, with fault
injection. Used by the tests, the benchmarks and ``forwardd fake-aql``.

Control endpoints (JSON), for tests in other processes:
- ``GET  /_fake/state``    every number's fields
- ``GET  /_fake/history``  every recorded change, with its time
- ``GET  /_fake/requests`` every API request: time it arrived and was answered, action, number, the
  ``X-Forwardd-Instance`` header; and ``max_in_flight_per_number`` (two passes on one number at once
  show as 2)
- ``POST /_fake/faults``   ``{"faults": [{"kind": ..., "count": N, ...}]}`` queued in order; kinds:
  ``delay`` (``seconds``), ``http5xx`` (``status``), ``drop`` (close without answering), ``err``
  (``message``), ``ignore`` (answer OK to a changeuser but apply nothing), ``body`` (answer ``body``
  verbatim), each optionally limited to one ``action``.
- ``POST /_fake/latency``  ``{"seconds": x}`` added to every API request
- ``POST /_fake/set``      ``{"voipnumber": ..., "fields": {...}}`` a hand-made change (drift)
- ``POST /_fake/credit``   ``{"voipnumber": ..., "credit": "1.50"}`` the number's credit (calls paid, a top-up)
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
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
    retry_after: str | None = None
    location: str | None = None


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


_REASONS = {200: "OK", 204: "No Content", 302: "Found", 400: "Bad Request", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class FakeAqlServer:
    """``with FakeAqlServer(account) as srv: srv.url`` serves on 127.0.0.1 from a background thread.

    One asyncio loop serves every connection (keep-alive, HTTP/1.1), so a thousand clients with 50 ms
    of latency each cost sleeping coroutines, not a thousand threads fighting over the GIL.
    """

    def __init__(self, account: Account, port: int = 0) -> None:
        self.account = account
        self.faults = FaultPlan()
        self.requests = 0
        self.log: list[dict[str, Any]] = []
        self._in_flight: dict[str, int] = {}
        self.max_in_flight_per_number = 0
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.server_address: tuple[str, int] = ("127.0.0.1", port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/reseller/voipapi.php"

    def add_fault(self, kind: str, **kw: Any) -> None:
        with self.faults.lock:
            self.faults.faults.append(Fault(kind, **kw))

    # ------------------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeAqlServer:
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, "127.0.0.1", self._port, backlog=1024))
            self.server_address = self._server.sockets[0].getsockname()[:2]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-aql", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self._thread is not None:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeAqlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------ HTTP

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                method, path, body, headers = request
                answer = await self._logged(method, path, body, headers)
                if answer is None:  # a dropped connection, as a fault
                    writer.transport.abort()
                    return
                status, text, ctype, *more = answer
                data = text.encode()
                extra = "".join(f"{k}: {v}\r\n" for k, v in (more[0] if more else {}).items())
                writer.write(
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: {ctype}\r\n{extra}"
                    f"Content-Length: {len(data)}\r\n\r\n".encode() + data
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _logged(self, method: str, path: str, body: str, headers: dict[str, str]) -> tuple[Any, ...] | None:
        if path.startswith("/_fake/") or method != "POST":
            return await self._answer(method, path, body)
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        number = form.get("voipnumber", "")
        entry: dict[str, Any] = {"at": self.account.clock().timestamp(), "action": form.get("action", ""), "voipnumber": number,
                                 "instance": headers.get("x-forwardd-instance")}
        self._in_flight[number] = self._in_flight.get(number, 0) + 1
        if number:
            self.max_in_flight_per_number = max(self.max_in_flight_per_number, self._in_flight[number])
        try:
            answer = await self._answer(method, path, body)
        finally:
            self._in_flight[number] -= 1
            entry["done"] = self.account.clock().timestamp()
            entry["status"] = answer[0] if answer is not None else None
            self.log.append(entry)
        return answer

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, str, dict[str, str]] | None:
        line = await reader.readline()
        if not line:
            return None
        parts = line.decode("latin-1").split()
        if len(parts) < 2:
            return None
        length = 0
        headers: dict[str, str] = {}
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
            if name.strip().lower() == "content-length":
                length = int(value.strip() or 0)
        body = (await reader.readexactly(length)).decode("utf-8", "replace") if length else ""
        return parts[0], parts[1], body, headers

    async def _answer(self, method: str, path: str, body: str) -> tuple[Any, ...] | None:
        acct = self.account
        if method == "GET":
            with acct.lock:
                if path == "/_fake/state":
                    return 200, json.dumps(acct.users), "application/json"
                if path == "/_fake/history":
                    return 200, json.dumps([h.as_json() for h in acct.history]), "application/json"
            if path == "/_fake/requests":
                return 200, json.dumps({"requests": self.log, "in_flight": sum(self._in_flight.values()),
                                        "max_in_flight_per_number": self.max_in_flight_per_number}), "application/json"
            return 404, "not found", "text/plain"
        if path.startswith("/_fake/"):
            return self._control(path, json.loads(body or "{}"))
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        self.requests += 1
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        fault = self.faults.take(form.get("action", ""))
        if fault is not None:
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "http5xx":
                return fault.status, "<html><body>Service Unavailable</body></html>", "text/html"
            elif fault.kind == "drop":
                return None
            elif fault.kind == "err":
                return 200, "ERR:" + fault.message, "text/plain"
            elif fault.kind == "body":
                return 200, fault.body, "text/plain"
            elif fault.kind == "echo":
                return 200, f"ERR:Bad request {body}", "text/plain"
            elif fault.kind == "status":
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                if fault.location:
                    extra["Location"] = fault.location
                return fault.status, fault.body, "text/plain", extra
            elif fault.kind == "ignore":
                with acct.lock:
                    acct.ignore_next_changes += 1
        return 200, acct.handle(form), "text/plain"

    def _control(self, path: str, data: dict[str, Any]) -> tuple[int, str, str]:
        if path == "/_fake/faults":
            with self.faults.lock:
                self.faults.faults.extend(Fault(**f) for f in data.get("faults", []))
        elif path == "/_fake/latency":
            self.faults.latency = float(data.get("seconds", 0))
        elif path == "/_fake/set":
            self.account.set_fields(data["voipnumber"], data["fields"])
        elif path == "/_fake/credit":
            self.account.set_credit(data["voipnumber"], str(data["credit"]))
        else:
            return 404, "not found", "text/plain"
        return 200, "{}", "application/json"
