"""The client side: what a notebook cell, a script or a test calls."""

from __future__ import annotations

import click

from jumpstarter_jupyter.client import DriverClient


class RelayClient(DriverClient):
    """``dut.relay``: ``close_channel(n)``, ``open_channel(n)``, ``states()``."""

    def close_channel(self, channel: int) -> None:
        """Close one channel (0-based)."""
        self.call("close_channel", channel)

    def open_channel(self, channel: int) -> None:
        """Open one channel (0-based)."""
        self.call("open_channel", channel)

    def states(self) -> list[bool]:
        """Each channel's state, True where closed."""
        return list(self.streamingcall("states"))

    def cli(self) -> click.Group:
        """``j relay close N``, ``j relay open N``, ``j relay states``."""
        group = super().cli()

        @group.command("close")
        @click.argument("channel", type=int)
        def close(channel: int) -> None:
            self.close_channel(channel)

        @group.command("open")
        @click.argument("channel", type=int)
        def open_(channel: int) -> None:
            self.open_channel(channel)

        @group.command("states")
        def states() -> None:
            click.echo(" ".join("closed" if closed else "open" for closed in self.states()))

        return group
