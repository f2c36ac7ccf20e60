"""Fixtures of the driver tests."""

from __future__ import annotations

import os
import subprocess

import pytest


@pytest.fixture
def loop(tmp_path):
    """``loop(size)``: a real loop device (partitions scanned) over a new sparse file in
    tmp_path; every device made is detached at teardown, whatever the test did."""
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no /dev/loop-control: this machine cannot make loop devices")
    made = []

    def make(size: int, name: str = "card") -> str:
        backing = tmp_path / f"{name}.backing"
        with open(backing, "wb") as out:
            out.truncate(size)
        done = subprocess.run(["losetup", "-f", "--show", "-P", str(backing)], capture_output=True, text=True,
                              check=False)
        if done.returncode:
            pytest.fail(f"losetup failed: {done.stderr}")
        made.append(done.stdout.strip())
        return made[-1]

    yield make
    for device in made:
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False)
