"""pytest plugin: a ``dut`` fixture, so one test file runs on the virtual board or a real exporter.

    def test_boots(dut):
        dut.power.on()
        dut.serial.expect("login:", timeout=60)

The board is ``--jumpstarter-endpoint`` (``host:port``, ``unix:/path``), else
``$JUMPSTARTER_HOST`` (set by upstream's ``jmp shell``), else a private virtual board started
for the test session; or ``--jumpstarter-selector soc=imx8mp``: any board of the pool whose
labels match (a free one, else the first released). ``--jumpstarter-passphrase`` defaults to ``$JMP_GRPC_PASSPHRASE``.
On an exporter that requires a lease, the fixture takes it (waiting in line at most
``--jumpstarter-lease-timeout``, for ``--jumpstarter-lease-purpose``) and gives it back when the
session ends, however it ends: passed, failed or interrupted.
Registered through the ``pytest11`` entry point, so installing jumpstarter-jupyter enables it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jumpstarter_jupyter.client import DriverClient, connect, resolve_endpoint
from jumpstarter_jupyter.durations import parse_duration
from jumpstarter_jupyter.errors import JumpstarterError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("jumpstarter", "jumpstarter-jupyter: the board under test")
    group.addoption(
        "--jumpstarter-endpoint",
        metavar="ENDPOINT",
        default=None,
        help="exporter to test against: host:port, unix:/path or a socket path "
        "(default: $JUMPSTARTER_HOST, else a private virtual board)",
    )
    group.addoption(
        "--jumpstarter-selector",
        metavar="SELECTOR",
        default=None,
        help="instead of an endpoint: any board of the pool whose labels match this label "
        "selector (soc=imx8mp,site!=lab2), a free one first",
    )
    group.addoption(
        "--jumpstarter-passphrase",
        metavar="PASSPHRASE",
        default=None,
        help="the exporter's passphrase (default: $JMP_GRPC_PASSPHRASE)",
    )
    group.addoption(
        "--jumpstarter-lease-timeout",
        metavar="DURATION",
        default="10m",
        type=_duration,
        help="how long to wait in line for the board's lease (90s, 10m; default 10m)",
    )
    group.addoption(
        "--jumpstarter-lease-purpose",
        metavar="TEXT",
        default=None,
        help="what the lease is for, shown to others (default: pytest and the name of the rootdir)",
    )


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise pytest.UsageError(f"--jumpstarter-lease-timeout: {exc}") from None


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("jumpstarter_selector"):
        return f"jumpstarter: any pool board matching {config.getoption('jumpstarter_selector')} (for tests using dut)"
    endpoint = resolve_endpoint(config.getoption("jumpstarter_endpoint"))
    return f"jumpstarter: {endpoint or 'private virtual board'} (for tests using dut)"


@pytest.fixture(scope="session")
def dut(request: pytest.FixtureRequest) -> Iterator[DriverClient]:
    """The board under test: the root client of the exporter's tree, shared by the session
    (holding the board's lease for the session when the exporter requires one)."""
    config = request.config
    purpose = config.getoption("jumpstarter_lease_purpose") or f"pytest {config.rootpath.name}"
    try:
        client = connect(
            config.getoption("jumpstarter_endpoint"),
            config.getoption("jumpstarter_passphrase"),
            wait=config.getoption("jumpstarter_lease_timeout"),
            purpose=purpose,
            selector=config.getoption("jumpstarter_selector"),
        )
    except (JumpstarterError, ValueError) as exc:
        pytest.fail(f"jumpstarter: cannot connect to the board under test: {exc}", pytrace=False)
    with client:
        yield client
