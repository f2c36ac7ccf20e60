"""``%jmp connect`` to an upstream ``jmp run`` exporter in a real kernel (nbclient) renders the device panel.

The notebook is executed headless with its widget state saved, as a CI run saves it; the
panel is then read back from that state: a box whose children are the power widget (with
its buttons' state) and the serial terminal, which shows what the board's loop:// echoed.
"""

from __future__ import annotations

import base64

import nbformat
import pytest
from interop import clean_env
from nbclient import NotebookClient

pytestmark = pytest.mark.upstream

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
GREETING = "hello from the notebook"


@pytest.fixture(scope="module")
def exporter(start_upstream_exporter) -> str:
    return start_upstream_exporter("upstream.yaml")


def notebook(address: str) -> nbformat.NotebookNode:
    cells = [
        "%load_ext jumpstarter",
        f"%jmp connect {address}",
        f"dut.power.on()\ndut.serial.write(b'{GREETING}\\n')\ndut.serial.expect('{GREETING}', timeout=60)",
        # traits are refreshed by the widgets' flushers: wait until the terminal shows the echo
        # and the chart has readings (polled from upstream's finite read())
        "import threading\n"
        "from jumpstarter_jupyter.client.display import widget_for\n"
        "def shown(widget, trait, test):\n"
        "    seen = threading.Event()\n"
        "    widget.observe(lambda change: test(change.new) and seen.set(), trait)\n"
        "    return test(getattr(widget, trait)) or seen.wait(60)\n"
        "terminal, power = widget_for(dut.serial), widget_for(dut.power)\n"
        f"print('echo shown:', shown(terminal, 'scrollback', lambda value: b'{GREETING}' in value))\n"
        "print('readings shown:', shown(power, 'readings', bool))\n"
        "print(terminal.status or 'no status', '|', terminal.error or 'no error')",
        # observers fire inside the flusher's hold_sync, before its update message goes out (on
        # the flusher's thread, which a loaded machine may not run for a while): send the traits
        # from this cell, so the kernel publishes them before the cell ends and nbclient saves them
        "terminal.send_state('scrollback')\npower.send_state('readings')\nprint('synced')",
    ]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in cells])


def executed(address: str, home) -> nbformat.NotebookNode:
    env = clean_env()
    for name in (
        "IPYTHONDIR",
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "MPLCONFIGDIR",
    ):
        (home / name).mkdir()
        env[name] = str(home / name)
    nb = notebook(address)
    # the kernel runs in `home`: the serial widget writes its console log into the working directory
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=180,
        store_widget_state=True,
        resources={"metadata": {"path": str(home)}},
    ).execute(env=env)
    return nb


def scrollback(model: dict) -> bytes:
    """The serial widget's saved ``scrollback`` (a binary trait: stored as a base64 buffer)."""
    for buffer in model.get("buffers", []):
        if buffer["path"] == ["scrollback"]:
            return base64.b64decode(buffer["data"])
    return model["state"].get("scrollback", "").encode()


def test_jmp_connect_renders_the_device_panel_for_an_upstream_exporter(exporter, tmp_path):
    nb = executed(exporter, tmp_path)
    models = nb.metadata.widgets[WIDGET_STATE]["state"]
    connect_outputs = [o for o in nb.cells[1].outputs if WIDGET_VIEW in o.get("data", {})]
    assert len(connect_outputs) == 1, nb.cells[1].outputs
    panel = models[connect_outputs[0]["data"][WIDGET_VIEW]["model_id"]]
    parts = [models[ref.removeprefix("IPY_MODEL_")] for ref in panel["state"]["children"]]
    by_path = {part["state"].get("path"): part for part in parts if "path" in part["state"]}

    header = parts[0]["state"]["value"]
    assert exporter in header and "Interop test exporter" in header
    # the header, the lease bar (hidden: upstream exporters have no lease service), then power,
    # serial, net, storage, group, deadnet
    assert len(parts) == 2 + 6 and parts[1]["state"]["supported"] is False
    assert {"dut.power", "dut.serial"} <= set(by_path)
    power = by_path["dut.power"]["state"]
    assert power["state"] == "unknown"  # upstream's MockPower cannot tell; the buttons still work
    assert power["error"] == "", power["error"]
    assert power["readings"], "the chart got no readings from upstream's read()"
    serial = by_path["dut.serial"]
    assert GREETING.encode() in scrollback(serial), serial["state"]
    shown = "".join(output.get("text", "") for output in nb.cells[3].outputs).splitlines()
    assert shown[:2] == ["echo shown: True", "readings shown: True"], shown
    assert shown[2].endswith("| no error"), shown
