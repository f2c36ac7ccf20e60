"""The pytest plugin, used as a user would: a test file written against ``dut``, run by pytest.

The same file runs against an exporter named on the command line, one named by
``$JUMPSTARTER_HOST``, and a private virtual board when neither is given.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kernels import demo, leased_board  # noqa: F401  (fixtures)

from jumpstarter_jupyter.client import connect

pytestmark = pytest.mark.notebook

TEST_FILE = """
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
"""


def run_pytest(directory, *args: str, test_file: str = TEST_FILE, **env: str) -> subprocess.CompletedProcess:
    (directory / "test_board.py").write_text(test_file)
    environment = {
        k: v for k, v in os.environ.items() if k not in ("JUMPSTARTER_HOST", "JMP_GRPC_PASSPHRASE")
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


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
    assert (
        f"jumpstarter: cannot connect to the board under test: dut.connect: exporter at unix:{missing} "
        "is not reachable" in run.stdout
    )
    assert "2 errors" in run.stdout


LEASED_TESTS = """
def test_holds_the_board(dut):
    assert dut.lease.purpose == "pytest {session}"
    dut.power.on()


def test_fails(dut):
    assert False, "a failing test"


def test_interrupted(dut):
    raise KeyboardInterrupt
"""


def test_the_session_holds_the_lease_and_gives_it_back_after_failures_and_interrupts(leased_board, tmp_path):
    endpoint, log = leased_board
    session = tmp_path / "session"
    session.mkdir()
    run = run_pytest(
        session, "--jumpstarter-endpoint", endpoint, test_file=LEASED_TESTS.format(session=session.name)
    )
    assert run.returncode == 2, run.stdout + run.stderr  # interrupted
    assert "1 failed, 1 passed" in run.stdout and "KeyboardInterrupt" in run.stdout, run.stdout
    with connect(endpoint, lease=False) as other:  # another client: the board is free again
        assert not other.connection.lease_status().HasField("lease")
    assert "lease granted to" in log.read_text() and "released by its holder" in log.read_text()


def test_waiting_for_a_held_board_is_bounded_and_names_the_holder(leased_board, tmp_path):
    endpoint, _log = leased_board
    with connect(endpoint, purpose="flashing"):
        run = run_pytest(
            tmp_path,
            "--jumpstarter-endpoint",
            endpoint,
            "--jumpstarter-lease-timeout",
            "1s",
            "--jumpstarter-lease-purpose",
            "nightly",
        )
    assert run.returncode == 1
    assert "cannot connect to the board under test: no lease on" in run.stdout
    assert "within 1 s, still number 1 in line: held by" in run.stdout and "(flashing)" in run.stdout


def test_selector_takes_a_matching_board_of_the_pool(tmp_path):
    from jumpstarter_jupyter.drivers.composite.driver import Composite
    from jumpstarter_jupyter.drivers.power.driver import MockPower
    from jumpstarter_jupyter.exporter.leases import LeasePolicy
    from support import serving

    def board() -> Composite:
        root = Composite()
        root.children = {"power": MockPower()}
        return root

    test_file = "def test_power(dut):\n    dut.power.on()\n    assert dut.connection.board == 'rev-b'\n"
    config = tmp_path / "config"
    config.mkdir()
    with (
        serving(board(), lease=LeasePolicy(required=True), labels={"rev": "a"}) as rev_a,
        serving(board(), lease=LeasePolicy(required=True), labels={"rev": "b"}) as rev_b,
    ):
        (config / "jumpstarter-pool.yaml").write_text(
            f"exporters:\n  rev-a: {{endpoint: '{rev_a.address}'}}\n  rev-b: {{endpoint: '{rev_b.address}'}}\n"
        )
        run = run_pytest(
            tmp_path,
            "--jumpstarter-selector",
            "rev notin (a)",
            test_file=test_file,
            JUPYTER_CONFIG_DIR=str(config),
            JUPYTER_CONFIG_PATH=str(tmp_path / "none"),
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "jumpstarter: any pool board matching rev notin (a) (for tests using dut)" in run.stdout
        assert rev_b.root.children["power"].powered and not rev_a.root.children["power"].powered
