"""SDWire (Tizen's SD-card mux and its clones), switched through its FT200X over pyusb.

The FT200X drives the mux's select line from CBUS0 in CBUS bit-bang mode, as upstream's
driver and ``sd-mux-ctrl`` do: FTDI's vendor request SET_BITMODE (0x0B) with
``wValue = 0x20 << 8 | 0xF0 | bit`` (bit 1: host, 0: DUT), and READ_PINS (0x0C), whose bit 0
says where the card is. The card's reader sits beside the FT200X on the SDWire's own USB
hub: its block device is the one disk under that hub in sysfs.

Config (upstream's keys)::

    storage:
      type: jumpstarter_driver_sdwire.driver.SDWire   # or SDWire
      config:
        serial: sd-wire_11          # needed with several SDWires, and for unprogrammed FT200X
        storage_device: null        # /dev/disk/by-id/...: skip finding the card from USB
        storage_timeout: 10         # s to wait for the card after host()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

try:
    import usb.core
    import usb.util
except ImportError as exc:  # the optional extra
    raise ImportError(f"SDWire needs pyusb: pip install 'jumpstarter-jupyter[sdmux]' ({exc})") from None

from jumpstarter_jupyter.drivers.storage import blockdev
from jumpstarter_jupyter.drivers.storage.device import BlockStorageMux

PROGRAMMED = (0x04E8, 0x6001)  # what sd-mux-ctrl writes into an SDWire's EEPROM
PRODUCT = "sd-wire"
FT200X = (0x0403, 0x6015)  # an FT200X as it leaves the factory: only taken with a serial
SET_BITMODE, READ_PINS = 0x0B, 0x0C  # FTDI vendor requests
CBUS_BITBANG = 0x20
PIN_FOR = {"host": 0xF1, "dut": 0xF0}  # CBUS0..3 outputs; CBUS0 high selects the host
OUT = usb.util.CTRL_OUT | usb.util.CTRL_TYPE_VENDOR | usb.util.CTRL_RECIPIENT_DEVICE
IN = usb.util.CTRL_IN | usb.util.CTRL_TYPE_VENDOR | usb.util.CTRL_RECIPIENT_DEVICE


@dataclass(kw_only=True)
class SDWire(BlockStorageMux):
    """An SDWire: ``serial`` picks one of several (required for an unprogrammed FT200X).

    ``off()`` connects the card to the host, as upstream's: an SDWire has no "off" position.
    The USB device is looked up on every call, so an SDWire that re-enumerated still works.
    """

    serial: str | None = None
    usb_backend: ClassVar[Any] = None  # pyusb's backend (None: libusb); tests give a fake FT200X's

    def switch(self, position: str) -> None:
        target = PIN_FOR.get(position, PIN_FOR["host"])
        device = self.usb_device()
        self._control(device, "switch", OUT, SET_BITMODE, CBUS_BITBANG << 8 | target, 0)
        reported = self._pins(device)
        if reported != ("host" if target & 1 else "dut"):
            raise RuntimeError(
                f"{self._name(device)}: switched to {position} but the chip reports {reported}"
            )

    def position(self) -> str:
        return self._pins(self.usb_device())

    def find_disks(self) -> list[str]:
        device = self.usb_device()
        ports = tuple(device.port_numbers or ())
        if len(ports) < 2:
            raise RuntimeError(
                f"{self._name(device)} is not behind its own USB hub (ports {ports}): "
                "cannot tell its card reader; set storage_device"
            )
        hub = blockdev.usb_device_dir(device.bus, ports[:-1], self.system_root)
        return blockdev.disks_under(hub, self.system_root)

    def usb_device(self) -> Any:
        """The SDWire's FT200X on USB (a pyusb device); raises naming what was looked for."""
        found = {}
        try:
            for device in usb.core.find(
                find_all=True,
                backend=self.usb_backend,
                custom_match=lambda d: (d.idVendor, d.idProduct) in (PROGRAMMED, FT200X),
            ):
                programmed = (device.idVendor, device.idProduct) == PROGRAMMED
                if programmed and usb.util.get_string(device, device.iProduct) != PRODUCT:
                    continue
                serial = usb.util.get_string(device, device.iSerialNumber)
                if (programmed and self.serial is None) or serial == self.serial:
                    found[serial] = device
        except usb.core.NoBackendError:
            raise RuntimeError(
                "pyusb found no USB backend: install libusb-1.0 (Debian: libusb-1.0-0)"
            ) from None
        except (usb.core.USBError, ValueError) as exc:
            raise PermissionError(
                f"cannot read USB descriptors ({exc}): the exporter needs access to "
                "/dev/bus/usb (root, or a udev rule for the SDWire)"
            ) from None
        if not found:
            wanted = (
                f" with serial {self.serial!r}"
                if self.serial
                else " (04e8:6001 'sd-wire'; an FT200X needs serial:)"
            )
            raise FileNotFoundError(f"no SDWire{wanted} on USB")
        if len(found) > 1:
            raise RuntimeError(
                f"several SDWires on USB (serials {', '.join(sorted(map(str, found)))}): set serial"
            )
        return next(iter(found.values()))

    def _pins(self, device: Any) -> str:
        return (
            "host" if self._control(device, "read the position of", IN, READ_PINS, 0, 0, 1)[0] & 1 else "dut"
        )

    def _control(
        self,
        device: Any,
        action: str,
        request_type: int,
        request: int,
        value: int,
        index: int,
        data: Any = None,
    ) -> Any:
        try:
            return device.ctrl_transfer(request_type, request, value, index, data)
        except usb.core.USBError as exc:
            raise OSError(f"cannot {action} {self._name(device)}: {exc} (unplugged?)") from None

    @staticmethod
    def _name(device: Any) -> str:
        ports = ".".join(map(str, device.port_numbers or ()))
        return f"SDWire at USB {device.bus}-{ports}"
