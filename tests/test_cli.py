"""The command line: errors are one readable line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.driver import MockPower
from support import serving, write_package

CONFIG = (
    "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nexport:\n  power:\n    type: MockPower\n"
)


def cli(*args, timeout=60, env=None):
    return subprocess.run(
        [sys.executable, "-m", "jumpstarter_jupyter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def board() -> Composite:
    root = Composite()
    root.children = {"power": MockPower()}
    return root


def test_run_refuses_a_bad_config_naming_file_and_line(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(CONFIG.replace("MockPower", "MockPowah"))
    result = cli("run", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"Error: {config}: export.power.type (line 5): unknown driver type "
        "'MockPowah'; did you mean MockPower"
    )


def test_run_refuses_a_port_in_use(tmp_path):
    config = tmp_path / "ok.yaml"
    config.write_text(CONFIG)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = cli("run", str(config), "--listen", f"127.0.0.1:{taken.getsockname()[1]}")
    assert result.returncode == 1
    assert "Error: cannot listen on 127.0.0.1:" in result.stderr and "Traceback" not in result.stderr


def test_j_against_a_dead_exporter_says_so(tmp_path):
    result = cli("j", "--endpoint", f"unix:{tmp_path}/gone.sock", "power", "on")
    assert result.returncode == 1
    assert "is not reachable" in result.stderr and "Traceback" not in result.stderr


def test_j_without_an_endpoint_explains_and_help_works(monkeypatch):
    monkeypatch.delenv("JUMPSTARTER_HOST", raising=False)
    result = cli("j", "power", "on")
    assert result.returncode == 2 and "no exporter: pass --endpoint" in result.stderr
    assert "Drive an exporter's tree" in cli("j", "--help").stdout


def test_j_drives_power_and_refuses_a_wrong_passphrase():
    with serving(board(), passphrase="pw") as exporter:
        bad = cli("j", "--endpoint", exporter.address, "--passphrase", "nope", "power", "on")
        assert bad.returncode == 1 and "invalid or missing passphrase" in bad.stderr
        good = cli("j", "--endpoint", exporter.address, "--passphrase", "pw", "power", "read", "-n", "2")
        assert good.returncode == 0, good.stderr
        assert good.stdout.splitlines() == [
            "voltage=0.0 V  current=0.0 A  apparent_power=0.0 VA",
            "voltage=5.0 V  current=2.0 A  apparent_power=10.0 VA",
        ]
        tree = cli("j", "--endpoint", exporter.address, "--passphrase", "pw", "tree")
        assert tree.stdout.splitlines() == ["dut  (CompositeClient)", "  power  (PowerClient)"]
        help_text = cli("j", "--endpoint", exporter.address, "--passphrase", "pw", "power", "--help").stdout
        assert all(command in help_text for command in ("on", "off", "cycle", "read"))


def test_cycle_with_a_negative_wait_is_refused():
    with serving(board()) as exporter:
        result = cli("j", "--endpoint", exporter.address, "power", "cycle", "-w", "-1")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: dut.power.cycle: wait must be >= 0 seconds, got -1.0"


COMMAND = '''
import click


@click.command("hello-board")
@click.option("--name", default="board")
def hello(name):
    """Say hello to a board (a command of a driver package from another project)."""
    click.echo(f"hello {name}")
'''


def test_a_driver_package_adds_its_own_command_through_an_entry_point(tmp_path):
    """An installed package (its dist-info on the path, as pip leaves it) declaring a command in
    the jumpstarter_jupyter.commands entry-point group: the CLI lists and runs it."""
    write_package(tmp_path, "outsider_commands", {"cli.py": COMMAND})
    info = tmp_path / "outsider_commands-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: outsider-commands\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[jumpstarter_jupyter.commands]\nhello-board = outsider_commands.cli:hello\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    listed = cli("--help", env=env)
    assert re.search(r"\n  hello-board +Say hello to a board", listed.stdout), listed.stdout
    assert "qemu-images" in listed.stdout  # ours arrive the same way (drivers.COMMANDS)
    ran = cli("hello-board", "--name", "dut", env=env)
    assert (ran.returncode, ran.stdout) == (0, "hello dut\n")
