"""Power: switch a board on and off and read its voltage and current."""

from __future__ import annotations

import asyncio
import inspect
import threading
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Protocol

from jumpstarter_jupyter.driver import Driver, export, runtime
from jumpstarter_jupyter.drivers.power.common import CLIENT, UPSTREAM_CLIENT, PowerReading

METER = "meter"  # the child of a power driver that measures the board's supply


class MeterInterface(Driver):
    """What a power meter exports: the board's supply voltage and current."""

    client = "jumpstarter_jupyter.drivers.power.client.MeterClient"

    @export(readonly=True)
    @abstractmethod
    def read(self) -> Iterator[dict]:
        """A few readings ``{"voltage": volts, "current": amperes}`` (finite; a plain generator)."""
        raise NotImplementedError
        yield


class PowerInterface(Driver):
    """What every power driver exports (upstream's wire names).

    A switch without readings of its own takes a child named ``meter`` (a
    :class:`MeterInterface` driver such as ``HwmonMeter``): ``read()`` and the live chart then
    show the meter's readings.
    """

    client = CLIENT
    upstream_client = UPSTREAM_CLIENT

    @export
    @abstractmethod
    def on(self) -> None:
        """Switch power on."""
        raise NotImplementedError

    @export
    @abstractmethod
    def off(self) -> None:
        """Switch power off."""
        raise NotImplementedError

    @export(readonly=True)
    def read(self) -> Iterator[dict]:
        """A few current readings (finite, as upstream: ``list(read())`` ends), from the ``meter`` child."""
        meter = self.children.get(METER)
        if meter is None:
            raise NotImplementedError(
                f"this switch has no readings: {type(self).__name__} measures nothing "
                f"and has no {METER!r} child (add one, e.g. type: HwmonMeter)"
            )
        for reading in meter.read():
            yield {"voltage": reading["voltage"], "current": reading["current"]}

    @export(readonly=True)
    def metered(self) -> bool:
        """True when ``read()`` gives readings (a ``meter`` child, or readings of the switch's own)."""
        return METER in self.children

    @export(readonly=True)
    @abstractmethod
    def state(self) -> bool:
        """True while power is on."""
        raise NotImplementedError

    def check_children(self) -> None:
        """A ``meter`` child must be a power meter (``TypeError`` otherwise)."""
        meter = self.children.get(METER)
        if meter is not None and not isinstance(meter, MeterInterface):
            kind = type(meter).__name__
            raise TypeError(f"child {METER!r} must be a power meter (e.g. HwmonMeter), got {kind}")

    @export(readonly=True)
    async def watch(self, interval: float = 0.5) -> AsyncIterator[dict]:
        """Readings every ``interval`` seconds until the caller stops listening (live charts)."""
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        while True:
            readings = self.read()
            if inspect.isasyncgen(readings):
                batch = [reading async for reading in readings]
            else:  # a plain read() may talk to a meter: a worker thread takes it
                batch = await asyncio.to_thread(list, readings)
            for reading in batch:
                yield reading
            await asyncio.sleep(interval)  # the sampling period itself, not a wait for a condition


@dataclass
class MockPower(PowerInterface):
    """A power switch with fixed readings: (0 V, 0 A) then (5 V, 2 A) on, as upstream's MockPower.

    Nothing here blocks, so its methods are coroutines: they run on the exporter's event
    loop without a hand-off to a worker thread.
    """

    voltage: float = 5.0
    current: float = 2.0
    powered: bool = runtime(False)

    @export
    async def on(self) -> None:
        """Switch power on."""
        self.powered = True
        self.logger.info("power on")

    @export
    async def off(self) -> None:
        """Switch power off."""
        self.powered = False
        self.logger.info("power off")

    @export
    async def read(self) -> AsyncIterator[dict]:
        """Two readings: idle, then the configured voltage and current."""
        yield {"voltage": 0.0, "current": 0.0}
        yield {"voltage": self.voltage, "current": self.current}

    @export
    async def state(self) -> bool:
        """True while power is on."""
        return self.powered

    @export
    async def metered(self) -> bool:
        """True: the mock has readings of its own."""
        return True


class PowerTarget(Protocol):
    """What a simulated board offers a power switch."""

    def set_power(self, on: bool) -> None: ...

    def reading(self) -> PowerReading: ...

    @property
    def powered(self) -> bool: ...


@dataclass
class VirtualPower(PowerInterface):
    """The power switch of a simulated board: readings follow what the board is doing."""

    target: PowerTarget | None = runtime(None)
    lock: threading.Lock = runtime(default_factory=threading.Lock)

    @export
    def on(self) -> None:
        """Switch power on (the board boots)."""
        with self.lock:
            self.target.set_power(True)
        self.logger.info("power on")

    @export
    def off(self) -> None:
        """Switch power off."""
        with self.lock:
            self.target.set_power(False)
        self.logger.info("power off")

    @export
    def read(self) -> Iterator[dict]:
        """Three readings of the board's present voltage and current."""
        for _ in range(3):
            reading = self.target.reading()
            yield {"voltage": reading.voltage, "current": reading.current}

    @export
    def state(self) -> bool:
        """True while power is on."""
        return self.target.powered

    @export
    def metered(self) -> bool:
        """True: the simulated board's readings."""
        return True
