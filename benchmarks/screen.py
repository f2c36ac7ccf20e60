"""The screen figures: a live view in real Chromium, and the QEMU screen's snapshot latency.

``measure_live(seconds)``: a 1024x768 MJPEG source (synthetic JPEGs at 30 frames/s on loopback,
the test suite's stand-in for a capture card) served by ``HttpVideo`` from an exporter in this
process; JupyterLab (this venv's, our extension) in headless Chromium runs a kernel that
displays ``dut.screen`` with its cap at 25 frames/s. Over ``seconds`` it counts the frames the
view drew (its ``data-frames``) and the kernel process's CPU time from /proc.

``measure_snapshot(count)``: a QEMU x86_64 board booted to its login prompt; the median of
``count`` ``dut.screen.snapshot()`` calls (QMP screendump to PNG, base64 over gRPC, decoded
into a PIL image).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the loopback video source and the lab server of the tests

TICKS = os.sysconf("SC_CLK_TCK")
SIZE = (1024, 768)
CELLS = [
    (
        "%load_ext jumpstarter\nimport os\nfrom jumpstarter_jupyter import connect\n"
        "dut = connect({endpoint!r})\nprint('kernel pid', os.getpid())"
    ),
    "from jumpstarter_jupyter.client.display import widget_for\n"
    "widget_for(dut.screen).max_fps = 25\ndut.screen",
]


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure_live(seconds: float) -> dict:
    """Frames/s drawn in Chromium and the kernel's CPU share (% of one core); see the module doc."""
    from playwright.sync_api import sync_playwright

    from browser.conftest import CHROMIUM, FLAGS, NotebookPage, serve_lab
    from jumpstarter_jupyter.drivers.screen.httpvideo import HttpVideo
    from mjpeg_server import VideoServer, synthetic_frames
    from support import client_for

    venv = SimpleNamespace(
        python=sys.executable, env={"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    )
    with (
        tempfile.TemporaryDirectory(prefix="jmp-screen-bench-") as base,
        VideoServer(synthetic_frames(30, SIZE), 30.0, SIZE) as source,
        client_for(HttpVideo(url=f"{source.url}/stream"), name="screen") as screen,
        serve_lab(Path(base), venv) as lab,
        sync_playwright() as playwright,
    ):
        endpoint = screen.connection.endpoint
        lab.put_notebook("screen.ipynb", [CELLS[0].format(endpoint=endpoint), CELLS[1]])
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{lab.url}/lab/tree/screen.ipynb?token={lab.token}")
        notebook = NotebookPage(page)
        notebook.wait_ready()
        pid = int(notebook.run_cell(0)[0]["text"].split()[-1])
        notebook.run_cell(1)
        surface = notebook.cell(1).locator(".jmp-screen .jmp-surface")
        page.wait_for_function(
            "(n) => Number(n.dataset.frames || 0) >= 10", arg=surface.element_handle(), timeout=60_000
        )
        frames_before, cpu_before, start = (
            int(surface.get_attribute("data-frames")),
            _cpu(pid),
            time.monotonic(),
        )
        page.wait_for_timeout(seconds * 1000)  # the measuring window itself
        frames, cpu, elapsed = int(surface.get_attribute("data-frames")), _cpu(pid), time.monotonic() - start
        browser.close()
    return {
        "fps": round((frames - frames_before) / elapsed, 1),
        "kernel_cpu_percent": round(100 * (cpu - cpu_before) / elapsed, 1),
    }


def measure_snapshot(count: int) -> dict:
    """Median and p90 of ``dut.screen.snapshot()`` on a QEMU board at its login prompt (ms)."""
    from jumpstarter_jupyter import connect
    from jumpstarter_jupyter.drivers.qemu.driver import QemuBoard
    from jumpstarter_jupyter.drivers.qemu.images import build
    from support import serving

    build("x86_64")
    with serving(QemuBoard()) as exporter, connect(exporter.address) as dut:
        dut.power.on()
        dut.serial.expect("login:", timeout=300)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            dut.screen.snapshot()
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1),
    }
