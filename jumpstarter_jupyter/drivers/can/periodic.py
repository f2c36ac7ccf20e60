"""Periodic sending on the exporter: one thread per task, stopped for good when ``stop`` returns."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import can

log = logging.getLogger("driver.Can")


class PeriodicSend:
    """Send ``frames`` in turn, one every ``period`` seconds (0: back to back), for ``duration`` s.

    Unlike python-can's thread-based task, :meth:`stop` waits for the thread, so no frame
    of this task follows its return; ``start`` after ``stop`` begins again.
    """

    def __init__(
        self,
        send: Callable[[can.Message], None],
        frames: list[can.Message],
        period: float,
        duration: float | None = None,
    ):
        if not frames:
            raise ValueError("a periodic task needs at least one frame")
        if period < 0:
            raise ValueError(f"period must be >= 0 seconds, got {period}")
        if duration is not None and duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration}")
        self.send, self.frames, self.period, self.duration = send, frames, period, duration
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sending (no-op while running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        name = f"can periodic 0x{self.frames[0].arbitration_id:X}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending; returns once the task's thread has ended."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        due = started = time.monotonic()
        index = 0
        while not self._stop.is_set():
            if self.duration is not None and time.monotonic() - started >= self.duration:
                return
            try:
                self.send(self.frames[index])
            except (can.CanError, ValueError) as exc:
                # the bus refused (e.g. its queue is full): end the task, as python-can's does
                log.warning("periodic task 0x%X stopped: %s", self.frames[index].arbitration_id, exc)
                return
            index = (index + 1) % len(self.frames)
            due += self.period
            if self.period and self._stop.wait(max(0.0, due - time.monotonic())):
                return  # the wait is the period itself, cut short by stop()
