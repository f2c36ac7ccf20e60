"""Linux Automation's USB-SD-Mux, through the maintained ``usbsdmux`` package.

The mux is a USB card reader (a Microchip USB2642) whose SCSI generic node (``/dev/sg*``)
also reaches, over the reader's I2C bridge, the GPIO expander that switches the card. The
card's block device is the disk of that same USB device in sysfs.

Config::

    storage:
      type: UsbSdMux
      config:
        control_path: /dev/sg2      # the mux's /dev/sg* (or a stable symlink to it), or:
        serial: "000000000123"      # its USB serial: the /dev/sg* is found in sysfs
        storage_device: null        # /dev/disk/by-id/...: skip finding the card
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

try:
    from usbsdmux import usbsdmux as library
except ImportError as exc:  # the optional extra
    raise ImportError(f"UsbSdMux needs usbsdmux: pip install 'jumpstarter-jupyter[sdmux]' ({exc})") from None

from jumpstarter_jupyter.drivers.storage import blockdev
from jumpstarter_jupyter.drivers.storage.device import BlockStorageMux


@dataclass(kw_only=True)
class UsbSdMux(BlockStorageMux):
    """A USB-SD-Mux named by ``control_path`` (its ``/dev/sg*``) or by its USB ``serial``."""

    control_path: str | None = None
    serial: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.control_path is None) == (self.serial is None):
            raise ValueError("UsbSdMux needs one of control_path (its /dev/sg*) or serial (its USB serial)")

    def switch(self, position: str) -> None:
        mux = self._mux()
        {"host": mux.mode_host, "dut": mux.mode_DUT, "off": mux.mode_disconnect}[position]()
        reported = mux.get_mode()
        if reported != position:
            raise RuntimeError(
                f"USB-SD-Mux {self.control()}: switched to {position} but it reports {reported}"
            )

    def position(self) -> str:
        return self._mux().get_mode()

    def find_disks(self) -> list[str]:
        return blockdev.disks_under(self._usb_dir(self.control()), self.system_root)

    def control(self) -> str:
        """The mux's ``/dev/sg*``: ``control_path``, or the one whose USB device has ``serial``."""
        if self.control_path is not None:
            return self.control_path
        generic = Path(self.system_root) / "sys" / "class" / "scsi_generic"
        for node in sorted(generic.glob("sg*")):
            usb_dir = self._usb_dir(f"/dev/{node.name}")
            if (usb_dir / "serial").exists() and (usb_dir / "serial").read_text().strip() == self.serial:
                return f"/dev/{node.name}"
        raise FileNotFoundError(
            f"no USB-SD-Mux with serial {self.serial!r} (no /dev/sg* on a USB device of that serial)"
        )

    def _usb_dir(self, control: str) -> Path:
        """The USB device holding the SCSI device behind ``control``, in sysfs."""
        name = Path(os.path.realpath(Path(self.system_root) / control.lstrip("/"))).name
        device = (Path(self.system_root) / "sys" / "class" / "scsi_generic" / name / "device").resolve()
        for parent in (device, *device.parents):
            if (parent / "idVendor").exists():
                return parent
        raise FileNotFoundError(
            f"{control} ({name}) is not a SCSI device on USB: is it a USB-SD-Mux's /dev/sg*?"
        )

    def _mux(self) -> library.UsbSdMux:
        try:
            return library.autoselect_driver(self.control())
        except library.UnknownUsbSdMuxRevisionException as exc:
            raise FileNotFoundError(f"{self.control()}: not a USB-SD-Mux ({exc})") from None
