"""Waiting that threads and the exporter's event loop share.

Hardware changes on driver threads (a serial reader, a board simulation, a GPIO edge
monitor); the exporter waits for it on its event loop, where a waiting call costs no
thread. A :class:`Signal` is a condition variable both sides can wait on: threads with
:meth:`Signal.wait`, coroutines with :meth:`Signal.wait_async`, and whoever changes the
guarded state calls :meth:`Signal.notify` holding the lock::

    changed = Signal()
    with changed:                   # the writer, on any thread
        value = 1
        changed.notify()
    await changed.wait_async(lambda: value == 1, timeout=5)    # a coroutine
    changed.wait(lambda: value == 1, timeout=5)                # a thread

A thread's wait also ends when the exported call it serves is cancelled (it raises
:class:`~jumpstarter_jupyter.driver.cancel.Cancelled`). :class:`Pipe` builds a bounded
queue on it for bytes passed between the loop and a driver thread.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Any

from jumpstarter_jupyter.driver.cancel import current_token


class Signal:
    """A condition both threads and coroutines wait on; ``with signal:`` holds its lock."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: dict[asyncio.AbstractEventLoop, set[asyncio.Future]] = {}

    def __enter__(self) -> Signal:
        self._cond.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cond.release()

    def notify(self) -> None:
        """Wake every waiter; call it holding the lock, after changing the guarded state."""
        self._cond.notify_all()
        if self._waiting:
            waiting, self._waiting = self._waiting, {}
            for loop, futures in waiting.items():
                try:  # one hand-off per loop, however many coroutines wait there
                    loop.call_soon_threadsafe(_wake, futures)
                except RuntimeError:  # that loop has closed: nobody is left to wake
                    pass

    def wake(self) -> None:
        """Wake every waiter to re-check (takes the lock itself)."""
        with self:
            self.notify()

    def wait(self, predicate: Callable[[], Any], timeout: float | None = None) -> bool:
        """Block this thread until ``predicate()`` holds (checked under the lock); False after ``timeout`` s.

        Raises :class:`~jumpstarter_jupyter.driver.cancel.Cancelled` when the exported call
        running on this thread is cancelled first.
        """
        token = current_token()
        with token.on_cancel(self.wake), self._cond:
            self._cond.wait_for(lambda: predicate() or token.cancelled, timeout)
            if predicate():
                return True
        token.check()
        return False

    async def wait_async(self, predicate: Callable[[], Any], timeout: float | None = None) -> bool:
        """Wait on the running loop until ``predicate()`` holds; False after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            with self._cond:
                if predicate():
                    return True
                woken = loop.create_future()
                self._waiting.setdefault(loop, set()).add(woken)
            try:
                async with asyncio.timeout_at(deadline):
                    await woken
            except TimeoutError:
                return bool(self._check(predicate))
            finally:
                with self._cond:
                    futures = self._waiting.get(loop)
                    if futures is not None:
                        futures.discard(woken)

    def _check(self, predicate: Callable[[], Any]) -> Any:
        with self._cond:
            return predicate()


def _wake(futures: set[asyncio.Future]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


class Pipe:
    """A bounded FIFO between a coroutine and a thread (either end may be either kind).

    ``put`` waits for room and returns False once the pipe is closed (the item is dropped);
    ``get`` returns the next item, or None once the pipe is closed and empty. Put None
    yourself to mark the end of data. It holds at most ``depth`` items and, given
    ``max_bytes``, takes no item while its items' lengths add up to that much or more (an item
    without a length, such as a reader handed over, counts as none).
    """

    def __init__(self, depth: int = 32, max_bytes: int | None = None):
        self.depth, self.max_bytes = depth, max_bytes
        self.held = 0  # bytes of the items held (counted when max_bytes is given)
        self.items: collections.deque = collections.deque()
        self.closed = False
        self.changed = Signal()

    def _has_room(self) -> bool:
        if self.closed:
            return True
        return len(self.items) < self.depth and (self.max_bytes is None or self.held < self.max_bytes)

    def _has_item(self) -> bool:
        return self.closed or bool(self.items)

    def _put_locked(self, item: Any) -> bool:
        if self.closed:
            return False
        self.items.append(item)
        self.held += _size(item) if self.max_bytes is not None else 0
        self.changed.notify()
        return True

    def _get_locked(self) -> Any:
        if not self.items:
            return None
        item = self.items.popleft()
        self.held -= _size(item) if self.max_bytes is not None else 0
        self.changed.notify()
        return item

    def put(self, item: Any) -> bool:
        """Queue ``item`` from a thread, waiting for room."""
        while True:
            self.changed.wait(self._has_room)
            with self.changed:
                if self._has_room():  # another writer may have taken the room meanwhile
                    return self._put_locked(item)

    def get(self) -> Any:
        """The next item, from a thread (None once closed and empty)."""
        while True:
            self.changed.wait(self._has_item)
            with self.changed:
                if self._has_item():
                    return self._get_locked()

    async def put_async(self, item: Any) -> bool:
        """Queue ``item`` from a coroutine, waiting for room."""
        while True:
            await self.changed.wait_async(self._has_room)
            with self.changed:
                if self._has_room():
                    return self._put_locked(item)

    async def get_async(self) -> Any:
        """The next item, from a coroutine (None once closed and empty)."""
        while True:
            await self.changed.wait_async(self._has_item)
            with self.changed:
                if self._has_item():
                    return self._get_locked()

    def close(self) -> None:
        """Refuse further items and wake everyone; items already queued can still be read."""
        with self.changed:
            self.closed = True
            self.changed.notify()


def _size(item: Any) -> int:
    return len(item) if hasattr(item, "__len__") else 0
