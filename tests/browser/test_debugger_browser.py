"""The debugger widget in JupyterLab (headless Chromium) on a booted x86_64 QEMU guest.

A breakpoint typed into the widget (a kallsyms symbol the notebook loaded) stops the kernel
when the test's own client types `sync`; the widget shows the stop, the registers and the code
at the PC; its step button moves the PC and marks the changed registers; remove and continue
let the shell answer again. The screenshot of the halted widget is kept in the test's folder.
"""

from __future__ import annotations

import pytest

from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.drivers.qemu.driver import QemuBoard
from jumpstarter_jupyter.drivers.qemu.images import build
from support import serving, wait_for

pytestmark = pytest.mark.browser
DEADLINE = 60.0


def test_registers_breakpoint_step_and_continue(open_notebook, tmp_path):
    build("x86_64")
    with serving(QemuBoard()) as exporter, connect(exporter.address) as dut:
        notebook = open_notebook(
            "debugger.ipynb",
            [
                f"%load_ext jumpstarter\n%jmp connect {exporter.address} --name board;\n"
                "board.boot_to_shell()\n"
                "kallsyms = board.run(\"grep -E ' (ksys_sync|linux_banner)$' /proc/kallsyms\")[1]\n"
                "print(board.debugger.symbols(kallsyms))\n"
                "board.debugger",
            ],
        )
        outputs = notebook.run_cell(0)
        assert any(o.get("text", "").strip() == "2" for o in outputs), outputs
        widget = notebook.cell(0).locator(".jmp-debugger")
        widget.wait_for(timeout=30_000)
        wait_for(
            lambda: widget.get_attribute("data-state") == "running", DEADLINE, "the widget to show running"
        )

        widget.locator("input[title='breakpoint at']").fill("ksys_sync")
        widget.get_by_role("button", name="break", exact=True).click()
        wait_for(
            lambda: "ksys_sync" in widget.locator(".jmp-breakpoints").inner_text(),
            DEADLINE,
            "the breakpoint in the list",
        )
        dut.serial.discard()
        dut.serial.sendline("sync; echo synced")
        wait_for(
            lambda: widget.get_attribute("data-state") == "halted", DEADLINE, "the widget to show the stop"
        )
        assert "breakpoint at ksys_sync" in widget.locator(".jmp-reason").inner_text()
        rip = widget.locator('tr[data-register="rip"] td').nth(1)
        stop = dut.debugger.wait_for_stop(DEADLINE)  # the test's own client: the same stop, no symbols
        assert [b["label"] for b in dut.debugger.snapshot()["breakpoints"]] == ["ksys_sync"]
        wait_for(lambda: rip.inner_text() == f"0x{stop['pc']:016x}", DEADLINE, "rip at the breakpoint")
        wait_for(
            lambda: "ksys_sync" in widget.locator(".jmp-code tr.jmp-pc").inner_text(),
            DEADLINE,
            "the disassembly at the PC, named by the symbol",
        )
        widget.locator("input[title='memory view at']").fill("linux_banner")
        widget.get_by_role("button", name="view", exact=True).click()
        wait_for(
            lambda: "Linux version" in widget.locator(".jmp-memory").inner_text().replace("\n", ""),
            DEADLINE,
            "the banner in the memory view",
        )
        widget.screenshot(path=str(tmp_path / "debugger-halted-at-breakpoint.png"))

        before = rip.inner_text()
        widget.get_by_role("button", name="step", exact=True).click()
        wait_for(lambda: rip.inner_text() != before, DEADLINE, "rip to move after the step")
        assert widget.locator('tr.jmp-changed[data-register="rip"]').count() == 1
        assert dut.debugger.state()["pc"] == int(rip.inner_text(), 16)

        widget.locator(".jmp-breakpoints").get_by_role("button", name="remove").click()
        widget.get_by_role("button", name="continue", exact=True).click()
        dut.serial.expect("\nsynced", timeout=DEADLINE)
        assert dut.run("true", DEADLINE) == (0, "")
        wait_for(
            lambda: widget.get_attribute("data-state") == "running", DEADLINE, "the widget to show running"
        )
        assert not any("rate exceeded" in str(o) for cell in notebook.all_outputs() for o in cell)
        assert not [line for line in notebook.console if line.startswith("error")], notebook.console
