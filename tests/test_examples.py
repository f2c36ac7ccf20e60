"""The shipped example exporter config runs as documented."""

from __future__ import annotations

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
