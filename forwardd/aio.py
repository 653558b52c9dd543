"""Running blocking work without ever having to wait for it: each call gets a daemon thread, and the
caller may stop waiting (a timeout, a cancellation at SIGTERM) and simply abandon it. Used for the
few things that cannot be made async or killed: planning, SQLite, reading a file that may be a FIFO.
On a driven virtual clock (the simulator) the work is done in place: time stands still while it runs."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, TypeVar

from .clock import driven_clock

T = TypeVar("T")


async def off_loop(fn: Callable[..., T], *args: Any, timeout: float | None = None, name: str = "forwardd-work") -> T:
    """Run ``fn(*args)`` in a new daemon thread and await its result. Raises TimeoutError after
    ``timeout`` seconds (the thread is abandoned, not stopped), or whatever ``fn`` raised."""
    if driven_clock() is not None:
        # on virtual time the loop may block: time stands still meanwhile, and what happens when no longer
        # depends on how fast a thread gets going
        return fn(*args)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            result = fn(*args)
        except BaseException as err:  # noqa: BLE001 - handed to the awaiting task as it is
            try:
                loop.call_soon_threadsafe(settle, False, err)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass
            return
        try:
            loop.call_soon_threadsafe(settle, True, result)
        except RuntimeError:
            pass

    threading.Thread(target=work, name=name, daemon=True).start()
    if timeout is None:
        return await asyncio.shield(future)
    return await asyncio.wait_for(asyncio.shield(future), timeout)
