"""The wheel ships the virtual board's DBC file where ``firmware_can.DBC`` points."""

from __future__ import annotations


def test_wheel_holds_the_virtual_board_dbc(dist):
    assert "jumpstarter_jupyter/drivers/virtual/virtual-board.dbc" in dist.wheel_files()
