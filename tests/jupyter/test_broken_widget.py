"""A widget that cannot be built never breaks the panel: its driver shows as a text row with
the error, the other widgets work, and nothing raises from a half-built widget's __del__."""

from __future__ import annotations

import gc
import sys

import pytest
from ipywidgets.widgets.widget import _instances

from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.client.display import WidgetUnavailable, mimebundle, widget_for
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.drivers.power.widget import PowerWidget
from jumpstarter_jupyter.jupyter.panel import DevicePanel
from support import serving, write_package

PACKAGE = {
    "driver.py": """
        from dataclasses import dataclass
        from jumpstarter_jupyter.driver import Driver, export

        @dataclass
        class Relay(Driver):
            client = "flaky.client.RelayClient"

            @export
            def state(self) -> bool:
                return False

        @dataclass
        class Lamp(Relay):
            client = "flaky.client.LampClient"

        @dataclass
        class Plain(Relay):
            client = "flaky.client.PlainClient"
        """,
    "client.py": '''
        from jumpstarter_jupyter.client import DriverClient

        class RelayClient(DriverClient):
            widget = "flaky.widget.RelayWidget"

        class LampClient(DriverClient):
            widget = "flaky.nowhere.LampWidget"

        class PlainClient(DriverClient):
            """A client without a widget."""
        ''',
    "widget.py": """
        from jumpstarter_jupyter.jupyter.widget import DriverWidget

        class RelayWidget(DriverWidget):
            bundle = "power"

            def __init__(self, client):
                super().__init__(client)
                raise RuntimeError("relay board on fire")

            def stop(self):
                self.follower.stop()  # never made: __init__ raised first
        """,
}


@pytest.fixture
def dut(tmp_path, monkeypatch):
    """A board whose relay widget raises in __init__, whose lamp widget module is missing, and
    whose plain driver has no widget."""
    write_package(tmp_path, "flaky", PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("JMP_DRIVERS_ALLOW", "flaky.*")
    from flaky.driver import Lamp, Plain, Relay

    root = Composite()
    root.children = {"power": MockPower(), "relay": Relay(), "lamp": Lamp(), "plain": Plain()}
    with serving(root) as exporter, connect(exporter.address) as client:
        yield client
    for name in [m for m in sys.modules if m == "flaky" or m.startswith("flaky.")]:
        del sys.modules[name]


@pytest.fixture
def unraisable(monkeypatch) -> list:
    """What Python reports as raised where nothing could catch it (__del__)."""
    caught: list = []
    monkeypatch.setattr(sys, "unraisablehook", caught.append)
    return caught


def test_a_broken_widget_is_an_error_row_and_the_rest_of_the_panel_works(dut, unraisable):
    panel = DevicePanel(dut)
    power, relay, lamp, plain = panel.parts
    assert isinstance(power, PowerWidget)
    assert (
        "dut.relay: widget flaky.widget.RelayWidget failed: RuntimeError: relay board on fire" in relay.value
    )
    assert "dut.lamp: widget flaky.nowhere.LampWidget failed: ModuleNotFoundError" in lamp.value
    assert plain.value == "<code>&lt;PlainClient dut.plain&gt;</code>"  # no widget: its text, no error
    power.action_on()
    assert dut.power.state() is True
    panel.close()
    gc.collect()
    assert unraisable == []
    assert not [w for w in _instances.values() if type(w).__name__ == "RelayWidget"]  # no comm left open


def test_widget_for_tells_no_widget_from_a_broken_one(dut, unraisable):
    assert widget_for(dut.plain) is None
    with pytest.raises(WidgetUnavailable, match="relay board on fire"):
        widget_for(dut.relay)
    assert "relay board on fire" in mimebundle(dut.relay)["text/plain"]
    gc.collect()
    assert unraisable == []
