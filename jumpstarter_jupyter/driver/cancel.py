"""Cancellation of exported calls: the token a plain (sync) driver method can see.

The exporter runs ``async def`` methods on its event loop, where a cancelled call is simply
cancelled (``CancelledError`` at the method's ``await``, its ``finally`` blocks run). A plain
method runs on a worker thread, which nothing can interrupt; instead every call gets a
:class:`CallToken`, cancelled when the caller goes away (Ctrl-C, kernel interrupt, deadline,
dead process) or the exporter stops. Long sync work checks it::

    @export
    def soak(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll_hardware()
            self.sleep(0.1)        # raises Cancelled early once the caller is gone

and waits built on :class:`~jumpstarter_jupyter.driver.sync.Signal` end by themselves.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator


class Cancelled(Exception):
    """The caller of the running exported call went away: stop the call's work."""


class CallToken:
    """Cancelled once, from any thread; callbacks registered with :meth:`on_cancel` run then."""

    def __init__(self, name: str = ""):
        self.name = name
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds; True as soon as the token is cancelled."""
        return self._event.wait(timeout)

    def check(self) -> None:
        """Raise :class:`Cancelled` if the call was cancelled."""
        if self._event.is_set():
            raise Cancelled(f"{self.name or 'the call'} was cancelled: its caller went away")

    @contextlib.contextmanager
    def on_cancel(self, callback: Callable[[], None]) -> Iterator[None]:
        """Run ``callback`` (on the cancelling thread) if the token is cancelled inside the block."""
        with self._lock:
            now = self._event.is_set()
            if not now:
                self._callbacks.append(callback)
        if now:
            callback()
        try:
            yield
        finally:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)


# Outside an exported call (a driver used in-process, a driver's own thread) nothing cancels.
NEVER = CallToken("no call")
_current: contextvars.ContextVar[CallToken] = contextvars.ContextVar("jumpstarter_call_token", default=NEVER)


def current_token() -> CallToken:
    """The token of the exported call running in this thread or task (never cancelled outside one)."""
    return _current.get()


def use_token(token: CallToken) -> contextvars.Context:
    """A copy of the current context in which :func:`current_token` is ``token``."""
    context = contextvars.copy_context()
    context.run(_current.set, token)
    return context
