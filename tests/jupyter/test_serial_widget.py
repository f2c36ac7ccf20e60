"""The serial terminal widget: a 10 MB console flood in a real kernel (nbclient), and an
exporter restart under a live widget.

The exporter (a ``loop://`` PySerial, which echoes what is written) runs in the test process;
the kernel connects to it, displays ``dut.serial`` and floods it in 1 MB blocks. Checks: every
byte reaches ``expect()`` and the widget's log file; every output message the front end gets
carries bytes that are exactly the console's at that offset; the front end gets as many output
messages as the widget says it sent, each within the per-flush budget; the saved widget state
ends with the console's last 64 KiB.
"""

from __future__ import annotations

import base64
import json

import nbformat
import pytest
from kernels import WAIT_UNTIL
from nbclient import NotebookClient

from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.serial.driver import PySerial
from jumpstarter_jupyter.drivers.serial.widget import SCROLLBACK, VIEW_BUDGET
from support import serving, wait_for

BLOCKS = 10
BLOCK_LINES = 12_500  # lines of 80 bytes: 1 MB per block, 10 MB in all


# one block of the flood, ending with its own marker line (what expect() waits for); the
# kernel runs the same source
BLOCK_SOURCE = """
def block(index):
    lines = b"".join(b"%02d:%06d the quick brown fox jumps over the lazy dog "
                     b"0123456789 abcdefghijklm\\r\\n" % (index, n)
                     for n in range(BLOCK_LINES))
    return lines + b"END-OF-BLOCK-%02d\\r\\n" % index
"""
exec(BLOCK_SOURCE)  # defines block(), which the kernel runs too
block = globals()["block"]

FLOOD_CELL = (
    WAIT_UNTIL
    + """
import json, time
from jumpstarter_jupyter.drivers.serial.widget import SerialWidget

widget = SerialWidget.for_client(dut.serial)
flood, seen = b"", ""
for index in range(BLOCKS):
    data = block(index)
    flood += data
    dut.serial.write(data)
    dut.serial.expect("END-OF-BLOCK-%02d\\r\\n" % index, timeout=120)
    seen += dut.serial.before + dut.serial.after

# the flusher drains the view ring and syncs the scrollback trait on its own schedule
wait_until(lambda: widget.bytes_logged >= len(flood), 60, "the log file")
wait_until(lambda: widget.scrollback_end == len(flood) and widget.view_end == len(flood), 60, "the views")
with open(widget.log_path, "rb") as log:
    logged = log.read()
print("RESULT " + json.dumps({
    "flood": len(flood), "expect_exact": seen.encode() == flood, "log_exact": logged == flood,
    "messages_sent": widget.messages_sent, "model_id": widget.model_id}))
"""
)


class CountingClient(NotebookClient):
    """nbclient, recording the serial widget's custom output messages as a front end gets them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outputs: dict[str, list[tuple[int, bytes]]] = {}

    def handle_comm_msg(self, outs, msg, cell_index):
        data = msg["content"]["data"]
        if (
            msg["msg_type"] == "comm_msg"
            and data.get("method") == "custom"
            and data["content"].get("type") == "output"
        ):
            piece = bytes(msg["buffers"][0]) if msg["buffers"] else b""
            self.outputs.setdefault(msg["content"]["comm_id"], []).append((data["content"]["offset"], piece))
        super().handle_comm_msg(outs, msg, cell_index)


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """Private IPython/Jupyter/matplotlib directories for the kernel."""
    for var in (
        "IPYTHONDIR",
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "MPLCONFIGDIR",
    ):
        (tmp_path / var).mkdir()
        monkeypatch.setenv(var, str(tmp_path / var))
    monkeypatch.delenv("JUMPSTARTER_HOST", raising=False)
    return tmp_path


@pytest.mark.notebook
def test_flood_reaches_expect_log_and_views_exactly(kernel_env):
    root = Composite()
    root.children = {"serial": PySerial(url="loop://")}
    with serving(root) as exporter:
        cells = [
            f"import jumpstarter_jupyter as jj\ndut = jj.connect({exporter.address!r})\ndut.serial",
            f"BLOCKS, BLOCK_LINES = {BLOCKS}, {BLOCK_LINES}\n{BLOCK_SOURCE}\n{FLOOD_CELL}",
            "dut.close()",
        ]
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        client = CountingClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            store_widget_state=True,
            resources={"metadata": {"path": str(kernel_env)}},
        )
        client.execute()

    shown = notebook.cells[0].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in shown, shown
    printed = "".join(o.get("text", "") for o in notebook.cells[1].outputs)
    result = json.loads(printed.split("RESULT ", 1)[1])
    flood = b"".join(block(i) for i in range(BLOCKS))
    assert result["flood"] == len(flood) > 10_000_000
    assert result["expect_exact"], "expect() did not see the flood byte for byte"
    assert result["log_exact"], "the widget's log file is not the flood byte for byte"

    received = client.outputs[result["model_id"]]
    shown_bytes = sum(len(piece) for _, piece in received)
    print(
        f"flood {len(flood)} bytes -> {len(received)} output messages carrying {shown_bytes} bytes to the views"
    )
    assert len(received) == result["messages_sent"]
    for offset, piece in received:
        assert len(piece) <= VIEW_BUDGET
        assert piece == flood[offset : offset + len(piece)], (
            f"view bytes at offset {offset} differ from the console"
        )
    last_offset, last_piece = received[-1]
    assert last_offset + len(last_piece) == len(flood), "the views did not catch up with the end of the flood"

    saved = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"][
        result["model_id"]
    ]
    assert saved["state"]["scrollback_end"] == len(flood)
    buffers = {tuple(b["path"]): base64.b64decode(b["data"]) for b in saved.get("buffers", [])}
    assert buffers[("scrollback",)] == flood[-SCROLLBACK:]


def test_widget_follows_the_console_across_an_exporter_restart(tmp_path):
    """A restarted exporter's console counts from 0 again: the widget starts a new epoch
    instead of taking the new bytes for ones it already has."""
    from jumpstarter_jupyter.client import connect
    from jumpstarter_jupyter.drivers.serial.widget import SerialWidget
    from jumpstarter_jupyter.exporter import serve

    def board():
        root = Composite()
        root.children = {"serial": PySerial(url="loop://")}
        return root

    socket_path = str(tmp_path / "exporter.sock")
    exporter = serve(board(), socket=socket_path)
    with connect(f"unix:{socket_path}") as dut:
        widget = SerialWidget(dut.serial, log_path=tmp_path / "serial.log")
        dut.serial.write(b"first console: a long line that the new console will not reach\r\n")
        dut.serial.expect("will not reach")
        exporter.stop(grace=0)
        exporter = serve(board(), socket=socket_path)
        try:
            dut.serial.expect("the console starts over", timeout=60)
            dut.serial.write(b"second console\r\n")
            dut.serial.expect("second console", timeout=60)
            wait_for(lambda: widget.epoch == 1 and widget.scrollback_end == len(b"second console\r\n"))
            assert widget.scrollback == b"second console\r\n"
            assert widget.view_end == len(b"second console\r\n")
            log = (tmp_path / "serial.log").read_bytes()
            assert log.startswith(b"first console") and log.endswith(b"second console\r\n")
        finally:
            widget.close()
            exporter.stop(grace=0)
