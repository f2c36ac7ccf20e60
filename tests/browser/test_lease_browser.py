"""Sharing a board, seen in JupyterLab: a holder's notebook and a watcher's notebook side by side.

The exporter requires a lease; its serial port is a loopback, so any key a view sent would
come back in the console the test reads through its own (watching) client.
"""

from __future__ import annotations

import pytest

from jumpstarter_jupyter import connect
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.drivers.serial.driver import PySerial
from jumpstarter_jupyter.exporter.leases import LeasePolicy
from support import serving, wait_for

pytestmark = pytest.mark.browser
DEADLINE = 30
DRAINED = """
from jumpstarter_jupyter.drivers.serial.widget import SerialWidget
terminal = SerialWidget.for_client(dut.serial)
terminal._input.submit(lambda: None).result()  # every key message the view sent has been handled
print("input errors:", [e for e in (terminal.error, terminal._pending.get("error", "")) if e.startswith("input")])
"""


def rows(screen) -> str:
    """The terminal's text, wrapped lines joined again."""
    return screen.locator(".xterm-rows").inner_text().replace("\n", "")


def test_a_watcher_sees_the_board_live_and_touches_nothing(open_notebook):
    root = Composite()
    root.children = {"power": MockPower(), "serial": PySerial(url="loop://")}
    with (
        serving(root, lease=LeasePolicy(required=True)) as exporter,
        connect(exporter.address, lease=False) as observer,
    ):
        holder = open_notebook(
            "holder.ipynb",
            [
                f"%load_ext jumpstarter\n%jmp connect {exporter.address} --purpose bring-up",
                "dut.serial.write(b'LIVE-FROM-THE-HOLDER\\r\\n'); dut.serial.flush()",
            ],
        )
        holder.run_cell(0)
        holder_bar = holder.cell(0).locator(".jmp-lease")
        wait_for(lambda: holder_bar.get_attribute("data-mode") == "holder", DEADLINE, "the holder's bar")
        assert "you hold the board (bring-up)" in holder_bar.inner_text()

        watcher = open_notebook(
            "watcher.ipynb", [f"%load_ext jumpstarter\n%jmp connect {exporter.address} --watch", DRAINED]
        )
        watcher.run_cell(0)
        bar = watcher.cell(0).locator(".jmp-lease")
        wait_for(lambda: bar.get_attribute("data-mode") == "watcher", DEADLINE, "the watcher's bar")
        assert "held by" in bar.inner_text() and "(bring-up)" in bar.inner_text()

        # the countdown ticks in the browser
        left = bar.locator(".jmp-left")
        start = int(left.get_attribute("data-seconds"))
        assert 3500 < start <= 3600 and "left" in left.inner_text()
        wait_for(lambda: int(left.get_attribute("data-seconds")) < start, DEADLINE, "the countdown to tick")

        # controls are shown, disabled, naming the holder
        power_on = watcher.cell(0).locator(".jmp-power").get_by_role("button", name="on", exact=True)
        wait_for(power_on.is_disabled, DEADLINE, "the watcher's power button to be disabled")
        title = power_on.get_attribute("title")
        assert title.startswith("only the lease holder can do this: held by") and title.endswith("(bring-up)")
        # what only changes the view stays usable: the chart's pause, the terminal's follow
        assert not watcher.cell(0).locator(".jmp-power .jmp-chart-pause").is_disabled()
        assert not watcher.cell(0).locator(".jmp-serial").get_by_role("button", name="follow").is_disabled()

        # the terminal shows the holder's console live, and the watcher's keys go nowhere
        screen = watcher.cell(0).locator(".jmp-serial .jmp-term")
        holder.run_cell(1)
        wait_for(
            lambda: "LIVE-FROM-THE-HOLDER" in rows(screen),
            DEADLINE,
            "the holder's line in the watcher's view",
        )
        screen.locator(".xterm-screen").click()
        watcher.page.keyboard.type("typed-by-the-watcher")
        wait_for(lambda: "watching, keys not sent: held by" in rows(screen), DEADLINE, "the one-line notice")
        assert rows(screen).count("watching, keys not sent") == 1
        assert "input errors: []" in watcher.run_cell(1)[0]["text"]  # no key message reached the kernel
        assert "typed-by-the-watcher" not in observer.serial.log()  # nor the board

        # a hand-over request shows in the holder's panel, naming who asks
        bar.get_by_role("button", name="request hand-over").click()
        notice = holder_bar.locator(".jmp-notice")
        wait_for(
            lambda: notice.count() == 1 and "asks for the board" in notice.inner_text(),
            DEADLINE,
            "the hand-over notice in the holder's panel",
        )
        wait_for(lambda: "asked" in bar.inner_text(), DEADLINE, "the exporter's answer in the watcher's bar")

        # the holder releases from its bar; the watcher takes the board with one click
        holder_bar.get_by_role("button", name="release").click()
        take = bar.get_by_role("button", name="take the lease")
        take.wait_for(timeout=DEADLINE * 1000)
        take.click()
        wait_for(
            lambda: bar.get_attribute("data-mode") == "holder", DEADLINE, "the watcher to hold the board"
        )
        wait_for(lambda: not power_on.is_disabled(), DEADLINE, "the power button to unlock")
        power_on.click()
        wait_for(
            lambda: observer.power.state() is True, DEADLINE, "the board to power on from the new holder"
        )
        wait_for(
            lambda: holder_bar.get_attribute("data-mode") == "watcher", DEADLINE, "the first holder to watch"
        )
