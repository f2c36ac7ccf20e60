"""The relay through a real exporter and client, as a notebook will use it."""

import textwrap

import pytest
from labrelay.driver import Relay

from jumpstarter_jupyter import DriverInvalidArgument
from jumpstarter_jupyter.testing import serve


def test_closing_a_channel_shows_in_its_state():
    with serve(Relay(channels=2)) as relay:
        relay.close_channel(1)
        assert relay.states() == [False, True]
        relay.open_channel(1)
        assert relay.states() == [False, False]


def test_a_channel_out_of_range_is_refused_naming_driver_and_method():
    with serve(Relay(channels=2), name="relay") as relay:
        with pytest.raises(
            DriverInvalidArgument, match=r"relay\.close_channel: .*channel must be 0\.\.1, got 5"
        ):
            relay.close_channel(5)
        assert relay.states() == [False, False]  # nothing changed


def test_the_relay_in_an_exporter_config(tmp_path):
    config = tmp_path / "bench.yaml"
    config.write_text(
        textwrap.dedent("""\
        apiVersion: jumpstarter.dev/v1alpha1
        kind: ExporterConfig
        export:
          relay:
            type: labrelay.driver.Relay     # installed: type: LabRelay
            config: {channels: 8}
          power: {type: MockPower}
    """)
    )
    with serve(config) as dut:
        dut.relay.close_channel(7)
        assert dut.relay.states()[7] is True
