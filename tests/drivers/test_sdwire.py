"""SDWire without the hardware: a fake FT200X at the USB boundary.

No SDWire is plugged into this machine, so the one thing faked is the USB bus: a pyusb
*backend* (``usb.backend.IBackend``) that answers like an FT200X (device and string
descriptors, FTDI's SET_BITMODE in CBUS bit-bang mode, READ_PINS). Everything above it is
real: pyusb's ``find``/``get_string``/``ctrl_transfer``, our driver, a real exporter and
client, and for flashing a real loop device. The card's disk is found on a sysfs-shaped tree.
"""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest
import usb.backend
import usb.core

from jumpstarter_jupyter import DriverError
from jumpstarter_jupyter.drivers.storage.sdwire import SDWire
from jumpstarter_jupyter.exporter import build_tree, parse_config
from support import client_for, kill_mid_flash

MiB = 1 << 20
STALL = 32  # EPIPE: what libusb reports when a device stalls a request it does not know


class FakeFT200X:
    """One FT200X as seen on USB: its descriptors and strings, and its four CBUS pins."""

    def __init__(
        self, serial: str, vid_pid=(0x04E8, 0x6001), product="sd-wire", bus=1, ports=(1, 2), obeys=True
    ):
        self.serial, self.vid_pid, self.product, self.bus, self.ports, self.obeys = (
            serial,
            vid_pid,
            product,
            bus,
            ports,
            obeys,
        )
        self.direction, self.driven, self.inputs = 0x0, 0x0, 0xF  # unconfigured CBUS pins read high
        self.requests: list[tuple[int, int, int, int]] = []

    def pins(self) -> int:
        return (self.driven & self.direction | self.inputs & ~self.direction) & 0xF

    def control(self, request_type: int, request: int, value: int, index: int, data) -> int:
        self.requests.append((request_type, request, value, index))
        if (request_type, request) == (0x80, 6) and value >> 8 == 3:  # GET_DESCRIPTOR, a string
            return self._string(value & 0xFF, data)
        if (request_type, request) == (0x40, 0x0B):  # SET_BITMODE
            if value >> 8 == 0x20 and self.obeys:  # CBUS bit-bang: high nibble directions, low nibble levels
                self.direction, self.driven = (value >> 4) & 0xF, value & 0xF
            return 0
        if (request_type, request) == (0xC0, 0x0C):  # READ_PINS
            data[0] = self.pins()
            return 1
        raise usb.core.USBError("Pipe error", errno=STALL)

    def _string(self, index: int, data) -> int:
        if index == 0:
            payload = (0x0409).to_bytes(2, "little")  # US English
        else:
            payload = {1: "FTDI", 2: self.product, 3: self.serial}[index].encode("utf-16-le")
        descriptor = bytes([2 + len(payload), 3]) + payload
        for i, byte in enumerate(descriptor[: len(data)]):  # data is pyusb's array.array buffer
            data[i] = byte
        return min(len(descriptor), len(data))


class FakeUsbBus(usb.backend.IBackend):
    """A pyusb backend whose bus holds the given fake devices."""

    def __init__(self, *devices: FakeFT200X):
        self.devices = list(devices)

    def enumerate_devices(self):
        return iter(list(self.devices))

    def get_device_descriptor(self, dev):
        return SimpleNamespace(
            bLength=18,
            bDescriptorType=1,
            bcdUSB=0x200,
            bDeviceClass=0,
            bDeviceSubClass=0,
            bDeviceProtocol=0,
            bMaxPacketSize0=8,
            idVendor=dev.vid_pid[0],
            idProduct=dev.vid_pid[1],
            bcdDevice=0x1000,
            iManufacturer=1,
            iProduct=2,
            iSerialNumber=3,
            bNumConfigurations=1,
            address=len(dev.ports) + 1,
            bus=dev.bus,
            port_number=dev.ports[-1],
            port_numbers=dev.ports,
            speed=3,
        )

    def open_device(self, dev):
        return dev

    def close_device(self, handle):
        pass

    def ctrl_transfer(self, handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        return handle.control(bmRequestType, bRequest, wValue, wIndex, data)


@pytest.fixture
def bus(monkeypatch):
    """``bus(*devices)``: the fake devices SDWire finds on USB from now on."""

    def plug(*devices: FakeFT200X) -> FakeUsbBus:
        backend = FakeUsbBus(*devices)
        monkeypatch.setattr(SDWire, "usb_backend", backend)
        return backend

    return plug


def test_switching_writes_cbus0_and_the_state_is_read_back_from_the_chip(bus, loop):
    chip = FakeFT200X("sd-wire_11")
    bus(chip)
    with client_for(SDWire(storage_device=loop(MiB)), "storage") as storage:
        storage.host()
        assert chip.requests[-2:] == [(0x40, 0x0B, 0x20F1, 0), (0xC0, 0x0C, 0, 0)]
        assert chip.pins() & 1 == 1 and storage.state() == "host"
        storage.dut()
        assert chip.requests[-2][2] == 0x20F0 and chip.pins() & 1 == 0
        assert storage.state() == "dut"
        chip.driven = 1  # the chip changes by itself: state() follows the chip, not a cached value
        assert storage.state() == "host"
        storage.off()  # an SDWire has no off position: the host side, as upstream's driver
        assert storage.state() == "host"


def test_flash_through_an_sdwire_switches_to_the_host_writes_and_gives_the_card_to_the_dut(
    bus, loop, tmp_path
):
    chip = FakeFT200X("sd-wire_11")
    bus(chip)
    image = tmp_path / "image.img"
    image.write_bytes(os.urandom(3 * MiB))
    device = loop(4 * MiB)
    with client_for(SDWire(storage_device=device), "storage") as storage:
        figures = storage.flash(image)
        assert figures["device"] == device and storage.state() == "dut"
        switches = [value for _, request, value, _ in chip.requests if request == 0x0B]
        assert switches[0] == 0x20F1 and switches[-1] == 0x20F0
    with open(device, "rb") as card:
        assert card.read(3 * MiB) == image.read_bytes()


def test_which_sdwire(bus):
    first, second = FakeFT200X("sd-wire_11"), FakeFT200X("sd-wire_12", ports=(2, 2))
    factory = FakeFT200X("DP04I34D", vid_pid=(0x0403, 0x6015), product="FT200X USB I2C", ports=(3, 2))
    other = FakeFT200X("A1", product="not-an-sdwire", ports=(4, 2))
    bus(first, second, factory, other)
    with pytest.raises(
        RuntimeError, match="several SDWires on USB \\(serials sd-wire_11, sd-wire_12\\): set serial"
    ):
        SDWire().usb_device()
    assert SDWire(serial="sd-wire_12").usb_device().port_numbers == (2, 2)
    assert SDWire(serial="DP04I34D").usb_device().idVendor == 0x0403  # a factory FT200X, by its serial only
    with pytest.raises(FileNotFoundError, match="no SDWire with serial 'nope' on USB"):
        SDWire(serial="nope").usb_device()
    bus(factory, other)
    with pytest.raises(
        FileNotFoundError, match="no SDWire \\(04e8:6001 'sd-wire'; an FT200X needs serial:\\) on USB"
    ):
        SDWire().usb_device()


def test_a_chip_that_does_not_switch_is_an_error_naming_it(bus):
    bus(FakeFT200X("sd-wire_11", obeys=False, ports=(1, 4)))
    refused = pytest.raises(
        DriverError, match="dut.storage.dut: SDWire at USB 1-1.4: switched to dut but the chip reports host"
    )
    with client_for(SDWire(storage_device="/dev/null"), "storage") as storage, refused:
        storage.dut()


def sysfs_usb_tree(root, card: bool) -> None:
    """Two hubs: 1-1 (the SDWire: its reader 1-1.1 with the card sdb, its FT200X 1-1.2) and
    1-2 (another reader, with sdc)."""
    usb1 = root / "sys" / "devices" / "pci0000:00" / "0000:00:14.0" / "usb1"
    links = root / "sys" / "bus" / "usb" / "devices"
    links.mkdir(parents=True)
    for name in ("1-1", "1-1/1-1.1", "1-1/1-1.2", "1-2", "1-2/1-2.1"):
        (usb1 / name).mkdir(parents=True)
        os.symlink(usb1 / name, links / name.split("/")[-1])
    if card:
        add_disk(root, usb1 / "1-1" / "1-1.1" / "1-1.1:1.0" / "host6" / "target6:0:0" / "6:0:0:0", "sdb")
    add_disk(root, usb1 / "1-2" / "1-2.1" / "1-2.1:1.0" / "host8" / "target8:0:0" / "8:0:0:0", "sdc")


def add_disk(root, scsi, name: str) -> None:
    block = scsi / "block" / name
    block.mkdir(parents=True)
    (block / "size").write_text("62333952\n")
    (block / "removable").write_text("1\n")
    (block / "dev").write_text("8:16\n")
    (block / "uevent").write_text(f"MAJOR=8\nMINOR=16\nDEVNAME={name}\nDEVTYPE=disk\n")
    for folder in ("block", "class/block"):
        (root / "sys" / folder).mkdir(parents=True, exist_ok=True)
        os.symlink(block, root / "sys" / folder / name)


def test_the_card_is_the_disk_under_the_sdwires_own_hub(bus, tmp_path):
    bus(FakeFT200X("sd-wire_11", ports=(1, 2)))
    sysfs_usb_tree(tmp_path, card=True)
    sdwire = SDWire(system_root=str(tmp_path), storage_leeway=0)
    assert sdwire.find_disks() == ["/dev/sdb"]  # not sdc, on the other hub


def test_host_waits_for_the_card_to_appear(bus, tmp_path):
    bus(FakeFT200X("sd-wire_11", ports=(1, 2)))
    sysfs_usb_tree(tmp_path, card=False)
    sdwire = SDWire(system_root=str(tmp_path), storage_timeout=30, storage_leeway=0)
    looked = threading.Event()
    find = sdwire.find_disks
    sdwire.find_disks = lambda: (looked.set(), find())[1]
    waiting = threading.Thread(target=sdwire.host)
    waiting.start()
    assert looked.wait(30)
    reader = tmp_path / "sys" / "devices" / "pci0000:00" / "0000:00:14.0" / "usb1" / "1-1" / "1-1.1"
    add_disk(tmp_path, reader / "1-1.1:1.0" / "host7" / "target7:0:0" / "7:0:0:0", "sdd")
    waiting.join(30)
    assert not waiting.is_alive() and sdwire.found == "/dev/sdd"


def test_no_card_within_storage_timeout_is_a_clear_error(bus, tmp_path):
    bus(FakeFT200X("sd-wire_11", ports=(1, 2)))
    sysfs_usb_tree(tmp_path, card=False)
    with pytest.raises(
        TimeoutError, match="SDWire card: no block device appeared within storage_timeout=0 s"
    ):
        SDWire(system_root=str(tmp_path), storage_timeout=0).host()


def test_upstream_type_name_resolves_to_ours():
    config = parse_config("""
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  storage:
    type: jumpstarter_driver_sdwire.driver.SDWire
    config: {serial: sd-wire_11, storage_device: /dev/disk/by-id/usb-card, storage_timeout: 10,
             storage_leeway: 6, storage_fsync_timeout: 900}
""")
    storage = build_tree(config).children["storage"]
    assert isinstance(storage, SDWire) and storage.serial == "sd-wire_11"


def test_a_card_mounted_on_the_host_is_not_switched_away(bus, loop, tmp_path):
    import subprocess

    chip = FakeFT200X("sd-wire_11")
    bus(chip)
    device = loop(32 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    with client_for(SDWire(storage_device=device), "storage") as storage:
        storage.host()
        subprocess.run(["mount", device, str(mountpoint)], check=True, capture_output=True)
        try:
            with pytest.raises(
                DriverError,
                match=f"refusing to switch {device} to dut: the host has it mounted "
                f"\\({device} on {mountpoint}\\); unmount it first",
            ):
                storage.dut()
            assert storage.state() == "host" and chip.pins() & 1
        finally:
            subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False)
        storage.dut()
        assert storage.state() == "dut"


def test_a_client_killed_mid_flash_leaves_the_card_on_the_host(bus, loop, tmp_path):

    from jumpstarter_jupyter import connect
    from jumpstarter_jupyter.drivers.composite.driver import Composite
    from support import serving

    chip = FakeFT200X("sd-wire_11")
    bus(chip)
    device = loop(96 * MiB)
    big = tmp_path / "big.img"
    big.write_bytes(os.urandom(80 * MiB))
    root = Composite()
    root.children = {"storage": SDWire(storage_device=device)}
    with serving(root) as exporter:
        kill_mid_flash(exporter.address, big, 8 << 20)
        with connect(exporter.address) as dut:
            dut.storage.dut()  # waits for the aborted write to let go of the card
            assert chip.requests[-2][2] == 0x20F0
            switches = [value for _, request, value, _ in chip.requests if request == 0x0B]
            assert switches == [0x20F1, 0x20F1, 0x20F0], (
                "the aborted flash switched the card away from the host"
            )
