"""Uploads on the bulk connection beside gRPC (``protocol/bulk.py``): framing on real sockets,
uploads through real exporters on TCP, unix sockets and TLS, the fallback to gRPC, tokens that
admit nothing, and a client that goes away mid-upload."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading

import pytest

from jumpstarter_jupyter import DriverError, connect
from jumpstarter_jupyter.client.streams import ClientStream, _call_with_handle, _result
from jumpstarter_jupyter.driver import Driver, export
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.exporter import serve
from jumpstarter_jupyter.protocol import bulk
from jumpstarter_jupyter.protocol.codec import encode
from jumpstarter_jupyter.protocol.metadata import BULK_KEY, RESOURCE_KEY
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb
from support import client_for, serving, start_exporter, wait_for

IMAGE = secrets.token_bytes(9 << 20)  # two full frames and a partial one


class Sink(Driver):
    """Reads a whole resource and says what came: its size and SHA-256."""

    def __init__(self):
        super().__init__()
        self.bulk_reads: list[socket.AddressFamily] = []  # how each bulk connection came
        self.failures: list[str] = []  # what ended a read early
        self.taken = 0  # bytes read by the call under way

    @export
    def take(self, handle: dict) -> dict:
        digest, size = hashlib.sha256(), 0
        buffer = bytearray(1 << 20)
        with self.resource(handle) as source:
            try:
                while count := source.readinto(buffer):
                    digest.update(memoryview(buffer)[:count])
                    size += count
                    self.taken = size
            except Exception as exc:
                self.failures.append(type(exc).__name__)
                raise
            if source.channel.bulk is not None:
                self.bulk_reads.append(source.channel.bulk.connection.family)
        return {"size": size, "sha256": digest.hexdigest()}


def _image(tmp_path) -> str:
    path = tmp_path / "image.bin"
    path.write_bytes(IMAGE)
    return str(path)


EXPECTED = {"size": len(IMAGE), "sha256": hashlib.sha256(IMAGE).hexdigest()}


@pytest.mark.parametrize("kind", ["file", "reader"])
def test_frames_from_a_file_and_from_a_reader_arrive_whole_and_end_at_the_end_frame(tmp_path, kind):
    source = open(_image(tmp_path), "rb") if kind == "file" else io.BytesIO(IMAGE)
    sender, receiver = socket.socketpair()
    progress: list[int] = []
    with source, sender, receiver:
        thread = threading.Thread(target=bulk.send, args=(sender, source, progress.append))
        thread.start()
        reader, received, buffer = bulk.BulkReader(receiver), bytearray(), bytearray(3 << 20)
        reader.admit(True)
        while count := reader.readinto(buffer):
            received += buffer[:count]
        thread.join()
        assert reader.readinto(buffer) == 0  # stays ended
    assert received == IMAGE
    assert progress == [4 << 20, 8 << 20, 9 << 20]


def test_a_connection_that_ends_before_its_end_frame_is_a_broken_upload():
    sender, receiver = socket.socketpair()
    with receiver:
        sender.sendall(bulk.HEADER.pack(10) + b"12345")
        sender.close()
        reader = bulk.BulkReader(receiver)
        reader.admit(True)
        buffer = bytearray(10)
        assert reader.readinto(buffer) == 5
        with pytest.raises(BrokenPipeError, match="ended before the end of its data"):
            reader.readinto(buffer)


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_uploads_to_our_exporter_take_the_bulk_connection(tmp_path, tcp):
    """A client on the exporter's host takes the unix socket, whether it dialled TCP or not."""
    sink = Sink()
    progress: list[tuple[int, int]] = []
    with client_for(sink, "sink", tcp=tcp) as client:
        with open(_image(tmp_path), "rb") as source:
            result = client.upload("take", source, total=len(IMAGE), progress=lambda *p: progress.append(p))
        assert result == EXPECTED
        assert progress[-1] == (len(IMAGE), len(IMAGE))
        assert client.upload("take", io.BytesIO(IMAGE)) == EXPECTED  # not a file: read and sent
    assert sink.bulk_reads == [socket.AF_UNIX, socket.AF_UNIX]


def test_a_client_on_another_host_takes_the_port(tmp_path):
    """What a remote client does: its offer's socket path is not on its host, so it connects to
    the port (here the same exporter, with the path left out of the offer)."""
    sink = Sink()
    with client_for(sink, "sink", tcp=True) as client, open(_image(tmp_path), "rb") as source:
        connection = client.connection
        with _resource_stream(client) as stream:
            call = _call_with_handle(connection, client.path, "take", stream, [])
            offer = json.loads(stream.headers[BULK_KEY])
            del offer["path"]
            side = bulk.connect(json.dumps(offer), connection.target, None)
            with side:
                assert bulk.send(side, source, lambda sent: None) == len(IMAGE)
            stream.send_eof()
            assert _result(connection, client.path, "take", call) == EXPECTED
    assert sink.bulk_reads == [socket.AF_INET]


def test_without_a_bulk_listener_uploads_go_over_grpc(tmp_path):
    sink = Sink()
    with client_for(sink, "sink", bulk_port=None) as client:
        with open(_image(tmp_path), "rb") as source:
            assert client.upload("take", source) == EXPECTED
    assert sink.bulk_reads == []


def test_an_offer_the_client_cannot_use_falls_back_to_grpc(tmp_path, caplog):
    caplog.set_level(logging.INFO, "jumpstarter_jupyter")
    wrong = json.dumps({"port": 1, "token": "00" * bulk.TOKEN_BYTES})
    assert bulk.connect(wrong, "unix:/nowhere.sock", None) is None  # a port, reached by a path
    assert bulk.connect(wrong, "127.0.0.1:7777", None) is None  # nothing listens on port 1
    assert "no bulk connection" in caplog.text
    sink = Sink()
    with serving(_tree(sink), tcp=True) as exporter:
        offer = {"port": exporter.bulk.address["port"], "token": secrets.token_hex(bulk.TOKEN_BYTES)}
        assert bulk.connect(json.dumps(offer), exporter.address, None) is None  # a token never offered
        assert "refused a bulk connection: no upload was offered under the token it sent" in caplog.text
        with connect(exporter.address) as dut:  # the listener still admits the next one
            assert dut.sink.upload("take", io.BytesIO(IMAGE)) == EXPECTED
    assert sink.bulk_reads == [socket.AF_UNIX]


def test_a_bulk_port_that_cannot_be_reached_is_tried_once_per_connection(monkeypatch, caplog):
    """A client on another host whose firewall blocks the bulk port: its first upload tries the
    port and falls back to gRPC; the next ones go over gRPC without trying (a dropped packet
    would cost CONNECT_TIMEOUT each time). A new connection tries again."""
    caplog.set_level(logging.INFO, "jumpstarter_jupyter")
    monkeypatch.setattr(bulk, "is_loopback", lambda host: False)  # the port, never the path
    sink = Sink()
    with serving(_tree(sink), tcp=True) as exporter:
        port = exporter.bulk.address["port"]
        tcp = next(s for s in exporter.bulk.listening if s.family != socket.AF_UNIX)
        tcp.shutdown(socket.SHUT_RDWR)  # nothing listens on the port any more: connections are refused
        tcp.close()
        for _ in range(2):
            with connect(exporter.address) as dut:
                for _ in range(3):
                    assert dut.sink.upload("take", io.BytesIO(IMAGE)) == EXPECTED
                assert dut.connection.bulk_unreachable == {("127.0.0.1", port)}
    assert sink.bulk_reads == []  # all six over gRPC
    assert caplog.text.count("not tried again on this connection") == 2  # once per connection


def test_bulk_uploads_over_tls_with_the_exporters_certificate(tmp_path, certificate, monkeypatch):
    monkeypatch.delenv("JMP_GRPC_INSECURE", raising=False)
    cert, key = certificate
    sink = Sink()
    exporter = serve(_tree(sink), listen="127.0.0.1:0", tls_cert=cert, tls_key=key)
    try:
        with connect(exporter.address, tls_ca=cert) as dut, open(_image(tmp_path), "rb") as source:
            assert dut.sink.upload("take", source) == EXPECTED
    finally:
        exporter.stop()
    assert sink.bulk_reads == [socket.AF_UNIX]


def test_a_client_gone_mid_upload_fails_the_call_and_the_next_upload_works(tmp_path):
    sink = Sink()
    with client_for(sink, "sink") as client:
        connection = client.connection
        stream = ClientStream(
            connection,
            client.path,
            {"kind": "resource", "uuid": connection.uuid(client.path)},
            "take",
            bulk=True,
        )
        with stream:
            call = _call_with_handle(connection, client.path, "take", stream, [])
            side = bulk.connect(stream.headers[BULK_KEY], connection.target, None)
            assert side is not None
            side.sendall(bulk.HEADER.pack(1 << 20) + IMAGE[:1000])
            side.close()  # as a killed client's kernel does: no end frame
            with pytest.raises(DriverError, match="bulk connection ended before the end of its data"):
                _result(connection, client.path, "take", call)
        assert client.upload("take", io.BytesIO(IMAGE)) == EXPECTED


@pytest.mark.parametrize(
    ("gone", "failure"), [("call", "Cancelled"), ("stream", "BrokenPipeError")], ids=["call", "stream"]
)
def test_a_call_or_stream_ended_mid_upload_ends_the_drivers_read(gone, failure):
    """Ctrl-C cancels the call (the driver's read ends with ``Cancelled``); a client gone ends
    its resource stream too (``BrokenPipeError``, whichever the exporter sees first)."""
    sink = Sink()
    with client_for(sink, "sink") as client:
        connection = client.connection
        with _resource_stream(client) as stream:
            handle = json.loads(stream.headers[RESOURCE_KEY])
            request = pb.DriverCallRequest(
                uuid=connection.uuid(client.path), method="take", args=[encode(handle)]
            )
            call = connection.exporter.DriverCall.future(request, metadata=connection.metadata)
            side = bulk.connect(stream.headers[BULK_KEY], connection.target, None)
            with side:
                side.sendall(bulk.HEADER.pack(1 << 20) + IMAGE[:1000])  # the driver will wait for more
                wait_for(lambda: sink.taken == 1000, what="the driver to read the first bytes")
                call.cancel() if gone == "call" else stream.cancel()
                wait_for(lambda: sink.failures, what="the driver's read to end")
            call.cancel()
        assert sink.failures == [failure]
        assert client.upload("take", io.BytesIO(IMAGE)) == EXPECTED


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_an_exporter_stopping_removes_its_bulk_socket(tcp):
    with serving(_tree(Sink()), tcp=tcp) as exporter:
        path = exporter.bulk.address["path"]
        assert os.path.exists(path)
    assert not os.path.exists(path)
    if tcp:  # the folder made for it goes too
        assert not os.path.exists(os.path.dirname(path))


def test_the_command_line_sets_the_bulk_port_or_turns_it_off(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        argv = [sys.executable, "-m", "jumpstarter_jupyter", "demo", "--listen", "127.0.0.1:0"]
        result = subprocess.run(
            [*argv, "--bulk-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 1
    assert f"cannot listen for bulk uploads on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "(--bulk-port picks another port, --no-bulk none)" in result.stderr
    for name, options, bulk_socket in [("on.sock", [], True), ("off.sock", ["--no-bulk"], False)]:
        path = tmp_path / name
        exporter = start_exporter("demo", "--socket", path, *options)
        try:
            assert path.exists() and (tmp_path / f"{name}.bulk").exists() is bulk_socket
        finally:
            exporter.kill()
            exporter.wait()


def _resource_stream(client) -> ClientStream:
    """The stream ``upload`` opens, for tests that play the client's part by hand."""
    request = {"kind": "resource", "uuid": client.connection.uuid(client.path)}
    return ClientStream(client.connection, client.path, request, "take", bulk=True)


def _tree(sink: Sink) -> Composite:
    root = Composite()
    root.children = {"sink": sink}
    return root
