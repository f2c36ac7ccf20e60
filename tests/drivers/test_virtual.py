"""The virtual board end to end: a real exporter, real pty, real HTTP socket, Python API and CLI."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import select
import subprocess
import sys
import urllib.request

import pytest
import zstandard

from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.drivers.virtual.driver import VirtualBoard
from jumpstarter_jupyter.drivers.virtual.image import BadImage, make_image, parse_image
from jumpstarter_jupyter.errors import DriverError, DriverTimeout, JumpstarterError
from support import cli_argv, run_cli, serving

DEADLINE = 30.0
PROMPT = r"root@jumpstarter:~# "


@pytest.fixture
def dut():
    with serving(VirtualBoard.create(pace=0.5)) as exporter, connect(exporter.address) as client:
        yield client


def login(dut) -> None:
    dut.serial.expect("login: ", timeout=DEADLINE)
    dut.serial.sendline("root")
    dut.serial.expect(PROMPT, timeout=DEADLINE)


def run(dut, command: str) -> str:
    """Run a shell command on the board; its output without the echo."""
    dut.serial.sendline(command)
    dut.serial.expect(PROMPT, timeout=DEADLINE)
    return dut.serial.before.split("\r\n", 1)[1] if "\r\n" in dut.serial.before else ""


def http_status(dut) -> dict:
    with dut.network.forward() as address:
        with urllib.request.urlopen(f"http://{address}/status", timeout=DEADLINE) as reply:
            return json.load(reply)


def test_tree_shape_and_client_classes(dut):
    assert list(dut.children) == ["power", "serial", "storage", "network", "button", "led", "can"]
    assert type(dut).__name__ == "VirtualBoardClient"
    assert dut.labels["jumpstarter.dev/client"] == "jumpstarter_driver_composite.client.CompositeClient"
    names = {name: type(child).__name__ for name, child in dut.children.items()}
    assert names == {
        "power": "PowerClient",
        "serial": "SerialClient",
        "storage": "StorageMuxClient",
        "network": "NetworkClient",
        "button": "DigitalOutputClient",
        "led": "DigitalInputClient",
        "can": "CanClient",
    }


def test_power_on_boot_log_login_and_led(dut):
    dut.power.on()
    dut.serial.expect("login: ", timeout=DEADLINE)
    boot_log = dut.serial.before
    for stage in (
        "U-Boot 2024.01",
        "Starting kernel",
        "Linux version 6.6.32-jumpstarter",
        "Welcome to Jumpstarter Linux 1.0",
    ):
        assert stage in boot_log
    dut.serial.sendline("root")
    dut.serial.expect(PROMPT, timeout=DEADLINE)
    assert dut.led.read_pin() == 0
    run(dut, "led on")
    dut.led.wait_for_active(timeout=DEADLINE)
    assert dut.led.read_pin() == 1
    run(dut, "led off")
    dut.led.wait_for_inactive(timeout=DEADLINE)
    assert "Linux jumpstarter 6.6.32-jumpstarter" in run(dut, "uname -a")
    assert 'VERSION="1.0"' in run(dut, "cat /etc/os-release")
    assert "-sh: frobnicate: not found" in run(dut, "frobnicate")


def test_button_is_seen_by_the_shell(dut):
    dut.power.on()
    login(dut)
    assert "button: released" in run(dut, "button")
    dut.button.on()
    assert "button: pressed" in run(dut, "button")
    dut.button.off()
    assert "button: released" in run(dut, "button")


def test_late_client_replays_the_boot_log_and_gets_a_fresh_prompt(dut):
    dut.power.on()
    dut.serial.expect("login: ", timeout=DEADLINE)
    with connect(dut.connection.endpoint) as late:
        assert "Linux version 6.6.32-jumpstarter" in late.serial.log()
        late.serial.sendline("")  # the board reprints its prompt on Enter
        late.serial.expect("jumpstarter login: ", timeout=DEADLINE)


def test_http_service_answers_only_while_booted(dut):
    with pytest.raises(JumpstarterError, match="cannot connect"):
        dut.network.stream("connect")
    dut.power.on()
    login(dut)
    run(dut, "led on")
    status = http_status(dut)
    assert (status["os"], status["version"], status["led"]) == ("Jumpstarter Linux", "1.0", "on")
    dut.power.off()
    with pytest.raises(JumpstarterError, match="cannot connect"):
        dut.network.stream("connect")


@pytest.mark.parametrize("suffix", ["", ".gz", ".xz", ".zst"])
def test_flash_an_image_and_boot_it(dut, tmp_path, suffix):
    image = make_image("Other OS", "2.0-" + (suffix.strip(".") or "plain"))
    compress = {
        "": bytes,
        ".gz": gzip.compress,
        ".xz": lzma.compress,
        ".zst": zstandard.ZstdCompressor().compress,
    }[suffix]
    path = tmp_path / f"os.img{suffix}"
    path.write_bytes(compress(image))
    sent = []
    dut.flash(path, progress=lambda done, total: sent.append((done, total)))
    assert sent[-1] == (path.stat().st_size, path.stat().st_size)
    dut.boot_to_shell(timeout=DEADLINE)
    assert f'PRETTY_NAME="Other OS 2.0-{suffix.strip(".") or "plain"}"' in run(dut, "cat /etc/os-release")
    assert dut.storage.state() == "dut"


def test_garbage_image_stops_in_the_bootloader(dut, tmp_path):
    path = tmp_path / "garbage.img"
    path.write_bytes(os.urandom(4096))
    dut.flash(path)
    with pytest.raises(DriverError) as excinfo:
        dut.boot_to_shell(timeout=DEADLINE)
    message = str(excinfo.value)
    assert "step 'wait for the login prompt' failed" in message
    assert "no bootable image" in message and "console showed last" in message
    dut.serial.sendline("")
    dut.serial.expect("=> ", timeout=DEADLINE)  # the bootloader prompt, reprinted on Enter


def test_empty_card_is_not_bootable(tmp_path):
    with pytest.raises(BadImage, match="empty"):
        parse_image(b"")
    with pytest.raises(BadImage, match="checksum"):
        parse_image(make_image("A", "1")[:-1] + b"X")


def test_boot_to_shell_timeout_names_the_step_and_the_console():
    with serving(VirtualBoard.create(pace=100)) as exporter, connect(exporter.address) as dut:
        with pytest.raises(DriverTimeout) as excinfo:
            dut.boot_to_shell(timeout=0.5)
        assert "step 'wait for the login prompt' failed" in str(excinfo.value)
        assert "U-Boot" in str(excinfo.value)  # what the console showed last
        dut.power.off()


def test_reboot_and_poweroff_from_the_shell(dut):
    dut.boot_to_shell(timeout=DEADLINE)
    dut.serial.sendline("reboot")
    dut.serial.expect("reboot: Restarting system", timeout=DEADLINE)
    dut.serial.expect("login: ", timeout=DEADLINE)
    dut.serial.sendline("root")
    dut.serial.expect(PROMPT, timeout=DEADLINE)
    dut.serial.sendline("poweroff")
    dut.serial.expect("reboot: Power down", timeout=DEADLINE)
    assert dut.power.state() is True  # halted, but the relay is still on
    dut.boot_to_shell(timeout=DEADLINE)  # a halted board is power-cycled


def test_power_readings_follow_the_boot():
    with serving(VirtualBoard.create(pace=1.0)) as exporter, connect(exporter.address) as dut:
        assert {r.current for r in dut.power.read()} == {0.0}
        dut.power.on()
        booting, seen = [], ""
        while "login: " not in seen:  # sample while the console shows the boot going on
            booting += [r.current for r in dut.power.read()]
            seen = seen[-16:] + dut.serial.read()
            assert len(booting) < 100_000, "the board never reached the login prompt"
        idle = [r.current for r in dut.power.read()]
        assert max(booting) > max(idle) + 0.3  # the kernel draws most, the idle board settles
        assert all(0.2 < current < 0.35 for current in idle)
        dut.power.off()
        assert {(r.voltage, r.current) for r in dut.power.read()} == {(0.0, 0.0)}


def test_cli_drives_the_board(dut, tmp_path):
    assert run_cli(dut, "boot-to-shell").stdout.strip() == "at the shell prompt"
    argv = cli_argv(dut.connection.endpoint, "serial", "pipe")
    subprocess.run(argv, input=b"led on\n", capture_output=True, timeout=60, check=True)
    dut.led.wait_for_active(timeout=DEADLINE)
    assert run_cli(dut, "led", "read").stdout.strip() == "1"
    image = tmp_path / "cli.img.gz"
    image.write_bytes(gzip.compress(make_image("CLI OS", "3.0")))
    flashed = run_cli(dut, "flash", str(image))
    assert flashed.returncode == 0, flashed.stderr
    assert run_cli(dut, "boot-to-shell").returncode == 0
    dut.serial.discard()  # this process's expect buffer still holds both boots
    assert 'NAME="CLI OS"' in run(dut, "cat /etc/os-release")
    assert "login: " in run_cli(dut, "serial", "log").stdout


def test_demo_command_serves_the_board(tmp_path):
    socket_path = str(tmp_path / "demo.sock")
    demo = subprocess.Popen(
        [sys.executable, "-m", "jumpstarter_jupyter", "demo", "--socket", socket_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([demo.stdout], [], [], DEADLINE)
        assert ready and demo.stdout.readline().startswith(b"serving "), demo.stderr.read1()
        with connect(f"unix:{socket_path}") as board:
            assert run_cli(board, "tree").stdout.split()[:4] == [
                "dut",
                "(VirtualBoardClient)",
                "Virtual",
                "board",
            ]
            assert run_cli(board, "boot-to-shell").returncode == 0
            assert run_cli(board, "power", "off").returncode == 0
    finally:
        demo.terminate()
        demo.wait(DEADLINE)


def test_virtual_board_from_an_exporter_config():
    from jumpstarter_jupyter.exporter import build_tree, parse_config

    text = "export:\n  bench:\n    type: VirtualBoard\n    config: {hostname: lab1, os_name: Lab OS, pace: 0.5}\n"
    with serving(build_tree(parse_config(text, "bench.yaml"))) as exporter, connect(exporter.address) as root:
        board = root.bench
        assert list(board.children) == ["power", "serial", "storage", "network", "button", "led", "can"]
        board.boot_to_shell(timeout=DEADLINE)
        board.serial.sendline("cat /etc/os-release")
        board.serial.expect("root@lab1:~# ", timeout=DEADLINE)
        assert 'NAME="Lab OS"' in board.serial.before
        board.power.off()
