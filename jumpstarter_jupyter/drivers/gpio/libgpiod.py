"""GPIO lines of real boards: the Linux GPIO character device through libgpiod.

Upstream's ``DigitalOutput`` and ``DigitalInput`` with their config fields (``line``,
``device``, ``drive``, ``active_low``, ``bias``, ``initial_value``). They need the ``gpiod``
package (``pip install 'jumpstarter-jupyter[gpio]'``) and a ``/dev/gpiochipN`` the
exporter's user may open; no root needed where the device's group allows it.

An input's edges are read by one thread and mirrored into a :class:`VirtualLine`, so the
waits and ``watch()`` are :class:`VirtualDigitalInput`'s and every caller sees every edge
(two callers reading the kernel's edge queue would steal events from each other).
"""

from __future__ import annotations

import glob
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from jumpstarter_jupyter.driver import export
from jumpstarter_jupyter.drivers.gpio.common import ACTIVE, INACTIVE
from jumpstarter_jupyter.drivers.gpio.driver import DigitalOutputInterface, VirtualDigitalInput, VirtualLine

CONSUMER = "jumpstarter-jupyter"  # how `gpioinfo` shows who holds the line
MIRROR_POLL = 0.5  # seconds between checks whether the driver is closing


def _gpiod() -> Any:
    try:
        import gpiod
    except ImportError:
        raise ValueError(
            "GPIO on Linux needs the gpiod package (libgpiod bindings): "
            "pip install 'jumpstarter-jupyter[gpio]'"
        ) from None
    return gpiod


def _first_chip() -> str:
    """Upstream's default device: the first GPIO chip (gpiochip0 before gpiochip10)."""
    chips = sorted(
        glob.glob("/dev/gpiochip*"),
        key=lambda p: [int(n) if n.isdigit() else n for n in re.split(r"(\d+)", p)],
    )
    if not chips:
        raise ValueError("no GPIO chip on this host (/dev/gpiochip* does not exist); set `device:`")
    return chips[0]


def _option(enum: Any, value: str, name: str) -> Any:
    """``"pull_up"`` -> ``Bias.PULL_UP``; anything else is an error listing the choices."""
    settable = {
        member.name.lower(): member for member in enum if member.name != "UNKNOWN"
    }  # UNKNOWN: read-only
    if value not in settable:
        raise ValueError(f"{name} must be one of {', '.join(settable)}, got {value!r}")
    return settable[value]


def _request(line: int, device: str | None, **settings: Any) -> Any:
    """Request ``line`` of ``device`` (default: the first chip) with ``LineSettings(**settings)``."""
    gpiod = _gpiod()
    device = device or _first_chip()
    try:
        return gpiod.request_lines(device, consumer=CONSUMER, config={line: gpiod.LineSettings(**settings)})
    except OSError as exc:
        raise OSError(f"cannot request line {line} of {device}: {exc.strerror or exc}") from None


def _level(value: Any) -> int:
    return ACTIVE if value == _gpiod().line.Value.ACTIVE else INACTIVE


@dataclass
class DigitalOutput(DigitalOutputInterface):
    """A GPIO line the host drives (``on`` = active; ``active_low`` inverts the wire level)."""

    line: int
    device: str | None = None
    drive: str = "push_pull"
    active_low: bool = False
    bias: str = "as_is"
    initial_value: int = INACTIVE
    request: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        line = _gpiod().line
        self.request = _request(
            self.line,
            self.device,
            direction=line.Direction.OUTPUT,
            drive=_option(line.Drive, self.drive, "drive"),
            bias=_option(line.Bias, self.bias, "bias"),
            active_low=self.active_low,
            output_value=line.Value.ACTIVE if self.initial_value else line.Value.INACTIVE,
        )

    @export
    def on(self) -> None:
        """Drive the pin active."""
        self.request.set_value(self.line, _gpiod().line.Value.ACTIVE)

    @export
    def off(self) -> None:
        """Drive the pin inactive."""
        self.request.set_value(self.line, _gpiod().line.Value.INACTIVE)

    @export
    def read_pin(self) -> int:
        """The pin's present value: 1 (active) or 0."""
        return _level(self.request.get_value(self.line))

    def teardown(self) -> None:
        self.request.release()
        super().teardown()


@dataclass
class DigitalInput(VirtualDigitalInput):
    """A GPIO line the host senses, with edge detection on both edges."""

    line: int
    device: str | None = None
    active_low: bool = False
    bias: str = "as_is"
    request: Any = field(default=None, init=False, repr=False)
    stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    mirror: threading.Thread = field(init=False, repr=False)

    def __post_init__(self) -> None:
        line = _gpiod().line
        self.request = _request(
            self.line,
            self.device,
            direction=line.Direction.INPUT,
            edge_detection=line.Edge.BOTH,
            bias=_option(line.Bias, self.bias, "bias"),
            active_low=self.active_low,
        )
        self.pin = VirtualLine(self.read_pin())
        self.mirror = threading.Thread(target=self._mirror, name=f"gpio line {self.line}", daemon=True)
        self.mirror.start()

    @export
    def read_pin(self) -> int:
        """The pin's present value: 1 (active) or 0."""
        return _level(self.request.get_value(self.line))

    def _mirror(self) -> None:
        rising = _gpiod().EdgeEvent.Type.RISING_EDGE
        while not self.stopping.is_set():
            if self.request.wait_edge_events(MIRROR_POLL):
                for event in self.request.read_edge_events():
                    self.pin.set(ACTIVE if event.event_type == rising else INACTIVE)

    def teardown(self) -> None:
        self.stopping.set()
        self.mirror.join()
        self.request.release()
        super().teardown()
