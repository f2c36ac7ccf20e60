"""``dut.power.plot()`` in a real kernel against the demo board: the figure a cell shows.

The figure's own state is read back in the kernel (its lines' x data, its axis labels), and the
cell's result must carry a PNG, as a headless papermill run saves it.
"""

from __future__ import annotations

import json
import time

import pytest
from kernels import demo, jupyter_env, kernel, start_kernel  # noqa: F401  (fixtures)

from jumpstarter_jupyter.drivers.power.common import PowerReading
from jumpstarter_jupyter.drivers.power.plot import figure, padded_limits

pytestmark = pytest.mark.notebook
SECONDS = 3.0  # asked of plot(); the old islice stopped after a third of it

DESCRIBE = '''
import json
def describe(fig):
    """What the figure draws: per axes, its labels and every line's x and y data."""
    return json.dumps([{"xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                        "rotation": ax.yaxis.label.get_rotation(), "ylim": [float(v) for v in ax.get_ylim()],
                        "lines": [{"label": line.get_label(), "x": [float(v) for v in line.get_xdata()],
                                   "y": [float(v) for v in line.get_ydata()]} for line in ax.get_lines()]}
                       for ax in fig.axes])
'''


def test_plot_collects_the_asked_time_in_time_order_with_units(kernel, demo):
    kernel.ok(f"import jumpstarter_jupyter as jj\ndut = jj.connect({demo!r})\ndut.power.on()" + DESCRIBE)
    started = time.monotonic()
    shown = kernel.ok(f"fig = dut.power.plot(seconds={SECONDS})\nfig")
    took = time.monotonic() - started
    assert any(
        "image/png" in out["content"]["data"]
        for out in shown.outputs
        if out["msg_type"] in ("execute_result", "display_data")
    ), shown.text
    axes = json.loads(kernel.ok("print(describe(fig))").text)

    assert took >= SECONDS
    assert [ax["ylabel"] for ax in axes] == ["voltage (V)", "current (A)"]
    assert all(ax["rotation"] == 0 for ax in axes)  # upright, not a sideways "A"
    assert axes[0]["xlabel"] == "elapsed time (s)"
    for line in (ax["lines"][0] for ax in axes):
        x = line["x"]
        assert len(x) >= 5 and all(a < b for a, b in zip(x, x[1:], strict=False)), (
            line
        )  # one point per time, in order
        assert x[-1] - x[0] >= SECONDS * 0.9, x  # readings span the asked time
    volts, amps = axes[0]["lines"][0]["y"], axes[1]["lines"][0]["y"]
    assert all(4.9 < v < 5.1 for v in volts[1:]) and all(0 < a < 1 for a in amps[1:]), (volts, amps)
    for ax in axes:  # the data inside the frame with room around it; steady volts not stretched into a zigzag
        low, high = ax["ylim"]
        y = ax["lines"][0]["y"]
        assert low + 0.05 * (high - low) < min(y) and max(y) < high - 0.05 * (high - low), ax
    low, high = axes[0]["ylim"]
    assert max(volts[1:]) - min(volts[1:]) < 0.5 * (high - low), (volts, axes[0]["ylim"])


def test_plot_rejects_a_non_positive_time(kernel, demo):
    kernel.ok(f"import jumpstarter_jupyter as jj\ndut = jj.connect({demo!r})")
    cell = kernel.run("dut.power.plot(seconds=0)")
    assert (
        cell.status == "error"
        and "dut.power" in cell.text
        and "plot" in cell.text
        and "seconds must be > 0" in cell.text
    )


def test_padded_limits_of_a_steady_and_of_a_zero_reading():
    low, high = padded_limits([0.25, 0.251, 0.249])
    assert (
        low < 0.249 and 0.251 < high and 0.002 / (high - low) < 0.1
    )  # ±1 mA of noise: a small wiggle mid-height
    assert abs((low + high) / 2 - 0.25) < 1e-9
    assert padded_limits([0.0, 0.0]) == (-0.1, 1.1)  # power off: 0 near the bottom, not mid-height


def test_figure_sorts_samples_given_out_of_order():
    fig = figure(
        [(2.0, PowerReading(5.0, 0.3)), (0.5, PowerReading(4.0, 0.1)), (1.0, PowerReading(4.5, 0.2))]
    )
    volts, amps = fig.axes
    assert list(volts.get_lines()[0].get_xdata()) == [0.5, 1.0, 2.0]
    assert list(amps.get_lines()[0].get_ydata()) == [0.1, 0.2, 0.3]


def test_widget_readings_have_one_sample_per_time(kernel, demo):
    """The live chart's samples: one per read() burst (the demo meter sends three at once)."""
    kernel.ok(
        "import json, time\nimport jumpstarter_jupyter as jj\n"
        "from jumpstarter_jupyter.client.display import widget_for\n"
        f"dut = jj.connect({demo!r})\nw = widget_for(dut.power)\ndut.power.on()\n"
        "deadline = time.monotonic() + 30\n"
        "while len(w.readings) < 6 and time.monotonic() < deadline:\n    time.sleep(0.05)"
    )
    readings = json.loads(kernel.ok("print(json.dumps(w.readings))").text)
    times = [r[0] for r in readings]
    assert len(readings) >= 6 and all(b - a >= 0.25 for a, b in zip(times, times[1:], strict=False)), readings
