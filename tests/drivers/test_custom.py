"""Drivers from a separate package: by import path, by entry point, and with the generic client."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from jumpstarter_jupyter import DriverMethodNotFound, connect
from jumpstarter_jupyter.client import GenericClient

PACKAGE = '''
from dataclasses import dataclass
from collections.abc import Iterator

import click

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.driver import Driver, export


@dataclass
class Relay(Driver):
    """A lab relay board with switchable channels."""

    channels: int = 4
    client = "labrelay.client.RelayClient"

    def __post_init__(self):
        self.closed = [False] * self.channels

    @export
    def close_channel(self, channel: int, note: str = "") -> str:
        """Close one channel."""
        self.closed[channel] = True
        return f"channel {channel} closed{': ' + note if note else ''}"

    @export
    def states(self) -> Iterator[bool]:
        """Each channel's state."""
        yield from self.closed


@dataclass
class Mystery(Relay):
    client = "labrelay.nowhere.MissingClient"   # not importable by clients: generic fallback
'''

CLIENT = """
import click
from jumpstarter_jupyter.client import DriverClient


class RelayClient(DriverClient):
    def close_channel(self, channel: int, note: str = "") -> str:
        return self.call("close_channel", channel, note)

    def cli(self):
        group = super().cli()

        @group.command("close")
        @click.argument("channel", type=int)
        def close(channel):
            click.echo(self.close_channel(channel))

        return group
"""


@pytest.fixture
def labrelay(tmp_path, monkeypatch):
    """A driver package outside the project, registered through an entry point."""
    package = tmp_path / "labrelay"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "driver.py").write_text(textwrap.dedent(PACKAGE))
    (package / "client.py").write_text(textwrap.dedent(CLIENT))
    dist = tmp_path / "labrelay-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: labrelay\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[jumpstarter_jupyter.drivers]\nLabRelay = labrelay.driver:Relay\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    config = tmp_path / "lab.yaml"
    config.write_text(
        textwrap.dedent("""\
        apiVersion: jumpstarter.dev/v1alpha1
        kind: ExporterConfig
        export:
          by_path:
            type: labrelay.driver.Relay
            config: {channels: 2}
          by_entry_point:
            type: LabRelay
          mystery:
            type: labrelay.driver.Mystery
    """)
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jumpstarter_jupyter",
            "run",
            str(config),
            "--socket",
            str(tmp_path / "lab.sock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().startswith("serving ")
    yield f"unix:{tmp_path / 'lab.sock'}"
    process.terminate()
    process.wait()


def test_custom_drivers_load_by_import_path_and_entry_point(labrelay):
    with connect(labrelay) as lab:
        assert type(lab.by_path).__name__ == "RelayClient"
        assert lab.by_path.close_channel(1, note="heater") == "channel 1 closed: heater"
        assert list(lab.by_path.streamingcall("states")) == [False, True]
        assert lab.by_entry_point.close_channel(3) == "channel 3 closed"


def test_unknown_client_class_falls_back_to_the_generic_client(labrelay):
    with connect(labrelay) as lab:
        mystery = lab.mystery
        assert isinstance(mystery, GenericClient)
        assert "close_channel" in dir(mystery)
        assert mystery.close_channel(channel=2) == "channel 2 closed"
        assert list(mystery.states()) == [False, False, True, False]
        assert "Close one channel." in mystery.close_channel.__doc__
        with pytest.raises(DriverMethodNotFound, match="dut.mystery.open_channel: no such method"):
            mystery.open_channel(1)


def j(endpoint, *args):
    return subprocess.run(
        [sys.executable, "-m", "jumpstarter_jupyter", "j", "--endpoint", endpoint, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_custom_and_generic_clients_contribute_cli_commands(labrelay):
    result = j(labrelay, "by_path", "close", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "channel 0 closed\n"
    result = j(labrelay, "mystery", "close-channel", "1", "bench")
    assert (result.returncode, result.stdout) == (0, "channel 1 closed: bench\n")
    result = j(labrelay, "mystery", "--help")
    assert "close-channel" in result.stdout and "states" in result.stdout
    result = j(labrelay, "mystery", "close-channel", "9")
    assert result.returncode == 1
    assert (
        "Error: dut.mystery.close_channel: list assignment index out of range [IndexError]" in result.stderr
    )
