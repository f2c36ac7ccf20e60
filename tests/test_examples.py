"""The shipped examples (an exporter config, a driver package) run as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import serving
from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.exporter import build_tree, load_config

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
        assert dut.board.labels["jumpstarter.dev/client"] == "jumpstarter_driver_composite.client.CompositeClient"
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
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(package),
                           "-o", "addopts=", str(package / "tests")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout
