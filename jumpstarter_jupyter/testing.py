"""Real exporters for tests and examples: serve a driver (or a config) and get its client.

A driver author tests a driver the way users will meet it: through a real exporter on a real
socket and the real client, not by calling the driver's methods directly. :func:`serve` does
that in one line, in the test's own process (an exporter costs a few milliseconds):

>>> from jumpstarter_jupyter.drivers.power.driver import MockPower
>>> from jumpstarter_jupyter.testing import serve
>>> with serve(MockPower()) as power:
...     power.on()
...     power.state()
True

Each :func:`serve` has its own unix socket in a private temporary folder, so tests run in
parallel without ports to choose. The exporter serves every service a real one does (calls,
byte streams, the console, leases), and stops when the block ends, tearing its drivers down.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from jumpstarter_jupyter.client import DriverClient, connect
from jumpstarter_jupyter.driver import Driver
from jumpstarter_jupyter.exporter import Exporter, build_tree, load_config
from jumpstarter_jupyter.exporter import serve as start_exporter
from jumpstarter_jupyter.exporter.config import ExporterConfig

__all__ = ["exporter", "serve"]


@contextlib.contextmanager
def exporter(root: Driver, tcp: bool = False, passphrase: str | None = None, **options) -> Iterator[Exporter]:
    """Serve ``root`` until the block ends: on a unix socket in a private temporary folder, or
    with ``tcp=True`` on a free loopback port. Its ``address`` is what
    :func:`jumpstarter_jupyter.connect` takes.

    ``options`` go to :func:`jumpstarter_jupyter.exporter.serve` (``lease=LeasePolicy(...)``,
    ``hooks=...``). The exporter stops without grace when the block ends and tears ``root`` down.

    >>> from jumpstarter_jupyter.drivers.power.driver import MockPower
    >>> with exporter(MockPower()) as running:
    ...     running.address.startswith("unix:")
    True
    """
    with tempfile.TemporaryDirectory(prefix="jmp-test-") as directory:
        if tcp:
            running = start_exporter(root, listen="127.0.0.1:0", passphrase=passphrase, **options)
        else:
            running = start_exporter(
                root, socket=os.path.join(directory, "exporter.sock"), passphrase=passphrase, **options
            )
        try:
            yield running
        finally:
            running.stop(grace=0)


@contextlib.contextmanager
def serve(
    driver_or_config: Driver | ExporterConfig | str | os.PathLike,
    *,
    passphrase: str | None = None,
    name: str = "dut",
    **connect_options,
) -> Iterator[DriverClient]:
    """Serve a driver, or an exporter config, on a private socket; yield a connected client.

    Args:
        driver_or_config: a driver instance (its client is yielded: a ``PowerClient`` for a
            ``MockPower``, the root of a tree for a composite such as the virtual board), an
            :class:`~jumpstarter_jupyter.exporter.config.ExporterConfig`, or the path of an
            exporter config YAML file (whose ``lease:`` and ``hooks:`` apply, as under
            ``jumpstarter-jupyter run``).
        passphrase: required of every call when given (the client is given it too).
        name: what errors call the root (``dut.power.on: ...``).
        connect_options: more keyword arguments of :func:`jumpstarter_jupyter.connect`
            (``lease=False`` for a watcher, ``purpose=...``).

    The client is closed, the exporter stopped and its drivers torn down when the block ends.

    >>> from jumpstarter_jupyter.drivers.composite.driver import Composite
    >>> from jumpstarter_jupyter.drivers.gpio.driver import MockDigitalOutput
    >>> from jumpstarter_jupyter.drivers.power.driver import MockPower
    >>> board = Composite()
    >>> board.children = {"power": MockPower(), "relay": MockDigitalOutput()}
    >>> with serve(board) as dut:
    ...     dut.relay.on()
    ...     dut.relay.read()
    1
    """
    lease = hooks = None
    if isinstance(driver_or_config, Driver):
        root = driver_or_config
    else:
        config = (
            driver_or_config
            if isinstance(driver_or_config, ExporterConfig)
            else load_config(driver_or_config)
        )
        root, lease, hooks = build_tree(config), config.lease, config.hooks or None
    with (
        exporter(root, passphrase=passphrase, lease=lease, hooks=hooks) as running,
        connect(running.address, passphrase, name=name, **connect_options) as client,
    ):
        yield client
