"""The pool file: where it is read from, which entry wins, how names resolve, its errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

import jumpstarter_jupyter as jj
from jumpstarter_jupyter.client import pool
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.errors import ConfigError
from jumpstarter_jupyter.exporter.leases import LeasePolicy
from support import serving

SYSTEM = """\
exporters:
  bench-1:
    endpoint: 10.0.0.5:7777
    description: from the admin
  bench-2:
    endpoint: {endpoint}
    passphrase_file: {secret}
    labels: {{board: virtual}}
    description: Virtual bench
"""
USER = """\
exporters:
  bench-1:
    endpoint: unix:/nonexistent/bench-1.sock
    description: my own
"""


@pytest.fixture
def config_dirs(tmp_path, monkeypatch):
    """(system-wide dir, user dir): an admin's extra config dir ($JUPYTER_CONFIG_PATH, read like
    {sys.prefix}/etc/jupyter) and the user's ($JUPYTER_CONFIG_DIR)."""
    system, user = tmp_path / "etc-jupyter", tmp_path / "home-jupyter"
    system.mkdir()
    user.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(system))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(user))
    return system, user


@pytest.fixture
def exporter():
    root = Composite()
    root.children = {"power": MockPower()}
    with serving(root, passphrase="s3cret", lease=LeasePolicy(required=True)) as served:
        yield served


def write_pool(config_dirs, tmp_path, endpoint="unix:/nowhere.sock") -> None:
    system, user = config_dirs
    secret = tmp_path / "bench-2.pass"
    secret.write_text("s3cret\n")
    (system / pool.POOL_FILE).write_text(SYSTEM.format(endpoint=endpoint, secret=secret))
    (user / pool.POOL_FILE).write_text(USER)


def test_every_pool_file_is_read_and_the_users_entry_wins(config_dirs, tmp_path):
    write_pool(config_dirs, tmp_path)
    boards = pool.load_pool()
    assert set(boards) == {"bench-1", "bench-2"}
    assert (
        boards["bench-1"].endpoint == "unix:/nonexistent/bench-1.sock"
        and boards["bench-1"].description == "my own"
    )
    assert boards["bench-2"].labels == {"board": "virtual"} and boards["bench-2"].passphrase() == "s3cret"
    assert boards["bench-1"].source == str(config_dirs[1] / pool.POOL_FILE)


def test_names_resolve_to_pool_entries_by_the_rules(config_dirs, tmp_path):
    write_pool(config_dirs, tmp_path)
    assert pool.resolve("pool:bench-1") == ("unix:/nonexistent/bench-1.sock", None)
    assert pool.resolve("bench-2") == ("unix:/nowhere.sock", "s3cret")  # a bare name: the pool first
    assert pool.resolve("bench-2", "given") == ("unix:/nowhere.sock", "given")
    assert pool.resolve("board.sock") == ("board.sock", None)  # not in the pool: a socket path, as before
    for address in ("./bench-1", "unix:bench-1", "bench-1:7777"):  # never looked up
        assert pool.resolve(address) == (address, None)
    with pytest.raises(
        ConfigError, match=r"no board named 'bench-9' in the pool \(boards: bench-1, bench-2; files read: "
    ):
        pool.resolve("pool:bench-9")


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "exporters:\n  bench-1:\n    endpiont: 10.0.0.5:7777\n",
            r"exporters\.bench-1\.endpiont \(line 3\): unknown key; "
            r"expected one of admin_passphrase_file, controller, description, ",
        ),
        (
            "exporters:\n  bench-1:\n    description: no endpoint\n",
            r"exporters\.bench-1 \(line 3\): expected the exporter's endpoint",
        ),
        (
            "exporters:\n  bench-1: {endpoint: 10.0.0.5:7777, labels: [rpi4]}\n",
            r"exporters\.bench-1\.labels \(line 2\): expected a mapping of label names to values",
        ),
        (
            "exporters:\n  a:b: {endpoint: x:1}\n",
            r"exporters\.a:b \(line 2\): a board name has no '/' or ':'",
        ),
        (
            "boards:\n  bench-1: {endpoint: x:1}\n",
            r"boards \(line 2\): unknown key; expected one of exporters",
        ),
        ("exporters:\n  bench-1: {endpoint: 10.0.0.5:7777\n", r"line 3, column 1: YAML syntax error"),
    ],
)
def test_a_malformed_pool_file_names_the_file_the_path_and_the_line(config_dirs, text, message):
    path = config_dirs[1] / pool.POOL_FILE
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{path}: {message}"):
        pool.load_pool()


def test_connect_by_pool_name_reads_the_passphrase_file(config_dirs, tmp_path, exporter):
    write_pool(config_dirs, tmp_path, endpoint=exporter.address)
    with jj.connect("bench-2", purpose="by name") as dut:
        dut.power.on()
        assert dut.lease.holder and dut.connection.endpoint == exporter.address
    states = {state.name: state for state in pool.pool_states()}
    assert states["bench-2"].reachable and states["bench-2"].drivers == 1 and states["bench-2"].required
    assert not states["bench-2"].holder and pool.describe_state(states["bench-2"]) == "1 drivers, free"
    assert not states["bench-1"].reachable and states["bench-1"].error == "not reachable"


def test_the_command_line_takes_pool_names(config_dirs, tmp_path, exporter):
    write_pool(config_dirs, tmp_path, endpoint=exporter.address)
    run = subprocess.run(
        [sys.executable, "-m", "jumpstarter_jupyter", "j", "--endpoint", "bench-2", "power", "on"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "jumpstarter_jupyter", "lease", "status", "--endpoint", "pool:bench-2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "leases required" in run.stdout, run.stderr
