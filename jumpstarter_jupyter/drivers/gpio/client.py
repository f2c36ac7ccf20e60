"""Python API of GPIO drivers (upstream ``jumpstarter_driver_gpiod`` names)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import click

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.errors import DriverInvalidArgument


class DigitalOutputClient(DriverClient):
    """``dut.button``: ``on()``, ``off()``, ``cycle(wait)``, ``read()``.

    >>> from jumpstarter_jupyter.drivers.gpio.driver import MockDigitalOutput
    >>> from jumpstarter_jupyter.testing import serve
    >>> with serve(MockDigitalOutput()) as button:
    ...     button.on()
    ...     button.read()
    1
    """

    widget = "jumpstarter_jupyter.drivers.gpio.widget.DigitalOutputWidget"

    def on(self) -> None:
        """Drive the pin active."""
        self.call("on")

    def off(self) -> None:
        """Drive the pin inactive."""
        self.call("off")

    def cycle(self, wait: float = 1.0) -> None:
        """Drive the pin inactive, wait ``wait`` seconds, drive it active."""
        if wait < 0:
            raise DriverInvalidArgument(self.display_path, "cycle", f"wait must be >= 0 seconds, got {wait}")
        self.off()
        time.sleep(wait)  # the requested off time, not a wait for a condition
        self.on()

    def read_pin(self) -> int:
        """The pin's present value: 1 (active) or 0."""
        return int(self.call("read_pin"))

    def read(self) -> int:
        """The pin's present value: 1 (active) or 0 (upstream's name for ``read_pin``)."""
        return self.read_pin()

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.gpio.cli import output_commands

        group = super().cli()
        for command in output_commands(self):
            group.add_command(command)
        return group


class DigitalInputClient(DriverClient):
    """``dut.led``: ``read()``, ``wait_for_active(timeout)``, ``wait_for_edge(edge, timeout)``, ``watch()``.

    >>> from jumpstarter_jupyter.drivers.gpio.driver import MockDigitalInput
    >>> from jumpstarter_jupyter.testing import serve
    >>> with serve(MockDigitalInput(initial_value=1)) as led:
    ...     led.wait_for_active(timeout=5)
    ...     next(led.watch())
    1

    A wait that times out names the driver and how long it waited:

    >>> with serve(MockDigitalInput(), name="dut.led") as led:
    ...     led.wait_for_active(timeout=0.1)   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jumpstarter_jupyter.errors.DriverTimeout: dut.led.wait_for_active: ...
    """

    widget = "jumpstarter_jupyter.drivers.gpio.widget.DigitalInputWidget"

    def read_pin(self) -> int:
        """The pin's present value: 1 (active) or 0."""
        return int(self.call("read_pin"))

    def read(self) -> int:
        """The pin's present value: 1 (active) or 0 (upstream's name for ``read_pin``)."""
        return self.read_pin()

    def wait_for_active(self, timeout: float | None = None) -> None:
        """Return once the pin is active; ``DriverTimeout`` after ``timeout`` seconds (None: never)."""
        self.call("wait_for_active", timeout)

    def wait_for_inactive(self, timeout: float | None = None) -> None:
        """Return once the pin is inactive; ``DriverTimeout`` after ``timeout`` seconds (None: never)."""
        self.call("wait_for_inactive", timeout)

    def wait_for_edge(self, edge_type: str, timeout: float | None = None) -> None:
        """Return at the next ``"rising"`` or ``"falling"`` edge; ``DriverTimeout`` after ``timeout`` seconds."""
        self.call("wait_for_edge", edge_type, timeout)

    def watch(self) -> Iterator[int]:
        """The pin's value now, then each change, until the iterator is closed."""
        last = None
        for value in self.streamingcall("watch"):
            if int(value) != last:  # the driver repeats the value while it is unchanged
                last = int(value)
                yield last

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.gpio.cli import input_commands

        group = super().cli()
        for command in input_commands(self):
            group.add_command(command)
        return group
