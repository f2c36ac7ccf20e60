"""What the console service needs of a driver: a console to follow and a port to write to.

A driver with a console (a serial port, an emulator's UART, a board's debug port) implements
:class:`ConsoleDriver`; our ``ConsoleService`` then follows its console with replay and
dropped-byte counts and transmits keys to it, whatever the driver is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Protocol


class ConsoleChunk(Protocol):
    """What a console reader gets: ``data`` at absolute ``offset``, or an ``event`` text;
    ``dropped`` counts the bytes this reader missed just before ``offset``."""

    offset: int
    data: bytes
    dropped: int
    event: str


class Console(Protocol):
    """A console's output, kept for replay and read by any number of followers."""

    def follow_async(
        self, start: int | None = None, *, from_end: bool = False, snapshot: bool = False
    ) -> AsyncIterator[ConsoleChunk]:
        """Chunks from offset ``start`` on (None: the oldest held; ``from_end``: from now;
        ``snapshot``: only what is held now), on the event loop."""
        ...


class ConsoleDriver(ABC):
    """A driver whose console ``ConsoleService`` serves (mix into the driver class)."""

    console: Console

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send ``data`` to the console's input (blocking at the port's rate); raise
        ``OSError`` when it was not sent."""
