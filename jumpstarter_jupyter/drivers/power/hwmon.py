"""``HwmonMeter``: a board's supply voltage and current from a Linux hwmon power monitor.

INA219, INA226, INA3221 and any chip whose kernel driver exposes ``in<N>_input`` (mV) with
``curr<N>_input`` (mA) or ``power<N>_input`` (µW) under ``/sys/class/hwmon/hwmon*``
(Documentation/hwmon/sysfs-interface.rst). ``channel`` picks N: on the INA2xx, channel 1 is the
bus voltage (``in0`` is the shunt voltage); on the INA3221, channels 1-3 are its three inputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from jumpstarter_jupyter.driver import export
from jumpstarter_jupyter.drivers.power.driver import MeterInterface

SYSFS = "/sys/class/hwmon"


@dataclass
class HwmonMeter(MeterInterface):
    """A power meter on Linux hwmon, found by device ``name`` (as in ``hwmon*/name``) or ``path``.

    ``path`` is a ``hwmon*`` directory or a device directory holding one (``…/1-0040``);
    ``root`` is where ``name`` is looked up (tests point it at a sysfs-shaped tree).
    """

    name: str | None = None
    path: str | None = None
    channel: int = 1
    root: str = SYSFS

    def __post_init__(self) -> None:
        if (self.name is None) == (self.path is None):
            raise ValueError(
                "give either `name` (e.g. ina226) or `path` (e.g. /sys/class/hwmon/hwmon3), not "
                + ("both" if self.name else "neither")
            )
        self.directory = self._find()
        self._voltage = self._attribute("in", required=True)
        self._current = self._attribute("curr")
        self._power = self._attribute("power")
        if self._current is None and self._power is None:
            raise ValueError(
                f"{self.directory} has in{self.channel}_input but neither curr{self.channel}_input "
                f"nor power{self.channel}_input: no current to read on channel {self.channel}"
            )

    @export(readonly=True)
    def read(self) -> Iterator[dict]:
        """One reading: volts and amperes (from mA, or from µW over volts when the chip has no current)."""
        voltage = self._value(self._voltage) / 1e3
        if self._current is not None:
            current = self._value(self._current) / 1e3
        else:
            current = self._value(self._power) / 1e6 / voltage if voltage else 0.0
        yield {"voltage": voltage, "current": current}

    def _find(self) -> str:
        if self.path is not None:
            if os.path.isfile(os.path.join(self.path, "name")):
                return self.path
            below = os.path.join(self.path, "hwmon")
            found = sorted(os.listdir(below)) if os.path.isdir(below) else []
            if not found:
                raise ValueError(f"{self.path} is not a hwmon device (no `name` file, no hwmon/ directory)")
            return os.path.join(below, found[0])
        devices = {
            entry: _text(os.path.join(self.root, entry, "name"))
            for entry in sorted(os.listdir(self.root))
            if os.path.isfile(os.path.join(self.root, entry, "name"))
        }
        matches = [entry for entry, name in devices.items() if name == self.name]
        if not matches:
            present = ", ".join(f"{name} ({entry})" for entry, name in devices.items()) or "none"
            raise ValueError(f"no hwmon device named {self.name!r} under {self.root} (present: {present})")
        if len(matches) > 1:
            raise ValueError(
                f"{len(matches)} hwmon devices are named {self.name!r} under {self.root} "
                f"({', '.join(matches)}): give `path` to say which"
            )
        return os.path.join(self.root, matches[0])

    def _attribute(self, kind: str, required: bool = False) -> str | None:
        path = os.path.join(self.directory, f"{kind}{self.channel}_input")
        if os.path.isfile(path):
            return path
        if required:
            have = sorted(entry for entry in os.listdir(self.directory) if entry.endswith("_input"))
            raise ValueError(
                f"{self.directory} ({_text(os.path.join(self.directory, 'name'))}) has no "
                f"{kind}{self.channel}_input for channel {self.channel} (has: {', '.join(have) or 'none'})"
            )
        return None

    def _value(self, path: str) -> int:
        try:
            return int(_text(path))
        except (OSError, ValueError) as exc:  # e.g. ENODATA from a disabled INA3221 channel
            raise OSError(f"cannot read {path}: {exc}") from None


def _text(path: str) -> str:
    with open(path) as file:
        return file.read().strip()
