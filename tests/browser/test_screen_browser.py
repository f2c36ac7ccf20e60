"""The board's screen in JupyterLab: a real QEMU guest's VGA console live in the holder's and a
watcher's notebook, the holder's keys reaching the guest, the watcher's going nowhere, and the
widget's colours in both themes. One x86_64 boot serves the module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser.test_theme import DARK, READ_STYLES, theme
from jumpstarter_jupyter import connect
from jumpstarter_jupyter.drivers.qemu.driver import QemuBoard
from jumpstarter_jupyter.drivers.qemu.images import build
from jumpstarter_jupyter.exporter.leases import LeasePolicy
from support import serving, wait_for

pytestmark = pytest.mark.browser
DEADLINE = 120  # seconds: a boot and OCR on a loaded machine
STYLES = [
    ("widget background", ".jmp-screen.jmp-widget", "background-color", "--jp-layout-color1"),
    ("widget text", ".jmp-screen.jmp-widget", "color", "--jp-ui-font-color1"),
    ("status text", ".jmp-screen .jmp-status", "color", "--jp-ui-font-color2"),
    ("button background", ".jmp-screen .jmp-btn:not(.jmp-on)", "background-color", "--jp-layout-color2"),
]
KEYBOARD_ERRORS = """
from jumpstarter_jupyter.client.display import widget_for
screen = widget_for(dut.screen)
screen._input.submit(lambda: None).result()  # every key message the views sent has been handled
print("frames sent:", screen.frames_sent)
errors = (screen.error, screen._pending.get("error", ""))
print("keyboard errors:", [e for e in errors if e.startswith("keyboard")])
"""


def frames(surface) -> int:
    return int(surface.get_attribute("data-frames") or 0)


def test_the_screen_live_for_the_holder_and_a_watcher(open_notebook):
    build("x86_64")
    with (
        serving(QemuBoard(), lease=LeasePolicy(required=True)) as exporter,
        connect(exporter.address, lease=False) as observer,
    ):
        holder = open_notebook(
            "screen-holder.ipynb",
            [
                f"%load_ext jumpstarter\n%jmp connect {exporter.address} --purpose screen",
                "dut.power.on()",
                "dut.screen",
                KEYBOARD_ERRORS,
            ],
        )
        for index in range(3):
            holder.run_cell(index)
        surface = holder.cell(2).locator(".jmp-screen .jmp-surface")
        wait_for(lambda: frames(surface) >= 3, DEADLINE, "frames in the holder's view")
        observer.screen.expect_text(r"login:", timeout=DEADLINE)  # a watching client reads the screen too

        # the holder types at the guest's login prompt, through the focused picture
        surface.locator("canvas").click()
        holder.page.keyboard.type("root")
        holder.page.keyboard.press("Enter")
        observer.screen.expect_text(r"login: root\s+Password", timeout=DEADLINE)
        shown = frames(surface)
        wait_for(lambda: frames(surface) > shown, DEADLINE, "the view to go on updating (the cursor blinks)")
        assert "keyboard errors: []" in holder.run_cell(3)[0]["text"]
        status = holder.cell(2).locator(".jmp-screen .jmp-status").inner_text()
        assert "720×400" in status and "fps" in status and "QEMU x86_64 VGA screen" in status, status

        # a watcher sees the same screen and its keys stay in the browser
        watcher = open_notebook(
            "screen-watcher.ipynb",
            [
                f"%load_ext jumpstarter\n%jmp connect {exporter.address} --watch",
                "dut.screen",
                KEYBOARD_ERRORS,
            ],
        )
        watcher.run_cell(0)
        watcher.run_cell(1)
        watched = watcher.cell(1).locator(".jmp-screen .jmp-surface")
        wait_for(lambda: frames(watched) >= 2, DEADLINE, "frames in the watcher's view")
        watched.locator("canvas").click()
        watcher.page.keyboard.type("typed-by-the-watcher")
        notice = watcher.cell(1).locator(".jmp-screen .jmp-notice")
        wait_for(
            lambda: "watching, keys not sent: held by" in notice.inner_text(),
            DEADLINE,
            "the watcher's notice",
        )
        assert "keyboard errors: []" in watcher.run_cell(2)[0]["text"]  # no key message reached its kernel

        # the widget's colours are JupyterLab's, in the light theme and after a switch to the dark one
        def read():
            return holder.page.evaluate(READ_STYLES, [2, STYLES])

        light = read()
        assert all(actual == expected for _, actual, expected in light), light
        if os.environ.get("JMP_SCREENSHOTS"):  # how the docs' description of the widget was made
            holder.cell(2).screenshot(path=str(Path(os.environ["JMP_SCREENSHOTS"]) / "screen-light.png"))
        with theme(holder, DARK, light=False):
            wait_for(
                lambda: all(actual == expected for _, actual, expected in read()),
                30,
                "the dark theme's colours",
            )
            assert read()[0][1] != light[0][1]
        outputs = str(holder.all_outputs()) + str(watcher.all_outputs())
        assert "IOPub message rate exceeded" not in outputs
