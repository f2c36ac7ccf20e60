"""The QEMU board end to end: real QEMU guests, real pty, real sockets, through a real exporter.

One x86_64 guest serves the whole module (each boot costs about 3 CPU-seconds under TCG);
aarch64 boots once. The guest artefacts are built on first use (cached outside the repo).
"""

from __future__ import annotations

import gzip
import os
import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.drivers import registry
from jumpstarter_jupyter.drivers.qemu.driver import QemuBoard
from jumpstarter_jupyter.drivers.qemu.images import build
from jumpstarter_jupyter.errors import DriverError
from jumpstarter_jupyter.protocol.codec import encode
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb
from jumpstarter_jupyter.protocol.v1.jumpstarter_pb2_grpc import ExporterServiceStub
from support import run_cli, serving, start_exporter, wait_for

DEADLINE = 60.0
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "qemu-board.yaml")


@pytest.fixture(scope="module")
def images():
    return build("x86_64")[0]


@pytest.fixture(scope="module")
def board(images):
    board = QemuBoard()
    with serving(board) as exporter, connect(exporter.address) as client:
        yield board, client
    assert not board.machine.powered, "the exporter stopped but QEMU still runs"


@pytest.fixture
def dut(board):
    return board[1]


def page(dut) -> str:
    with dut.network.forward() as address:
        with urllib.request.urlopen(f"http://{address}/", timeout=DEADLINE) as reply:
            return reply.read().decode().strip()


def test_tree_reports_upstream_clients(dut):
    assert type(dut).__name__ == "QemuBoardClient"
    labels = {name: child.labels["jumpstarter.dev/client"] for name, child in dut.children.items()}
    assert labels == {
        "power": "jumpstarter_driver_power.client.PowerClient",
        "serial": "jumpstarter_driver_pyserial.client.PySerialClient",
        "storage": "jumpstarter_driver_opendal.client.StorageMuxFlasherClient",
        "network": "jumpstarter_driver_network.client.NetworkClient",
        "debugger": "jumpstarter_jupyter.drivers.debugger.client.DebuggerClient",  # upstream has none
        "screen": "jumpstarter_jupyter.drivers.screen.client.ScreenClient",
    }  # nor this


def test_run_returns_real_output_and_exit_codes(dut):
    dut.boot_to_shell(DEADLINE)
    assert dut.run("uname -m", DEADLINE) == (0, "x86_64")
    assert dut.run("false", DEADLINE) == (1, "")
    code, output = dut.run("ls /nonexistent", DEADLINE)
    assert code == 1 and "No such file or directory" in output
    result = run_cli(dut, "run", "sh -c 'echo from-cli; exit 3'")
    assert (result.returncode, result.stdout) == (3, "from-cli\n"), result.stderr


def test_concurrent_runs_take_turns_at_the_shell(dut):
    dut.power.off()  # both find the board off: one boots and logs in, the other waits its turn
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda word: dut.run(f"echo {word}", DEADLINE), ["one", "two"]))
    assert results == [(0, "one"), (0, "two")]


def test_a_cancelled_run_interrupts_the_command_and_frees_the_shell(dut):
    dut.boot_to_shell(DEADLINE)
    stub = ExporterServiceStub(grpc.insecure_channel(dut.connection.endpoint))
    request = pb.DriverCallRequest(
        uuid=dut.connection.uuid(dut.path), method="run", args=[encode("sleep 600"), encode(900.0)]
    )
    call = stub.DriverCall.future(request)
    dut.serial.expect("sleep 600", timeout=DEADLINE)  # typed into the guest's shell: it runs
    call.cancel()
    assert dut.run("echo free", DEADLINE) == (0, "free")


def test_http_page_through_forward(dut):
    dut.boot_to_shell(DEADLINE)
    assert page(dut) == "hello from image A"


def test_storage_is_refused_to_the_host_while_powered(dut):
    dut.boot_to_shell(DEADLINE)
    with pytest.raises(DriverError, match="while the board is powered on: power off first"):
        dut.storage.host()
    assert dut.storage.state() == "dut"


def test_readings_follow_power(dut):
    dut.boot_to_shell(DEADLINE)
    on = list(dut.power.read())
    assert all(r.voltage == 5.0 and 0.1 < r.current < 1.0 for r in on)
    dut.power.off()
    assert not dut.power.state()
    assert [(r.voltage, r.current) for r in dut.power.read()] == [(0.0, 0.0)] * 3
    with pytest.raises(DriverError, match="the board is powered off: its network is down"):
        dut.network.address()


def test_flash_image_b_boots_its_banner_and_page(dut, images, tmp_path):
    compressed = tmp_path / "disk-B.img.gz"
    compressed.write_bytes(gzip.compress(images.disk("B").read_bytes(), compresslevel=1))
    dut.serial.discard()
    dut.flash(compressed)
    dut.serial.expect(r"\*\*\* DUT banner: disk image B \*\*\*", timeout=DEADLINE)
    dut.boot_to_shell(DEADLINE)
    assert dut.run("cat /www/index.html", DEADLINE) == (0, "hello from image B")
    assert page(dut) == "hello from image B"


def test_guest_poweroff_reads_off_and_boots_again(dut):
    dut.boot_to_shell(DEADLINE)
    dut.serial.discard()
    dut.serial.sendline("poweroff")
    dut.serial.expect(r"QEMU exited \(the guest powered off\): the board is off", timeout=DEADLINE)
    assert not dut.power.state()
    dut.boot_to_shell(DEADLINE)
    assert dut.run("true", DEADLINE) == (0, "")


def test_guest_kernel_panic_reads_off_and_boots_again(dut):
    dut.boot_to_shell(DEADLINE)
    dut.serial.discard()
    dut.serial.sendline("echo c > /proc/sysrq-trigger")
    dut.serial.expect(r"Kernel panic - not syncing", timeout=DEADLINE)
    dut.serial.expect(r"QEMU exited \(the guest kernel panicked\): the board is off", timeout=DEADLINE)
    assert "---[ end Kernel panic" not in dut.serial.before  # pvpanic told QEMU before the kernel halted
    assert dut.power.state() is False
    assert [(r.voltage, r.current) for r in dut.power.read()] == [(0.0, 0.0)] * 3
    dut.boot_to_shell(DEADLINE)
    assert dut.run("echo alive", DEADLINE) == (0, "alive")


def test_qemu_killed_from_outside_is_reported_and_recovered(board):
    driver, dut = board
    dut.boot_to_shell(DEADLINE)
    dut.serial.discard()
    os.kill(driver.machine.pid, signal.SIGKILL)
    dut.serial.expect(r"QEMU exited \(killed by SIGKILL\): the board is off", timeout=DEADLINE)
    assert not dut.power.state()
    dut.power.on()
    dut.boot_to_shell(DEADLINE)
    assert dut.run("echo back", DEADLINE) == (0, "back")


def test_upstream_qemu_type_does_not_resolve_to_ours():
    assert "QemuBoard" in registry.known_names()
    with pytest.raises(LookupError):  # upstream's Qemu has another tree: no silent stand-in
        registry.resolve("jumpstarter_driver_qemu.driver.Qemu", LookupError)


def test_missing_images_name_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run `jumpstarter-jupyter qemu-images --arch x86_64`"):
        QemuBoard(images=str(tmp_path))


def test_missing_qemu_names_the_install(images, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    board = QemuBoard()
    with serving(board) as exporter, connect(exporter.address) as dut:
        with pytest.raises(
            DriverError, match="qemu-system-x86_64 is not installed: run `apt-get install qemu-system-x86"
        ):
            dut.power.on()


def test_qemu_refusing_the_config_reports_what_it_printed(images):
    with serving(QemuBoard(cpu="no-such-cpu")) as exporter, connect(exporter.address) as dut:
        with pytest.raises(
            DriverError, match=r"QEMU (exited with 1 before connecting|stopped while starting).*no-such-cpu"
        ):
            dut.power.on()
        assert dut.power.state() is False


def test_aarch64_boots_runs_reboot_is_a_reset_and_a_panic_reads_off():
    build("aarch64")
    with serving(QemuBoard(arch="aarch64")) as exporter, connect(exporter.address) as dut:
        dut.boot_to_shell(DEADLINE)
        assert dut.run("uname -m", DEADLINE) == (0, "aarch64")
        dut.serial.discard()
        dut.serial.sendline("reboot")
        dut.serial.expect(r"Linux version", timeout=DEADLINE)
        dut.boot_to_shell(DEADLINE)
        assert dut.power.state() is True  # the process lived through the reset
        dut.serial.discard()
        dut.serial.sendline(
            "echo c > /proc/sysrq-trigger"
        )  # arm64's kernel has no pvpanic: the console tells
        dut.serial.expect(r"---\[ end Kernel panic", timeout=DEADLINE)
        dut.serial.expect(r"QEMU exited \(the guest kernel panicked\): the board is off", timeout=DEADLINE)
        assert dut.power.state() is False


def test_a_sigkilled_exporter_leaves_no_qemu_running(images, tmp_path):
    socket_path = str(tmp_path / "exporter.sock")
    exporter = start_exporter("run", EXAMPLE, "--socket", socket_path)
    qemu = []
    try:
        with connect(socket_path) as root:
            root["dut"].power.on()  # on one of the exporter's pool threads
        qemu = children(exporter.pid)
        assert len(qemu) == 1, qemu
        exporter.kill()
        exporter.wait(30)
        wait_for(
            lambda: not running(qemu[0]), timeout=10, what=f"QEMU (pid {qemu[0]}) to end with its exporter"
        )
    finally:
        exporter.kill()
        exporter.wait(30)
        for pid in filter(running, qemu):  # a failed run must not leave a guest behind
            os.kill(pid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except FileNotFoundError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_example_config_serves_the_board(images, tmp_path):
    socket_path = str(tmp_path / "exporter.sock")
    exporter = start_exporter("run", EXAMPLE, "--socket", socket_path)
    try:
        with connect(socket_path) as root:
            assert type(root["dut"]).__name__ == "QemuBoardClient"
            assert root["dut"].power.state() is False
    finally:
        exporter.terminate()
        exporter.wait(30)
