"""connect() with no endpoint: a private virtual board that lives and dies with its process."""

from __future__ import annotations

import os
import select
import subprocess
import sys

DEADLINE = 60


def wait_for_exit(pid: int) -> bool:
    """True once process ``pid`` (not our child) has exited, False at the deadline."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], DEADLINE)
        return bool(ready)
    finally:
        os.close(fd)


def run_owner(code: str) -> tuple[int, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if k != "JUMPSTARTER_HOST"}
    owner = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE, env=env
    )
    return int(owner.stdout.split()[0]), owner


def test_private_board_serves_the_virtual_tree_and_stops_with_close():
    pid, owner = run_owner(
        "import jumpstarter_jupyter as jj\n"
        "dut = jj.connect()\n"
        "print(dut.private_board.process.pid, sorted(dut.children), flush=True)\n"
        "dut.power.on(); assert dut.power.state() is True\n"
        "dut.close()\n"
    )
    assert owner.returncode == 0, owner.stderr
    assert "['button', 'can', 'led', 'network', 'power', 'serial', 'storage']" in owner.stdout
    assert wait_for_exit(pid)


def test_private_board_stops_when_its_owner_is_killed():
    pid, owner = run_owner(
        "import os, signal, jumpstarter_jupyter as jj\n"
        "dut = jj.connect()\n"
        "print(dut.private_board.process.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert owner.returncode == -9
    assert wait_for_exit(pid), "the private board outlived the process that started it"
