"""CAN interop, both directions, with upstream jumpstarter-driver-can 0.9.0 as a real peer.

Both exporters serve configs/can.yaml (upstream type names): ``can`` and ``peer``, two
``Can`` nodes on one python-can virtual channel inside the exporter process.

* Direction 1: upstream's ``CanClient`` (peer/can_session.py under ``jmp shell``) against
  our exporter, and the same script against upstream's own exporter as the reference.
* Direction 2: our ``CanClient`` against upstream's ``jmp run``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import can
import pytest
from google.protobuf import json_format
from interop import clean_env

from jumpstarter_jupyter import connect
from jumpstarter_jupyter.drivers.can.client import CanClient
from jumpstarter_jupyter.drivers.can.common import CanMessage
from jumpstarter_jupyter.errors import DriverTimeout
from jumpstarter_jupyter.protocol.codec import encode

pytestmark = pytest.mark.upstream
PEER_SCRIPTS = Path(__file__).parent / "peer"


@pytest.fixture(scope="module")
def ours(start_our_exporter) -> str:
    return start_our_exporter("can.yaml")


@pytest.fixture(scope="module")
def upstream(start_upstream_exporter) -> str:
    return start_upstream_exporter("can.yaml")


def session(peer_python, address: str, *args: str) -> dict:
    done = peer_python(address, "can_session.py", *args)
    stdout = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return json.loads(stdout.split("RESULT ", 1)[1])


def frame(ident: int, data: bytes = b"") -> can.Message:
    return can.Message(arbitration_id=ident, data=data, is_extended_id=ident > 0x7FF)


# direction 1: upstream's client, our exporter ----------------------------------------------


def test_upstream_can_client_works_against_our_exporter_as_against_its_own(peer_python, ours, upstream):
    expected = {
        "client": "jumpstarter_driver_can.client.CanClient",
        "state": "ACTIVE",
        "protocol": "CAN_20",
        "received": [0x123, "deadbeef", False, True],
        "filtered": [0x201, 0x202],
        "periodic": [0x50, 0x50, 0x50],
        "after_stop": True,
    }
    assert session(peer_python, upstream) == expected  # the reference: upstream's own exporter
    assert session(peer_python, ours, "--shutdown") == {**expected, "after_shutdown": 0x60}


def test_our_encoding_of_can_values_is_upstreams(peer):
    done = subprocess.run(
        [str(peer / "bin/python"), str(PEER_SCRIPTS / "can_encoding.py")],
        capture_output=True,
        text=True,
        env=clean_env(peer),
        timeout=60,
        check=True,
    )
    theirs = [json.loads(line) for line in done.stdout.splitlines()]
    msg = can.Message(
        timestamp=1.5, arbitration_id=0x123, is_extended_id=False, data=b"\xde\xad\xbe\xef", channel="interop"
    )
    ours = [
        json_format.MessageToDict(encode(value)) for value in ((CanMessage.of(msg), False), (None, False))
    ]
    assert ours == theirs
    assert theirs[0][0]["data"] == "3q2+7w==" and theirs[0][0]["arbitration_id"] == 291.0


# direction 2: our client, upstream's exporter ----------------------------------------------


@pytest.fixture
def dut(upstream):
    with connect(upstream) as root:
        yield root


def test_our_can_client_against_upstreams_can(dut):
    assert isinstance(dut.can, CanClient) and not dut.can.streaming  # upstream: one call per frame
    assert dut.can.state == can.BusState.ACTIVE and dut.can.protocol == can.CanProtocol.CAN_20
    while dut.can.recv(0) is not None:
        pass
    dut.peer.send(frame(0x123, b"\xde\xad"))
    got = dut.can.recv(10)
    assert (got.arbitration_id, bytes(got.data), got.is_extended_id) == (0x123, b"\xde\xad", False)
    dut.can.set_filters([{"can_id": 0x200, "can_mask": 0x700}])
    try:
        for ident in (0x100, 0x201, 0x300, 0x202):
            dut.peer.send(frame(ident))
        assert [dut.can.recv(10).arbitration_id for _ in range(2)] == [0x201, 0x202]
    finally:
        dut.can.set_filters(None)  # upstream's filters belong to its bus: leave it open for others


def test_our_periodic_task_and_expect_on_upstreams_exporter(dut):
    task = dut.peer.send_periodic(frame(0x50, b"\x05"), period=0.01)
    assert [dut.can.expect(arbitration_id=0x50, timeout=10).data for _ in range(3)] == [b"\x05"] * 3
    task.stop()
    dut.peer.send(frame(0x51))
    dut.can.expect(arbitration_id=0x51, timeout=10)
    with pytest.raises(DriverTimeout, match=r"dut\.can\.expect: no frame with arbitration_id=0x52"):
        dut.can.expect(arbitration_id=0x52, timeout=0.3)


def test_our_client_shutdown_leaves_upstreams_bus_up(upstream):
    with connect(upstream) as first, connect(upstream) as second:
        first.can.shutdown()  # upstream's wire `shutdown` would close the bus for everyone: never sent
        second.peer.send(frame(0x61))
        assert second.can.expect(arbitration_id=0x61, timeout=10)
