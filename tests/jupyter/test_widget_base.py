"""The widget base (``DriverWidget``) over a real exporter and client, outside a kernel."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import traitlets

import jumpstarter_jupyter
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.jupyter.widget import Batcher, DriverWidget
from support import wait_for

ROOT = Path(__file__).parents[2]


class Probe(DriverWidget):
    """A widget with the serial bundle (any built one does) and two actions."""

    bundle = "serial"
    count = traitlets.Int(0).tag(sync=True)

    def action_on(self):
        self.client.on()

    def action_fail(self, reason):
        raise ValueError(reason)


class Unbuilt(DriverWidget):
    bundle = "no-such-widget"


def front_end_sends(widget, content):
    """Deliver ``content`` the way the comm delivers a front end's ``model.send``."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@pytest.fixture
def power(serve_driver):
    with serve_driver(MockPower(), name="power") as client:
        yield client


def test_python_and_js_versions_match():
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert package["version"] == jumpstarter_jupyter.__version__


def test_for_client_returns_one_widget_per_client(power):
    widget = Probe.for_client(power)
    assert Probe.for_client(power) is widget
    assert widget.path == "dut.power"
    widget.close()
    assert Probe.for_client(power) is not widget


def test_missing_bundle_says_how_to_build_it(power):
    with pytest.raises(
        FileNotFoundError, match=r"no-such-widget\.js is missing: build it with `make install`"
    ):
        Unbuilt(power)


def test_action_runs_client_method_and_failures_land_in_error(power):
    widget = Probe(power)
    front_end_sends(widget, {"action": "on", "args": []})
    wait_for(lambda: power.state() is True)
    front_end_sends(widget, {"action": "fail", "args": ["relay stuck"]})
    wait_for(lambda: widget.error == "fail: relay stuck")
    front_end_sends(widget, {"action": "explode", "args": []})
    wait_for(lambda: "unknown action 'explode'" in widget.error)
    widget.close()


def test_updates_from_many_threads_coalesce(power):
    widget = Probe(power)
    threads = [
        threading.Thread(target=lambda n=n: [widget.update(count=n * 1000 + i) for i in range(1000)])
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    widget.update(count=-1)
    wait_for(lambda: widget.count == -1)
    widget.close()


def test_batcher_coalesces_pokes_into_fewer_flushes():
    flushed = threading.Event()
    flushes = []

    def flush():
        flushes.append(1)
        flushed.set()

    batcher = Batcher(flush)
    for _ in range(10_000):
        batcher.poke()
    wait_for(flushed.is_set)
    batcher.close()
    assert 1 <= len(flushes) < 10_000


class Counted(Probe):
    """A widget whose summary reads its ``count`` trait."""

    summarized = ("count",)

    def summarize(self):
        return f"counted {self.count}"


def test_the_kernel_writes_the_text_summary_a_saved_notebook_shows(power):
    widget = Counted.for_client(power)
    assert widget.summary == "counted 0"  # from the start: a notebook saved at once holds it
    widget.update(count=3, error="relay stuck")
    wait_for(lambda: widget.summary == "counted 3", what="the summary to follow the trait")
    # viewers that draw no widget show the same text (nbconvert, nbviewer, the docs)
    text = widget._repr_mimebundle_()[0]["text/plain"]
    assert text == "dut.power (text view)\nerror: relay stuck\ncounted 3"
    widget.close()
