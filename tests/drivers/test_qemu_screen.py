"""The QEMU board's screen: a real x86_64 guest's VGA text console, read by OCR, typed into
through QEMU's PS/2 keyboard. One boot serves the module (its OCR'd waits cost most)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.drivers.qemu.driver import QemuBoard
from jumpstarter_jupyter.drivers.qemu.images import build
from jumpstarter_jupyter.drivers.screen.client import ImageMismatch
from jumpstarter_jupyter.errors import DriverError
from support import run_cli, serving

DEADLINE = 120.0  # OCR of a busy boot screen takes seconds per frame on a loaded machine
TOP_LINES = (0, 0, 720, 32)  # the first two text rows (16 pixels each): the blinking cursor is below


@pytest.fixture(scope="module")
def dut():
    build("x86_64")
    board = QemuBoard()
    with serving(board) as exporter, connect(exporter.address) as dut:
        yield dut


def test_login_from_the_screen_alone(dut):
    dut.power.on()
    dut.screen.expect_text(r"login:", timeout=DEADLINE)
    dut.screen.type("root\n")
    dut.screen.expect_text(r"Password", timeout=DEADLINE)
    dut.screen.type("root\n")
    dut.screen.expect_text(r"dut:\S{0,2}#", timeout=DEADLINE)  # OCR may read the "~" as '"' or '-'
    state = dut.screen.state()
    assert (state["width"], state["height"], state["online"], state["keyboard"]) == (720, 400, True, True)
    assert dut.screen.snapshot().size == (720, 400)


def test_expect_image_against_a_settled_screen(dut, tmp_path):
    dut.screen.type("clear\n")
    dut.screen.type("echo one\n")
    dut.screen.expect_text(r"echo one\s+one", timeout=DEADLINE, region=TOP_LINES)
    reference = tmp_path / "one.png"
    dut.screen.snapshot().save(reference)
    assert dut.screen.expect_image(reference, tolerance=0, region=TOP_LINES, timeout=10) == 0

    dut.screen.type("clear\n")
    dut.screen.type("echo the other screen\n")
    dut.screen.expect_text(r"echo the other screen\s+the other screen", timeout=DEADLINE, region=TOP_LINES)
    with pytest.raises(
        ImageMismatch, match=r"dut.screen.expect_image: distance \d+ > tolerance 0 .*FAILED_one.png"
    ):
        dut.screen.expect_image(reference, tolerance=0, region=TOP_LINES, timeout=2)
    assert Image.open(tmp_path / "FAILED_one.png").size == (720, 400)


def test_keys_and_the_cli(dut):
    dut.screen.type("clear\n")
    dut.screen.type("sleep 600")
    dut.screen.key("ret")
    dut.screen.key("ctrl-c")  # the shell gets its prompt back
    dut.screen.type("echo interrupted\n")
    # the output line appears only if Ctrl-C ended the sleep
    dut.screen.expect_text(r"echo interrupted\s+interrupted", timeout=DEADLINE, region=(0, 0, 720, 64))
    result = run_cli(dut.screen, "state")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["source"] == "QEMU x86_64 VGA screen"


def test_a_powered_off_screen_is_dark(dut):
    dut.power.off()
    with pytest.raises(
        DriverError, match="dut.screen.snapshot: QEMU x86_64 VGA screen: the board is powered off"
    ):
        dut.screen.snapshot()
    assert dut.screen.state()["online"] is False
