"""Python API of power drivers."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import click

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.drivers.power.common import PowerReading
from jumpstarter_jupyter.errors import DriverInvalidArgument


class PowerClient(DriverClient):
    """``dut.power``: ``on()``, ``off()``, ``cycle(wait)``, ``read()``, ``plot(seconds)``.

    >>> from jumpstarter_jupyter.drivers.power.driver import MockPower
    >>> from jumpstarter_jupyter.testing import serve
    >>> with serve(MockPower()) as power:
    ...     power.cycle(wait=0.1)
    ...     [(reading.voltage, reading.current) for reading in power.read()]
    [(0.0, 0.0), (5.0, 2.0)]
    """

    widget = "jumpstarter_jupyter.drivers.power.widget.PowerWidget"

    def on(self) -> None:
        """Switch power on.

        >>> from jumpstarter_jupyter.drivers.power.driver import MockPower
        >>> from jumpstarter_jupyter.testing import serve
        >>> with serve(MockPower()) as power:
        ...     power.on()
        ...     power.state()
        True
        """
        self.call("on")

    def off(self) -> None:
        """Switch power off."""
        self.call("off")

    def cycle(self, wait: float = 2.0) -> None:
        """Switch off, wait ``wait`` seconds, switch on.

        A negative ``wait`` is refused before anything is switched:

        >>> from jumpstarter_jupyter.drivers.power.driver import MockPower
        >>> from jumpstarter_jupyter.testing import serve
        >>> with serve(MockPower(), name="board") as power:
        ...     power.cycle(wait=-1)
        Traceback (most recent call last):
        ...
        jumpstarter_jupyter.errors.DriverInvalidArgument: board.cycle: wait must be >= 0 seconds, got -1
        """
        if wait < 0:
            raise DriverInvalidArgument(self.display_path, "cycle", f"wait must be >= 0 seconds, got {wait}")
        self.off()
        time.sleep(wait)  # the requested off time, not a wait for a condition
        self.on()

    def read(self) -> Iterator[PowerReading]:
        """A few readings from the driver (a finite stream)."""
        for value in self.streamingcall("read"):
            yield PowerReading(float(value["voltage"]), float(value["current"]))

    def metered(self) -> bool:
        """True when ``read()`` gives readings (the switch measures, or has a ``meter`` child).

        Upstream exporters publish no method list: their power drivers are taken to read.
        """
        if self.methods is None or "metered" not in self.methods:
            return True
        return bool(self.call("metered"))

    def state(self) -> bool | None:
        """True while on; None when the exporter cannot tell (upstream drivers)."""
        if self.methods is None or "state" not in self.methods:
            return None  # upstream exporters publish no method list, and their drivers have no state
        return bool(self.call("state"))

    def watch(self, interval: float = 0.5) -> Iterator[PowerReading]:
        """Readings every ``interval`` seconds until the iterator is closed."""
        if self.methods is None or "watch" not in self.methods:
            yield from self._poll(interval)
            return
        for value in self.streamingcall("watch", interval):
            yield PowerReading(float(value["voltage"]), float(value["current"]))

    def _poll(self, interval: float) -> Iterator[PowerReading]:
        """``watch`` for exporters without it (upstream's drivers): upstream's finite ``read`` each period."""
        if interval <= 0:
            raise DriverInvalidArgument(
                self.display_path, "watch", f"interval must be > 0 seconds, got {interval}"
            )
        while True:
            yield from self.read()
            time.sleep(interval)  # the sampling period itself, not a wait for a condition

    def plot(self, seconds: float = 10.0, interval: float = 0.2):
        """Read every ``interval`` seconds for ``seconds`` and return a matplotlib figure of
        voltage and current against elapsed seconds.

        Each ``read()`` (a meter's burst of a few readings) becomes one point, their mean at the
        time the burst arrived: readings sharing a time would draw vertical jumps.
        """
        from jumpstarter_jupyter.drivers.power.plot import figure

        for name, value in (("seconds", seconds), ("interval", interval)):
            if not value > 0:
                raise DriverInvalidArgument(self.display_path, "plot", f"{name} must be > 0, got {value}")
        start = time.monotonic()
        samples = []
        while True:
            batch = list(self.read())
            elapsed = time.monotonic() - start
            if batch:
                samples.append(
                    (
                        elapsed,
                        PowerReading(
                            statistics.fmean(r.voltage for r in batch),
                            statistics.fmean(r.current for r in batch),
                        ),
                    )
                )
            if elapsed >= seconds:
                return figure(samples, title=self.display_path)
            time.sleep(
                min(interval, seconds - elapsed)
            )  # the sampling period itself, not a wait for a condition

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.power.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group


class MeterClient(DriverClient):
    """``dut.power.meter``: ``read()`` the board's supply voltage and current.

    >>> [(r.voltage, r.current) for r in dut.power.meter.read()]     # doctest: +SKIP
    [(5.02, 0.31)]
    """

    def read(self) -> Iterator[PowerReading]:
        """A few readings (usually one) straight from the meter."""
        for value in self.streamingcall("read"):
            yield PowerReading(float(value["voltage"]), float(value["current"]))
