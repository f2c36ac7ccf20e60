"""The pytest plugin, used as a user would: a test file written against ``dut``, run by pytest.

The same file runs against an exporter named on the command line, one named by
``$JUMPSTARTER_HOST``, and a private virtual board when neither is given.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jumpstarter_jupyter.client import connect
from kernels import demo  # noqa: F401  (fixture)

pytestmark = pytest.mark.notebook

TEST_FILE = '''
def test_boots_to_login(dut):
    dut.power.on()
    dut.serial.expect("login: ", timeout=60)
    assert dut.power.state() is True


def test_led_follows_the_shell(dut):
    dut.serial.sendline("root")
    dut.serial.expect("# ", timeout=10)
    dut.serial.sendline("led on")
    dut.led.wait_for_active(timeout=10)
    dut.power.off()
'''


def run_pytest(directory, *args: str, **env: str) -> subprocess.CompletedProcess:
    (directory / "test_board.py").write_text(TEST_FILE)
    environment = {k: v for k, v in os.environ.items() if k not in ("JUMPSTARTER_HOST", "JMP_GRPC_PASSPHRASE")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=directory, env={**environment, **env}, capture_output=True, text=True, timeout=300)


def test_endpoint_from_the_command_line(demo, tmp_path):
    run = run_pytest(tmp_path, "--jumpstarter-endpoint", demo)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"jumpstarter: {demo} (for tests using dut)" in run.stdout
    assert "2 passed" in run.stdout
    with connect(demo) as dut:  # the tests drove this exporter's board
        assert "led on" in dut.serial.log() and dut.power.state() is False


def test_endpoint_from_jumpstarter_host(demo, tmp_path):
    run = run_pytest(tmp_path, JUMPSTARTER_HOST=demo)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"jumpstarter: {demo}" in run.stdout
    with connect(demo) as dut:
        assert "led on" in dut.serial.log()


def test_private_virtual_board_by_default(tmp_path):
    run = run_pytest(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "jumpstarter: private virtual board" in run.stdout


def test_unreachable_exporter_is_one_clear_error(tmp_path):
    missing = tmp_path / "nothing.sock"
    run = run_pytest(tmp_path, "--jumpstarter-endpoint", f"unix:{missing}")
    assert run.returncode == 1
    assert f"jumpstarter: cannot connect to the board under test: dut.connect: exporter at unix:{missing} " \
           "is not reachable" in run.stdout
    assert "2 errors" in run.stdout
