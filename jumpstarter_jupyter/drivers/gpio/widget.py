"""GPIO widgets: a switch per output (``DigitalOutputWidget``), a live indicator per input.

Both show the pin's actual level: an input follows the driver's ``watch()`` stream (the virtual
board's LED lights as soon as its shell runs ``led on``); an output is read back after each
click and every ``POLL`` seconds, so a cell's ``dut.button.on()`` shows here too.
"""

from __future__ import annotations

from typing import Any

import traitlets

from jumpstarter_jupyter.drivers.gpio.client import DigitalInputClient, DigitalOutputClient
from jumpstarter_jupyter.jupyter.watcher import WidgetWatcher
from jumpstarter_jupyter.jupyter.widget import DriverWidget

POLL = 0.5  # seconds between read-backs of an output pin
LEVELS = {1: "active", 0: "inactive", -1: "not read yet"}


class _PinWidget(DriverWidget):
    """What both pin widgets share: their front end, the pin's level and its text."""

    bundle = "gpio"
    summarized = ("value",)
    kind = traitlets.Unicode("").tag(sync=True)  # "output" or "input"
    value = traitlets.Int(-1).tag(sync=True)  # 1 active, 0 inactive, -1 not read yet

    def summarize(self) -> str:
        """``output pin: active``."""
        return f"{self.kind} pin: {LEVELS.get(self.value, 'unknown')}"


class DigitalOutputWidget(_PinWidget):
    """A switch driving one output pin."""

    kind = traitlets.Unicode("output").tag(sync=True)

    def __init__(self, client: DigitalOutputClient, **kwargs: Any):
        super().__init__(client, **kwargs)
        self._watcher = WidgetWatcher(self, "reading the pin", self._poll)

    def action_set(self, active: bool) -> None:
        self.client.on() if active else self.client.off()
        self.update(value=self.client.read_pin())

    def _poll(self, watcher: WidgetWatcher) -> None:
        while True:
            watcher.update(value=self.client.read_pin())
            if watcher.wait(POLL):
                return

    def stop(self) -> None:
        self._watcher.stop()


class DigitalInputWidget(_PinWidget):
    """A live indicator of one input pin."""

    kind = traitlets.Unicode("input").tag(sync=True)

    def __init__(self, client: DigitalInputClient, **kwargs: Any):
        super().__init__(client, **kwargs)
        self._watcher = WidgetWatcher(self, "watching the pin", self._watch)

    def _watch(self, watcher: WidgetWatcher) -> None:
        values = self.client.watch()
        try:
            for value in values:
                watcher.update(value=value)
                if watcher.stopped.is_set():
                    return
        finally:
            values.close()

    def stop(self) -> None:
        self._watcher.stop()
