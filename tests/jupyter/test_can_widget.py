"""The CAN widget in a real kernel (nbclient) under a flood of 10 000 frames/s.

The exporter (a ``Can`` on a python-can ``virtual`` channel) runs in the test process. The
kernel connects, displays ``dut.can`` and sends a start frame; a thread of the test, on the
same virtual channel, waits for that frame and then floods the bus with ``TOTAL`` frames at
``RATE`` frames/s (paced in bursts of 100). Checks: the widget's log file (python-can's
candump writer) holds every frame, in order, byte for byte; the widget's comm never sends
more than ``BUDGET`` messages in any second (by the kernel's own message timestamps), each
view message carries at most ``LOG_BUDGET`` frames, and the counts the view gets add up; the
saved widget state holds the whole table.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import can
import nbformat
import pytest
from kernels import WAIT_UNTIL
from nbclient import NotebookClient

from jumpstarter_jupyter.drivers.can.driver import Can
from jumpstarter_jupyter.drivers.can.widget import LOG_BUDGET
from jumpstarter_jupyter.drivers.composite.driver import Composite
from support import serving

TOTAL = 30_000  # frames: three seconds of flood
RATE = 10_000  # frames per second
IDS = 64  # distinct IDs in the flood: 0x200..0x23F
START_ID = 0x7FF  # the kernel's "ready" frame
BUDGET = 30  # messages per second per widget (Jupyter Server drops IOPub above 1000/s)

FLOOD_CELL = (
    WAIT_UNTIL
    + """
import json, time, can
from jumpstarter_jupyter.drivers.can.widget import CanWidget

widget = CanWidget.for_client(dut.can)
started = time.monotonic()
dut.can.send(can.Message(arbitration_id=START_ID, is_extended_id=False))  # the flood starts on it
wait_until(lambda: widget.frames_logged >= TOTAL + 1, 300, "the log file")
seconds = time.monotonic() - started
wait_until(lambda: widget.counts.get("frames") == TOTAL + 1 and not widget._log_pending, 60, "the views")
model_id = widget.model_id
widget.close()  # the writer's last bytes are on disk
expected = [(0x200 + n % IDS, n.to_bytes(4, "little")) for n in range(TOTAL)]
logged = [(m.arbitration_id, bytes(m.data)) for m in can.LogReader(widget.log_path)]
print("RESULT " + json.dumps({
    "logged": len(logged), "log_exact": logged == [(START_ID, b"")] + expected, "seconds": seconds,
    "messages_sent": widget.messages_sent, "model_id": model_id, "missed": widget.counts["missed"]}))
"""
)


class CommRecorder(NotebookClient):
    """nbclient, recording every comm message of the kernel as a front end gets them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.comm_messages: list[dict] = []

    def handle_comm_msg(self, outs, msg, cell_index):
        if msg["msg_type"] == "comm_msg":
            self.comm_messages.append(msg)
        super().handle_comm_msg(outs, msg, cell_index)


def flood(channel: str, done: threading.Event, report: dict) -> None:
    """Wait for the kernel's start frame, then send TOTAL frames at RATE frames/s."""
    with can.Bus(interface="virtual", channel=channel) as bus:
        while not done.is_set():
            msg = bus.recv(0.5)
            if msg is not None and msg.arbitration_id == START_ID:
                break
        else:
            return
        began = time.monotonic()
        for n in range(TOTAL):
            if n % 100 == 0:
                ahead = began + n / RATE - time.monotonic()
                if ahead > 0:
                    done.wait(ahead)  # pacing the load, not waiting for a result
            bus.send(
                can.Message(
                    arbitration_id=0x200 + n % IDS, data=n.to_bytes(4, "little"), is_extended_id=False
                )
            )
        report["rate"] = TOTAL / (time.monotonic() - began)


def busiest_second(messages: list[dict]) -> int:
    """The most messages sent within any one second, by the kernel's message timestamps."""
    stamps = sorted(m["header"]["date"] for m in messages)
    most, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= timedelta(seconds=1):
            first += 1
        most = max(most, last - first + 1)
    return most


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
def test_flood_stays_within_the_iopub_budget_and_the_log_gets_every_frame(kernel_env):
    channel = f"widget-flood-{time.monotonic_ns()}"
    root = Composite()
    root.children = {"can": Can(channel=channel, interface="virtual", buffer=1 << 17)}
    done, report = threading.Event(), {}
    flooder = threading.Thread(target=flood, args=(channel, done, report), daemon=True)
    flooder.start()
    try:
        with serving(root) as exporter:
            cells = [
                f"import jumpstarter_jupyter as jj\ndut = jj.connect({exporter.address!r})\ndut.can",
                f"TOTAL, IDS, START_ID = {TOTAL}, {IDS}, {START_ID}\n{FLOOD_CELL}",
                "dut.close()",
            ]
            notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
            client = CommRecorder(
                notebook,
                timeout=600,
                kernel_name="python3",
                store_widget_state=True,
                resources={"metadata": {"path": str(kernel_env)}},
            )
            client.execute()
    finally:
        done.set()
        flooder.join(30)

    shown = notebook.cells[0].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in shown, shown
    printed = "".join(o.get("text", "") for o in notebook.cells[1].outputs)
    assert "RESULT " in printed, printed
    result = json.loads(printed.split("RESULT ", 1)[1])
    assert result["missed"] == 0
    assert result["logged"] == TOTAL + 1 and result["log_exact"], "the log file is not every frame, in order"

    ours = [m for m in client.comm_messages if m["content"]["comm_id"] == result["model_id"]]
    views = [
        m["content"]["data"]["content"]
        for m in ours
        if m["content"]["data"].get("method") == "custom"
        and m["content"]["data"]["content"].get("type") == "frames"
    ]
    print(
        f"flood: {TOTAL} frames at {report.get('rate', 0):.0f} frames/s, logged in {result['seconds']:.1f} s; "
        f"{len(ours)} widget messages ({len(views)} view updates), busiest second {busiest_second(ours)}"
    )
    assert busiest_second(ours) <= BUDGET
    assert all(len(view["log"]) <= LOG_BUDGET for view in views)
    last = views[-1]["counts"]
    assert last["frames"] == TOTAL + 1 and last["shown"] + last["not_shown"] == TOTAL + 1
    assert sum(len(view["log"]) for view in views) == last["shown"]

    saved = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"][
        result["model_id"]
    ]
    rows = {row["id"]: row for row in saved["state"]["rows"]}
    assert len(rows) == IDS + 1 and rows["7FF"]["dir"] == "TX"
    assert sum(row["count"] for row in rows.values()) == TOTAL + 1
    last_of_23f = max(n for n in range(TOTAL) if n % IDS == IDS - 1)
    assert rows["23F"]["data"] == " ".join(f"{b:02X}" for b in last_of_23f.to_bytes(4, "little"))


def test_filters_form_and_database_in_the_widget(tmp_path):
    """The widget's own logic through a real exporter, in this process: filters hide IDs,
    the form sends (and refuses bad input in the banner), a DBC names the signals."""
    from jumpstarter_jupyter.client import connect
    from jumpstarter_jupyter.drivers.can.widget import CanWidget
    from jumpstarter_jupyter.drivers.virtual.firmware_can import DBC, status_data
    from support import wait_for

    channel = f"widget-form-{time.monotonic_ns()}"
    root = Composite()
    root.children = {
        "can": Can(channel=channel, interface="virtual"),
        "peer": Can(channel=channel, interface="virtual"),
    }
    with serving(root) as exporter, connect(exporter.address) as dut:
        widget = CanWidget(dut.can, log_path=tmp_path / "bus.log")
        try:
            status = can.Message(
                arbitration_id=0x100, data=status_data(1.5, 40.0, True, False, 3, 0), is_extended_id=False
            )
            for msg in (status, can.Message(arbitration_id=0x200, data=b"\x01", is_extended_id=False)):
                dut.peer.send(msg)
            wait_for(
                lambda: {row["id"] for row in widget.rows} == {"100", "200"}, 30, "both IDs in the table"
            )

            widget.action_load_dbc(str(DBC))
            wait_for(lambda: widget.dbc_path == str(DBC), 30, "the view to learn of the DBC, no frame needed")
            dut.peer.send(status)
            wait_for(
                lambda: any(row["message"] == "Status" and "Led=on" in row["signals"] for row in widget.rows),
                30,
                "the Status row decoded",
            )
            assert (
                widget.dbc_path == str(DBC) and widget.chart_unit == "s"
            )  # the first signal, Uptime, is charted
            assert {"name": "Temperature", "unit": "degC"} in widget.signals[0]["signals"]

            widget.filters = "100:7FF"
            wait_for(lambda: [row["id"] for row in widget.rows] == ["100"], 30, "the filter to hide 200")
            widget.filters = "1OO"
            wait_for(
                lambda: widget.error == "filters: '1OO': expected ID:MASK in hex, e.g. 123:7FF",
                30,
                "the refusal",
            )

            widget.action_send("321", "ca fe", False, False)
            assert bytes(dut.peer.expect(arbitration_id=0x321, timeout=10).data) == b"\xca\xfe"
            widget.submit("send", widget.action_send, "800", "", False, False)  # what a click runs
            wait_for(
                lambda: widget.error.startswith("send: ID 800 is out of range"),
                30,
                "the refusal in the banner",
            )
            widget.action_send_periodic("12345678", "", True, True, 0.02)
            assert dut.peer.expect(arbitration_id=0x12345678, timeout=10).is_remote_frame
            wait_for(
                lambda: [task["text"] for task in widget.periodic] == ["12345678#R every 0.02 s"],
                30,
                "the task",
            )
            widget.action_stop_periodic(widget.periodic[0]["key"])
            wait_for(lambda: widget.periodic == [], 30, "the task to be gone from the list")
        finally:
            widget.close()
    logged = list(can.LogReader(str(tmp_path / "bus.log")))
    assert [m.arbitration_id for m in logged[:3]] == [0x100, 0x200, 0x100]


def test_widget_follows_the_bus_across_an_exporter_restart(tmp_path):
    """The exporter restarts (new drivers, new ring): the widget subscribes again by itself."""
    from jumpstarter_jupyter.client import connect
    from jumpstarter_jupyter.drivers.can.widget import CanWidget
    from jumpstarter_jupyter.errors import ConnectionFailed
    from jumpstarter_jupyter.exporter import serve
    from support import wait_for

    def bus():
        channel = f"widget-restart-{time.monotonic_ns()}"
        root = Composite()
        root.children = {
            "can": Can(channel=channel, interface="virtual"),
            "peer": Can(channel=channel, interface="virtual"),
        }
        return root

    socket_path = str(tmp_path / "exporter.sock")
    exporter = serve(bus(), socket=socket_path)
    with connect(f"unix:{socket_path}") as dut:
        widget = CanWidget(dut.can, log_path=tmp_path / "bus.log")
        try:
            dut.peer.send(can.Message(arbitration_id=0x101, data=b"\x01", is_extended_id=False))
            wait_for(lambda: widget.frames_logged == 1, 30, "the first exporter's frame")
            exporter.stop(grace=0)
            exporter = serve(bus(), socket=socket_path)

            def sent_and_seen() -> bool:
                """Send a frame on the new exporter's bus; True once the widget's new reader got one."""
                try:
                    dut.peer.send(can.Message(arbitration_id=0x102, is_extended_id=False))
                except ConnectionFailed:  # the first call after the restart finds the old channel's failure
                    return False
                return widget.frames_logged > 1

            wait_for(sent_and_seen, 60, "the widget to follow the new exporter's bus")
            wait_for(lambda: widget.error == "", 30, "the banner to clear")
        finally:
            widget.close()
            exporter.stop(grace=0)
    logged = [m.arbitration_id for m in can.LogReader(str(tmp_path / "bus.log"))]
    assert logged[0] == 0x101 and set(logged[1:]) == {0x102}
