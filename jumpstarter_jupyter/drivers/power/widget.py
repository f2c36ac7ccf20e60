"""``PowerWidget``: on/off/cycle buttons showing the actual state, and a live readings chart.

The chart is drawn in the browser from the ``readings`` trait (the last ``HISTORY`` samples),
so it survives reloads and is saved with the notebook; matplotlib figures are for cells
(``dut.power.plot()``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import traitlets

from jumpstarter_jupyter.drivers.power.client import PowerClient
from jumpstarter_jupyter.errors import JumpstarterError
from jumpstarter_jupyter.jupyter.widget import DriverWidget

HISTORY = 120  # samples kept for the chart: one minute at the default interval
INTERVAL = 0.5  # seconds between samples
RETRY = 2.0  # seconds before watching again after the exporter failed


class PowerWidget(DriverWidget):
    """Power switch and live voltage/current chart of one ``PowerClient``."""

    bundle = "power"
    state = traitlets.Unicode("unknown").tag(sync=True)  # "on", "off" or "unknown"
    readings = traitlets.List().tag(sync=True)  # [[seconds, volts, amperes], ...], oldest first

    def __init__(self, client: PowerClient, **kwargs: Any):
        super().__init__(client, **kwargs)
        self._stopped = threading.Event()
        self._history: list[list[float]] = []
        self._start = time.monotonic()
        self._watcher = threading.Thread(target=self._watch, daemon=True,
                                         name=f"jumpstarter-power {client.display_path}")
        self._watcher.start()

    # front-end actions (worker threads)
    def action_on(self) -> None:
        self.client.on()
        self._show_state()

    def action_off(self) -> None:
        self.client.off()
        self._show_state()

    def action_cycle(self, wait: float = 2.0) -> None:
        self.client.cycle(float(wait))
        self._show_state()

    # the watcher thread: readings and state, so cells' on()/off() show here too
    def _watch(self) -> None:
        while not self._stopped.is_set():
            try:
                self._follow()
            except JumpstarterError as exc:
                self.update(error=f"watching readings: {exc}", state="unknown")
            self._stopped.wait(RETRY)  # pause before retrying a failed exporter

    def _follow(self) -> None:
        readings = self.client.watch(INTERVAL)
        try:
            for reading in readings:
                if self._stopped.is_set():
                    return
                sample = [round(time.monotonic() - self._start, 2), reading.voltage, reading.current]
                self._history = [*self._history[-(HISTORY - 1):], sample]
                recovered = {"error": ""} if self.error.startswith("watching readings:") else {}
                self._show_state(readings=self._history, **recovered)
        finally:
            readings.close()

    def _show_state(self, **traits: Any) -> None:
        state = self.client.state()
        self.update(state="unknown" if state is None else "on" if state else "off", **traits)

    def stop(self) -> None:
        self._stopped.set()
