"""Types shared by the power driver and client."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PowerReading:
    """One measurement: volts and amperes."""

    voltage: float
    current: float

    @property
    def apparent_power(self) -> float:
        """Volt-amperes."""
        return self.voltage * self.current
