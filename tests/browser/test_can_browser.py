"""The CAN widget in JupyterLab (headless Chromium) on the virtual board of the installed wheel.

The table shows the board's Status frame decoded with the DBC the wheel ships; a frame sent
from the form, once and periodically, arrives on the bus (checked by the test's own client);
the chart of the chosen signal updates; the LED signal follows the board's shell.
"""

from __future__ import annotations

import re

import pytest

from support import wait_for

pytestmark = pytest.mark.browser


def can_widget(notebook):
    """The CAN widget of the device panel in cell 0's output."""
    title = notebook.page.locator(".jmp-title", has_text=re.compile(r"^dut\.can$"))
    return notebook.cell(0).locator(".jmp-can", has=title)


def test_table_send_form_and_signal_chart(board, open_notebook, tmp_path):
    endpoint, dut = board
    notebook = open_notebook(
        "can.ipynb",
        [
            f"%load_ext jumpstarter\n%jmp connect {endpoint}",
            "from jumpstarter_jupyter.drivers.virtual.firmware_can import DBC\ndut.can.load_dbc(DBC)\nprint(DBC)",
        ],
    )
    notebook.run_cell(0)
    widget = can_widget(notebook)
    widget.wait_for(timeout=30_000)
    outputs = notebook.run_cell(1)
    assert (
        "site-packages/jumpstarter_jupyter/drivers/virtual/virtual-board.dbc" in outputs[0]["text"]
    )  # in the wheel

    dut.boot_to_shell(timeout=90)
    status = widget.locator('tr[data-id="100"]')
    wait_for(
        lambda: re.search(
            r"Status: Uptime=[\d.]+ s Temperature=[\d.]+ degC .*State=running", status.inner_text()
        ),
        30,
        "the Status row decoded with the DBC, the board at its shell",
    )
    assert widget.locator(".jmp-status").inner_text().count(".log") == 1  # the kernel's log file

    dut.serial.sendline("led on")
    wait_for(lambda: "Led=on" in status.inner_text(), 30, "the LED signal to follow `led on`")

    widget.locator("select.jmp-signal").select_option("Status.Temperature")
    chart = widget.locator(".jmp-signal-chart canvas.jmp-chart")
    wait_for(lambda: int(chart.get_attribute("data-samples") or 0) >= 2, 30, "the temperature chart's points")
    drawn = int(chart.get_attribute("data-samples"))
    wait_for(lambda: int(chart.get_attribute("data-samples")) > drawn, 30, "the chart to update")
    assert widget.locator('.jmp-chart-y[data-unit="degC"]').count() == 1

    form = widget.locator(".jmp-form")
    form.locator("input[name=id]").fill("321")
    form.locator("input[name=data]").fill("CA FE")
    form.get_by_role("button", name="send", exact=True).click()
    assert bytes(dut.can.expect(arbitration_id=0x321, timeout=30).data) == b"\xca\xfe"
    wait_for(lambda: widget.locator('tr[data-id="321"] td').nth(1).inner_text() == "TX", 30, "the TX row")

    form.locator("input[name=id]").fill("1ABCDE00")
    form.locator("input[name=extended]").check()
    form.locator("input[name=period]").fill("0.05")
    form.get_by_role("button", name="send periodically").click()
    for _ in range(3):
        got = dut.can.expect(arbitration_id=0x1ABCDE00, timeout=30)
        assert got.is_extended_id and bytes(got.data) == b"\xca\xfe"
    task = form.locator(".jmp-periodic > div")
    wait_for(lambda: task.count() == 1, 30, "the running periodic send to be listed")
    task.get_by_role("button", name="stop").click()
    wait_for(lambda: task.count() == 0, 30, "the periodic send to stop")

    widget.screenshot(path=str(tmp_path / "can-widget.png"))
    assert not any("rate exceeded" in str(o) for cell in notebook.all_outputs() for o in cell)
    assert not [line for line in notebook.console if line.startswith("error")], notebook.console
    dut.power.off()
