"""Matplotlib figures of power readings (for cells; live charts are drawn in the browser)."""

from __future__ import annotations

import io
from collections.abc import Iterable

from matplotlib.figure import Figure

from jumpstarter_jupyter.drivers.power.common import PowerReading

VOLTAGE_COLOUR = "tab:blue"
CURRENT_COLOUR = "tab:red"
PADDING = 0.1  # fraction of the data's span shown above and below it


class PowerFigure(Figure):
    """A matplotlib figure that a cell shows as a PNG by itself: no pyplot, no ``%matplotlib``
    (a plain ``Figure`` made without pyplot shows as its repr text until pyplot is imported)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def padded_limits(values: list[float]) -> tuple[float, float]:
    """Y limits: the values' span plus padding, and at least a tenth of their size, so a steady
    5.00 V with 10 mV of noise is a flat line, not a zigzag over the whole height (the same rule
    as the live chart's)."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if low == high == 0:
        high = 1.0  # nothing measured (power off): 0 near the bottom
    span = max(high - low, abs(high) * PADDING, abs(low) * PADDING)
    middle = (low + high) / 2
    low, high = min(low, middle - span / 2), max(high, middle + span / 2)
    return low - span * PADDING, high + span * PADDING


def figure(samples: Iterable[tuple[float, PowerReading]], title: str = "power") -> PowerFigure:
    """A two-axis figure (voltage left, current right) of ``[(elapsed seconds, PowerReading), ...]``.

    Samples are drawn in time order whatever order they come in. The unit labels sit upright
    above each axis: a rotated one-letter label ("V", "A") reads as a symbol.
    """
    ordered = sorted(samples, key=lambda sample: sample[0])
    times = [t for t, _ in ordered]
    fig = PowerFigure(figsize=(7, 3.2), layout="constrained")
    volts = fig.add_subplot(111)
    amps = volts.twinx()
    lines = [
        volts.plot(times, [r.voltage for _, r in ordered], color=VOLTAGE_COLOUR, label="voltage (V)")[0],
        amps.plot(times, [r.current for _, r in ordered], color=CURRENT_COLOUR, label="current (A)")[0],
    ]
    volts.set_xlabel("elapsed time (s)")
    for axis, line, x, align in ((volts, lines[0], 0.0, "left"), (amps, lines[1], 1.0, "right")):
        axis.set_ylabel(line.get_label(), color=line.get_color(), rotation=0, ha=align, va="bottom")
        axis.yaxis.set_label_coords(x, 1.02)
        axis.tick_params(axis="y", colors=line.get_color())
        axis.set_ylim(*padded_limits(list(line.get_ydata())))
    volts.grid(True, alpha=0.3)
    fig.legend(handles=lines, loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    fig.suptitle(title)
    return fig
