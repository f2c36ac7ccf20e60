"""Direction 1: upstream 0.9.0's `jmp shell` / `j` / Python client drive our exporter.

Our exporter serves configs/upstream.yaml (upstream type names: MockPower, PySerial
``loop://``, TcpNetwork, MockStorageMux) and the virtual board (``jumpstarter-jupyter demo``).
Every command below is upstream's own, run through ``jmp shell --tls-grpc HOST:PORT
--tls-grpc-insecure [--passphrase P] -- …``.
"""

from __future__ import annotations

import os
import re

import pytest
from interop import PASSPHRASE, error_lines, out, output_lines

from jumpstarter_jupyter import connect

pytestmark = pytest.mark.upstream

# button and led report upstream's gpiod client classes, which the peer has (jumpstarter-driver-gpiod)
DEMO_CHILDREN = ("power", "serial", "storage", "network", "button", "led")
CONFIG_CHILDREN = ("power", "serial", "net", "storage", "group", "deadnet")


@pytest.fixture(scope="module")
def demo_exporter(start_our_exporter) -> str:
    """Our virtual board, as `jumpstarter-jupyter demo` serves it."""
    return start_our_exporter("demo")


def commands_listed(help_text: str) -> list[str]:
    """The command names of a click ``--help`` page."""
    section = help_text.split("Commands:", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()]


def succeeded(result) -> str:
    """The command's output (upstream's log lines left out); fails unless it exited 0."""
    assert result.returncode == 0, out(result)
    return "".join(f"{line}\n" for line in output_lines(result))


@pytest.mark.parametrize("exporter, children", [("demo", DEMO_CHILDREN), ("config", CONFIG_CHILDREN)])
def test_j_help_lists_our_tree(exporter, children, jmp_shell, request):
    address = request.getfixturevalue("demo_exporter" if exporter == "demo" else "our_exporter")
    listed = commands_listed(succeeded(jmp_shell(address, "j", "--help")))
    assert sorted(listed) == sorted(children)


def test_j_power_on_off_cycle_read(jmp_shell, our_exporter):
    with connect(our_exporter) as dut:
        succeeded(jmp_shell(our_exporter, "j", "power", "on"))
        assert dut.power.state() is True
        succeeded(jmp_shell(our_exporter, "j", "power", "off"))
        assert dut.power.state() is False
        succeeded(jmp_shell(our_exporter, "j", "power", "cycle", "-w", "0"))
        assert dut.power.state() is True
    readings = succeeded(jmp_shell(our_exporter, "j", "power", "read")).splitlines()
    assert readings == [
        "voltage=0.0 V  current=0.0 A  apparent_power=0.0 VA",
        "voltage=5.0 V  current=2.0 A  apparent_power=10.0 VA",
    ]


def test_driver_logs_reach_jmp_shell_exporter_logs(jmp_shell, our_exporter):
    result = jmp_shell(our_exporter, "j", "power", "on", log_level="INFO", exporter_logs=True)
    assert result.returncode == 0, out(result)
    assert "[exporter:driver] power on" in result.stdout.decode(), out(result)


def test_j_nested_composite_and_help_texts(jmp_shell, our_exporter):
    succeeded(jmp_shell(our_exporter, "j", "group", "inner", "on"))
    power_help = succeeded(jmp_shell(our_exporter, "j", "power", "--help"))
    assert "Main DUT power" in power_help and "Turn it on!" in power_help  # description, methods_description


def test_j_power_on_the_virtual_board(jmp_shell, demo_exporter):
    succeeded(jmp_shell(demo_exporter, "j", "power", "on"))
    with connect(demo_exporter) as dut:
        assert dut.power.state() is True
    readings = succeeded(jmp_shell(demo_exporter, "j", "power", "read")).splitlines()
    assert readings and all(
        re.fullmatch(r"voltage=[\d.]+ V  current=[\d.]+ A  apparent_power=[\d.]+ VA", r) for r in readings
    ), readings


def test_j_serial_pipe_round_trips_bytes(jmp_shell, our_exporter):
    payload = b"".join(b"line %d of the interop pipe test\n" % i for i in range(200))
    result = jmp_shell(our_exporter, "j", "serial", "pipe", stdin=payload)
    assert succeeded(result).encode() == payload


def test_upstream_pexpect_sees_login_prompt_and_http_forward_reaches_the_board(peer_python, demo_exporter):
    lines = succeeded(peer_python(demo_exporter, "board_session.py")).splitlines()
    assert any(line.startswith("console:") and "login:" in line for line in lines), lines
    assert any(line.startswith("http: 200") for line in lines), lines


def test_j_network_address(jmp_shell, our_exporter, demo_exporter, echo_server):
    assert succeeded(jmp_shell(our_exporter, "j", "net", "address")).strip() == echo_server
    with connect(demo_exporter) as dut:
        expected = dut.network.address().removeprefix("tcp://")
    assert succeeded(jmp_shell(demo_exporter, "j", "network", "address")).strip() == expected


def test_upstream_byte_stream_through_tcp_network(peer_python, our_exporter):
    assert "echoed: through the network driver" in succeeded(
        peer_python(our_exporter, "stream_echo.py", "net", "through the network driver")
    )


def test_upstream_storage_round_trips_20_mib(peer_python, our_exporter):
    lines = succeeded(peer_python(our_exporter, "storage_roundtrip.py", "20")).splitlines()
    sent, received = (line.split(maxsplit=1)[1] for line in lines[-2:])
    assert sent.startswith(str(20 << 20)) and received == sent, lines


def test_upstream_j_storage_flash_writes_a_real_block_device(jmp_shell, loop, tmp_path):
    """Upstream's `j storage flash` through our StorageDevice onto a loop device: the whole image
    (upstream's client knows no bmap), byte for byte."""
    from jumpstarter_jupyter.drivers.composite.driver import Composite
    from jumpstarter_jupyter.drivers.storage.device import StorageDevice
    from support import serving

    device, image = loop(8 << 20), tmp_path / "image.img"
    image.write_bytes(os.urandom(5 << 20))
    root = Composite()
    root.children = {"storage": StorageDevice(device=device)}
    with serving(root, tcp=True) as exporter:
        succeeded(jmp_shell(exporter.address, "j", "storage", "flash", str(image)))
    with open(device, "rb") as card:
        assert card.read(5 << 20) == image.read_bytes()


def test_correct_passphrase_is_accepted(jmp_shell, guarded):
    """(Wrong and missing passphrases: test_trace.py::test_passphrase_refusal_traces_match.)"""
    succeeded(jmp_shell(guarded["ours"], "j", "power", "on", passphrase=PASSPHRASE))


def test_driver_error_shows_in_j_as_upstream_shows_its_own(jmp_shell, our_exporter, upstream_exporter):
    ours = jmp_shell(our_exporter, "j", "deadnet", "address")
    theirs = jmp_shell(upstream_exporter, "j", "deadnet", "address")
    assert ours.returncode == theirs.returncode == 1, out(ours)
    assert error_lines(ours) == error_lines(theirs)
    assert error_lines(ours)[0].startswith(
        "Error: enable_address mode is not true in the exporter configuration"
    )
