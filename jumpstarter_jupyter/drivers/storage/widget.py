"""``StorageMuxWidget``: a host/dut/off selector and a flash control with a progress bar.

The image path is a file on the kernel's machine (where the notebook runs), as for
``dut.storage.flash(path)`` in a cell.
"""

from __future__ import annotations

import os
from typing import Any

import traitlets

from jumpstarter_jupyter.drivers.storage.client import StorageMuxClient
from jumpstarter_jupyter.jupyter.watcher import WidgetWatcher
from jumpstarter_jupyter.jupyter.widget import DriverWidget

POLL = 1.0  # seconds between reads of the mux position


class StorageMuxWidget(DriverWidget):
    """Switch the storage between host and DUT, and flash images with progress."""

    bundle = "storage"
    state = traitlets.Unicode("unknown").tag(sync=True)  # "host", "dut", "off" or "unknown"
    image = traitlets.Unicode("").tag(sync=True)  # the last image flashed (or being flashed)
    sent = traitlets.Int(0).tag(sync=True)  # bytes of `image` sent so far
    total = traitlets.Int(0).tag(sync=True)  # its size in bytes; 0: nothing flashed yet
    flashing = traitlets.Bool(False).tag(sync=True)
    summarized = ("state", "image", "sent", "total")

    def summarize(self) -> str:
        """Where the card is connected, and the last image flashed."""
        image = f"\nlast image: {self.image} ({self.sent} of {self.total} bytes)" if self.image else ""
        return f"storage connected to: {self.state}{image}"

    def __init__(self, client: StorageMuxClient, **kwargs: Any):
        super().__init__(client, **kwargs)
        self._watcher = WidgetWatcher(self, "reading the mux", self._poll)

    def action_host(self) -> None:
        self.client.host()
        self._show_state()

    def action_dut(self) -> None:
        self.client.dut()
        self._show_state()

    def action_off(self) -> None:
        self.client.off()
        self._show_state()

    def action_flash(self, path: str) -> None:
        path = os.path.expanduser(str(path).strip())
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no image file {path!r} on the kernel's machine")
        self.update(image=path, sent=0, total=os.path.getsize(path), flashing=True)
        try:
            self.client.flash(path, progress=lambda sent, total: self.update(sent=sent, total=total or 0))
        finally:
            self.update(flashing=False)
            self._show_state()

    def _show_state(self) -> None:
        self.update(state=self.client.state() or "unknown")

    def _poll(self, watcher: WidgetWatcher) -> None:
        while True:
            watcher.update(state=self.client.state() or "unknown")
            if watcher.wait(POLL):
                return

    def stop(self) -> None:
        self._watcher.stop()
