"""The installed wheel's widget front ends in the browser: from the JupyterLab extension (in
JupyterLab and Notebook 7), and from the kernel when the extension is disabled."""

from __future__ import annotations

import pytest

from installed import ROOT
from support import wait_for

pytestmark = pytest.mark.browser

WHERE = "import os, jumpstarter_jupyter\nprint(os.getcwd())\nprint(jumpstarter_jupyter.__file__)"
# what each live front end draws (the text fallback draws none of these)
LIVE = {
    "power": ".jmp-power canvas.jmp-chart",
    "serial": ".jmp-serial .xterm-screen",
    "storage": ".jmp-storage",
    "network": ".jmp-network",
    "gpio": ".jmp-gpio .jmp-row",
    "can": ".jmp-can table",
}
WIDGETS = (
    8  # the lease bar and the demo board's driver widgets: power, serial, storage, network, button, led, can
)
REGISTERED = "[jumpstarter] widget front ends 0.1.0 registered"


def panel_is_live(notebook, installed, endpoint: str) -> None:
    """Run the panel cells in a kernel working outside the repository; every front end loads."""
    cwd, module = notebook.run_cell(0)[0]["text"].split()
    assert not cwd.startswith(str(ROOT)) and module.startswith(str(installed.path)), (cwd, module)
    notebook.run_cell(1)
    panel = notebook.cell(1)
    for selector in LIVE.values():
        panel.locator(selector).first.wait_for(timeout=60_000)
    wait_for(lambda: panel.locator(".jmp-widget").count() == WIDGETS, 60, "every driver widget's live view")
    assert panel.locator(".jmp-fallback").count() == 0
    assert not [line for line in notebook.console if line.startswith("error")], notebook.console


def test_front_ends_load_from_the_extension_in_jupyterlab(board, open_notebook, installed):
    endpoint, _dut = board
    notebook = open_notebook("lab.ipynb", [WHERE, f"%load_ext jumpstarter\n%jmp connect {endpoint}"])
    panel_is_live(notebook, installed, endpoint)
    assert f"log: {REGISTERED}" in notebook.console


def test_front_ends_load_from_the_extension_in_notebook7(board, open_in_notebook7, installed):
    endpoint, _dut = board
    notebook = open_in_notebook7("nb7.ipynb", [WHERE, f"%load_ext jumpstarter\n%jmp connect {endpoint}"])
    panel_is_live(notebook, installed, endpoint)
    assert f"log: {REGISTERED}" in notebook.console


def test_front_ends_come_from_the_kernel_without_the_extension(board, open_without_extension, installed):
    endpoint, _dut = board
    notebook = open_without_extension(
        "plain.ipynb", [WHERE, f"%load_ext jumpstarter\n%jmp connect {endpoint}"]
    )
    panel_is_live(notebook, installed, endpoint)
    assert f"log: {REGISTERED}" not in notebook.console
