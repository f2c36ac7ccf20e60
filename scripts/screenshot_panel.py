"""The picture of the device panel in the README and the docs, taken from a real browser.

    python scripts/screenshot_panel.py [--output docs/_static/panel.png]

Serves the virtual board (``jumpstarter-jupyter demo``), starts JupyterLab from this checkout's
venv (isolated as the browser tests isolate it: tests/browser/conftest.py), opens a notebook in
Debian's Chromium through Playwright, connects to the board, boots it, logs in and switches its
LED on, waits until the terminal shows the shell and the power chart has readings, and saves
a screenshot of the page.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser.conftest import CHROMIUM, FLAGS, notebook_opener, serve_lab  # noqa: E402
from support import wait_for  # noqa: E402

VIEWPORT = {"width": 1400, "height": 1250}
CELLS = [
    "%load_ext jumpstarter\n%jmp connect {endpoint}",
    'dut.power.on()\ndut.serial.expect("login:", timeout=60)\ndut.serial.sendline("root")\n'
    'dut.serial.expect("# ", timeout=10)\ndut.serial.sendline("uname -a")\ndut.serial.sendline("led on")\n'
    "dut.led.wait_for_active(timeout=10)",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "_static" / "panel.png")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    venv = SimpleNamespace(
        python=sys.executable, env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    )
    with tempfile.TemporaryDirectory(prefix="jmp-shot-") as work:
        base = Path(work)
        socket = base / "board.sock"
        board = subprocess.Popen(
            [sys.executable, "-m", "jumpstarter_jupyter", "demo", "--socket", str(socket)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            if not board.stdout.readline().startswith("serving "):
                raise SystemExit("the virtual board did not start")
            (base / "lab").mkdir()
            with serve_lab(base / "lab", venv) as lab, sync_playwright() as playwright:
                browser = playwright.chromium.launch_persistent_context(
                    str(base / "chromium"),
                    executable_path=CHROMIUM,
                    args=FLAGS,
                    headless=True,
                    viewport=VIEWPORT,
                )
                with notebook_opener(lab, browser) as open_notebook:
                    notebook = open_notebook(
                        "board.ipynb", [cell.format(endpoint=f"unix:{socket}") for cell in CELLS]
                    )
                    notebook.run_cell(0)
                    notebook.run_cell(1)
                    page = notebook.page
                    chart = page.locator(".jmp-power canvas.jmp-chart").first
                    wait_for(
                        lambda: int(chart.get_attribute("data-samples") or 0) >= 10, 60, "power readings"
                    )
                    led = page.locator(".jmp-gpio[data-value='1']")
                    wait_for(lambda: led.count() > 0, 30, "the LED indicator to light")
                    page.evaluate(
                        "() => window.jupyterapp.shell.collapseLeft()"
                    )  # the panel, not the file browser
                    page.evaluate("() => document.querySelector('.jp-WindowedPanel-outer').scrollTo(0, 0)")
                    wait_for(
                        lambda: (
                            page.evaluate("() => document.querySelector('.jp-WindowedPanel-outer').scrollTop")
                            == 0
                        ),
                        10,
                        "the notebook to scroll to its top",
                    )
                    args.output.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(args.output))
                browser.close()
        finally:
            board.terminate()
            board.wait(timeout=30)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
