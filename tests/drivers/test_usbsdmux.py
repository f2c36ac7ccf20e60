"""USB-SD-Mux without the hardware, at the ``usbsdmux`` library's lower boundary.

Faked: the USB2642's SCSI-to-I2C bridge (``usbsdmux.usb2642.Usb2642``, which would send SG_IO
ioctls to ``/dev/sg*``), replaced by an emulated TCA6408 GPIO expander, and the library's
model lookup in this machine's ``/sys``. Real: the library's USB-SD-Mux FAST logic (which
pins mean host, DUT and off, and how it reads the mode back), our driver, a real exporter and
client, and for flashing a real loop device. The control device is found on a sysfs tree.
"""

from __future__ import annotations

import os

import pytest
from usbsdmux import i2c_gpio
from usbsdmux import usbsdmux as library

from jumpstarter_jupyter import DriverError
from jumpstarter_jupyter.drivers.storage.usbsdmux import UsbSdMux
from jumpstarter_jupyter.exporter import build_tree, parse_config
from support import client_for

MiB = 1 << 20


class FakeTca6408:
    """The mux's GPIO expander as its I2C bridge reaches it: input, output, polarity and
    configuration registers; the board's resistors pull the select line to the DUT."""

    address = 0b010_0000
    pulls = 0b0000_0001  # gpio0 (select DUT) high; power and data enabled (low)

    def __init__(self):
        self.registers = {0: 0, 1: 0xFF, 2: 0, 3: 0xFF}  # power-on: all inputs
        self.opened: list[str] = []

    def pins(self) -> int:
        config = self.registers[3]
        return (self.registers[1] & ~config | self.pulls & config) & 0xFF

    def bridge(self, sg: str) -> FakeTca6408:  # stands in for Usb2642(sg)
        self.opened.append(sg)
        return self

    def write_to(self, address: int, data: list[int]) -> None:
        assert address == self.address
        register, value = data
        self.registers[register] = value

    def write_read_to(self, address: int, data: list[int], length: int) -> list[int]:
        assert address == self.address and length == 1
        return [self.pins() if data[0] == 0 else self.registers[data[0]]]


@pytest.fixture
def expander(monkeypatch):
    chip = FakeTca6408()
    monkeypatch.setattr(i2c_gpio, "Usb2642", chip.bridge)
    monkeypatch.setattr(library, "autoselect_driver", library.UsbSdMuxFast)  # its /sys model says FAST
    monkeypatch.setattr(library.time, "sleep", lambda seconds: None)  # no card supply to drain here
    return chip


def test_switching_goes_through_the_library_and_is_read_back(expander, loop):
    with client_for(UsbSdMux(control_path="/dev/sg3", storage_device=loop(MiB)), "storage") as storage:
        assert storage.state() == "dut"  # the board's pull-ups after power-on
        storage.host()
        assert (
            expander.pins() & 0x0F == 0b0000 and storage.state() == "host"
        )  # powered, data on, host selected
        storage.off()
        assert expander.pins() & 0b0110 == 0b0110 and storage.state() == "off"  # power and data cut
        storage.dut()
        assert expander.pins() & 0x0F == 0b1001 and storage.state() == "dut"
    assert set(expander.opened) == {"/dev/sg3"}


def test_flash_through_a_usb_sd_mux(expander, loop, tmp_path):
    image = tmp_path / "image.img"
    image.write_bytes(os.urandom(2 * MiB))
    device = loop(4 * MiB)
    with client_for(UsbSdMux(control_path="/dev/sg3", storage_device=device), "storage") as storage:
        figures = storage.flash(image, verify=True)
        assert figures["verified"] and storage.state() == "dut"
    with open(device, "rb") as card:
        assert card.read(2 * MiB) == image.read_bytes()


def test_a_mux_that_does_not_switch_is_an_error(expander, monkeypatch):
    monkeypatch.setattr(
        FakeTca6408, "write_to", lambda self, address, data: None
    )  # the I2C writes go nowhere
    refused = pytest.raises(DriverError, match="USB-SD-Mux /dev/sg3: switched to off but it reports dut")
    with (
        client_for(UsbSdMux(control_path="/dev/sg3", storage_device="/dev/null"), "storage") as storage,
        refused,
    ):
        storage.off()


def test_control_device_and_card_are_found_from_the_serial_in_sysfs(tmp_path):
    usb = tmp_path / "sys" / "devices" / "pci0000:00" / "0000:00:14.0" / "usb1" / "1-1" / "1-1.3"
    for serial, port, host, disk, sg in (
        ("000000000123", "1-1.3", 5, "sdb", "sg2"),
        ("000000000999", "1-1.4", 6, "sdc", "sg3"),
    ):
        device = usb.parent / port
        (device).mkdir(parents=True)
        (device / "idVendor").write_text("0424\n")
        (device / "serial").write_text(f"{serial}\n")
        scsi = device / f"{port}:1.0" / f"host{host}" / f"target{host}:0:0" / f"{host}:0:0:0"
        (scsi / "scsi_generic" / sg).mkdir(parents=True)
        (scsi / "block" / disk).mkdir(parents=True)
        (scsi / "block" / disk / "uevent").write_text(f"DEVNAME={disk}\n")
        for folder, name, target in (
            ("class/scsi_generic", sg, scsi / "scsi_generic" / sg),
            ("block", disk, scsi / "block" / disk),
        ):
            (tmp_path / "sys" / folder).mkdir(parents=True, exist_ok=True)
            os.symlink(target, tmp_path / "sys" / folder / name)
        os.symlink(scsi, scsi / "scsi_generic" / sg / "device")
    mux = UsbSdMux(serial="000000000123", system_root=str(tmp_path))
    assert mux.control() == "/dev/sg2" and mux.find_disks() == ["/dev/sdb"]
    with pytest.raises(FileNotFoundError, match="no USB-SD-Mux with serial 'nope'"):
        UsbSdMux(serial="nope", system_root=str(tmp_path)).control()


def test_config_needs_control_path_or_serial():
    config = parse_config(
        """
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  storage:
    type: UsbSdMux
    config: {storage_device: /dev/sdb}
""",
        "lab.yaml",
    )
    with pytest.raises(
        ValueError, match=r"lab\.yaml: export\.storage\.config.*UsbSdMux needs one of control_path"
    ):
        build_tree(config)
