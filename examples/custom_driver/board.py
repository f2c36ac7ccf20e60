"""``LabBoard``: a custom composite whose children come from the YAML, plus one orchestration method.

A real bench would wire its own relay, SD mux and debug probe; the shape is the same::

    board:
      type: custom_driver.board.LabBoard
      config: {reset_pulse: 0.2}
      children: {power: ..., storage: ..., network: ..., reset: ..., debugger: {children: {serial: ...}}}
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from jumpstarter_jupyter.driver import export
from jumpstarter_jupyter.drivers.composite.driver import Composite


@dataclass
class LabBoard(Composite):
    """A board on the bench: its children, plus ``hard_reset()`` pulsing the ``reset`` line."""

    # our generic client offers `hard_reset` in Python (dut.board.hard_reset()) and the CLI (j board hard-reset);
    # upstream clients see an ordinary composite
    client = "jumpstarter_jupyter.client.generic.GenericClient"
    upstream_client = "jumpstarter_driver_composite.client.CompositeClient"

    reset_pulse: float = 0.1

    def __post_init__(self) -> None:
        if self.reset_pulse <= 0:
            raise ValueError(f"reset_pulse must be > 0 seconds, got {self.reset_pulse}")

    @export
    def hard_reset(self) -> None:
        """Hold the ``reset`` line active for ``reset_pulse`` seconds, then release it."""
        line = self.children.get("reset")
        if line is None:
            raise ValueError("this board has no `reset` child (a digital output) in its config")
        line.on()
        time.sleep(self.reset_pulse)  # the pulse width itself, not a wait for a condition
        line.off()
