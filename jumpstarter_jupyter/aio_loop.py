"""The process's one grpc.aio event loop, for the exporter and the controller client alike.

grpc.aio keeps one completion queue per process: a second event loop using it fails with
``BlockingIOError``. So every grpc.aio server and channel of this process runs on one loop, in
a daemon thread started on first use, and synchronous code hands it coroutines.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def event_loop() -> asyncio.AbstractEventLoop:
    """The process's grpc.aio loop, started on first use in a daemon thread."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="grpc-aio-loop", daemon=True).start()
            _loop = loop
        return _loop


def run(coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coroutine`` on the loop from another thread and return its result (``timeout``:
    seconds to wait for it, ``None`` for as long as it takes)."""
    return asyncio.run_coroutine_threadsafe(coroutine, event_loop()).result(timeout)


async def first_to_end(*coroutines: Coroutine[Any, Any, Any]) -> None:
    """Run ``coroutines`` together until one returns or raises; cancel the rest; re-raise."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
