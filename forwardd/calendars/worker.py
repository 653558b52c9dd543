"""Parsing and expansion off the daemon: a worker process that can be killed.

Whatever a calendar contains, the daemon never waits on it for longer than a deadline: the feed is
handed to ``python -m forwardd.calendars.worker`` (one long-lived process, memory-capped with
RLIMIT_AS), and if no answer comes in time, or the worker dies, it is killed, the feed gets a clear
error and keeps its last good copy, and the next feed starts a fresh worker. The event loop only ever
waits on a pipe, so SIGTERM is always heard.

Frames on the pipes: a request is ``>II`` (header length, data length), a JSON header, the feed's bytes;
an answer is ``>I`` (length) and a JSON document ``{"ok": expansion}`` or ``{"error": reason}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import struct
import sys
import zoneinfo
from typing import Any, Protocol

from ..aio import off_loop
from ..clock import outside_world
from ..errors import CalendarError
from .expansion import Expansion
from .limits import Limits

DEFAULT_MEMORY_MB = 2048


class Expander(Protocol):
    async def expand(self, name: str, data: bytes, tz: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime,
                     limits: Limits) -> Expansion: ...

    async def aclose(self) -> None: ...


class InProcessExpander:
    """Expands in a thread of this process, with a deadline after which the thread is abandoned. For
    tests and benchmarks that want no second process; the daemon and the commands use the worker."""

    def __init__(self, deadline_s: float = 60.0) -> None:
        self.deadline_s = deadline_s

    async def expand(self, name: str, data: bytes, tz: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime,
                     limits: Limits) -> Expansion:
        from .expand import expand  # the parsing libraries, only where they are used

        try:
            return await off_loop(expand, name, data, tz, start, end, limits, timeout=self.deadline_s)
        except TimeoutError:
            raise CalendarError(name, f"reading it took longer than {self.deadline_s:g} s; abandoned") from None

    async def aclose(self) -> None:
        pass


class _Worker:
    """One worker process and its pipes; used by one feed at a time."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.proc: asyncio.subprocess.Process | None = None
        self.idle_timer: asyncio.TimerHandle | None = None

    async def ask(self, header: bytes, data: bytes) -> dict[str, Any]:
        if self.proc is None or self.proc.returncode is not None:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "forwardd.calendars.worker", str(self.memory_mb),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                limit=1 << 20)
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(struct.pack(">II", len(header), len(data)) + header + data)
        await proc.stdin.drain()
        (length,) = struct.unpack(">I", await proc.stdout.readexactly(4))
        doc: dict[str, Any] = json.loads(await proc.stdout.readexactly(length))
        return doc

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if proc.stdin is not None:
            proc.stdin.close()  # the transport closes once every pipe has: nothing left for the collector
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 10)  # SIGKILL is prompt; the bound is for a wedged kernel


class WorkerExpander:
    """Expands in worker processes: ``processes`` of them (feeds are read in parallel at start-up, one
    feed per worker at a time), each started when first needed and let go after ``idle_s`` without work,
    so a daemon whose feeds do not change carries no parser at all.

    The default is one worker per core, two at most: measured on the 2-core machine
    (benchmarks/bench_feed_memory.py, the 50 corpus feeds asked for at once, medians of 3), 1 worker
    read them in 2.03 s, 2 in 1.12 s, 3 in 1.20 s and 4 in 1.45 s: a third worker only competes for
    the cores, and each costs its start-up and its memory (about 150 MB for a feed of 100,000 events)."""

    def __init__(self, deadline_s: float = 60.0, memory_mb: int = DEFAULT_MEMORY_MB, processes: int | None = None,
                 idle_s: float = 120.0) -> None:
        self.deadline_s = deadline_s
        self.memory_mb = memory_mb
        self.idle_s = idle_s
        self._workers = [_Worker(memory_mb) for _ in range(max(1, processes or min(2, os.cpu_count() or 1)))]
        self._free: asyncio.Queue[_Worker] | None = None
        self._letting_go: set[asyncio.Task[None]] = set()
        self.restarts = 0

    async def expand(self, name: str, data: bytes, tz: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime,
                     limits: Limits) -> Expansion:
        if self._free is None:
            self._free = asyncio.Queue()
            for w in self._workers:
                self._free.put_nowait(w)
        worker = await self._free.get()
        if worker.idle_timer is not None:
            worker.idle_timer.cancel()
            worker.idle_timer = None
        try:
            header = json.dumps({"name": name, "tz": tz.key, "start": start.isoformat(), "end": end.isoformat(),
                                 "max_occurrences": limits.max_occurrences, "max_steps": limits.max_steps}).encode()
            if not worker.running:
                self.restarts += 1
            try:
                with outside_world():  # (on virtual time, the plan must not take minutes of it)
                    answer = await asyncio.wait_for(worker.ask(header, data), self.deadline_s)
            except TimeoutError:
                await worker.kill()
                raise CalendarError(name, f"reading it took longer than {self.deadline_s:g} s; abandoned") from None
            except (ConnectionError, asyncio.IncompleteReadError, BrokenPipeError) as err:
                await worker.kill()
                raise CalendarError(name, f"the calendar worker stopped while reading it ({type(err).__name__}); "
                                          "the feed may need more memory than forwardd allows") from None
            except asyncio.CancelledError:
                await worker.kill()  # abandoned mid-answer: the pipe is out of step, start afresh next time
                raise
        finally:
            if worker.running:
                worker.idle_timer = asyncio.get_running_loop().call_later(self.idle_s, self._let_go, worker)
            self._free.put_nowait(worker)
        if "error" in answer:
            raise CalendarError(name, str(answer["error"]))
        try:
            return Expansion.from_json(name, answer["ok"])
        except (KeyError, TypeError, ValueError) as err:
            raise CalendarError(name, f"the calendar worker answered something unreadable ({err})") from None

    def _let_go(self, worker: _Worker) -> None:
        """An idle worker goes (it is started again when a feed next needs reading)."""
        worker.idle_timer = None
        task = asyncio.get_running_loop().create_task(worker.kill())
        self._letting_go.add(task)
        task.add_done_callback(self._letting_go.discard)

    async def aclose(self) -> None:
        for w in self._workers:
            await w.kill()


# ---------------------------------------------------------------------------------------- the worker


def _serve(memory_mb: int) -> None:
    import resource
    import warnings

    from .expand import expand

    warnings.simplefilter("ignore")  # the libraries' own warnings reach the user as our notes, or not at all
    limit = memory_mb * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(8)
        if len(head) < 8:
            return
        hlen, dlen = struct.unpack(">II", head)
        req = json.loads(stdin.read(hlen))
        data = stdin.read(dlen)
        try:
            result = expand(req["name"], data, zoneinfo.ZoneInfo(req["tz"]), dt.datetime.fromisoformat(req["start"]),
                            dt.datetime.fromisoformat(req["end"]),
                            Limits(int(req["max_occurrences"]), int(req["max_steps"])))
            doc: dict[str, Any] = {"ok": result.to_json()}
            del result  # a huge feed's occurrences go before their JSON text is made
        except CalendarError as err:
            doc = {"error": err.reason}
        except MemoryError:
            doc = {"error": f"reading it needs more than the {memory_mb} MB forwardd allows"}
        except RecursionError:
            doc = {"error": "it is nested too deeply to read"}
        except Exception as err:  # noqa: BLE001 - one feed's surprise must not end the worker
            doc = {"error": f"cannot read it ({type(err).__name__}: {err})"}
        body = json.dumps(doc).encode()
        del doc, data
        stdout.write(struct.pack(">I", len(body)) + body)
        stdout.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MEMORY_MB)
    os._exit(0)
