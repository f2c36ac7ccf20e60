"""The power widget with a real meter and without one, in Chromium: the chart draws the meter's
volts and amps (an INA226-shaped sysfs tree the test changes under it), and a switch without a
meter shows its state and no chart. The switches are CommandPower on a state file."""

from __future__ import annotations

import pytest

from browser.test_panel import widget
from drivers.test_power import INA226, sysfs
from jumpstarter_jupyter import connect
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.command import CommandPower
from jumpstarter_jupyter.drivers.power.hwmon import HwmonMeter
from support import serving, wait_for

pytestmark = pytest.mark.browser
DEADLINE = 30


def switch(state) -> CommandPower:
    return CommandPower(
        on_command=f"echo on > {state}", off_command=f"echo off > {state}", state_command=f"cat {state}"
    )


def test_the_chart_shows_the_meter_and_is_hidden_without_one(open_notebook, tmp_path):
    hwmon = sysfs(tmp_path / "hwmon", {"hwmon4": INA226})
    (tmp_path / "bench").write_text("off\n")
    (tmp_path / "relay").write_text("off\n")
    bench = switch(tmp_path / "bench")
    bench.children = {"meter": HwmonMeter(name="ina226", root=str(hwmon))}
    root = Composite()
    root.children = {"bench": bench, "relay": switch(tmp_path / "relay")}
    with serving(root) as exporter, connect(exporter.address) as dut:
        notebook = open_notebook("meter.ipynb", [f"%load_ext jumpstarter\n%jmp connect {exporter.address}"])
        notebook.run_cell(0)
        metered, plain = widget(notebook, "power", "dut.bench"), widget(notebook, "power", "dut.relay")
        legend = metered.locator(".jmp-legend")
        wait_for(
            lambda: "5.01 V" in legend.inner_text() and "0.312 A" in legend.inner_text(),
            DEADLINE,
            "the chart to show the meter's 5.012 V and 312 mA",
        )
        assert (
            metered.locator(".jmp-chart-box").is_visible()
            and not metered.locator(".jmp-no-meter").is_visible()
        )
        (hwmon / "hwmon4" / "curr1_input").write_text("1250\n")  # the board starts drawing more
        wait_for(lambda: "1.25 A" in legend.inner_text(), DEADLINE, "the chart to follow the meter to 1.25 A")

        plain.locator(".jmp-no-meter").wait_for(timeout=DEADLINE * 1000)
        assert plain.get_attribute("data-metered") == "false"
        assert not plain.locator(".jmp-chart-box").is_visible()
        assert plain.locator(".jmp-no-meter").inner_text() == "no readings: this switch has no meter"
        plain.get_by_role("button", name="on", exact=True).click()
        wait_for(lambda: (tmp_path / "relay").read_text() == "on\n", DEADLINE, "the click to run on_command")
        wait_for(
            lambda: plain.get_attribute("data-state") == "on", DEADLINE, "the widget to show the relay on"
        )
        dut.relay.off()  # switched elsewhere: the widget polls the state
        wait_for(
            lambda: plain.get_attribute("data-state") == "off", DEADLINE, "the widget to show the relay off"
        )
        assert not [line for line in notebook.console if line.startswith("error")], notebook.console
