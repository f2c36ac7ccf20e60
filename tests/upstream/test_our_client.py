"""Direction 2: our client (Python API and ``jumpstarter-jupyter j``) drives upstream's ``jmp run`` exporter.

The exporter serves configs/upstream-peer.yaml: MockPower, PySerial ``loop://``, TcpNetwork to
a local echo server, MockStorageMux, a nested composite and an Opendal driver (a client we
have no class for). Every call goes through a recording proxy, so the last test can check
that nothing ever called EndSession or Reset (wire §4.3, §16.5).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from interop import clean_env, free_port, out
from recording_proxy import RecordingProxy

from jumpstarter_jupyter import ConnectionFailed, DriverInvalidArgument, connect
from jumpstarter_jupyter.client import GenericClient
from jumpstarter_jupyter.drivers.composite.client import CompositeClient
from jumpstarter_jupyter.drivers.network.client import NetworkClient
from jumpstarter_jupyter.drivers.power.client import PowerClient
from jumpstarter_jupyter.drivers.power.common import PowerReading
from jumpstarter_jupyter.drivers.serial.client import NO_SCROLLBACK, SerialClient
from jumpstarter_jupyter.drivers.storage.client import StorageMuxClient

pytestmark = pytest.mark.upstream

SIZE = 20 << 20


@pytest.fixture(scope="module")
def exporter(start_upstream_exporter) -> str:
    """The upstream exporter's own address (for upstream's `jmp shell`)."""
    return start_upstream_exporter("upstream-peer.yaml")


@pytest.fixture(scope="module")
def recording(exporter):
    proxy = RecordingProxy(exporter)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def address(recording) -> str:
    """Where our client connects: the recording proxy in front of the upstream exporter."""
    return recording.address


@pytest.fixture
def dut(address):
    with connect(address) as root:
        yield root


def our_j(address: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """``jumpstarter-jupyter j --endpoint ADDRESS ARGS…``."""
    return subprocess.run(
        [sys.executable, "-m", "jumpstarter_jupyter", "j", "--endpoint", address, *args],
        input=stdin,
        capture_output=True,
        env=clean_env(),
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, out(result)
    return result.stdout.decode()


@pytest.fixture
def image(tmp_path) -> bytes:
    data = os.urandom(SIZE)
    (tmp_path / "image.img").write_bytes(data)
    return data


def test_tree_has_our_client_classes_for_upstream_names_and_generic_for_unknown(dut):
    classes = {client.path: type(client) for client in dut.walk()}
    assert classes == {
        "": CompositeClient,
        "power": PowerClient,
        "serial": SerialClient,
        "net": NetworkClient,
        "storage": StorageMuxClient,
        "group": CompositeClient,
        "group.inner": PowerClient,
        "deadnet": NetworkClient,
        "files": GenericClient,
    }
    assert dut.description == "Interop test exporter"
    assert dut.power.description == "Main DUT power"


def test_power_from_python(dut):
    dut.power.on()
    dut.power.off()
    assert list(dut.power.read()) == [PowerReading(0.0, 0.0), PowerReading(5.0, 2.0)]
    assert dut.power.state() is None  # upstream's MockPower cannot tell


def test_nested_composite_from_python(dut):
    dut.group.inner.on()
    assert [r.voltage for r in dut["group.inner"].read()] == [0.0, 5.0]


def test_serial_write_and_expect_through_loop(dut):
    dut.serial.write(b"ping through loop://\n")
    assert dut.serial.expect(r"ping through loop://", timeout=60) == 0
    assert not dut.serial.scrollback_supported
    assert NO_SCROLLBACK in dut.serial.log()


def test_network_address_and_forward(dut, echo_server):
    assert dut.net.address() == f"tcp://{echo_server}"
    with dut.net.forward() as local:
        host, _, port = local.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=60) as conn:
            payload = os.urandom(256 << 10)
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            received = bytearray()
            while chunk := conn.recv(65536):
                received += chunk
    assert bytes(received) == payload


def test_storage_write_and_read_20_mib_from_python(dut, image, tmp_path):
    dut.storage.write_local_file(tmp_path / "image.img")
    dut.storage.read_local_file(tmp_path / "back.img")
    assert (tmp_path / "back.img").read_bytes() == image


def test_unknown_upstream_client_is_called_by_name(dut):
    assert dut.files.exists("nothing-here") is False
    dut.files.create_dir("made-by-our-client/")
    assert dut.files.call("exists", "made-by-our-client/") is True


def test_upstream_driver_error_is_a_python_exception(dut):
    with pytest.raises(DriverInvalidArgument, match="enable_address mode is not true"):
        dut.deadnet.address()


def test_cli_tree_power_and_composite(address):
    tree = ok(our_j(address, "tree")).splitlines()
    assert any(line.strip().startswith("inner  (PowerClient)") for line in tree), tree
    assert any(line.strip().startswith("files  (GenericClient)") for line in tree), tree
    ok(our_j(address, "power", "on"))
    ok(our_j(address, "power", "off"))
    assert ok(our_j(address, "power", "read")).splitlines() == [
        "voltage=0.0 V  current=0.0 A  apparent_power=0.0 VA",
        "voltage=5.0 V  current=2.0 A  apparent_power=10.0 VA",
    ]
    ok(our_j(address, "group", "inner", "on"))


def test_cli_serial_pipe_and_network_address(address, echo_server):
    payload = b"".join(b"pipe line %d\n" % i for i in range(100))
    assert ok(our_j(address, "serial", "pipe", stdin=payload)).encode() == payload
    assert ok(our_j(address, "net", "address")).strip() == echo_server


def test_cli_storage_flash_and_dump_20_mib(address, image, tmp_path):
    ok(our_j(address, "storage", "flash", str(tmp_path / "image.img")))
    ok(our_j(address, "storage", "dump", str(tmp_path / "back.img")))
    assert (tmp_path / "back.img").read_bytes() == image


def test_same_client_works_again_after_the_upstream_exporter_restarts(launch_upstream_exporter):
    """Upstream gives every driver a new UUID on each start: the client rebinds by path."""
    address = f"127.0.0.1:{free_port()}"
    first = launch_upstream_exporter("upstream.yaml", address)
    with connect(address) as dut:
        dut.group.inner.on()
        first.stop()
        with pytest.raises(ConnectionFailed, match="not reachable"):
            dut.group.inner.on()
        launch_upstream_exporter("upstream.yaml", address)
        dut.group.inner.off()
        assert [r.voltage for r in dut.power.read()] == [0.0, 5.0]


def test_never_ends_the_session(recording, exporter, jmp_shell):
    """After everything above: no EndSession or Reset went out, and upstream's shell still gets in."""
    methods = {method for method, _ in recording.sequence()}
    assert {"GetReport", "DriverCall", "StreamingDriverCall", "Stream"} <= methods
    assert not methods & {"EndSession", "Reset"}, recording.sequence()
    # a standalone exporter that saw EndSession never becomes ready again: the shell would wait
    result = jmp_shell(exporter, "j", "power", "on", timeout=90)
    assert result.returncode == 0, out(result)
