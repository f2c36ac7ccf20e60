"""Interface widgets in a real kernel: cells and widgets drive the same objects.

Clicks are what a front end sends (``model.send({action, args})`` as a comm message on the
kernel's shell channel, optionally on a subshell as JupyterLab >= 4.4 does); effects are checked
through the Python API and the widgets' traits. The device panel's saved state (nbclient with
``store_widget_state``) nests like the tree and carries each widget's small loader, no front end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import nbformat
import pytest
from kernels import WAIT_UNTIL, demo, jupyter_env, kernel, start_kernel  # noqa: F401  (fixtures)
from nbclient import NotebookClient

from jumpstarter_jupyter.driver import Driver, export
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.drivers.virtual.image import make_image
from support import serving

pytestmark = pytest.mark.notebook
LOADER_LIMIT = 5_000  # bytes: a widget's saved `_esm` is its loader, never its front end

SETUP = (
    WAIT_UNTIL
    + """
import json, time, urllib.request
import jumpstarter_jupyter as jj
from jumpstarter_jupyter.client.display import widget_for
"""
)


def setup(kernel, endpoint: str) -> None:
    """Helpers, and ``dut`` connected to ``endpoint``."""
    kernel.ok(SETUP + f"dut = jj.connect({endpoint!r})")


def widget_id(kernel, expression: str) -> str:
    """Make (or get) the widget of a client in the kernel; returns its model id."""
    return kernel.ok(f"print(widget_for({expression}).model_id)").text.strip()


def click(kernel, model_id: str, action: str, *args, subshell: str | None = None) -> None:
    kernel.send_to_widget(model_id, {"action": action, "args": list(args)}, subshell)


def test_power_widget_and_cells_share_state(kernel, demo):
    setup(kernel, demo)
    power = widget_id(kernel, "dut.power")
    kernel.ok(
        "w = widget_for(dut.power)\ndut.power.on()\nwait_until(lambda: w.state == 'on', what='the widget to show on')"
    )
    click(kernel, power, "off")
    kernel.ok(
        "wait_until(lambda: dut.power.state() is False, what='the click to power off')\n"
        "wait_until(lambda: w.state == 'off', what='the widget to show off')"
    )
    kernel.ok("wait_until(lambda: len(w.readings) >= 2, what='readings for the chart')")
    assert kernel.ok("print(all(len(r) == 3 for r in w.readings), w.error == '')").text == "True True\n"


def test_emergency_power_off_while_a_long_cell_runs(kernel, demo):
    setup(kernel, demo)
    power = widget_id(kernel, "dut.power")
    kernel.ok("dut.power.on()")
    subshell = kernel.create_subshell()
    # this cell only ends once the power is off: the click must not wait behind it
    long_cell = kernel.start(
        "for reading in dut.power.watch(0.1):\n    if not dut.power.state():\n        break"
    )
    click(kernel, power, "off", subshell=subshell)
    assert kernel.finish(long_cell) == "ok"
    assert kernel.ok("print(dut.power.state())").text == "False\n"


def test_gpio_widgets_follow_the_board(kernel, demo):
    setup(kernel, demo)
    kernel.ok("dut.boot_to_shell(timeout=60)")
    button = widget_id(kernel, "dut.button")
    kernel.ok("led, button = widget_for(dut.led), widget_for(dut.button)")
    kernel.ok(
        "dut.serial.sendline('led on')\nwait_until(lambda: led.value == 1, what='the led indicator to light')"
    )
    kernel.ok(
        "dut.serial.sendline('led off')\nwait_until(lambda: led.value == 0, what='the led indicator to go dark')"
    )
    click(kernel, button, "set", True)
    kernel.ok(
        "wait_until(lambda: dut.button.read() == 1, what='the switch to press the button')\n"
        "dut.serial.sendline('button')\n"
        "dut.serial.expect('button: pressed', timeout=10)"
    )
    kernel.ok("dut.button.off()\nwait_until(lambda: button.value == 0, what='the switch to follow the cell')")


def test_storage_widget_flashes_with_progress(kernel, demo, tmp_path):
    image = tmp_path / "os-3.0.img"
    image.write_bytes(make_image("Jumpstarter Linux", "3.0", payload_size=3 << 20))
    setup(kernel, demo)
    storage = widget_id(kernel, "dut.storage")
    kernel.ok("s = widget_for(dut.storage)\ndut.power.off()")
    click(kernel, storage, "flash", str(image))
    kernel.ok(
        "wait_until(lambda: s.total > 0 and not s.flashing, 60, 'the flash to end')\n"
        "wait_until(lambda: s.state == 'dut', what='the mux back on the board')"
    )
    assert (
        kernel.ok(f"print(s.sent == s.total == {image.stat().st_size}, s.error == '')").text == "True True\n"
    )
    kernel.ok("dut.power.on()\ndut.serial.expect('Jumpstarter Linux 3.0', timeout=60)")
    click(kernel, storage, "host")
    kernel.ok(
        "wait_until(lambda: dut.storage.state() == 'host', what='the click to switch to the host')\n"
        "wait_until(lambda: s.state == 'host', what='the selector to follow')"
    )
    click(kernel, storage, "flash", str(tmp_path / "missing.img"))
    kernel.ok("wait_until(lambda: 'no image file' in s.error, what='the error in the widget')")


def test_network_widget_opens_and_closes_forwards(kernel, demo):
    setup(kernel, demo)
    kernel.ok("dut.boot_to_shell(timeout=60)")
    network = widget_id(kernel, "dut.network")
    kernel.ok("n = widget_for(dut.network)\nwait_until(lambda: n.address, what='the service address')")
    assert kernel.ok("print(n.address == dut.network.address())").text == "True\n"
    click(kernel, network, "open", 0)
    kernel.ok(
        "wait_until(lambda: n.forwards, what='a forward')\n"
        "body = urllib.request.urlopen(f'http://{n.forwards[0]}/', timeout=10).read().decode()\n"
        "assert 'Jumpstarter Linux' in body, body\n"
        "opened = n.forwards[0]"
    )
    address = kernel.ok("print(opened)").text.strip()
    click(kernel, network, "close", address)
    kernel.ok("wait_until(lambda: not n.forwards, what='the forward to close')")
    refused = kernel.run(f"urllib.request.urlopen('http://{address}/', timeout=10)")
    assert refused.status == "error" and "refused" in refused.text.lower()


@dataclass
class Calculator(Driver):
    """A driver we have no client class for: the generic widget offers its methods."""

    @export
    def add(self, a: float, b: float = 1.0) -> float:
        """a + b"""
        return a + b

    @export
    def count(self, n: int):
        """0, 1, ... n-1"""
        yield from range(n)

    @export
    def fail(self) -> None:
        """Always fails."""
        raise ValueError("calculator is broken")


def test_generic_widget_offers_and_calls_exported_methods(kernel):
    root = Composite()
    root.children = {"calc": Calculator()}
    with serving(root) as exporter:
        setup(kernel, exporter.address)
        calc = widget_id(kernel, "dut.calc")
        methods = json.loads(kernel.ok("g = widget_for(dut.calc)\nprint(json.dumps(g.methods))").text)
        assert [m["name"] for m in methods] == ["add", "count", "fail"]
        assert methods[0]["params"] == [
            {"name": "a", "type": "float"},
            {"name": "b", "type": "float", "default": 1.0},
        ]
        click(kernel, calc, "call", "add", [2, 3])
        click(kernel, calc, "call", "add", [4])  # b defaults to 1: either call shows 5.0
        click(kernel, calc, "call", "count", [3])
        click(kernel, calc, "call", "fail", [])
        kernel.ok(
            "wait_until(lambda: set(g.results) == {'add', 'count', 'fail'} and not g.running, what='results')"
        )
        results = json.loads(kernel.ok("print(json.dumps(g.results))").text)
        assert results["add"] == "5.0"
        assert results["count"] == "0.0\n1.0\n2.0"  # numbers travel as doubles
        assert results["fail"].startswith("error: dut.calc.fail: calculator is broken")


def test_panel_saved_state_nests_like_the_tree(jupyter_env, monkeypatch, tmp_path):
    for name, value in jupyter_env.items():
        monkeypatch.setenv(name, value)
    rack = Composite()
    rack.children = {"aux": MockPower(), "calc": Calculator()}
    root = Composite()
    root.children = {"power": MockPower(), "rack": rack}
    with serving(root) as exporter:
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(c)
                for c in ("%load_ext jumpstarter", f"%jmp connect {exporter.address}")
            ]
        )
        NotebookClient(
            nb,
            timeout=120,
            kernel_name="python3",
            store_widget_state=True,
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    view = nb.cells[1].outputs[0]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]

    def shape(model_id: str):
        model = state[model_id]["state"]
        if "children" in model:  # a panel: its header, then its parts
            header, *parts = (ref.removeprefix("IPY_MODEL_") for ref in model["children"])
            return {
                state[header]["state"]["value"].split("</b>")[0].removeprefix("<b>"): [
                    shape(p) for p in parts
                ]
            }
        return "lease bar" if "holder" in model else model["path"]

    # the root's panel starts with the board's lease bar
    assert shape(view) == {"dut": ["lease bar", "dut.power", {"dut.rack": ["dut.rack.aux", "dut.rack.calc"]}]}
    modules = [len(m["state"]["_esm"]) for m in state.values() if "_esm" in m["state"]]
    assert len(modules) == 4 and max(modules) < LOADER_LIMIT  # loaders, not front ends
