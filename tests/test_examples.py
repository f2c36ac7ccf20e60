"""The shipped examples (an exporter config, a driver package) run as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jumpstarter_jupyter import DriverError
from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.exporter import build_tree, load_config
from support import serving

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_board_yaml_builds_a_custom_composite_tree():
    root = build_tree(load_config(EXAMPLES / "board.yaml"))
    board = root.children["board"]
    assert type(board).__name__ == "LabBoard"
    assert list(board.children) == ["power", "storage", "network", "reset", "debugger"]
    assert list(board.children["debugger"].children) == ["serial"]
    pulses = []
    board.children["reset"].pin.subscribe(pulses.append)
    with serving(root) as exporter, connect(exporter.address) as dut:
        assert (
            dut.board.labels["jumpstarter.dev/client"]
            == "jumpstarter_driver_composite.client.CompositeClient"
        )
        dut.board.hard_reset()
        assert pulses == [1, 0]
        dut.board.power.on()
        serial = dut.board.debugger.serial
        serial.sendline("hello probe")
        assert serial.expect("hello probe", timeout=20) == 0


def test_the_driver_package_example_passes_its_own_tests():
    """examples/labrelay, as docs/develop/writing-a-driver.md shows it: its tests run with
    pytest against jumpstarter_jupyter.testing; its entry point names its driver class."""
    import tomllib

    package = EXAMPLES / "labrelay"
    entry_points = tomllib.loads((package / "pyproject.toml").read_text())["project"]["entry-points"]
    assert entry_points["jumpstarter_jupyter.drivers"] == {"LabRelay": "labrelay.driver:Relay"}
    # installed, the entry point would allow its client classes; here the variable does
    env = {**os.environ, "PYTHONPATH": str(package), "JMP_DRIVERS_ALLOW": "labrelay.*"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(package),
            "-o",
            "addopts=",
            str(package / "tests"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout


def test_sd_muxes_yaml_builds_and_absent_hardware_is_named():
    """No SDWire, USB-SD-Mux or card reader here: each call says what it looked for."""
    root = build_tree(load_config(EXAMPLES / "sd-muxes.yaml"))
    assert [type(d).__name__ for d in root.children.values()] == ["SDWire", "UsbSdMux", "StorageDevice"]
    root.children["reader"].storage_timeout = 0  # the reader is absent: no waiting 10 s
    with serving(root) as exporter, connect(exporter.address) as dut:
        absent = r"dut\.sdwire\.state: (no SDWire with serial 'sd-wire_11' on USB|pyusb found no USB backend)"
        with pytest.raises(DriverError, match=absent):
            dut.sdwire.state()
        with pytest.raises(DriverError, match=r"dut\.usbsdmux\.host: no USB-SD-Mux with serial '0+123'"):
            dut.usbsdmux.host()
        no_card = r"dut\.reader\.write: StorageDevice card: no block device appeared within storage_timeout=0"
        with pytest.raises(DriverError, match=no_card):
            dut.reader.call("write", {"kind": "client_stream", "uuid": "x"}, False)
        assert dut.reader.state() == "host"
