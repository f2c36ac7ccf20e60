"""``GpioPower``: a relay on a GPIO line switches the board, a power-good line may confirm it."""

from __future__ import annotations

from dataclasses import dataclass

from jumpstarter_jupyter.driver import export
from jumpstarter_jupyter.drivers.gpio.driver import DigitalInputInterface, DigitalOutputInterface
from jumpstarter_jupyter.drivers.power.driver import METER, PowerInterface

RELAY, POWER_GOOD = "relay", "power_good"


@dataclass
class GpioPower(PowerInterface):
    """Power through the ``relay`` child (any digital output: libgpiod ``DigitalOutput`` in a lab).

    ``active_low``: the relay closes when the line is driven inactive. ``state()`` reads the
    optional ``power_good`` child (a digital input, active while the board is powered), else the
    relay line itself. Both children stay in the tree, so a cell can still reach the raw lines.
    """

    active_low: bool = False

    @export
    def on(self) -> None:
        """Close the relay."""
        self._drive(True)
        self.logger.info("power on")

    @export
    def off(self) -> None:
        """Open the relay."""
        self._drive(False)
        self.logger.info("power off")

    @export
    def state(self) -> bool:
        """True while powered: the ``power_good`` input when there is one, else the relay line."""
        if POWER_GOOD in self.children:
            return self.children[POWER_GOOD].read_pin() == 1
        return (self.children[RELAY].read_pin() == 1) != self.active_low

    def check_children(self) -> None:
        """A digital output ``relay``, an optional digital input ``power_good``, an optional ``meter``."""
        super().check_children()
        relay, power_good = self.children.get(RELAY), self.children.get(POWER_GOOD)
        if not isinstance(relay, DigitalOutputInterface):
            raise TypeError(
                f"needs a child {RELAY!r} that is a digital output (e.g. DigitalOutput), got "
                + (type(relay).__name__ if relay is not None else "none")
            )
        if power_good is not None and not isinstance(power_good, DigitalInputInterface):
            raise TypeError(
                f"child {POWER_GOOD!r} must be a digital input (e.g. DigitalInput), "
                f"got {type(power_good).__name__}"
            )
        unknown = set(self.children) - {RELAY, POWER_GOOD, METER}
        if unknown:
            raise ValueError(
                f"unknown child {min(unknown)!r}; GpioPower takes {RELAY}, {POWER_GOOD} and {METER}"
            )

    def _drive(self, powered: bool) -> None:
        relay = self.children[RELAY]
        relay.on() if powered != self.active_low else relay.off()
