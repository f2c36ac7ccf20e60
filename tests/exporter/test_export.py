"""``@export``: what reaches the wire, its options, and who may reach the exporter at all."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from jumpstarter_jupyter import DriverMethodNotFound, connect
from jumpstarter_jupyter.driver import Driver, export
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.gpio.driver import DigitalInputInterface, MockDigitalInput
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.protocol.metadata import METHODS_LABEL, PASSPHRASE_KEY
from jumpstarter_jupyter.protocol.v1 import console_pb2, jumpstarter_pb2, jumpstarter_pb2_grpc, router_pb2
from support import client_for, serving, start_exporter


@dataclass
class Upstreamish(Driver):
    """Exports an underscore name on purpose, as upstream's CAN driver does."""

    @export(private=True)
    def _recv_internal(self, timeout: float) -> str:
        return f"nothing within {timeout} s"

    @export(readonly=True)
    async def temperature(self) -> float:
        return 41.5

    @export
    async def countdown(self, n: int) -> AsyncIterator[int]:
        for i in range(n, 0, -1):
            yield i

    def _helper(self) -> str:  # undecorated: never on the wire
        return "secret"

    def teardown(self) -> None:
        super().teardown()


def test_private_names_readonly_and_async_methods_travel_as_declared():
    with client_for(Upstreamish(), "dev") as dev:
        assert dev.call("_recv_internal", 0.5) == "nothing within 0.5 s"
        assert dev.call("temperature") == 41.5
        assert list(dev.streamingcall("countdown", 3)) == [3, 2, 1]
        channel = grpc.insecure_channel(dev.connection.endpoint)
        stub = jumpstarter_pb2_grpc.ExporterServiceStub(channel)
        for hidden in ("_helper", "teardown", "__init__", "__class__"):
            with pytest.raises(DriverMethodNotFound, match=f"dut.dev.{hidden}: no such method"):
                dev.call(hidden)
            with pytest.raises(grpc.RpcError) as refused:  # the exporter refuses it too
                stub.DriverCall(
                    jumpstarter_pb2.DriverCallRequest(uuid=dev.connection.uuid(dev.path), method=hidden)
                )
            assert (refused.value.code(), refused.value.details()) == (
                grpc.StatusCode.NOT_FOUND,
                f"method {hidden} not found on driver",
            )
        channel.close()
        methods = {m["name"]: m for m in json.loads(dev.labels[METHODS_LABEL])}
    assert set(methods) == {"_recv_internal", "temperature", "countdown"}
    assert methods["temperature"]["readonly"] and not methods["countdown"]["readonly"]


def test_export_refuses_private_dunder_and_lifecycle_names_with_the_reason():
    def _hidden(self): ...

    def __dunder__(self): ...

    def teardown(self): ...

    with pytest.raises(TypeError, match="private methods are not exported; use @export\\(private=True\\)"):
        export(_hidden)
    with pytest.raises(TypeError, match="dunder methods cannot be exported"):
        export(private=True)(__dunder__)
    with pytest.raises(TypeError, match="'teardown' is the driver lifecycle method"):
        export(teardown)


def test_overrides_keep_the_interfaces_readonly_marks():
    exports = MockDigitalInput.exports
    assert DigitalInputInterface.exports["read_pin"].readonly
    assert {name for name, method in exports.items() if method.readonly} == {
        "read_pin",
        "wait_for_active",
        "wait_for_inactive",
        "wait_for_edge",
        "watch",
    }
    assert not MockPower.exports["on"].readonly and MockPower.exports["read"].readonly


def _every_rpc():
    """(path, request, streaming request?, streaming response?) for every method of every service we serve."""
    for module in (jumpstarter_pb2, router_pb2, console_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.name == "ControllerService":
                continue  # the upstream controller's: exporters and clients call it, none serves it
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                yield path, method.input_type, method.client_streaming, method.server_streaming


def test_every_rpc_of_every_service_is_refused_without_the_passphrase():
    from google.protobuf import message_factory

    root = Composite()
    root.children = {"power": MockPower()}
    with serving(root, passphrase="s3cret") as exporter:
        channel = grpc.insecure_channel(exporter.address)
        seen = []
        for path, input_type, client_streaming, server_streaming in _every_rpc():
            request = message_factory.GetMessageClass(input_type)()
            for metadata in ((), ((PASSPHRASE_KEY, "wrong"),)):
                if client_streaming:
                    call = channel.stream_stream(path)(iter([request.SerializeToString()]), metadata=metadata)
                elif server_streaming:
                    call = channel.unary_stream(path)(request.SerializeToString(), metadata=metadata)
                else:
                    call = channel.unary_unary(path).future(request.SerializeToString(), metadata=metadata)
                with pytest.raises(grpc.RpcError) as refused:
                    list(call) if (client_streaming or server_streaming) else call.result()
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, path
            seen.append(path)
        channel.close()
    assert {
        "/jumpstarter.v1.ExporterService/DriverCall",
        "/jumpstarter.v1.RouterService/Stream",
        "/jumpstarter_jupyter.v1.ConsoleService/Follow",
        "/jumpstarter.v1.ExporterService/LogStream",
    } <= set(seen)
    assert len(seen) >= 9


def test_listening_beyond_loopback_without_credentials_warns(caplog):
    root = Composite()
    with caplog.at_level(logging.WARNING, logger="jumpstarter_jupyter.exporter"):
        with serving(root, tcp=True):
            pass
        assert "without a passphrase" not in caplog.text
        from jumpstarter_jupyter.exporter import serve

        exporter = serve(root, listen="0.0.0.0:0")
        exporter.stop(grace=0)
    assert (
        "listening on 0.0.0.0:0 without a passphrase or TLS: anyone who can reach this address controls the hardware"
        in caplog.text
    )


def test_passphrase_file_keeps_the_passphrase_out_of_the_command_line(tmp_path):
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse\n")
    socket_path = tmp_path / "board.sock"
    process = start_exporter("demo", "--socket", socket_path, "--passphrase-file", secret)
    try:
        assert b"correct horse" not in open(f"/proc/{process.pid}/cmdline", "rb").read()
        with connect(str(socket_path), passphrase="correct horse") as dut:
            assert dut.power.state() is False
    finally:
        process.terminate()
        process.wait(timeout=60)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jumpstarter_jupyter",
            "demo",
            "--socket",
            str(socket_path),
            "--passphrase-file",
            str(empty),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "JMP_GRPC_PASSPHRASE": ""},
    )
    assert result.returncode == 2 and f"--passphrase-file: {empty} is empty" in result.stderr
