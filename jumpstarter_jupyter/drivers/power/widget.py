"""``PowerWidget``: on/off/cycle buttons showing the actual state, and a live readings chart.

The chart is drawn in the browser from the ``readings`` trait (the last ``HISTORY`` seconds:
the longest window the chart offers),
so it survives reloads and is saved with the notebook; matplotlib figures are for cells
(``dut.power.plot()``).
"""

from __future__ import annotations

import time
from typing import Any

import traitlets

from jumpstarter_jupyter.drivers.power.client import PowerClient
from jumpstarter_jupyter.jupyter.follow import Follower
from jumpstarter_jupyter.jupyter.widget import DriverWidget

HISTORY = 300.0  # seconds of samples kept for the chart (its window menu goes up to 5 minutes)
INTERVAL = 0.5  # seconds between samples


class PowerWidget(DriverWidget):
    """Power switch and live voltage/current chart of one ``PowerClient``."""

    bundle = "power"
    state = traitlets.Unicode("unknown").tag(sync=True)  # "on", "off" or "unknown"
    readings = traitlets.List().tag(sync=True)  # [[elapsed seconds, volts, amperes], ...], oldest first

    def __init__(self, client: PowerClient, **kwargs: Any):
        super().__init__(client, **kwargs)
        self._history: list[list[float]] = []
        self._start = time.monotonic()
        self._follower = Follower(self, "watching readings", self._follow)

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

    # the follower: readings and state, so a cell's on()/off() shows here too
    def _follow(self, follower: Follower) -> None:
        readings = self.client.watch(INTERVAL)
        try:
            for reading in readings:
                if follower.stopped.is_set():
                    return
                now = round(time.monotonic() - self._start, 2)
                kept = [s for s in self._history if s[0] > now - HISTORY]
                self._history = [*kept, [now, reading.voltage, reading.current]]
                follower.update(readings=self._history, state=self._state())
        finally:
            readings.close()

    def _state(self) -> str:
        state = self.client.state()
        return "unknown" if state is None else "on" if state else "off"

    def stop(self) -> None:
        self._follower.stop()
