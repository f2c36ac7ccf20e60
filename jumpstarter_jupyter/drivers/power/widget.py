"""``PowerWidget``: on/off/cycle buttons showing the actual state, and a live readings chart.

The chart is drawn in the browser from the ``readings`` trait (the last ``HISTORY`` seconds:
the longest window the chart offers, one sample per ``read()`` burst),
so it survives reloads and is saved with the notebook; matplotlib figures are for cells
(``dut.power.plot()``). A switch without readings (no ``meter`` child) shows its state alone:
``metered`` is False, the state is polled, and the front end hides the chart rather than
drawing a flat line.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import traitlets

from jumpstarter_jupyter.drivers.power.client import PowerClient
from jumpstarter_jupyter.drivers.power.common import PowerReading
from jumpstarter_jupyter.jupyter.watcher import WidgetWatcher
from jumpstarter_jupyter.jupyter.widget import DriverWidget

HISTORY = 120.0  # seconds of samples kept for the chart (its window menu goes up to 2 minutes)
INTERVAL = 0.5  # seconds between samples
STATE_INTERVAL = 1.0  # seconds between state polls of a switch without readings (a PDU answers in ms)
BURST = INTERVAL / 2  # readings arriving closer than this after a sample's first are one read() burst
DIGITS = 5  # significant digits sent: the chart shows 3, and a saved notebook stays small


class PowerWidget(DriverWidget):
    """Power switch and live voltage/current chart of one ``PowerClient``."""

    bundle = "power"
    summarized = ("state", "metered", "readings")
    state = traitlets.Unicode("unknown").tag(sync=True)  # "on", "off" or "unknown"
    metered = traitlets.Bool(True).tag(sync=True)  # False: the switch has no readings, the chart is hidden
    readings = traitlets.List().tag(sync=True)  # [[elapsed seconds, volts, amperes], ...], oldest first

    def summarize(self) -> str:
        """``power on, last reading 5.00 V 0.120 A (42 samples)``, or ``power on (no meter: no readings)``."""
        if not self.metered:
            return f"power {self.state} (no meter: no readings)"
        last = ""
        if self.readings:
            last = f", last reading {self.readings[-1][1]:.2f} V {self.readings[-1][2]:.3f} A"
        return f"power {self.state}{last} ({len(self.readings)} samples)"

    def __init__(self, client: PowerClient, **kwargs: Any):
        super().__init__(client, **kwargs)
        self._history: list[list[float]] = []
        self._burst: list[PowerReading] = []  # the readings averaged into the newest sample
        self._burst_start = 0.0  # when the newest sample's first reading arrived
        self._start = time.monotonic()
        self._watcher = WidgetWatcher(self, "watching readings", self._follow)

    # front-end actions (worker threads)
    def action_on(self) -> None:
        self.client.on()
        self.update(state=self._state())

    def action_off(self) -> None:
        self.client.off()
        self.update(state=self._state())

    def action_cycle(self, wait: float = 2.0) -> None:
        self.client.cycle(float(wait))
        self.update(state=self._state())

    # the watcher: readings and state, so a cell's on()/off() shows here too
    def _follow(self, watcher: WidgetWatcher) -> None:
        metered = self.client.metered()
        watcher.update(metered=metered)
        if metered:
            self._follow_readings(watcher)
        else:
            self._follow_state(watcher)

    def _follow_readings(self, watcher: WidgetWatcher) -> None:
        readings = self.client.watch(INTERVAL)
        try:
            for reading in readings:
                if watcher.stopped.is_set():
                    return
                self._add(reading)
                watcher.update(readings=self._history, state=self._state())
        finally:
            readings.close()

    def _follow_state(self, watcher: WidgetWatcher) -> None:
        while True:
            watcher.update(state=self._state())
            if watcher.wait(STATE_INTERVAL):
                return

    def _add(self, reading: PowerReading) -> None:
        """One sample per ``read()`` burst (their mean): a meter's few readings arrive together,
        and drawn one by one they would be vertical jumps at one time."""
        now = time.monotonic() - self._start
        if self._burst and now - self._burst_start < BURST:
            self._burst.append(reading)
            earlier = self._history[:-1]
        else:
            self._burst, self._burst_start = [reading], now
            earlier = [s for s in self._history if s[0] > now - HISTORY]
        volts = statistics.fmean(r.voltage for r in self._burst)
        amps = statistics.fmean(r.current for r in self._burst)
        self._history = [
            *earlier,
            [round(self._burst_start, 2), float(f"{volts:.{DIGITS}g}"), float(f"{amps:.{DIGITS}g}")],
        ]

    def _state(self) -> str:
        state = self.client.state()
        return "unknown" if state is None else "on" if state else "off"

    def stop(self) -> None:
        self._watcher.stop()
