"""Driver interfaces, one folder each, and the registry of driver type names.

A config's ``type:`` is a full import path. The table below lists our built-in drivers and
the upstream Jumpstarter type names that resolve to them, so upstream configs run unchanged.
Drivers from other packages arrive through the ``jumpstarter_jupyter.drivers`` entry-point
group (``name = "package.module:Class"``) or by their import path.

``COMMANDS`` lists the top-level ``jumpstarter-jupyter`` commands our drivers bring; other
packages add theirs through the ``jumpstarter_jupyter.commands`` entry-point group
(``name = "package.module:command"``, a click command).
"""

from jumpstarter_jupyter.drivers import registry

_OURS = "jumpstarter_jupyter.drivers"

BUILTIN = {
    "Composite": f"{_OURS}.composite.driver.Composite",
    "MockPower": f"{_OURS}.power.driver.MockPower",
    "VirtualPower": f"{_OURS}.power.driver.VirtualPower",
    "SnmpPower": f"{_OURS}.power.snmp.SnmpPower",
    "GpioPower": f"{_OURS}.power.relay.GpioPower",
    "CommandPower": f"{_OURS}.power.command.CommandPower",
    "HwmonMeter": f"{_OURS}.power.hwmon.HwmonMeter",
    "PySerial": f"{_OURS}.serial.driver.PySerial",
    "TcpNetwork": f"{_OURS}.network.driver.TcpNetwork",
    "MockStorageMux": f"{_OURS}.storage.driver.MockStorageMux",
    "MockStorageMuxFlasher": f"{_OURS}.storage.driver.MockStorageMux",
    "VirtualStorageMux": f"{_OURS}.storage.driver.VirtualStorageMux",
    "StorageDevice": f"{_OURS}.storage.device.StorageDevice",
    "SDWire": f"{_OURS}.storage.sdwire.SDWire",
    "UsbSdMux": f"{_OURS}.storage.usbsdmux.UsbSdMux",
    "MockDigitalOutput": f"{_OURS}.gpio.driver.MockDigitalOutput",
    "MockDigitalInput": f"{_OURS}.gpio.driver.MockDigitalInput",
    "VirtualDigitalOutput": f"{_OURS}.gpio.driver.VirtualDigitalOutput",
    "VirtualDigitalInput": f"{_OURS}.gpio.driver.VirtualDigitalInput",
    "DigitalOutput": f"{_OURS}.gpio.libgpiod.DigitalOutput",
    "DigitalInput": f"{_OURS}.gpio.libgpiod.DigitalInput",
    "VirtualBoard": f"{_OURS}.virtual.driver.VirtualBoard",
    "Can": f"{_OURS}.can.driver.Can",
    "QemuBoard": f"{_OURS}.qemu.driver.QemuBoard",
    "GdbServer": f"{_OURS}.debugger.driver.GdbServer",
    "HttpVideo": f"{_OURS}.screen.httpvideo.HttpVideo",
    "UStreamer": f"{_OURS}.screen.ustreamer.UStreamer",
}

UPSTREAM = {
    "jumpstarter_driver_composite.driver.Composite": BUILTIN["Composite"],
    "jumpstarter_driver_power.driver.MockPower": BUILTIN["MockPower"],
    "jumpstarter_driver_power.driver.SyncMockPower": BUILTIN["MockPower"],
    "jumpstarter_driver_snmp.driver.SNMPServer": BUILTIN["SnmpPower"],
    "jumpstarter_driver_pyserial.driver.PySerial": BUILTIN["PySerial"],
    "jumpstarter_driver_network.driver.TcpNetwork": BUILTIN["TcpNetwork"],
    "jumpstarter_driver_opendal.driver.MockStorageMux": BUILTIN["MockStorageMux"],
    "jumpstarter_driver_opendal.driver.MockStorageMuxFlasher": BUILTIN["MockStorageMuxFlasher"],
    "jumpstarter_driver_sdwire.driver.SDWire": BUILTIN["SDWire"],
    "jumpstarter_driver_gpiod.driver.DigitalOutput": BUILTIN["DigitalOutput"],
    "jumpstarter_driver_gpiod.driver.DigitalInput": BUILTIN["DigitalInput"],
    "jumpstarter_driver_can.driver.Can": BUILTIN["Can"],
    "jumpstarter_driver_ustreamer.driver.UStreamer": BUILTIN["UStreamer"],
    "jumpstarter_driver_video.driver.HttpVideo": BUILTIN["HttpVideo"],
}

COMMANDS = {
    "qemu-images": f"{_OURS}.qemu.cli:qemu_images",
}

registry.register_table(BUILTIN, UPSTREAM)
registry.register_commands(COMMANDS)
