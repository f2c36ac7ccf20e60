"""Python API of network drivers: the service's address, byte streams and local port forwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.drivers.network.forward import Forwarder


class NetworkClient(DriverClient):
    """``dut.network``: ``address()``, ``stream()``, ``forward(local_port)``.

    The virtual board's web service answers while the board runs, through a local forward:

    >>> import urllib.request
    >>> from jumpstarter_jupyter.drivers.virtual.driver import VirtualBoard
    >>> from jumpstarter_jupyter.testing import serve
    >>> with serve(VirtualBoard.create()) as dut:
    ...     dut.power.on()
    ...     dut.serial.expect("login:", timeout=60)
    ...     with dut.network.forward() as address:
    ...         urllib.request.urlopen(f"http://{address}/", timeout=10).read().splitlines()[0]
    0
    b'Jumpstarter Linux 1.0 on jumpstarter'
    """

    widget = "jumpstarter_jupyter.drivers.network.widget.NetworkWidget"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._forwarders: set[Forwarder] = set()

    def address(self) -> str:
        """The service's address as the exporter sees it, e.g. ``tcp://127.0.0.1:8080``.

        >>> from jumpstarter_jupyter.drivers.network.driver import TcpNetwork
        >>> from jumpstarter_jupyter.testing import serve
        >>> with serve(TcpNetwork(host="127.0.0.1", port=8080)) as network:
        ...     network.address()
        'tcp://127.0.0.1:8080'
        """
        return str(self.call("address"))

    @contextlib.contextmanager
    def forward(self, local_port: int = 0) -> Iterator[str]:
        """Listen on ``127.0.0.1:local_port`` (0: any free port) and yield ``"127.0.0.1:PORT"``.

        Each accepted connection is tunnelled through its own ``connect`` stream; leaving the
        block stops the listener and closes its connections. A connection whose stream broke
        (the exporter went away) is reset; if it had taken bytes that were not delivered,
        leaving the block raises ``ConnectionFailed`` saying how many (our exporters
        acknowledge them; upstream's do not).
        """
        forwarder = Forwarder(self.stream, local_port, self.display_path)
        self._forwarders.add(forwarder)
        try:
            yield forwarder.address
        finally:
            self._forwarders.discard(forwarder)
            forwarder.close()
        forwarder.check()  # only when the block itself ended without an error

    def release(self) -> None:
        for forwarder in list(self._forwarders):
            forwarder.close()
        self._forwarders.clear()

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.network.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group
