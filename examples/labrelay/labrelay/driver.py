"""The exporter side: runs on the lab host, next to the relay board."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from jumpstarter_jupyter.driver import Driver, export


@dataclass
class Relay(Driver):
    """A relay board with ``channels`` channels, all open at start.

    A real board would open its USB or serial device in ``__post_init__``; this one keeps the
    channels' states in memory.
    """

    channels: int = 4
    client = "labrelay.client.RelayClient"  # the class clients build for this driver

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        self.closed = [False] * self.channels

    @export
    def close_channel(self, channel: int) -> None:
        """Close one channel (0-based)."""
        self.closed[self._checked(channel)] = True

    @export
    def open_channel(self, channel: int) -> None:
        """Open one channel (0-based)."""
        self.closed[self._checked(channel)] = False

    @export(readonly=True)  # only observes: someone watching the board without its lease may call it
    def states(self) -> Iterator[bool]:
        """Each channel's state, True where closed."""
        yield from self.closed

    def _checked(self, channel: int) -> int:
        if not 0 <= channel < self.channels:
            raise ValueError(f"channel must be 0..{self.channels - 1}, got {channel}")
        return channel
