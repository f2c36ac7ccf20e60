"""Shared fixtures. Being the top-level conftest, this also puts tests/ on sys.path, so test
modules import their helpers with ``from support import ...`` (not from a conftest, whose
name each suite's own conftest.py would shadow)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# the built and installed package: session fixtures of tests/install and tests/browser, built once
from installed import dist, installed  # noqa: F401
from support import client_for

# --doctest-modules (pyproject) imports every module it collects: these scripts run inside
# upstream's own venv (tests/upstream), where jumpstarter's packages are importable
collect_ignore_glob = ["upstream/peer/*.py"]


@pytest.fixture(scope="session")
def playwright_session():
    """The session's one Playwright: its sync API runs an event loop on this thread, so a second
    ``sync_playwright()`` in the same run fails (the browser and hub suites both drive Chromium)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def controller(tmp_path_factory):
    """The session's test controller and router (tests/controller): TLS on two loopback ports.
    Tests make their own identities (``controller.new_exporter``/``new_client``); a test that
    stops it must ``start()`` it again."""
    from controller.server import TestController

    test_controller = TestController(tmp_path_factory.mktemp("controller"))
    test_controller.start()
    yield test_controller
    test_controller.close()


@pytest.fixture
def serve_driver():
    """``with serve_driver(MyDriver()) as client:`` — a real exporter and client for one driver."""
    return client_for


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
        done = subprocess.run(
            ["losetup", "-f", "--show", "-P", str(backing)], capture_output=True, text=True, check=False
        )
        if done.returncode:
            pytest.fail(f"losetup failed: {done.stderr}")
        made.append(done.stdout.strip())
        return made[-1]

    yield make
    for device in made:
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False)


@pytest.fixture(scope="session")
def peer() -> Path:
    """The upstream 0.9.0 peer venv (``DIR/bin/jmp``, ``DIR/bin/j``, ``DIR/bin/python``, the community
    drivers the hosting tests use), set up on first use by ``scripts/setup-upstream-peer.sh``."""
    root = Path(__file__).resolve().parents[1]
    setup = subprocess.run(
        ["bash", str(root / "scripts/setup-upstream-peer.sh")], capture_output=True, text=True, timeout=900
    )
    if setup.returncode != 0:
        pytest.fail(f"scripts/setup-upstream-peer.sh failed ({setup.returncode}):\n{setup.stderr[-3000:]}")
    directory = Path(setup.stdout.strip().splitlines()[-1])
    for tool in ("jmp", "j", "python"):
        assert (directory / "bin" / tool).exists(), f"peer venv {directory} has no bin/{tool}"
    return directory
