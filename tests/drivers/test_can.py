"""CAN bus: Can on python-can's virtual bus inside a real exporter, our CanClient, fan-out, the CLI.

Every exporter serves two ``Can`` drivers on one virtual channel: ``can`` (the bus under
test) and ``peer`` (another node on the same bus), so frames originate inside the exporter
process, as they would from an ECU on a lab host's ``can0``.
"""

from __future__ import annotations

import itertools

import can
import pytest

from jumpstarter_jupyter import DriverInvalidArgument, connect
from jumpstarter_jupyter.drivers.can.cli import parse_frame
from jumpstarter_jupyter.drivers.can.client import CanClient
from jumpstarter_jupyter.errors import DriverTimeout
from jumpstarter_jupyter.exporter.config import build_tree, parse_config
from support import run_cli, serving

CHANNELS = (f"test-can-{n}" for n in itertools.count())
UPSTREAM_CONFIG = """
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
metadata: {{namespace: default, name: can}}
export:
  can:
    type: jumpstarter_driver_can.driver.Can
    config: {{channel: {channel}, interface: virtual{extra}}}
  peer:
    type: jumpstarter_driver_can.driver.Can
    config: {{channel: {channel}, interface: virtual}}
"""


def bus_tree(**extra):
    """``can`` and ``peer`` on a fresh virtual channel, from a config with upstream's type names."""
    options = "".join(f", {key}: {value}" for key, value in extra.items())
    return build_tree(parse_config(UPSTREAM_CONFIG.format(channel=next(CHANNELS), extra=options)))


@pytest.fixture(scope="module")
def exporter():
    with serving(bus_tree(), tcp=True) as served:
        yield served


@pytest.fixture
def dut(exporter):
    with connect(exporter.address) as root:
        yield root


def frame(ident: int, data: bytes = b"", **options) -> can.Message:
    return can.Message(arbitration_id=ident, data=data, is_extended_id=ident > 0x7FF, **options)


def drain(bus) -> None:
    """Take what this client has received so far (frames other tests left on the shared bus)."""
    while bus.recv(0) is not None:
        pass


def test_upstream_config_runs_unchanged_and_gets_our_client(dut):
    assert isinstance(dut.can, CanClient) and isinstance(dut.can, can.BusABC)
    assert dut.can.streaming
    assert dut.can.state == can.BusState.ACTIVE
    assert dut.can.protocol == can.CanProtocol.CAN_20
    assert "virtual" in dut.can.channel_info.lower()


def test_frames_cross_the_bus_with_their_fields(dut):
    sent = [
        frame(0x123, b"\xde\xad\xbe\xef"),
        frame(0x1ABCDE01, b"\x00\xff"),
        frame(0x7FF, is_remote_frame=True, dlc=3),
        frame(0x456, bytes(range(12)), is_fd=True, bitrate_switch=True),
    ]
    for msg in sent:
        dut.peer.send(msg)
    for msg in sent:
        got = dut.can.recv(10)
        assert got is not None and got.equals(
            msg, timestamp_delta=None, check_channel=False, check_direction=False
        )
        assert got.is_rx and got.timestamp > 0


def test_iteration_notifier_and_expect(dut):
    for ident in (0x10, 0x11, 0x12):
        dut.peer.send(frame(ident, b"\x01"))
    assert [m.arbitration_id for m in itertools.islice(dut.can, 2)] == [0x10, 0x11]
    assert dut.can.expect(arbitration_id=0x12, timeout=10).data == b"\x01"
    reader = can.BufferedReader()
    notifier = can.Notifier(dut.can, [reader])
    try:
        dut.peer.send(frame(0x20, b"\x02"))
        assert reader.get_message(10).arbitration_id == 0x20
    finally:
        notifier.stop()


def test_expect_times_out_naming_what_it_waited_for(dut):
    dut.peer.send(frame(0x30))
    with pytest.raises(
        DriverTimeout,
        match=r"dut\.can\.expect: no frame with arbitration_id=0x31 within 0\.5 s "
        r"\(1 other frames received\)",
    ):
        dut.can.expect(arbitration_id=0x31, timeout=0.5)


def test_three_readers_each_get_their_filtered_frames_in_order_and_see_transmissions(exporter):
    with (
        connect(exporter.address) as a,
        connect(exporter.address) as b,
        connect(exporter.address) as c,
        connect(exporter.address) as sender,
    ):
        a.can.set_filters([{"can_id": 0x100, "can_mask": 0x700}])
        b.can.set_filters([{"can_id": 0x200, "can_mask": 0x700}, {"can_id": 0x001, "can_mask": 0x00F}])
        received = list(range(0x100, 0x300, 0x11))
        for ident in received:
            sender.peer.send(frame(ident))
        assert [c.can.recv(10).arbitration_id for _ in received] == received  # all in the ring now
        sender.can.send(frame(0x105, b"tx"))  # transmitted through the bus under test itself
        wanted = {
            a: [i for i in received if i >> 8 == 1] + [0x105],
            b: [i for i in received if i >> 8 == 2 or i & 0xF == 1],
            c: [0x105],
        }
        for root, idents in wanted.items():
            got = [root.can.recv(10) for _ in idents]
            assert [m.arbitration_id for m in got] == idents
            assert [m.is_rx for m in got] == [i != 0x105 for i in idents]
        sender.peer.send(frame(0x2FF))  # its own transmission is not echoed to it (python-can's default)
        seen = list(iter(lambda: sender.can.recv(10).arbitration_id, 0x2FF))
        assert seen == received


def test_a_slow_reader_gets_a_gap_notice_then_the_newest_frames_in_order():
    with (
        serving(bus_tree(buffer=16)) as served,
        connect(served.address) as slow,
        connect(served.address) as fast,
    ):
        gaps = []
        slow.can.on_gap = gaps.append
        first = fast.can.recv(0)  # the fast reader is following from here on
        assert first is None
        for n in range(100):
            slow.peer.send(frame(0x100, n.to_bytes(1, "big")))
        assert [fast.can.recv(10).data[0] for _ in range(100)] == list(
            range(100)
        )  # the ring has them all now
        received = [slow.can.recv(10).data[0]]
        while (msg := slow.can.recv(0)) is not None:
            received.append(msg.data[0])
        assert len(gaps) == 1 and gaps[0] > 0 and slow.can.missed == gaps[0]
        assert received == list(range(gaps[0], 100))


def test_a_receive_that_times_out_loses_no_frame(dut):
    assert dut.can.recv(0.05) is None
    dut.peer.send(frame(0x40, b"\x01"))
    dut.peer.send(frame(0x41, b"\x02"))
    assert dut.can.expect(arbitration_id=0x40, timeout=10)
    with pytest.raises(DriverTimeout):
        dut.can.expect(arbitration_id=0x99, timeout=0)  # gives up before taking anything
    assert dut.can.recv(10).arbitration_id == 0x41


def test_periodic_task_runs_on_the_exporter_and_stops(dut):
    drain(dut.can)
    task = dut.peer.send_periodic(frame(0x50, b"\x05"), period=0.01, autostart=False)
    task.start()
    assert [dut.can.recv(10).arbitration_id for _ in range(3)] == [0x50] * 3
    task.stop()
    with pytest.raises(DriverInvalidArgument, match="no periodic task"):
        dut.peer.call("_stop_task", task.id)
    drain(dut.can)
    dut.peer.send(frame(0x51))  # after the stop returned nothing of the task follows this marker
    assert dut.can.expect(arbitration_id=0x51, timeout=10)
    assert dut.can.recv(0) is None


def test_shutdown_ends_only_this_clients_use(exporter):
    with connect(exporter.address) as first, connect(exporter.address) as second:
        first.can.shutdown()
        second.peer.send(frame(0x60))
        assert second.can.expect(arbitration_id=0x60, timeout=10)
        first.peer.call("shutdown")  # upstream's wire method: still only a client's use
        second.peer.send(frame(0x61))
        assert second.can.expect(arbitration_id=0x61, timeout=10)


def test_bad_frames_and_filters_are_refused_naming_driver_method_and_reason(dut):
    with pytest.raises(DriverInvalidArgument, match=r"dut\.can\.send: msg\.arbitration_id: expected int"):
        dut.can.call(
            "send",
            {
                "timestamp": 0,
                "arbitration_id": "x",
                "is_extended_id": False,
                "is_remote_frame": False,
                "is_error_frame": False,
                "channel": None,
                "dlc": 1,
                "data": "AA==",
                "is_fd": False,
                "is_rx": False,
                "bitrate_switch": False,
                "error_state_indicator": False,
            },
        )
    with pytest.raises(DriverInvalidArgument, match=r"dut\.can\.send: .*not a valid CAN frame"):
        dut.can.send(can.Message(arbitration_id=0x800, is_extended_id=False))
    with pytest.raises(
        DriverInvalidArgument, match=r"dut\.can\._apply_filters: filters\[0\]: Can.*needs 'can_mask'"
    ):
        dut.can.call("_apply_filters", [{"can_id": 1}])
    with pytest.raises(ValueError, match=r"filters\[0\]: can_id and can_mask must be 29-bit"):
        dut.can.set_filters([{"can_id": 1 << 30, "can_mask": 1}])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("123#DEADBEEF", frame(0x123, b"\xde\xad\xbe\xef")),
        ("12345678#00.11", frame(0x12345678, b"\x00\x11")),
        ("7FF#R3", frame(0x7FF, is_remote_frame=True, dlc=3)),
        ("123##1" + "AA" * 12, frame(0x123, b"\xaa" * 12, is_fd=True, bitrate_switch=True)),
    ],
)
def test_cansend_syntax(text, expected):
    assert parse_frame(text).equals(expected, timestamp_delta=None)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("800#00", "at most 7FF"),
        ("123#0", "whole bytes"),
        ("123#" + "00" * 9, "at most 8"),
        ("12#00", "not a frame"),
    ],
)
def test_cansend_syntax_errors(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_frame(text)


def test_cli_send_dump_log_and_state(dut, tmp_path):
    result = run_cli(dut.can, "send", "123#DEADBEEF")
    assert result.returncode == 0, result.stderr
    assert dut.peer.expect(arbitration_id=0x123, timeout=10).data == b"\xde\xad\xbe\xef"
    bad = run_cli(dut.can, "send", "123#XY")
    assert bad.returncode == 2 and "is not a frame" in bad.stderr
    # dump and log start whenever their process is ready: a periodic task feeds them meanwhile
    task = dut.peer.send_periodic(frame(0x2A5, b"\x01\x02"), period=0.02)
    try:
        dump = run_cli(dut.can, "dump", "--filter", "2A5:7FF", "-n", "2")
        log = run_cli(dut.can, "log", str(tmp_path / "bus.log"), "-n", "3")
    finally:
        task.stop()
    assert dump.returncode == 0, dump.stderr
    assert [line.split()[1:] for line in dump.stdout.splitlines()] == [["2A5", "[2]", "01", "02"]] * 2
    assert log.returncode == 0, log.stderr
    logged = list(can.LogReader(str(tmp_path / "bus.log")))
    assert [(m.arbitration_id, bytes(m.data)) for m in logged] == [(0x2A5, b"\x01\x02")] * 3
    state = run_cli(dut.can, "state")
    assert state.returncode == 0 and "state: ACTIVE" in state.stdout and "protocol: CAN_20" in state.stdout
