"""notebooks/bringup-qemu.ipynb executed headless by papermill against a QEMU board exporter."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from kernels import jupyter_env  # noqa: F401  (fixture)
from test_notebooks import papermill, texts

from jumpstarter_jupyter.drivers.qemu.images import build
from support import start_exporter

ROOT = Path(__file__).parents[2]

pytestmark = pytest.mark.notebook


@pytest.fixture
def qemu_endpoint(tmp_path):
    build("x86_64")
    socket_path = tmp_path / "exporter.sock"
    exporter = start_exporter("run", ROOT / "examples" / "qemu-board.yaml", "--socket", socket_path)
    try:
        yield f"unix:{socket_path}"
    finally:
        exporter.terminate()  # the exporter powers QEMU off as it stops
        exporter.wait(30)


def test_bringup_qemu_boots_logs_in_flashes_b_and_fetches_its_page(qemu_endpoint, jupyter_env, tmp_path):
    out = tmp_path / "bringup-qemu-out.ipynb"
    run = papermill("bringup-qemu.ipynb", out, jupyter_env, f"endpoint={qemu_endpoint}")
    assert run.returncode == 0, run.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    text = texts(nb)
    assert "Linux dut 6." in text and "x86_64" in text
    assert "(1, '')" in text  # false
    assert "*** DUT banner: disk image B ***" in text
    assert "(0, 'hello from image B')" in text
    assert "page: hello from image B" in text
    assert "breakpoint at ksys_sync" in text  # the debugger section
    assert "the screen shows: echo typed on the screen" in text  # the screen section, read by OCR
    assert any(
        "image/png" in output.get("data", {}) for cell in nb.cells for output in cell.get("outputs", [])
    )
    assert "power: off" in text
    print(f"executed bringup-qemu notebook: {out.stat().st_size} bytes", file=sys.stderr)


def test_smoke_test_passes_on_the_qemu_board_and_skips_what_it_lacks(qemu_endpoint, jupyter_env, tmp_path):
    out = tmp_path / "smoke-qemu-out.ipynb"
    run = papermill(
        "smoke-test.ipynb",
        out,
        jupyter_env,
        f"endpoint={qemu_endpoint}",
        "board=dut",
        "password=root",
        "expected_page=hello from",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    text = texts(nbformat.read(out, as_version=4))
    assert "PASS  boots to login" in text and "PASS  HTTP answers: hello from image" in text
    assert "SKIP  led follows `led on|off`: the board has no led" in text
    assert "SKIP  button reaches the board: the board has no button" in text
    assert "3/3 checks passed, 2 not for this board" in text
