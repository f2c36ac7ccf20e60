"""``WidgetWatcher``: the one background thread that keeps a widget's traits in step with the exporter.

A widget that must show state changed elsewhere (a cell's ``dut.power.on()``, the board's
shell lighting the LED) runs its watch loop in a WidgetWatcher: the loop only calls
``watcher.update(...)`` (batched by the widget), a failure is drawn in the widget as
``<what>: <message>`` and the loop starts again after ``RETRY`` seconds, so a restarted
exporter is picked up without a cell.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

RETRY = 2.0  # seconds between attempts while the exporter fails


class WidgetWatcher:
    """Run ``body(watcher)`` on a daemon thread until ``stop()``; restart it after failures."""

    def __init__(self, widget: Any, what: str, body: Callable[[WidgetWatcher], None]):
        self.widget, self.what, self.body = widget, what, body
        self.stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"jumpstarter-watch {widget.path} {what}"
        )
        self._thread.start()

    def update(self, **traits: Any) -> None:
        """Set the widget's traits (batched), clearing this watcher's earlier error."""
        if self.widget.error.startswith(f"{self.what}: "):
            traits.setdefault("error", "")
        self.widget.update(**traits)

    def wait(self, seconds: float) -> bool:
        """Pause between polls; True once the watcher is stopped."""
        return self.stopped.wait(seconds)

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.body(self)
            except Exception as exc:  # shown in the widget; the thread must outlive any failure
                if not self.stopped.is_set():
                    self.widget.update(error=f"{self.what}: {exc}")
            self.stopped.wait(RETRY)
