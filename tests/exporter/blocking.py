"""A driver whose methods wait until their caller goes away, for the cancellation tests.

Exporters in other processes load it by type name (``blocking.Blocking``, with this folder
on ``PYTHONPATH``); ``teardown_marker`` names a file its teardown writes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jumpstarter_jupyter.driver import Driver, Signal, export


@dataclass
class Blocking(Driver):
    teardown_marker: str = ""
    ended: list[str] = field(default_factory=list, init=False)
    started: Signal = field(default_factory=Signal, init=False)
    running: int = field(default=0, init=False)

    def _enter(self) -> None:
        with self.started:
            self.running += 1
            self.started.notify()

    @export
    def sync_wait(self) -> None:
        """Waits (honouring cancellation) until its caller goes away."""
        self._enter()
        try:
            Signal().wait(lambda: False)
        finally:
            self.ended.append("sync_wait")

    @export
    async def async_wait(self) -> None:
        """Waits on the event loop until its caller goes away."""
        self._enter()
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self.ended.append("async_wait")

    @export
    def sync_stream(self) -> Iterator[int]:
        """Yields once, then waits (honouring cancellation) until its caller goes away."""
        self._enter()
        try:
            yield 1
            self.sleep(3600)
        finally:
            self.ended.append("sync_stream")

    @export
    def stubborn(self) -> None:
        """Ignores cancellation: blocks its worker thread for good."""
        self._enter()
        threading.Event().wait()

    @export
    def ping(self) -> str:
        return "pong"

    @export
    async def calls_started(self) -> int:
        """How many waiting calls have started so far (on the loop: answers while every worker is busy)."""
        return self.running

    def teardown(self) -> None:
        if self.teardown_marker:
            Path(self.teardown_marker).write_text("torn down")
        super().teardown()
