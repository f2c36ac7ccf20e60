"""Matplotlib figures of power readings (for cells; live charts are drawn in the browser)."""

from __future__ import annotations


def figure(samples, title: str = "power"):
    """A two-axis figure from ``[(seconds, PowerReading), ...]``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3))
    volts = fig.add_subplot(111)
    times = [t for t, _ in samples]
    volts.plot(times, [r.voltage for _, r in samples], color="tab:blue", label="voltage (V)")
    volts.set_xlabel("seconds")
    volts.set_ylabel("V", color="tab:blue")
    amps = volts.twinx()
    amps.plot(times, [r.current for _, r in samples], color="tab:red", label="current (A)")
    amps.set_ylabel("A", color="tab:red")
    volts.set_title(title)
    fig.tight_layout()
    return fig
