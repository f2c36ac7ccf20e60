"""The device panel in JupyterLab: clicks change the exporter's state, the power chart updates.

What a click did is checked on the exporter through the test's own client (and the board's
shell), not only in the DOM.
"""

from __future__ import annotations

import re

import pytest

from support import wait_for

pytestmark = pytest.mark.browser


def widget(notebook, kind: str, path: str):
    """The ``kind`` widget titled ``path`` in cell 0's output."""
    return notebook.cell(0).locator(
        f".jmp-{kind}", has=notebook.page.locator(".jmp-title", has_text=re.compile(f"^{re.escape(path)}$"))
    )


def amperes(power) -> float | None:
    match = re.search(r"([\d.]+) A", power.locator(".jmp-legend").inner_text())
    return float(match[1]) if match else None


def test_power_and_gpio_clicks_change_the_exporter(board, open_notebook):
    endpoint, dut = board
    notebook = open_notebook("panel.ipynb", [f"%load_ext jumpstarter\n%jmp connect {endpoint}"])
    notebook.run_cell(0)
    power = widget(notebook, "power", "dut.power")
    power.wait_for(timeout=30_000)

    power.get_by_role("button", name="on", exact=True).click()
    wait_for(lambda: dut.power.state() is True, 30, "the exporter to report power on")
    wait_for(lambda: power.get_attribute("data-state") == "on", 30, "the widget to show power on")

    button = widget(notebook, "gpio", "dut.button")
    button.get_by_role("switch").click()
    wait_for(lambda: dut.button.read_pin() == 1, 30, "the button pin to be driven")
    dut.serial.expect("login:", timeout=90)
    dut.serial.sendline("root")
    dut.serial.sendline("button")
    dut.serial.expect("button: pressed", timeout=30)  # the board itself sees the click

    led = widget(notebook, "gpio", "dut.led")
    dut.serial.sendline("led on")
    wait_for(lambda: led.get_attribute("data-value") == "1", 30, "the led indicator to follow `led on`")

    power.get_by_role("button", name="off", exact=True).click()
    wait_for(lambda: dut.power.state() is False, 30, "the exporter to report power off")
    assert not [line for line in notebook.console if line.startswith("error")], notebook.console


def test_power_chart_updates(board, open_notebook):
    endpoint, dut = board
    notebook = open_notebook("chart.ipynb", [f"%load_ext jumpstarter\n%jmp connect {endpoint}"])
    notebook.run_cell(0)
    power = widget(notebook, "power", "dut.power")
    chart = power.locator("canvas.jmp-chart")
    chart.wait_for(timeout=30_000)

    def samples() -> int:
        return int(chart.get_attribute("data-samples") or 0)

    wait_for(lambda: samples() >= 2, 30, "the chart's first readings")
    assert amperes(power) == 0.0  # the board is off
    drawn = samples()
    dut.power.on()  # from the Python API: the widget shows what any client did
    wait_for(lambda: samples() > drawn, 30, "new readings in the chart")
    wait_for(lambda: (amperes(power) or 0) > 0, 60, "the chart to show the board drawing current")
    dut.power.off()


def test_power_off_click_works_while_a_cell_blocks_and_interrupt_stops_it(board, open_notebook):
    endpoint, dut = board
    notebook = open_notebook(
        "emergency.ipynb",
        [
            f"%load_ext jumpstarter\n%jmp connect {endpoint}",
            "dut.power.on()\ndut.serial.expect('this never appears', timeout=600)",
            "print('after interrupt:', dut.power.state())",
        ],
    )
    notebook.run_cell(0)
    power = widget(notebook, "power", "dut.power")
    power.wait_for(timeout=30_000)
    running = notebook.start_cell(1)
    wait_for(lambda: dut.power.state() is True, 30, "the blocking cell to power the board on")

    power.get_by_role("button", name="off", exact=True).click()
    wait_for(lambda: dut.power.state() is False, 30, "the click to power off during the blocking cell")
    assert notebook.running(running), "the blocking cell ended before the click was checked"

    notebook.interrupt()
    outputs = notebook.wait_cell(1)
    assert [o["ename"] for o in outputs if o["output_type"] == "error"] == ["KeyboardInterrupt"]
    outputs = notebook.run_cell(2)
    assert outputs[0]["text"] == "after interrupt: False\n"  # the connection is still usable
