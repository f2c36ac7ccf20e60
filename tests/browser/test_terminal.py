"""The serial terminal in JupyterLab: it shows the boot log and typing in it reaches the board."""

from __future__ import annotations

import json

import pytest

from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.serial.driver import PySerial
from support import serving, wait_for

pytestmark = pytest.mark.browser


def test_terminal_shows_boot_log_and_typed_input_reaches_board(board, open_notebook):
    endpoint, dut = board
    dut.power.on()
    dut.serial.expect("login:", timeout=90)
    boot_end = dut.serial.call("offset")  # the console's end: everything the view must catch up on

    # the view opens after the boot: what it shows comes from the exporter's scrollback
    notebook = open_notebook(
        "terminal.ipynb",
        [
            f"import jumpstarter_jupyter as jj\ndut = jj.connect({endpoint!r})\ndut.serial",
        ],
    )
    notebook.run_cell(0)
    screen = notebook.cell(0).locator(".jmp-serial .jmp-term")
    screen.wait_for(timeout=30_000)
    wait_for(lambda: int(screen.get_attribute("data-offset") or -1) >= boot_end, 30, "the view to catch up")
    assert "login:" in screen.locator(".xterm-rows").inner_text()

    screen.locator(".xterm-screen").click()
    notebook.page.keyboard.type("root\n")
    dut.serial.expect("#", timeout=30)
    notebook.page.keyboard.type("led on\n")
    # checked on the board itself, through the Python API
    wait_for(lambda: dut.led.read_pin() == 1, 30, "the board's LED to turn on")
    notebook.page.keyboard.type("led off\n")
    wait_for(lambda: dut.led.read_pin() == 0, 30, "the board's LED to turn off")
    wait_for(
        lambda: "led off" in screen.locator(".xterm-rows").inner_text(),
        30,
        "the echo of `led off` in the terminal",
    )

    # a failing action is drawn in the widget: the board's pty has no modem lines
    serial = notebook.cell(0).locator(".jmp-serial")
    serial.get_by_role("button", name="DTR", exact=True).click()
    banner = serial.locator(".jmp-banner")
    wait_for(lambda: "no modem lines" in banner.inner_text(), 30, "the DTR error in the widget")
    assert not [line for line in notebook.console if line.startswith("error")], notebook.console

    # a reloaded page re-renders the terminal from the kernel's widget state
    notebook.reload()
    screen = notebook.cell(0).locator(".jmp-serial .jmp-term")
    screen.wait_for(timeout=30_000)
    wait_for(
        lambda: "led off" in screen.locator(".xterm-rows").inner_text(), 30, "the terminal after a reload"
    )


FLOOD_BLOCKS = 10
FLOOD = """
for index in range({blocks}):
    dut.serial.write(b"".join(b"%02d:%06d flood line for the IOPub limits 0123456789 "
                              b"abcdefghijklmnopqrstuvw\\r\\n" % (index, n)
                              for n in range(13_000)) + b"END-OF-BLOCK-%02d\\r\\n" % index)
    dut.serial.expect("END-OF-BLOCK-%02d" % index, timeout=120)
"""


def test_console_flood_stays_within_iopub_limits(open_notebook, lab):
    """10 MB through a displayed terminal: no IOPub rate limit hit, the kernel stays usable,
    and the view ends on the console's last bytes."""
    root = Composite()
    root.children = {"serial": PySerial(url="loop://")}
    with serving(root) as exporter:
        notebook = open_notebook(
            "flood.ipynb",
            [
                f"import jumpstarter_jupyter as jj\ndut = jj.connect({exporter.address!r})\ndut.serial",
                FLOOD.format(blocks=FLOOD_BLOCKS),
                "print('kernel responsive')",
            ],
        )
        notebook.run_cell(0)
        screen = notebook.cell(0).locator(".jmp-serial .jmp-term")
        screen.wait_for(timeout=30_000)
        notebook.run_cell(1)
        assert notebook.run_cell(2)[0]["text"] == "kernel responsive\n"
        end = root.children["serial"].console.end
        assert end > 10_000_000
        wait_for(
            lambda: int(screen.get_attribute("data-offset") or -1) == end, 60, "the view to reach the end"
        )
        last = f"END-OF-BLOCK-{FLOOD_BLOCKS - 1:02d}"
        wait_for(lambda: last in screen.locator(".xterm-rows").inner_text(), 30, "the last line on screen")
    assert "rate exceeded" not in json.dumps(notebook.all_outputs())
    assert "iopub messages resumed" not in lab.log.read_text()


def test_terminal_queries_from_the_board_get_no_automatic_answer(open_notebook):
    """busybox asks for the cursor position after each prompt; a viewer must not answer it,
    or every open terminal types into the board's shell."""
    from jumpstarter_jupyter import connect

    root = Composite()
    root.children = {"serial": PySerial(url="loop://")}  # whatever a view sends comes back in the console
    with serving(root) as exporter, connect(exporter.address) as dut:
        notebook = open_notebook(
            "queries.ipynb",
            [
                f"import jumpstarter_jupyter as jj\nviewer = jj.connect({exporter.address!r})\nviewer.serial",
            ],
        )
        notebook.run_cell(0)
        screen = notebook.cell(0).locator(".jmp-serial .jmp-term")
        screen.wait_for(timeout=30_000)
        dut.serial.write(b"prompt# \x1b[6n\x1b[c\x1b[>c\x1b[5n QUERIES-SENT\r\n")
        wait_for(
            lambda: "QUERIES-SENT" in screen.locator(".xterm-rows").inner_text(), 30, "the view to show them"
        )
        screen.locator(".xterm-screen").click()
        notebook.page.keyboard.type("typed-by-a-person")  # after any automatic answer, in order
        dut.serial.expect("typed-by-a-person", timeout=30)
        answered = dut.serial.before.split("QUERIES-SENT", 1)[1]
        assert "\x1b[" not in answered, repr(answered)
