"""Both notebooks executed headless by papermill against ``jumpstarter-jupyter demo``.

Checks what a CI log and the executed notebook show: the text outputs, the saved widget state
(the device panel with every driver, the console in the terminal's state), papermill's exit
status, and, when a check fails, that the board was left powered off.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from kernels import demo, demo_board, jupyter_env  # noqa: F401  (fixtures)

from jumpstarter_jupyter.client import connect

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
RUN_TIMEOUT = 600
LOADER_LIMIT = 5_000  # bytes of a widget's saved `_esm` (its loader)
SAVED_LIMIT = (
    72_000  # bytes of the executed smoke test, its saved console scrollback aside (8 widgets, ~5 KB each)
)
STRING_LIMIT = 100_000  # characters of any one string in a saved notebook

pytestmark = pytest.mark.notebook


def papermill(notebook: str, out: Path, env: dict, *parameters: str) -> subprocess.CompletedProcess:
    """Run papermill as CI would; returns the finished process (output captured)."""
    args = [sys.executable, "-m", "papermill", str(NOTEBOOKS / notebook), str(out), "--cwd", str(out.parent)]
    for pair in parameters:
        name, _, value = pair.partition("=")
        args += ["-p", name, value]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def texts(nb) -> str:
    """Every stream, result and error text of the executed notebook, in order."""
    out = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":  # a print may arrive in several pieces
                out.append(output["text"])
            else:
                out.append((output.get("data", {}).get("text/plain", "") or output.get("evalue", "")) + "\n")
    return "".join(out)


def longest_string(value) -> int:
    """Length of the longest string anywhere in a notebook's JSON (outputs, widget state, ...)."""
    if isinstance(value, str):
        return len(value)
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max(map(longest_string, children), default=0)


def widget_states(nb) -> dict[str, dict]:
    return nb.metadata.widgets[WIDGET_STATE]["state"]


def driver_widgets(nb) -> dict[str, dict]:
    """Saved driver widget models by driver path (``dut.power``)."""
    return {
        model["state"]["path"]: model for model in widget_states(nb).values() if model["state"].get("path")
    }


def test_smoke_test_passes_and_keeps_widget_state(demo, jupyter_env, tmp_path):
    out = tmp_path / "smoke-out.ipynb"
    run = papermill("smoke-test.ipynb", out, jupyter_env, f"endpoint={demo}")
    assert run.returncode == 0, run.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    text = texts(nb)
    for name in ("boots to login", "led follows `led on|off`", "button reaches the board", "HTTP answers"):
        assert f"PASS  {name}" in text
    assert "5/5 checks passed" in text
    assert re.search(r"^power readings: \d+\.\d\d V \d+\.\d{3} A, ", text, re.MULTILINE)
    assert "button: released" in text  # the console tail

    widgets = driver_widgets(nb)
    assert {"dut.power", "dut.serial", "dut.storage", "dut.network", "dut.button", "dut.led"} <= set(widgets)
    serial = widgets["dut.serial"]
    scrollback = base64.b64decode(
        next(b["data"] for b in serial.get("buffers", []) if b["path"] == ["scrollback"])
    )
    # the trait syncs at most once a second, so it may lag the run's last second: the boot log is there
    assert scrollback.startswith(b"\r\nU-Boot SPL")
    # state, not front ends: every widget's saved module is its loader of a few KB
    assert max(len(model["state"]["_esm"]) for model in widgets.values()) < LOADER_LIMIT
    saved_scrollback = len(next(b["data"] for b in serial["buffers"] if b["path"] == ["scrollback"]))
    size = out.stat().st_size
    assert size - saved_scrollback < SAVED_LIMIT, (
        f"{size} bytes, {saved_scrollback} of them the console scrollback"
    )
    assert longest_string(nb) < STRING_LIMIT
    # reported by the CI log (-s)
    print(f"executed smoke-test notebook: {size} bytes, {saved_scrollback} of them the console scrollback")

    with connect(demo) as dut:
        assert dut.power.state() is False


def test_a_failing_check_fails_the_run_powers_the_board_off_and_releases_it(jupyter_env, tmp_path):
    bad = tmp_path / "garbage.img"
    bad.write_bytes(b"not an image\n" * 100)
    out = tmp_path / "smoke-out.ipynb"
    with demo_board("--lease", "required") as board:
        run = papermill(
            "smoke-test.ipynb",
            out,
            jupyter_env,
            f"endpoint={board}",
            f"image={bad}",
            "boot_timeout=5",
            "lease_wait=30",
            "purpose=nightly smoke",
        )
        assert run.returncode != 0
        nb = nbformat.read(out, as_version=4)
        text = texts(nb)
        assert "PASS  card ready" in text
        assert "FAIL  boots to login" in text
        assert "SKIP  led follows `led on|off`: needs boots to login" in text
        assert "1/5 checks passed" in text
        # the saved lease bar: the teardown gave the lease back before the state was saved
        lease_bar = next(m["state"] for m in widget_states(nb).values() if "holder" in m["state"])
        assert lease_bar["required"] and lease_bar["holder"] == ""
        with connect(board, wait=0) as dut:  # wait=0: fails at once unless the run gave the lease back
            assert dut.power.state() is False
            assert "no bootable image" in dut.serial.log()  # the board was on, and failed to boot


def test_bringup_runs_headless(demo, jupyter_env, tmp_path):
    out = tmp_path / "bringup-out.ipynb"
    run = papermill("bringup.ipynb", out, {**jupyter_env, "JUMPSTARTER_HOST": demo})
    assert run.returncode == 0, run.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    text = texts(nb)
    for expected in (
        "Linux jumpstarter 6.6.32-jumpstarter",
        "led: 1",
        "led: 0",
        "button: pressed",
        'PRETTY_NAME="Jumpstarter Linux 2.0"',  # the flashed image booted
        "Jumpstarter Linux 2.0 on jumpstarter",
    ):  # through the network forward
        assert expected in text, f"{expected!r} not in the executed notebook:\n{text[-3000:]}"
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert "dut: disconnected" in text
    assert {"dut.power", "dut.serial", "dut.led", "dut.storage"} <= set(driver_widgets(nb))
