"""Types and names shared by the power driver and client."""

from __future__ import annotations

from dataclasses import dataclass

CLIENT = "jumpstarter_jupyter.drivers.power.client.PowerClient"
UPSTREAM_CLIENT = "jumpstarter_driver_power.client.PowerClient"  # what our power drivers report
UPSTREAM_CLIENTS = {  # upstream client classes -> ours (client.tree reads it)
    UPSTREAM_CLIENT: CLIENT,
    "jumpstarter_driver_power.client.VirtualPowerClient": CLIENT,
}


@dataclass(frozen=True)
class PowerReading:
    """One measurement: volts and amperes."""

    voltage: float
    current: float

    @property
    def apparent_power(self) -> float:
        """Volt-amperes."""
        return self.voltage * self.current
