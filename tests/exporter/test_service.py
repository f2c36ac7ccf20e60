"""The exporter over real sockets: report shape, errors, passphrase, restarts, cancellation."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import empty_pb2

from jumpstarter_jupyter import (
    AuthenticationFailed,
    ConnectionFailed,
    DriverError,
    DriverInvalidArgument,
    DriverMethodNotFound,
    DriverNotImplemented,
    DriverTimeout,
    connect,
)
from jumpstarter_jupyter.driver import Driver, LoopStream, export, exportstream
from jumpstarter_jupyter.drivers.composite.driver import Composite, Proxy
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.exporter import serve
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2_grpc
from support import client_for, serving, start_exporter


@dataclass
class Faulty(Driver):
    """A driver whose methods fail in every way a real one can."""

    started: threading.Event = None

    @export
    def boom(self) -> None:
        raise RuntimeError("relay stuck")

    @export
    def bad_value(self, volts: float) -> float:
        if volts < 0:
            raise ValueError(f"volts must be >= 0, got {volts}")
        return volts * 2

    @export
    def slow(self) -> None:
        raise TimeoutError("no answer from the relay board")

    @export
    def todo(self) -> None:
        raise NotImplementedError("not on this hardware")

    @export
    def count(self, n: int) -> Iterator[int]:
        yield from range(n)

    @export
    def forever(self) -> Iterator[int]:
        i = 0
        while True:
            if i == 3 and self.started:
                self.started.set()
            yield i
            i += 1

    @exportstream
    def connect(self):
        return LoopStream()


def tree() -> Composite:
    root = Composite()
    group = Composite()
    group.children = {"inner": MockPower()}
    power = MockPower()
    power.description = "Main power"
    root.children = {
        "power": power,
        "group": group,
        "alias": Proxy(ref="power", target=power),
        "faulty": Faulty(),
    }
    return root


def test_report_is_preorder_with_one_root_names_and_upstream_client_classes():
    with serving(tree()) as exporter:
        channel = grpc.insecure_channel(exporter.address)
        report = jumpstarter_pb2_grpc.ExporterServiceStub(channel).GetReport(empty_pb2.Empty())
        channel.close()
    entries = list(report.reports)
    uuid.UUID(report.uuid)
    assert not entries[0].HasField("parent_uuid")
    seen = set()
    for entry in entries:
        uuid.UUID(entry.uuid)
        if entry.HasField("parent_uuid"):
            assert entry.parent_uuid in seen, "parents come before children"
            assert entry.labels["jumpstarter.dev/name"]
        seen.add(entry.uuid)
    names = [e.labels.get("jumpstarter.dev/name") for e in entries]
    assert names == [None, "power", "group", "inner", "alias", "faulty"]
    clients = [e.labels["jumpstarter.dev/client"] for e in entries]
    assert clients[:2] == [
        "jumpstarter_driver_composite.client.CompositeClient",
        "jumpstarter_driver_power.client.PowerClient",
    ]
    assert entries[4].uuid == entries[1].uuid and entries[4].description == "Main power"  # proxy
    methods = json.loads(entries[1].labels["jumpstarter-jupyter.dev/methods"])
    assert {m["name"]: m["kind"] for m in methods} == {
        "on": "call",
        "off": "call",
        "read": "streaming",
        "state": "call",
        "watch": "streaming",
        "metered": "call",
    }


def test_client_tree_mirrors_the_report():
    with serving(tree()) as exporter, connect(exporter.address) as dut:
        assert [c.name for c in dut] == ["power", "group", "alias", "faulty"]
        assert dut["group.inner"] is dut.group.inner
        dut.alias.on()
        assert dut.power.state() is True
        assert "power" in dir(dut)
        with pytest.raises(AttributeError, match="dut has no child or attribute 'powr'; children: power"):
            dut.powr  # noqa: B018 - the attribute access is what raises


def test_driver_errors_name_path_method_and_reason_and_keep_the_exporter_serving():
    with client_for(Faulty(), "relay") as relay:
        with pytest.raises(DriverError, match=r"^dut.relay.boom: relay stuck \[RuntimeError\]$"):
            relay.call("boom")
        with pytest.raises(DriverInvalidArgument, match=r"dut.relay.bad_value: volts must be >= 0, got -1.0"):
            relay.call("bad_value", -1)
        with pytest.raises(DriverInvalidArgument, match=r"volts: expected float, got text 'x'"):
            relay.call("bad_value", "x")
        with pytest.raises(
            DriverInvalidArgument, match=r"Faulty.bad_value\(\) takes 1 argument \(volts\) but 2 were given"
        ):
            relay.call("bad_value", 1, 2)
        with pytest.raises(DriverTimeout, match="no answer"):
            relay.call("slow")
        with pytest.raises(DriverNotImplemented, match="not on this hardware"):
            relay.call("todo")
        with pytest.raises(
            DriverMethodNotFound, match=r"dut.relay.nosuch: no such method; exported: boom, bad_value"
        ):
            relay.call("nosuch")
        with pytest.raises(
            DriverMethodNotFound, match=r"dut.relay.count: is a streaming method: use streamingcall\(\)"
        ):
            relay.call("count", 2)
        assert relay.call("bad_value", volts=2) == 4.0  # keyword arguments travel by position
        assert list(relay.streamingcall("count", 3)) == [0.0, 1.0, 2.0]


def test_a_client_cancelling_mid_stream_leaves_the_exporter_serving():
    started = threading.Event()
    with client_for(Faulty(started=started), "relay") as relay:
        values = relay.streamingcall("forever")
        assert [next(values) for _ in range(5)] == [0.0, 1.0, 2.0, 3.0, 4.0]
        values.close()
        with relay.stream() as stream:
            stream.send(b"half a message")
            assert stream.receive() == b"half a message"
        # the byte stream was cancelled without EOF; the exporter still answers
        assert relay.call("bad_value", 1) == 2.0


def test_loop_stream_echoes_until_eof():
    with client_for(Faulty(), "relay") as relay, relay.stream() as stream:
        stream.send(b"x" * (3 << 20))
        stream.send_eof()
        received = b""
        while data := stream.receive():
            received += data
        assert received == b"x" * (3 << 20)


def test_passphrase_is_required_on_every_call(tmp_path):
    with serving(tree(), passphrase="s3cret") as exporter:
        with pytest.raises(AuthenticationFailed, match="invalid or missing passphrase"):
            connect(exporter.address)
        with pytest.raises(AuthenticationFailed, match="invalid or missing passphrase"):
            connect(exporter.address, passphrase="wrong")
        with connect(exporter.address, passphrase="s3cret") as dut:
            dut.power.on()
        channel = grpc.insecure_channel(exporter.address)
        stub = jumpstarter_pb2_grpc.ExporterServiceStub(channel)
        for call, request in ((stub.GetReport, empty_pb2.Empty()), (stub.GetStatus, pb.GetStatusRequest())):
            with pytest.raises(grpc.RpcError) as failure:
                call(request)
            assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert failure.value.details() == "invalid or missing passphrase"
        channel.close()


def test_status_is_lease_ready_and_end_session_does_not_break_the_exporter():
    with serving(tree()) as exporter:
        channel = grpc.insecure_channel(exporter.address)
        stub = jumpstarter_pb2_grpc.ExporterServiceStub(channel)
        stub.EndSession(pb.EndSessionRequest())
        status = stub.GetStatus(pb.GetStatusRequest())
        assert (status.status, status.message, status.status_version) == (4, "Ready for commands", 1)
        channel.close()


def test_unreachable_exporter_fails_fast_with_a_readable_error(tmp_path):
    with pytest.raises(ConnectionFailed, match=r"exporter at .* is not reachable .*is it running\?"):
        connect(f"unix:{tmp_path}/nobody.sock")


def test_same_client_works_again_after_the_exporter_process_restarts(tmp_path):
    config_path, socket_path = tmp_path / "board.yaml", tmp_path / "board.sock"
    config_path.write_text(CONFIG)
    exporter = start_exporter("run", config_path, "--socket", socket_path)
    dut = connect(str(socket_path))
    try:
        dut.power.on()
        exporter.terminate()
        exporter.wait()
        with pytest.raises(ConnectionFailed, match="not reachable"):
            dut.power.on()
        exporter = start_exporter("run", config_path, "--socket", socket_path)  # new process, new UUIDs
        dut.power.on()
        assert dut.power.state() is True
        assert dut.group.inner.state() is False
    finally:
        dut.close()
        exporter.terminate()
        exporter.wait()


CONFIG = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  power:
    type: jumpstarter_driver_power.driver.MockPower
  group:
    children:
      inner:
        type: MockPower
"""


def test_a_second_exporter_on_a_live_socket_is_refused(tmp_path):
    with serving(tree()) as first:
        with pytest.raises(OSError, match="in use"):
            serve(tree(), socket=first.address[len("unix:") :])
