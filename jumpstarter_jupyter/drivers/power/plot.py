"""Matplotlib figures of power readings (for cells; live charts are drawn in the browser)."""

from __future__ import annotations

import io
from collections.abc import Iterable

from matplotlib.figure import Figure

from jumpstarter_jupyter.drivers.power.common import PowerReading

VOLTAGE_COLOUR = "tab:blue"
CURRENT_COLOUR = "tab:red"


class PowerFigure(Figure):
    """A matplotlib figure that a cell shows as a PNG by itself: no pyplot, no ``%matplotlib``
    (a plain ``Figure`` made without pyplot shows as its repr text until pyplot is imported)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


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
    for axis, label, colour, x, align in ((volts, "voltage (V)", VOLTAGE_COLOUR, 0.0, "left"),
                                          (amps, "current (A)", CURRENT_COLOUR, 1.0, "right")):
        axis.set_ylabel(label, color=colour, rotation=0, ha=align, va="bottom")
        axis.yaxis.set_label_coords(x, 1.02)
        axis.tick_params(axis="y", colors=colour)
        axis.margins(y=0.1)  # a steady reading is a flat line inside the frame, not on its edge
    volts.grid(True, alpha=0.3)
    volts.legend(handles=lines, loc="lower right", fontsize="small")
    fig.suptitle(title)
    return fig
